"""Thread placement: the server's Python threads share one core, password hashes use all.

Read from ``/proc/<pid>/task/*``: each thread's name and allowed cores, while a real
``serve.py`` runs (Linux only, and only meaningful with two cores or more).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from jwtlite.cli import serve

from support import PASSWORD, ServerProcess, clean_environ, http

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="thread placement needs Linux and at least two cores",
)


def cores_of_threads(pid: int) -> list[str]:
    """The allowed-core list of each thread of process ``pid`` (Python 3.11 does not name
    its threads for the kernel, so they are told apart by where they may run)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        lines = (task / "status").read_text().splitlines()
        found.append(
            next(line.split()[1] for line in lines if line.startswith("Cpus_allowed_list"))
        )
    return found


def hash_once(server: ServerProcess) -> None:
    body = {"username": "alice", "password": PASSWORD}
    assert http("POST", f"{server.url}/accounts/register/", body).status == 201
    assert http("POST", f"{server.url}/accounts/token/", body).status == 200


def allowed() -> str:
    cores = sorted(os.sched_getaffinity(0))
    return f"{cores[0]}-{cores[-1]}" if cores == list(range(cores[0], cores[-1] + 1)) else ""


def test_python_threads_share_one_core_and_hashes_use_all(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server()
    hash_once(server)
    assert server.process is not None
    cores = Counter(cores_of_threads(server.process.pid))
    every = cores.pop(allowed())  # the hashing pool's threads (at most one per core)
    assert 1 <= every <= len(os.sched_getaffinity(0))
    ((core, python),) = cores.items()  # the main thread and waitress's 48 workers: one core
    assert core.isdecimal()
    assert python >= 48


def test_cpu_none_leaves_every_thread_floating(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(args=["--cpu", "none"])
    hash_once(server)
    assert server.process is not None
    assert set(cores_of_threads(server.process.pid)) == {allowed()}


@pytest.mark.parametrize("choice", ["9999", "one", "-1"])
def test_an_impossible_cpu_is_refused_at_start_up(choice: str, tmp_path: Path) -> None:
    server = ServerProcess(database=tmp_path / "db.sqlite3", args=["--cpu", choice])
    with pytest.raises(RuntimeError, match="--cpu must be auto, none or one of"):
        server.start()
    assert sys.executable  # the server exited with its one-line reason (in the error)


def test_a_launcher_run_in_process_gives_its_caller_the_cores_back(tmp_path: Path) -> None:
    # serve.main() called by a host (or a test) that fails after placing its threads: the
    # caller's thread must not stay held to one core (it once made later tests in the same
    # worker see a single core).
    before = os.sched_getaffinity(0)
    environ = {**clean_environ(), "JWTLITE_DATABASE": str(tmp_path / "db.sqlite3")}
    environ["JWTLITE_COOKIE_SECURE"] = "false"  # refused off loopback, after the placement
    assert serve.main(["--host", "192.0.2.7", "--port", "0", "--cpu", "auto"], environ) == 2
    assert os.sched_getaffinity(0) == before
