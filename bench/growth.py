"""Growth benchmark: what register, login, refresh and verify cost on a store holding a million
users and three million refresh tokens, beside what they cost on an empty one, in one run.

Run: ``python bench/growth.py [--store sqlite|postgres|both] [--users N] [--tokens N]``
(PostgreSQL: ``--postgres-url``, default ``JWTLITE_TEST_POSTGRES_URL``, else
``postgresql://postgres@127.0.0.1:5432/postgres``; the benchmark creates and drops databases
of its own).

For each store it opens two databases side by side, an empty one and a full one, and loads
the full one directly (secondary indexes rebuilt once at the end): ``COPY`` on PostgreSQL,
``executemany`` in large transactions on SQLite, with realistic rows (usernames with their
keys and skeletons, one Argon2id PHC string of the benchmark's cost, random 128-bit jti,
live refresh tokens in a mix of states, each with its session row) into the real schema
with its indexes. Then the
service (``create_app``, called in-process through WSGI, no HTTP) runs the same operations on
both, in interleaved rounds so drift hits both alike: register a new user, log in as an
existing one, refresh with rotation (a write that spends a token and stores one), verify an
access token. Argon2id runs at the tests' cheap cost, so the store's part of each operation
shows instead of drowning in the hash.

Printed: per operation the median time on the empty store and on the full one, and the ratio
(target: at most 1.2x for login, refresh and register, on both backends).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jwtlite.service.credentials.confusables import username_skeleton  # noqa: E402
from jwtlite.service.credentials.passwords import PasswordHasher  # noqa: E402
from jwtlite.service.credentials.validators import username_key  # noqa: E402
from jwtlite.service.settings import Settings  # noqa: E402
from jwtlite.store import Store  # noqa: E402
from jwtlite.web.app import create_app  # noqa: E402

PASSWORD = "growth-password-Correct-7"
SECRET = "growth-shared-signing-key-0123456789abcdef"
CHEAP = {"password_hash_memory_kib": 1024, "password_hash_iterations": 1}
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET = 1.2
NOW = time.time()
BATCH = 100_000
STATES = ["active"] * 16 + ["spent"] * 3 + ["blacklisted"]


def settings_for(database: str) -> Settings:
    return Settings(
        database=database,
        secret_key=SECRET,
        rotate_refresh_tokens=True,
        access_token_lifetime=86400,
        refresh_token_lifetime=86400 * 30,
        login_max_failures_per_address=10**9,
        login_max_failures_per_username=10**9,
        registration_max_per_address=10**9,
        **CHEAP,
    )


class Service:
    """The WSGI app over one store, called in-process."""

    def __init__(self, database: str) -> None:
        self.settings = settings_for(database)
        self.store: Store = self.settings.open_store(threads=1)
        self.app = create_app(self.settings, store=self.store)

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        data = json.dumps(body).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "SERVER_NAME": "bench",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(data),
            "wsgi.errors": sys.stderr,
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(data)),
            "REMOTE_ADDR": "192.0.2.1",
        }
        status: list[str] = []
        reply = b"".join(self.app(environ, lambda s, h, e=None: status.append(s)))
        return int(status[0].split()[0]), json.loads(reply) if reply else None

    def close(self) -> None:
        self.store.close()


def user_rows(count: int, password_hash: str) -> Iterator[tuple[Any, ...]]:
    for i in range(count):
        name = f"user{i}"
        yield (name, username_key(name), username_skeleton(name), "", password_hash, NOW)


def token_rows(count: int, users: int, seed: int) -> Iterator[tuple[Any, ...]]:
    """Refresh tokens, each the first of its session (its family: the jti's first half)."""
    rng = random.Random(seed)
    for _ in range(count):
        jti = f"{rng.getrandbits(128):032x}"
        issued = int(NOW) - rng.randrange(86400)
        yield (
            jti,
            rng.randrange(1, users + 1),
            jti[:16],
            issued,
            issued + 86400 * 30,
            rng.choice(STATES),
        )


def session_rows(count: int, users: int, seed: int) -> Iterator[tuple[Any, ...]]:
    """The session of each of ``token_rows(count, users, seed)`` (the same random draws)."""
    for _, user_id, family, issued, expires, state in token_rows(count, users, seed):
        session_state = "revoked" if state == "blacklisted" else "active"
        yield (family, user_id, issued, issued, expires, "bench", "192.0.2.1", session_state)


def fill_sqlite(path: str, users: int, tokens: int, password_hash: str) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    # A bulk load only: a big page cache, no fsync per batch, the secondary indexes built
    # once at the end (the end state is the same). The service's connections keep theirs.
    connection.execute("PRAGMA cache_size = -1000000")
    connection.execute("PRAGMA synchronous = OFF")
    indexes = connection.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('users', 'sessions', 'refresh_tokens')"
    ).fetchall()
    try:
        for name, _ in indexes:
            connection.execute(f"DROP INDEX {name}")
        for rows, sql in (
            (
                user_rows(users, password_hash),
                "INSERT INTO users (username, username_key, username_skeleton, email,"
                " password_hash, date_joined) VALUES (?, ?, ?, ?, ?, ?)",
            ),
            (
                session_rows(tokens, users, 1),
                "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at,"
                " user_agent, address, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ),
            (
                token_rows(tokens, users, 1),
                "INSERT INTO refresh_tokens (jti, user_id, family, issued_at, expires_at, state)"
                " VALUES (?, ?, ?, ?, ?, ?)",
            ),
        ):
            while batch := [row for _, row in zip(range(BATCH), rows, strict=False)]:
                connection.execute("BEGIN")
                connection.executemany(sql, batch)
                connection.execute("COMMIT")
        for _, sql in indexes:
            connection.execute(sql)
        connection.execute("ANALYZE")
    finally:
        connection.close()


def fill_postgres(url: str, users: int, tokens: int, password_hash: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        # A bulk load only: the secondary indexes built once at the end, foreign-key checks
        # off while copying rows that are valid by construction (the end state is the same).
        indexes = connection.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN"
            " ('users', 'sessions', 'refresh_tokens') AND indexname NOT LIKE '%%_pkey'"
        ).fetchall()
        for name, _ in indexes:
            connection.execute(f"DROP INDEX {name}")
        connection.execute("SET session_replication_role = replica")
        connection.execute("SET maintenance_work_mem = '256MB'")
        with connection.cursor().copy(
            "COPY users (username, username_key, username_skeleton, email, password_hash,"
            " date_joined) FROM STDIN"
        ) as copy:
            for row in user_rows(users, password_hash):
                copy.write_row(row)
        with connection.cursor().copy(
            "COPY sessions (id, user_id, created_at, last_used_at, expires_at, user_agent,"
            " address, state) FROM STDIN"
        ) as copy:
            for row in session_rows(tokens, users, 1):
                copy.write_row(row)
        with connection.cursor().copy(
            "COPY refresh_tokens (jti, user_id, family, issued_at, expires_at, state) FROM STDIN"
        ) as copy:
            for row in token_rows(tokens, users, 1):
                copy.write_row(row)
        connection.execute("SET session_replication_role = origin")
        for _, definition in indexes:
            connection.execute(definition)
        connection.execute("VACUUM ANALYZE")


@contextmanager
def postgres_databases(admin_url: str, count: int) -> Iterator[list[str]]:
    import psycopg

    names = [f"jwtlite_growth_{secrets.token_hex(4)}" for _ in range(count)]
    with psycopg.connect(admin_url, autocommit=True) as connection:
        for name in names:
            connection.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    try:
        yield [urlunsplit(parts._replace(path="/" + name)) for name in names]
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            for name in names:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Workload:
    """The operations, on one service, each returning its duration in seconds."""

    def __init__(self, service: Service, existing: int, tag: str) -> None:
        self.service = service
        self.existing = existing
        self.tag = tag
        self.counter = 0
        self.rng = random.Random(2)
        _, pair = self._login()
        self.refresh_token = pair["refresh"]
        self.access_token = pair["access"]

    def _login(self) -> tuple[float, Any]:
        name = f"user{self.rng.randrange(self.existing)}"
        began = time.perf_counter()
        status, body = self.service.post(
            "/accounts/token/", {"username": name, "password": PASSWORD}
        )
        took = time.perf_counter() - began
        assert status == 200, (status, body)
        return took, body

    def register(self) -> float:
        self.counter += 1
        body = {"username": f"new{self.tag}{self.counter}", "password": PASSWORD}
        began = time.perf_counter()
        status, reply = self.service.post("/accounts/register/", body)
        took = time.perf_counter() - began
        assert status == 201, (status, reply)
        return took

    def login(self) -> float:
        return self._login()[0]

    def refresh(self) -> float:
        began = time.perf_counter()
        status, reply = self.service.post(
            "/accounts/token/refresh/", {"refresh": self.refresh_token}
        )
        took = time.perf_counter() - began
        assert status == 200, (status, reply)
        self.refresh_token = reply["refresh"]
        return took

    def verify(self) -> float:
        began = time.perf_counter()
        status, reply = self.service.post("/accounts/token/verify/", {"token": self.access_token})
        took = time.perf_counter() - began
        assert status == 200, (status, reply)
        return took


OPERATIONS = ("register", "login", "refresh", "verify")


def compare(
    empty: Workload, full: Workload, *, rounds: int, per_round: int
) -> dict[str, tuple[float, float]]:
    """Median seconds per operation on the empty and the full store."""
    times: dict[tuple[str, str], list[float]] = {
        (op, side): [] for op in OPERATIONS for side in ("empty", "full")
    }
    for _ in range(rounds):
        for op in OPERATIONS:
            for side, workload in (("empty", empty), ("full", full)):
                run: Callable[[], float] = getattr(workload, op)
                times[op, side] += [run() for _ in range(per_round)]
    return {
        op: (statistics.median(times[op, "empty"]), statistics.median(times[op, "full"]))
        for op in OPERATIONS
    }


def bench_store(
    store: str, databases: tuple[str, str], args: argparse.Namespace
) -> dict[str, tuple[float, float]]:
    empty_db, full_db = databases
    password_hash = PasswordHasher(memory_kib=1024, iterations=1).hash(PASSWORD)
    services = [Service(empty_db), Service(full_db)]  # both schemas made by the store itself
    try:
        began = time.monotonic()
        fill = fill_postgres if store == "postgres" else fill_sqlite
        fill(empty_db, 50, 0, password_hash)
        fill(full_db, args.users, args.tokens, password_hash)
        print(
            f"{store}: loaded {args.users:,} users and {args.tokens:,} refresh tokens in "
            f"{time.monotonic() - began:.0f} s",
            flush=True,
        )
        empty = Workload(services[0], 50, "e")
        full = Workload(services[1], args.users, "f")
        return compare(empty, full, rounds=args.rounds, per_round=args.per_round)
    finally:
        for service in services:
            service.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--tokens", type=int, default=3_000_000)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--per-round", type=int, default=40, help="operations per round")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("JWTLITE_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
        help="a PostgreSQL server where the benchmark may create (and drop) databases",
    )
    args = parser.parse_args()
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    results: dict[str, dict[str, tuple[float, float]]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="jwtlite-growth-"))
    try:
        for store in stores:
            if store == "sqlite":
                paths = (str(workdir / "empty.sqlite3"), str(workdir / "full.sqlite3"))
                results[store] = bench_store(store, paths, args)
            else:
                with postgres_databases(args.postgres_url, 2) as urls:
                    results[store] = bench_store(store, (urls[0], urls[1]), args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"\n{args.users:,} users, {args.tokens:,} refresh tokens; median of "
        f"{args.rounds} x {args.per_round} interleaved operations each; Argon2id m=1024 t=1"
    )
    print(f"{'store':10}{'operation':10}{'empty ms':>10}{'full ms':>10}{'ratio':>8}  target")
    missed = False
    for store, rows in results.items():
        for op, (empty, full) in rows.items():
            ratio = full / empty
            verdict = ""
            if op != "verify":
                ok = ratio <= TARGET
                missed |= not ok
                verdict = f"≤{TARGET}x {'met' if ok else 'MISSED'}"
            print(
                f"{store:10}{op:10}{empty * 1000:10.3f}{full * 1000:10.3f}{ratio:7.2f}x  {verdict}"
            )
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
