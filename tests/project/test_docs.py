"""The docs say what the code does: the settings page is generated, the examples run.

The settings reference is written by ``docs/settings_reference.py`` from ``Settings`` itself;
a setting added, renamed or given another default fails here until the page is regenerated.
Every ``python`` block of the docs, and the package docstring's "Start here", runs as printed.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import jwtlite
from jwtlite.service import Settings

from support import ROOT

DOCS = ROOT / "docs"


def settings_reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "settings_reference", DOCS / "settings_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_settings_reference_is_the_generated_page() -> None:
    generated = settings_reference().render()
    assert (DOCS / "reference" / "settings.md").read_text(encoding="utf-8") == generated, (
        "docs/reference/settings.md is stale: run .venv/bin/python docs/settings_reference.py"
    )


def test_every_setting_has_a_meaning_and_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    module = settings_reference()
    monkeypatch.delitem(module.MEANINGS, "LEEWAY")
    with pytest.raises(ValueError, match="LEEWAY"):
        module.render()


def python_blocks() -> list[tuple[str, str]]:
    blocks = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        for index, block in enumerate(re.findall(r"^```python\n(.*?)^```$", text, re.M | re.S)):
            blocks.append((f"{page.relative_to(DOCS)}#{index}", block))
    return blocks


@pytest.mark.parametrize(("where", "block"), python_blocks(), ids=[w for w, _ in python_blocks()])
def test_a_python_block_of_the_docs_runs(
    where: str, block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # an example that opens the default database opens it here
    exec(compile(block, where, "exec"), {"__name__": "docs_example"})  # noqa: S102 (our docs)


def test_the_package_docstring_example_runs() -> None:
    assert jwtlite.__doc__ is not None
    after = jwtlite.__doc__.split("Start here::\n", 1)[1].splitlines()
    lines: list[str] = []
    for line in after:
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    assert any("jwtlite.decode" in line for line in lines)
    exec(compile("\n".join(lines), "jwtlite.__doc__", "exec"), {})  # noqa: S102 (our docs)


README = ROOT / "README.md"


def readme_blocks(language: str) -> list[str]:
    return re.findall(
        rf"^```{language}\n(.*?)^```$", README.read_text(encoding="utf-8"), re.M | re.S
    )


def setup_blocks() -> dict[str, dict[str, str]]:
    """The README's "set-up: ..." blocks, each as the variables it exports."""
    found = {}
    for block in readme_blocks("sh"):
        first, *rest = block.splitlines()
        if first.startswith("# set-up: "):
            words = shlex.split(" ".join(line.removeprefix("export ") for line in rest))
            found[first.removeprefix("# set-up: ")] = dict(word.split("=", 1) for word in words)
    return found


def test_the_readme_offers_the_four_set_ups() -> None:
    assert sorted(setup_blocks()) == [
        "SPA with cookies",
        "resource servers",
        "several instances",
        "single host",
    ]


@pytest.mark.parametrize("name", sorted(setup_blocks()))
def test_a_readme_set_up_is_a_valid_configuration(name: str, tmp_path: Path) -> None:
    environ = setup_blocks()[name]
    for variable, value in environ.items():  # the block's files and folders, made here
        if value.startswith(("/etc/", "/srv/")):
            environ[variable] = str(tmp_path / Path(value).name)
    if "JWTLITE_PRIVATE_KEY_FILE" in environ:  # made as the README says
        keygen = [sys.executable, "-m", "jwtlite", "keygen", environ["JWTLITE_ALGORITHM"]]
        subprocess.run([*keygen, "--out", environ["JWTLITE_PRIVATE_KEY_FILE"]], check=True)
    settings = Settings.from_env(environ)
    assert settings.access_token_lifetime >= 10


@pytest.mark.parametrize("index", range(len(readme_blocks("python"))))
def test_a_readme_python_block_runs(
    index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    block = readme_blocks("python")[index]
    exec(compile(block, f"README.md#{index}", "exec"), {"__name__": "readme"})  # noqa: S102


def test_the_readme_is_an_entrance() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    commands = readme_blocks("sh")[:2]
    assert commands[0].strip().endswith(".venv/bin/python serve.py")
    assert commands[1].strip().endswith(".venv/bin/python -m pytest")
    for target in re.findall(r"\]\(((?:docs/)?[^)#:]+\.md)\)", text):
        assert (ROOT / target).is_file(), target
