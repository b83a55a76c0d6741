"""Bounded soak: a mixed workload at saturation against ``serve.py`` on loopback.

Run: ``python bench/soak.py [--seconds 60] [--clients 4] [--real-hash]``.

It starts ``serve.py`` (rotation on, one-hour token lifetimes so nothing expires mid-run,
throttling raised so the workload is never answered 429) and registers a pool of users.
By default the server uses cheap Argon2id parameters (the tests' FAST_HASH_ENV), so the run
stresses the service rather than the hash; ``--real-hash`` keeps the default cost.

``--clients`` threads, each with its own kept-alive HTTP/1.1 connection, then loop for
``--seconds`` over a weighted mix: verify, me, refresh (each thread keeps the newest refresh
token of its session, so no reuse is ever detected), login, register, blacklist (log out,
then log in again) and a tampered-token verify that must be 401. Any other status, or any
connection error, is an error. A short warm-up precedes the measured run, so that the RSS
"at start" is that of a server which has already served every kind of request.

Printed: throughput, p50/p99 overall and per operation, the error count (must be 0), the
server's RSS (VmRSS from /proc/<pid>/status) at start and end and its growth (must be under
10 %), and the database size before the run, after it, after ``python -m jwtlite
flush-expired`` (real time: nothing of this run has expired yet), after a purge as of the
moment every token of the run has expired, and after VACUUM. Exits 1 when errors > 0 or RSS
grew by 10 % or more.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support import FAST_HASH_ENV, PASSWORD, ServerProcess  # noqa: E402

LIFETIME = 3600
MAX_RSS_GROWTH = 0.10
POOL = 16
# operation: weight
MIX = {
    "verify": 30,
    "me": 25,
    "refresh": 20,
    "login": 8,
    "register": 4,
    "blacklist": 5,
    "verify-tampered": 8,
}


class UnexpectedStatusError(Exception):
    """An answer the workload did not expect."""


@dataclass
class Results:
    """Latencies per operation and errors, shared by the client threads."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, operation: str, seconds: float) -> None:
        with self.lock:
            self.latencies[operation].append(seconds)

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)


class Session:
    """One client thread's connection, user and current tokens."""

    def __init__(self, host: str, port: int, username: str, number: int) -> None:
        self.host, self.port = host, port
        self.username = username
        self.number = number
        self.registered = 0
        self.connection = http.client.HTTPConnection(host, port, timeout=30)
        self.access = ""
        self.refresh = ""

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, str] | None = None,
        *,
        expect: int = 200,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One request; raises UnexpectedStatusError unless the status is ``expect``."""
        all_headers = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body)
            all_headers["Content-Type"] = "application/json"
        try:
            self.connection.request(method, path, data, headers=all_headers)
            response = self.connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()  # reconnect on the next call
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
            raise
        if response.status != expect:
            raise UnexpectedStatusError(f"{method} {path}: {response.status} {payload[:200]!r}")
        document: dict[str, Any] = json.loads(payload)
        return document

    def login(self) -> None:
        pair = self.call(
            "POST", "/accounts/token/", {"username": self.username, "password": PASSWORD}
        )
        self.access, self.refresh = pair["access"], pair["refresh"]

    def run(self, operation: str) -> None:
        """Perform one operation of the mix."""
        if operation == "verify":
            self.call("POST", "/accounts/token/verify/", {"token": self.access})
        elif operation == "me":
            self.call("GET", "/accounts/me/", headers={"Authorization": f"Bearer {self.access}"})
        elif operation == "refresh":
            pair = self.call("POST", "/accounts/token/refresh/", {"refresh": self.refresh})
            self.access, self.refresh = pair["access"], pair["refresh"]
        elif operation == "login":
            self.login()
        elif operation == "register":
            self.registered += 1
            name = f"soak{self.number}x{self.registered}x{random.randrange(10**9)}"
            body = {"username": name, "password": PASSWORD}
            self.call("POST", "/accounts/register/", body, expect=201)
        elif operation == "blacklist":
            self.call("POST", "/accounts/token/blacklist/", {"refresh": self.refresh})
            self.login()
        elif operation == "verify-tampered":
            self.call("POST", "/accounts/token/verify/", {"token": tamper(self.access)}, expect=401)


def tamper(token: str) -> str:
    """The token with its payload's user_id changed (the signature no longer matches)."""
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["user_id"] = str(int(claims["user_id"]) + 1)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{signature}"


def drive(session: Session, results: Results, stop_at: float, *, record: bool) -> None:
    """Run the mix on one session until ``stop_at`` (monotonic)."""
    operations, weights = list(MIX), list(MIX.values())
    rng = random.Random(session.number)
    while time.monotonic() < stop_at:
        operation = rng.choices(operations, weights)[0]
        began = time.perf_counter()
        try:
            session.run(operation)
        except (UnexpectedStatusError, OSError, http.client.HTTPException, ValueError) as exc:
            results.error(f"{operation}: {exc}")
            try:
                session.login()  # start a fresh session after any surprise
            except (UnexpectedStatusError, OSError, http.client.HTTPException) as again:
                results.error(f"login after error: {again}")
            continue
        if record:
            results.record(operation, time.perf_counter() - began)


def run_phase(sessions: list[Session], seconds: float, *, record: bool) -> tuple[Results, float]:
    """Drive every session from its own thread for ``seconds``; return results and the
    wall time taken."""
    results = Results()
    stop_at = time.monotonic() + seconds
    threads = [
        threading.Thread(target=drive, args=(s, results, stop_at), kwargs={"record": record})
        for s in sessions
    ]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return results, time.perf_counter() - began


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def db_size(database: Path) -> str:
    """``N KiB`` for the database file, plus its WAL while one exists."""
    wal = Path(f"{database}-wal")
    size = f"{database.stat().st_size / 1024:.0f} KiB"
    return f"{size} + WAL {wal.stat().st_size / 1024:.0f} KiB" if wal.exists() else size


def row_counts(database: Path) -> str:
    """``users=N refresh_tokens=N attempts=N``."""
    connection = sqlite3.connect(database)
    try:
        counts = [
            f"{table}={connection.execute(f'SELECT count(*) FROM {table}').fetchone()[0]}"  # noqa: S608
            for table in ("users", "refresh_tokens", "attempts")
        ]
    finally:
        connection.close()
    return " ".join(counts)


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report_latencies(results: Results, elapsed: float) -> int:
    """Print throughput and latencies; return the request count."""
    everything = [t for series in results.latencies.values() for t in series]
    total = len(everything)
    print(f"requests       {total} in {elapsed:.1f} s = {total / elapsed:.0f} req/s")
    print(
        f"latency        p50 {statistics.median(everything) * 1000:.2f} ms   "
        f"p99 {percentile(everything, 0.99) * 1000:.2f} ms"
    )
    for operation in MIX:
        series = results.latencies.get(operation, [])
        if series:
            p50, p99 = statistics.median(series) * 1000, percentile(series, 0.99) * 1000
            print(f"  {operation:<16}{len(series):>8}   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")
    return total


def purge_as_of(database: Path, now: float) -> int:
    """``Store.purge_expired`` as of ``now``; returns the rows deleted."""
    from jwtlite.store.sqlite import SQLiteStore

    store = SQLiteStore(str(database))
    try:
        return store.purge_expired(
            tokens_before=now, attempts_before={"login": now - 300, "register": now - 3600}
        )
    finally:
        store.close()


def vacuum(database: Path) -> None:
    """Give the freed pages back to the file system."""
    connection = sqlite3.connect(database)
    try:
        connection.execute("VACUUM")
    finally:
        connection.close()


def after_the_run(database: Path, env: dict[str, str]) -> list[str]:
    """Measure the stopped server's database: as left, after ``flush-expired`` (now), after a
    purge as of the moment every token of the run has expired, and after VACUUM."""
    lines = [f"after  {db_size(database)} ({row_counts(database)})"]
    flush = subprocess.run(
        [sys.executable, "-m", "jwtlite", "flush-expired", "--database", str(database)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )
    flushed = flush.stdout.strip() if flush.returncode == 0 else f"failed: {flush.stderr}"
    lines.append(f"flush-expired now: {flushed} rows deleted, {db_size(database)}")
    purged = purge_as_of(database, time.time() + LIFETIME + 300 + 1)
    lines.append(
        f"Store.purge_expired as of every expiry: {purged} rows deleted, {db_size(database)} "
        f"({row_counts(database)})"
    )
    vacuum(database)
    lines.append(f"after VACUUM {db_size(database)}")
    return lines


def main() -> int:
    """Soak, print the figures, and return 1 on errors or RSS growth of 10 % or more."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured duration")
    parser.add_argument("--clients", type=int, default=4, help="client threads")
    parser.add_argument("--threads", type=int, default=8, help="server worker threads")
    parser.add_argument(
        "--real-hash", action="store_true", help="default Argon2id cost instead of cheap"
    )
    args = parser.parse_args()
    env = {
        "JWTLITE_ROTATE_REFRESH_TOKENS": "true",
        "JWTLITE_ACCESS_TOKEN_LIFETIME": str(LIFETIME),
        "JWTLITE_REFRESH_TOKEN_LIFETIME": str(LIFETIME),
        "JWTLITE_LOGIN_MAX_FAILURES": "1000000",
        "JWTLITE_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000000",
        "JWTLITE_LOGIN_MAX_FAILURES_PER_USERNAME": "1000000",
        "JWTLITE_REGISTRATION_MAX_PER_ADDRESS": "1000000",
        **({} if args.real_hash else FAST_HASH_ENV),
    }
    warmup = min(5.0, max(1.0, args.seconds / 10))
    with tempfile.TemporaryDirectory() as directory:
        database = Path(directory) / "jwtlite.sqlite3"
        server = ServerProcess(database=database, env=env, args=["--threads", str(args.threads)])
        with server:
            assert server.process is not None
            pid = server.process.pid
            host, port = server.url.removeprefix("http://").split(":")
            rss_idle = rss_kib(pid)
            sessions = []
            for number in range(args.clients):
                session = Session(host, int(port), f"user{number % POOL}", number)
                if number < POOL:
                    body = {"username": session.username, "password": PASSWORD}
                    session.call("POST", "/accounts/register/", body, expect=201)
                session.login()
                sessions.append(session)
            warm, _ = run_phase(sessions, warmup, record=False)
            size_before = db_size(database)
            rows_before = row_counts(database)
            rss_start = rss_kib(pid)
            results, elapsed = run_phase(sessions, args.seconds, record=True)
            rss_end = rss_kib(pid)
            for session in sessions:
                session.connection.close()
            code = server.stop()
        database_lines = after_the_run(database, env)

    hashing = "default Argon2id" if args.real_hash else "cheap Argon2id (FAST_HASH_ENV)"
    print(
        f"soak: {args.seconds:.0f} s, {args.clients} client threads, {args.threads} server "
        f"threads, rotation on, {hashing}, warm-up {warmup:.0f} s"
    )
    report_latencies(results, elapsed)
    errors = results.errors + warm.errors
    print(f"errors         {len(errors)} (warm-up {len(warm.errors)})")
    for message in errors[:10]:
        print(f"  {message}")
    growth = (rss_end - rss_start) / rss_start
    print(
        f"server RSS     idle {rss_idle / 1024:.1f} MiB, start {rss_start / 1024:.1f} MiB, "
        f"end {rss_end / 1024:.1f} MiB, growth {growth * 100:+.1f} % (limit 10 %)"
    )
    print(f"server exit    {code}")
    print(f"database       before {size_before} ({rows_before})")
    for line in database_lines:
        print(f"               {line}")
    failed = bool(errors) or growth >= MAX_RSS_GROWTH
    print("verdict        " + ("FAILED" if failed else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
