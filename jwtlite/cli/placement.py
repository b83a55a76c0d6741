"""Thread placement: the server's Python threads on one core, password hashes on all of them.

On a small VM a waitress process whose threads float over every core runs several times
slower than the same process held on one core (660-6,300 req/s against 9,900-11,000 for a bare
app on this project's 2-vCPU machine): every request is handed from the thread that reads the
socket to a worker thread and back, and each hand-off across cores pays a cross-core wake-up
and moves the GIL between caches. Only one thread runs Python at a time anyway, so nothing is
lost by keeping them together. The expensive work that does run in parallel, Argon2id, leaves
the GIL and runs on the hashing pool, whose threads keep every core the process was given
(:mod:`jwtlite.service.credentials.passwords` restores it for them).

Linux only (``os.sched_setaffinity``); elsewhere, or with one core, nothing changes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["AUTO", "NONE", "pin_python_threads", "python_threads_pinned"]

AUTO = "auto"
NONE = "none"


def pin_python_threads(choice: str) -> int | None:
    """Hold the calling thread, and every thread it starts from now on, to one core.

    Args:
        choice: ``"auto"`` (a core of the allowed set, chosen by process id so that
            several servers on one host spread out), ``"none"`` (no pinning) or a core
            number from the allowed set.

    Returns:
        The core, or None when nothing was pinned.

    Raises:
        ValueError: ``choice`` names a core the process may not use, or is not a choice.
    """
    if choice == NONE or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if choice == AUTO:
        if len(allowed) < 2:
            return None
        core = allowed[os.getpid() % len(allowed)]
    elif choice.isdecimal() and int(choice) in allowed:
        core = int(choice)
    else:
        raise ValueError(f"--cpu must be auto, none or one of {allowed}, got {choice!r}")
    os.sched_setaffinity(0, {core})  # this thread: the ones it starts inherit it
    return core


@contextmanager
def python_threads_pinned(choice: str) -> Iterator[int | None]:
    """:func:`pin_python_threads` for the body of a ``with``, the cores given back after it.

    A launcher run in-process (by an embedding host, or a test) leaves its caller's thread
    as it found it.

    Raises:
        ValueError: as :func:`pin_python_threads`, before anything changed.
    """
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    core = pin_python_threads(choice)
    try:
        yield core
    finally:
        if core is not None and before is not None:
            os.sched_setaffinity(0, before)
