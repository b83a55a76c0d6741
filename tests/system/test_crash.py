"""Crash safety: SIGKILL a real ``serve.py`` in the middle of a write storm, restart it, and
check that nothing it acknowledged was lost.

The short version of ``bench/crash.py`` (which does ten kills): three kills, each after a
random moment (0.5-1.5 s) of registrations, logins, rotations and blacklistings from four
client threads. After every restart, on the same database file:

- ``PRAGMA integrity_check`` is ``ok`` and no foreign key dangles;
- every registration answered 201 can log in;
- every refresh token whose blacklisting (or rotation) was answered 200 stays refused.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from support import FAST_HASH_ENV, ServerProcess
from support.load import STORM_ENV, Ledger, audit, write_storm

pytestmark = pytest.mark.slow

KILLS = 3
WORKERS = 4


def storm_then_kill(server: ServerProcess, ledger: Ledger, *, tag: str, kill_after: float) -> int:
    """Run the write storm against ``server`` and SIGKILL it ``kill_after`` seconds in."""
    answered: list[int] = []
    storm = threading.Thread(
        target=lambda: answered.append(
            write_storm(
                server.url, ledger, tag=tag, workers=WORKERS, deadline=time.monotonic() + 20
            )
        )
    )
    storm.start()
    time.sleep(kill_after)
    server.kill()
    storm.join(60)
    assert not storm.is_alive()
    return answered[0]


def test_sigkill_during_a_write_storm_loses_nothing_acknowledged(db_path: Path) -> None:
    seed = random.randrange(2**32)
    chance = random.Random(seed)
    ledger = Ledger()
    env = {**FAST_HASH_ENV, **STORM_ENV}
    for kill in range(KILLS):
        server = ServerProcess(database=db_path, env=env, args=["--threads", "8"]).start()
        try:
            before = audit(server.url, db_path, ledger)
            assert before.ok, f"seed {seed}, after restart {kill}: {before}"
            answered = storm_then_kill(
                server, ledger, tag=f"k{kill}", kill_after=chance.uniform(0.5, 1.5)
            )
        finally:
            server.stop()
        assert answered > 0
    server = ServerProcess(database=db_path, env=env).start()
    try:
        final = audit(server.url, db_path, ledger)
    finally:
        server.stop()

    assert final.ok, f"seed {seed}: {final}"
    assert ledger.unexpected == [], f"seed {seed}"
    assert len(ledger.users) >= KILLS  # each storm got at least one registration through
    assert ledger.blacklisted
