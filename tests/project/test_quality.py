"""The project's own checks run with the tests: lint, format, strict typing and sizes."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from support import ROOT


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["ruff", "check", "."], id="ruff-check"),
        pytest.param(["ruff", "format", "--check", "."], id="ruff-format"),
        pytest.param(["mypy"], id="mypy-strict"),
    ],
)
def test_check_passes(command: list[str]) -> None:
    if importlib.util.find_spec(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed (pip install -e '.[test]')")
    result = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


MAX_MODULE_LINES = 520
MAX_MODULES_SIDE_BY_SIDE = {"jwtlite": 12, "jwtlite/service": 16}


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in (ROOT / "jwtlite").rglob("*.py")
    }
    assert {path: lines for path, lines in sizes.items() if lines > MAX_MODULE_LINES} == {}


@pytest.mark.parametrize(("folder", "limit"), MAX_MODULES_SIDE_BY_SIDE.items())
def test_a_folder_holds_few_modules_side_by_side(folder: str, limit: int) -> None:
    modules = [p.name for p in (ROOT / folder).glob("*.py") if p.name != "__init__.py"]
    assert len(modules) <= limit, sorted(modules)
