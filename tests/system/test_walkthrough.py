"""The service tutorial works as printed: its shell blocks run verbatim against a real server.

The first block starts the server; the test starts ``serve.py`` with exactly the settings that
block names (on the test's own database file), then runs every later block, in order, in one
POSIX shell with ``API`` pointing at that server, and checks the status every step printed.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

from support import ROOT, ServerProcess, clean_environ

TUTORIAL = ROOT / "docs" / "tutorials" / "service.md"
# What the walkthrough's `call` steps answer, in order: register, verify, me, blacklist,
# sessions, end a session, log out everywhere, JWKS, health, the OpenAPI document, deletion.
EXPECTED_STATUSES = ["201", "200", "200", "200", "200", "204", "200", "200", "200", "200", "204"]


def shell_blocks(path: Path) -> list[str]:
    """The page's ```sh blocks, in order."""
    return re.findall(r"^```sh\n(.*?)^```$", path.read_text(encoding="utf-8"), re.M | re.S)


def server_settings(block: str) -> dict[str, str]:
    """The ``JWTLITE_*`` assignments before ``.venv/bin/python serve.py`` in ``block``."""
    words = shlex.split(block.replace("\\\n", " "))
    assert words[-2:] == [".venv/bin/python", "serve.py"], words
    settings = dict(word.split("=", 1) for word in words[:-2])
    assert all(name.startswith("JWTLITE_") for name in settings), settings
    return settings


def test_the_service_tutorial_runs_as_printed(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    first, *steps = shell_blocks(TUTORIAL)
    settings = server_settings(first)
    assert settings.pop("JWTLITE_DATABASE") == "/tmp/walkthrough.sqlite3"
    server = start_server(settings)
    result = subprocess.run(
        ["sh", "-c", "\n".join(steps)],
        env={**clean_environ(), "API": server.url},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    statuses = re.findall(r"(?:^| )([0-9]{3})(?: application/json)?$", result.stdout, re.M)
    assert statuses == EXPECTED_STATUSES, result.stdout
    assert '"username":"alice"' in result.stdout.replace(" ", "")
    assert '"current":false' in result.stdout.replace(" ", "")
