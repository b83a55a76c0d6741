"""Node.js clients of other ecosystems, for the interop tests (``tests/system/node/``).

The packages are pinned in ``tests/system/node/package-lock.json`` and installed there with
``npm ci`` on first use (once per machine: a lock keeps parallel workers from installing
twice). Without Node.js or npm, or when the install fails, the tests skip with the reason;
``REQUIRE_NODE_TESTS=1`` (as in CI) makes that a failure.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
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


def run(script: str, *args: str) -> Any:
    """Run ``tests/system/node/<script>`` with ``args``; the JSON it printed.

    A script that fails fails the test, with its error output."""
    project = installed()
    done = subprocess.run(
        ["node", str(project / script), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=_RUN_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def fails(script: str, *args: str) -> str:
    """Run a script that must fail; its error output."""
    project = installed()
    done = subprocess.run(
        ["node", str(project / script), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=_RUN_SECONDS,
        check=False,
    )
    assert done.returncode != 0, done.stdout
    return done.stderr
