"""Crash benchmark: SIGKILL ``serve.py`` at random moments of a write storm, many times.

Run: ``python bench/crash.py [--kills 10] [--workers 4] [--seed N] [--default-hash]``.

Each round starts ``serve.py`` on the same database file, checks everything acknowledged so
far (every 201 registration logs in, every blacklisted or rotated-away refresh token is
refused, ``PRAGMA integrity_check`` is ``ok``), runs registrations, logins, rotations and
blacklistings from several client threads, and kills the server with SIGKILL at a random
moment. A final restart checks once more. Prints one row per kill and exits 1 if anything
acknowledged was lost. The short version runs in the test suite (``tests/system/test_crash.py``).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support import FAST_HASH_ENV, ServerProcess  # noqa: E402
from support.load import STORM_ENV, Audit, Ledger, audit, write_storm  # noqa: E402


def storm_then_kill(
    server: ServerProcess, ledger: Ledger, *, tag: str, workers: int, kill_after: float
) -> int:
    """Run the write storm against ``server``, SIGKILL it after ``kill_after`` seconds."""
    answered: list[int] = []
    deadline = time.monotonic() + kill_after + 30

    def storm() -> None:
        answered.append(
            write_storm(server.url, ledger, tag=tag, workers=workers, deadline=deadline)
        )

    thread = threading.Thread(target=storm)
    thread.start()
    time.sleep(kill_after)
    server.kill()
    thread.join(60)
    return answered[0] if answered else 0


def row(*cells: object) -> str:
    """One table row, fixed widths."""
    widths = (6, 9, 10, 9, 11, 11, 6, 9, 10)
    return "  ".join(str(cell).rjust(width) for cell, width in zip(cells, widths, strict=True))


def main() -> int:
    """Run the kill loop and print the summary table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--default-hash", action="store_true", help="default Argon2 cost (slower storm)"
    )
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    chance = random.Random(seed)
    env = dict(STORM_ENV) if args.default_hash else {**FAST_HASH_ENV, **STORM_ENV}
    ledger = Ledger()
    failures = 0
    print(f"seed {seed}, {args.kills} kills, {args.workers} client threads")
    print(
        row(
            "kill", "after s", "requests", "acked reg", "acked total", "refused tok",
            "lost", "revived", "integrity",
        )
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="jwtlite-crash-") as directory:
        database = Path(directory) / "crash.sqlite3"
        for kill in range(1, args.kills + 2):
            server = ServerProcess(database=database, env=env, args=["--threads", "8"]).start()
            try:
                # Everything acknowledged before the previous kill must have survived it.
                checked: Audit = audit(server.url, database, ledger)
                if kill > args.kills:
                    break
                users_before = len(ledger.users)
                kill_after = chance.uniform(0.2, 2.0)
                answered = storm_then_kill(
                    server, ledger, tag=f"k{kill}", workers=args.workers, kill_after=kill_after
                )
            finally:
                server.stop()
            failures += not checked.ok
            print(
                row(
                    kill,
                    f"{kill_after:.2f}",
                    answered,
                    len(ledger.users) - users_before,
                    len(ledger.users),
                    len(ledger.blacklisted) + len(ledger.spent),
                    "-" if kill == 1 else len(checked.lost_users),
                    "-" if kill == 1 else len(checked.revived_tokens),
                    "-" if kill == 1 else checked.integrity,
                ),
                flush=True,
            )
        failures += not checked.ok
    print(
        row(
            "final", "", "", "", len(ledger.users), len(ledger.blacklisted) + len(ledger.spent),
            len(checked.lost_users), len(checked.revived_tokens), checked.integrity,
        )
    )  # fmt: skip
    if ledger.unexpected:
        print(f"unexpected answers during the storms: {ledger.unexpected[:5]}")
    lost = failures or ledger.unexpected
    print("RESULT:", "FAIL - acknowledged data lost" if lost else "ok - lost = 0")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
