"""Key-ring benchmark: what following a key directory costs a token check, in one process.

Run: ``python bench/keyring.py [--rounds 7] [--number 20000]``.

It times the service's token check (``TokenMinter.decode``: signature, times, claim forms)
of an HS256 access token in five ways, interleaved round by round so machine noise hits
every row alike, each figure the median over rounds:

- ``library``: ``jwtlite.jwt.decode`` with the key and the same options: the reference, what
  the check cost before rings existed minus the service's few claim-form checks;
- ``single key``: the service over one key (``SECRET_KEY``, today's default);
- ``ring, current``: the service over a key directory after two rotations (a kid-less first
  HMAC key, a retired one, the current one), a token of the current key;
- ``ring, retired``: the same ring, a token of a retired key;
- ``ring, no kid``: the same ring, a token of the first key (simplejwt's header).

The ring rows pay for the ``kid`` lookup (a dictionary hit on the header segment) and the
reload deadline check; the table shows each row as a ratio to ``library``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jwtlite import Key, jwt
from jwtlite.service.settings import Settings
from jwtlite.service.signing.directory import KeyDirectory
from jwtlite.service.signing.keyring import KeyRing, Ring
from jwtlite.service.tokens import TokenMinter
from jwtlite.store import User

SECRET = "bench-shared-signing-key-0123456789abcdef"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (medians)")
    parser.add_argument("--number", type=int, default=20000, help="checks per row and round")
    args = parser.parse_args()
    settings = Settings(access_token_lifetime=3600, refresh_token_lifetime=3600)
    now = time.time()
    user = User(42, "alice", "", "", True, now, None)
    single = TokenMinter(settings, Key(SECRET.encode(), "HS256"), lambda: now)
    with tempfile.TemporaryDirectory() as workdir:
        directory = KeyDirectory(str(Path(workdir) / "keys"))
        directory.ensure("HS256", now=int(now), keep_seconds=40)
        first = ring_minter(directory, settings, now)
        kidless = first.access(user, "0123456789abcdef", int(now))
        directory.rotate("HS256", now=int(now), keep_seconds=3600)
        retired = ring_minter(directory, settings, now).access(user, "0123456789abcdef", int(now))
        directory.rotate("HS256", now=int(now), keep_seconds=3600)
        ring = ring_minter(directory, settings, now)
        current = ring.access(user, "0123456789abcdef", int(now))
        plain = single.access(user, "0123456789abcdef", int(now))
        key = single.signing_key
        rows: dict[str, Callable[[], object]] = {
            "library": lambda: jwt.decode(plain, key, ["HS256"], now=now),
            "single key": lambda: single.decode(plain),
            "ring, current": lambda: ring.decode(current),
            "ring, retired": lambda: ring.decode(retired),
            "ring, no kid": lambda: ring.decode(kidless),
        }
        for check in rows.values():
            check()  # every token verifies before anything is timed
        samples: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(args.rounds):
            for name, check in rows.items():
                seconds = timeit.timeit(check, number=args.number)
                samples[name].append(args.number / seconds)
    reference = statistics.median(samples["library"])
    print(f"{'HS256 token check':18}{'checks/s':>12}{'vs library':>12}")
    for name, values in samples.items():
        rate = statistics.median(values)
        print(f"{name:18}{rate:12.0f}{rate / reference:11.2f}x")
    return 0


def ring_minter(directory: KeyDirectory, settings: Settings, now: float) -> TokenMinter:
    files = directory.read()
    keyring = KeyRing(
        Ring.from_files(files),
        pepper=files.pepper,
        directory=directory,
        stamp=files.stamp,
        reload_interval=5,
    )
    return TokenMinter(settings, keyring, lambda: now)


if __name__ == "__main__":
    sys.exit(main())
