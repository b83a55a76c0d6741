"""Node.js clients of other ecosystems, for the interop tests (``tests/system/node/``).

The packages are pinned in ``tests/system/node/package-lock.json`` and installed there with
``npm ci`` on first use (once per machine: a lock keeps parallel workers from installing
twice). Without Node.js or npm, or when the install fails, the tests skip with the reason;
``REQUIRE_NODE_TESTS=1`` (as in CI) makes that a failure.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parent.parent / "system" / "node"
REQUIRE = "REQUIRE_NODE_TESTS"
_INSTALL_SECONDS = 300
_RUN_SECONDS = 60


def unavailable(reason: str) -> None:
    """Skip the test for ``reason``, or fail it under ``REQUIRE_NODE_TESTS=1``."""
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{REQUIRE}=1 but {reason}")
    pytest.skip(reason)


def installed() -> Path:
    """The Node project with its packages installed (installing them the first time)."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed (Node.js 20 or later)")
    lock = PROJECT / "package-lock.json"
    stamp = PROJECT / "node_modules" / ".installed-lock.json"
    with open(PROJECT / ".install.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not stamp.exists() or stamp.read_bytes() != lock.read_bytes():
            done = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=PROJECT,
                capture_output=True,
                text=True,
                timeout=_INSTALL_SECONDS,
                check=False,
            )
            if done.returncode != 0:
                unavailable(f"npm ci failed: {done.stderr.strip()[-300:]}")
            stamp.write_bytes(lock.read_bytes())
    return PROJECT


def _node(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    project = installed()
    return subprocess.run(
        ["node", str(project / script), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=_RUN_SECONDS,
        check=False,
    )


def run(script: str, *args: str) -> Any:
    """Run ``tests/system/node/<script>`` with ``args``; the JSON it printed.

    A script that fails fails the test, with its error output."""
    done = _node(script, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def fails(script: str, *args: str) -> str:
    """Run a script that must fail; its error output."""
    done = _node(script, *args)
    assert done.returncode != 0, done.stdout
    return done.stderr


@contextlib.contextmanager
def server(script: str, *args: str) -> Iterator[str]:
    """Run the server ``tests/system/node/<script>``; its ``http://127.0.0.1:<port>``.

    The script prints ``{"port": N}`` once it listens; it is killed on leaving."""
    project = installed()
    process = subprocess.Popen(
        ["node", str(project / script), *args],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # bounded: the script prints it or dies
        if not line:
            raise AssertionError(f"{script} did not start: {process.communicate(timeout=5)[1]}")
        yield f"http://127.0.0.1:{json.loads(line)['port']}"
    finally:
        process.kill()
        process.communicate(timeout=10)  # reaps it and closes its pipes
