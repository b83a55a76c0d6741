"""Admission benchmark: what honest users get through bursts, floods and overload, in one run.

Run: ``.venv/bin/python bench/admission.py [--store sqlite|postgres] [--seconds N]``

``serve.py`` with its defaults (the default Argon2id cost, the fair hashing queue, 48
threads, Python threads on one core); every client connects from a loopback address of its
own (127.x.y.z). Each case prints its figures beside its reference, measured in the same run:

* **burst**: N users log in at the same instant from N addresses (16, 32), and 8 users behind
  one office address; success and p50/p99, beside the time the same logins take one at a time.
* **flood**: six honest users log in one at a time from their own addresses while one address
  (24 loops) or four addresses (8 loops each) loop correct logins of their own accounts;
  the honest users' logins/s, success rate and p99, beside the same honest workload with no
  attack, and the attackers' share of the successful logins.
* **overload**: goodput (successful logins/s) with 32 looping clients from 32 addresses,
  beside the capacity that 2 looping clients reach.

``--store postgres`` runs the same on a database of its own on the PostgreSQL server
``--postgres-url`` names (default ``JWTLITE_TEST_POSTGRES_URL``, else the local server),
created and dropped.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support import PASSWORD, ServerProcess  # noqa: E402
from support.load import Client, Reply, percentile, post_together  # noqa: E402

TOKEN = "/accounts/token/"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
# The defaults of serve.py, with the cost of real hashes; registrations all come from one
# set-up address, and the flood's accounts are its own, so no throttle is in the way.
ENV = {
    "JWTLITE_REGISTRATION_MAX_PER_ADDRESS": "100000",
    "JWTLITE_SECRET_KEY": "bench-admission-signing-key-0123456789abcdef",
}


def body(name: str) -> dict[str, str]:
    return {"username": name, "password": PASSWORD}


def register(url: str, names: list[str]) -> None:
    client = Client(url, source="127.0.0.250")
    for name in names:
        assert client.post("/accounts/register/", body(name)).status == 201
    client.close()


def summary(replies: list[Reply]) -> str:
    ok = [reply.elapsed * 1000 for reply in replies if reply.status == 200]
    counts = Counter(reply.status for reply in replies)
    shown = " ".join(f"{status}x{count}" for status, count in sorted(counts.items()))
    if not ok:
        return shown
    return f"{shown:22} p50 {percentile(ok, 50):6.0f} ms  p99 {percentile(ok, 99):6.0f} ms"


def sequential_seconds(url: str, names: list[str]) -> float:
    client = Client(url, source="127.0.0.251")
    began = time.perf_counter()
    for name in names:
        assert client.post(TOKEN, body(name)).status == 200
    client.close()
    return time.perf_counter() - began


def bursts(url: str) -> None:
    print("\nburst: everyone logs in at the same instant")
    for size, office in ((16, False), (32, False), (8, True)):
        names = [f"burst{size}{office}x{n}" for n in range(size)]
        register(url, names)
        sources = ["127.0.2.1"] * size if office else [f"127.0.1.{n + 1}" for n in range(size)]
        began = time.perf_counter()
        replies = post_together(url, [(TOKEN, body(name)) for name in names], sources=sources)
        took = time.perf_counter() - began
        reference = sequential_seconds(url, names)
        where = "one office address" if office else f"{size} addresses"
        print(
            f"  {size:2} users, {where:18} {summary(replies)}  all in {took:5.2f} s"
            f"  | reference: one at a time {reference:5.2f} s"
        )


def loop(url: str, source: str, name: str, until: float, out: list[Reply]) -> None:
    client = Client(url, source=source)
    while time.monotonic() < until:
        reply = client.post(TOKEN, body(name))
        out.append(reply)
        if reply.status == 503:
            time.sleep(float(reply.headers.get("retry-after", "1")) / 10)
    client.close()


def looping(url: str, clients: list[tuple[str, str]], seconds: float) -> list[list[Reply]]:
    """Every ``(address, account)`` logging in again and again for ``seconds``."""
    until = time.monotonic() + seconds
    outs: list[list[Reply]] = [[] for _ in clients]
    threads = [
        threading.Thread(target=loop, args=(url, source, name, until, out))
        for (source, name), out in zip(clients, outs, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return outs


def floods(url: str, seconds: float) -> None:
    print(f"\nflood: six honest users, one login at a time each, for {seconds:.0f} s")
    honest = [(f"127.0.6.{n + 1}", f"honest{n}") for n in range(6)]
    register(url, [name for _, name in honest])
    alone = [reply for out in looping(url, honest, seconds) for reply in out]
    alone_rate = sum(reply.status == 200 for reply in alone) / seconds
    print(f"  reference, no attack:  honest {alone_rate:6.1f} logins/s  {summary(alone)}")
    for addresses, loops in ((1, 24), (4, 8), (16, 2)):
        attackers = [
            (f"127.0.{10 + a}.1", f"flood{addresses}a{a}n{n}")
            for a in range(addresses)
            for n in range(loops)
        ]
        register(url, [name for _, name in attackers])
        outs = looping(url, attackers + honest, seconds)
        attacked = [reply for out in outs[: len(attackers)] for reply in out]
        served = [reply for out in outs[len(attackers) :] for reply in out]
        rate = sum(reply.status == 200 for reply in served) / seconds
        attacker_ok = sum(reply.status == 200 for reply in attacked)
        shed = sum(reply.status == 503 for reply in attacked)
        share = attacker_ok / max(1, attacker_ok + sum(reply.status == 200 for reply in served))
        print(
            f"  {addresses:2} address(es) x {loops:2} loops: honest {rate:6.1f} logins/s"
            f" ({rate / alone_rate:4.0%} of the reference)  {summary(served)}"
            f"  | attackers' share of logins {share:4.0%}, shed {shed}"
        )


def overload(url: str, seconds: float) -> None:
    print(f"\noverload: successful logins/s of clients looping for {seconds:.0f} s")
    rates = {}
    for count in (2, 32):
        clients = [(f"127.0.{40 + n}.1", f"over{count}x{n}") for n in range(count)]
        register(url, [name for _, name in clients])
        outs = looping(url, clients, seconds)
        replies = [reply for out in outs for reply in out]
        rates[count] = sum(reply.status == 200 for reply in replies) / seconds
        print(f"  {count:2} clients: {rates[count]:6.1f} logins/s  {summary(replies)}")
    print(f"  goodput with 32 clients: {rates[32] / rates[2]:4.0%} of the 2-client capacity")


@contextmanager
def database(store: str, admin_url: str, workdir: Path) -> Iterator[str]:
    if store == "sqlite":
        yield str(workdir / "bench.sqlite3")
        return
    import psycopg

    name = f"jwtlite_admission_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path="/" + name))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=5, help="length of each loop case")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("JWTLITE_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="jwtlite-admission-"))
    with database(args.store, args.postgres_url, workdir) as url:
        server = ServerProcess(
            database=workdir / "bench.sqlite3", env={**ENV, "JWTLITE_DATABASE": url}
        )
        with server:
            print(f"serve.py defaults on {args.store}, {os.cpu_count()} CPUs: {server.banner}")
            bursts(server.url)
            floods(server.url, args.seconds)
            overload(server.url, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
