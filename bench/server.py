"""Service benchmark: ``serve.py`` against the server's own ceiling, in one run.

Run: ``python bench/server.py [--store sqlite|postgres]`` (needs Debian's ``wrk``:
``apt-get install wrk``).

It starts ``serve.py`` (long token lifetimes, default Argon2id cost) and, on the same waitress
settings, a bare WSGI app that reads the body and answers ``{}`` — the most any app can get
out of this server. wrk loads each on loopback in turn, and the table shows req/s and
p50/p99 latency for verify, refresh, login and a tampered-token verify, each as a ratio to the
ceiling. Login is compared with what the Argon2id cost allows: the hashes per second that
the same number of threads reach calling the hasher directly. Start-up time (to the first
answered request) and idle RSS are measured too.

``--store postgres`` adds, in the same run, the same rows on PostgreSQL beside SQLite (the
target: refresh on PostgreSQL at least 70 % of refresh on SQLite), then two instances on the
one PostgreSQL database against one (two wrk processes, one per instance, half the
connections each). The server is ``--postgres-url`` (default ``JWTLITE_TEST_POSTGRES_URL``,
else ``postgresql://postgres@127.0.0.1:5432/postgres``); the benchmark works in a database
of its own, created and dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jwtlite.service.credentials.passwords import PasswordHasher  # noqa: E402

CEILING_APP = """
import logging
import sys
import waitress

logging.getLogger("waitress.queue").setLevel(logging.ERROR)

def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(length)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]

print("listening", flush=True)
waitress.serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=int(sys.argv[2]),
               ident="ceiling", _quiet=True)
"""

# Of the best bare-app ceiling (the higher of floating and pinned), with serve.py's defaults.
TARGETS = {"verify": 0.70, "refresh": 0.50}
POSTGRES_REFRESH_TARGET = 0.70  # of refresh on SQLite
PASSWORD = "bench-password-Correct-7"
SECRET = "bench-shared-signing-key-0123456789abcdef"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_until_up(url: str, timeout: float = 10.0) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return time.monotonic() - began
        except OSError:
            time.sleep(0.005)
    raise RuntimeError(f"{url} did not answer")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_service(
    workdir: Path, port: int, threads: int, database: str | None = None
) -> tuple[subprocess.Popen[bytes], float]:
    env = {
        **os.environ,
        "JWTLITE_DATABASE": database or str(workdir / "bench.sqlite3"),
        "JWTLITE_SECRET_KEY": SECRET,
        "JWTLITE_ACCESS_TOKEN_LIFETIME": "86400",
        "JWTLITE_REFRESH_TOKEN_LIFETIME": "86400",
        "JWTLITE_LOGIN_MAX_FAILURES": "1000000000",
        "JWTLITE_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000000000",
        "JWTLITE_LOGIN_MAX_FAILURES_PER_USERNAME": "1000000000",
        # wrk's 16 connections all wait for a hash, so login measures hashing throughput.
        "JWTLITE_PASSWORD_HASH_QUEUE": "1000",
        "JWTLITE_PASSWORD_HASH_PER_CLIENT": "1000",
    }
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "serve.py"), "--port", str(port), "--threads", str(threads)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until_up(f"http://127.0.0.1:{port}/health")
    return process, time.monotonic() - began


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wrk(
    url: str, body: dict[str, Any], seconds: float, connections: int, workdir: Path
) -> dict[str, float]:
    script = workdir / f"post-{threading.get_ident()}.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{round(seconds)}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}  # type: ignore[union-attr]
    for percentile in ("50", "99"):
        match = re.search(rf"\s{percentile}%\s+([\d.]+)(us|ms|s)\b", output)
        value, unit = float(match.group(1)), match.group(2)  # type: ignore[union-attr]
        figures[f"p{percentile}"] = value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    figures["non2xx"] = float(errors.group(1)) if errors else 0.0
    return figures


CEILINGS = ("floating", "pinned")


def start_ceiling(threads: int, placement: str) -> tuple[subprocess.Popen[bytes], int]:
    """The bare app on a free port, floating or held on one core (taskset, the last one)."""
    port = free_port()
    command = [sys.executable, "-c", CEILING_APP, str(port), str(threads)]
    if placement == "pinned":
        command = ["taskset", "-c", str(max(os.sched_getaffinity(0))), *command]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.readline()
    wait_until_up(f"http://127.0.0.1:{port}/")
    return process, port


def median_of(runs: list[tuple[dict[str, float], dict[str, float]]], side: int) -> dict[str, float]:
    """Per-figure medians over rounds of one side (0: the service, 1: the ceiling)."""
    return {
        figure: statistics.median(run[side][figure] for run in runs) for figure in runs[0][side]
    }


def hashing_ceiling(threads: int, seconds: float) -> float:
    """Password verifications per second with ``threads`` threads calling Argon2id directly."""
    hasher = PasswordHasher()
    encoded = hasher.hash(PASSWORD)
    done = [0] * threads
    deadline = time.monotonic() + seconds

    def work(index: int) -> None:
        while time.monotonic() < deadline:
            hasher.verify(PASSWORD, encoded)
            done[index] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="wrk duration per row and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    parser.add_argument("--threads", type=int, default=32, help="waitress threads (all servers)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument(
        "--store",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="postgres: also PostgreSQL beside SQLite, and 2 instances against 1",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("JWTLITE_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
        help="a PostgreSQL server where the benchmark may create (and drop) a database",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="jwtlite-bench-"))
    try:
        if args.store == "postgres":
            with bench_database(args.postgres_url) as url:
                return run(args, workdir, postgres=url)
        return run(args, workdir, postgres=None)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def bench_database(admin_url: str) -> Iterator[str]:
    """A database of the benchmark's own on the server ``admin_url`` names, dropped after."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"jwtlite_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    url = urlunsplit(parts._replace(path="/" + name))
    assert conninfo_to_dict(make_conninfo(url))["dbname"] == name
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure_startups(workdir: Path, threads: int, database: str | None) -> tuple[float, float]:
    """Median start-up time (to the first answer) and idle RSS over three starts."""
    startups, idle_rss = [], []
    for attempt in range(3):  # start-up: the first run creates the database and schema
        port = free_port()
        process, took = start_service(workdir, port, threads, database)
        if attempt:
            startups.append(took)
        idle_rss.append(rss_mb(process.pid))
        stop(process)
    return statistics.median(startups), statistics.median(idle_rss)


def workloads_for(api: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """The four workloads, on a user registered and logged in on ``api``."""
    post(f"{api}/accounts/register/", {"username": "bench", "password": PASSWORD})
    _, pair = post(f"{api}/accounts/token/", {"username": "bench", "password": PASSWORD})
    tampered = pair["access"][:-4] + ("AAAA" if not pair["access"].endswith("AAAA") else "BBBB")
    return {
        "verify": ("/accounts/token/verify/", {"token": pair["access"]}),
        "refresh": ("/accounts/token/refresh/", {"refresh": pair["refresh"]}),
        "login": ("/accounts/token/", {"username": "bench", "password": PASSWORD}),
        "tampered": ("/accounts/token/verify/", {"token": tampered}),
    }


def run(args: argparse.Namespace, workdir: Path, *, postgres: str | None) -> int:
    databases: dict[str, str | None] = {"sqlite": None}
    if postgres is not None:
        databases["postgres"] = postgres
    started = {
        store: measure_startups(workdir, args.threads, database)
        for store, database in databases.items()
    }

    # The bare app twice: floating over every core, and held on one (as serve.py holds its
    # Python threads by default); each row is compared with the better of the two.
    ceilings = {placement: start_ceiling(args.threads, placement) for placement in CEILINGS}
    services: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        for store, database in databases.items():
            port = free_port()
            services[store] = (
                start_service(workdir, port, args.threads, database)[0],
                f"http://127.0.0.1:{port}",
            )
        loads = {store: workloads_for(api) for store, (_, api) in services.items()}
        samples: dict[tuple[str, str], list[tuple[dict[str, float], dict[str, float]]]] = {
            (name, store): [] for name in loads["sqlite"] for store in services
        }
        ceiling_rps: dict[str, list[float]] = {placement: [] for placement in ceilings}
        for _ in range(args.rounds):
            for name in loads["sqlite"]:
                # Ceiling and services alternate row by row, so drift hits all alike.
                path, body = loads["sqlite"][name]
                tops = {
                    placement: wrk(
                        f"http://127.0.0.1:{port}{path}",
                        body,
                        args.seconds,
                        args.connections,
                        workdir,
                    )
                    for placement, (_, port) in ceilings.items()
                }
                top = max(tops.values(), key=lambda figures: figures["rps"])
                for placement, figures in tops.items():
                    ceiling_rps[placement].append(figures["rps"])
                for store, (_, api) in services.items():
                    path, body = loads[store][name]
                    got = wrk(f"{api}{path}", body, args.seconds, args.connections, workdir)
                    samples[name, store].append((got, top))
        rows = {key: (median_of(runs, 0), median_of(runs, 1)) for key, runs in samples.items()}
        loaded_rss = {store: rss_mb(process.pid) for store, (process, _) in services.items()}
        stop(services.pop("sqlite")[0])  # idle from here; the scaling runs need every core
        scaling = (
            instances_compared(args, workdir, postgres, services["postgres"][1])
            if postgres is not None
            else None
        )
    finally:
        for process, _ in services.values():
            stop(process)
        for process, _ in ceilings.values():
            stop(process)
    print(
        "bare-app ceiling, median req/s over every row: "
        + ", ".join(f"{p} {statistics.median(v):.0f}" for p, v in ceiling_rps.items())
    )
    hash_rate = hashing_ceiling(args.threads, args.seconds * args.rounds)
    report(
        args,
        rows=rows,
        started=started,
        loaded_rss=loaded_rss,
        hash_rate=hash_rate,
        scaling=scaling,
    )
    return 0


def instances_compared(
    args: argparse.Namespace, workdir: Path, database: str, first: str
) -> dict[str, tuple[float, float]]:
    """req/s of one instance and of two on the same database: (one, two) per workload.

    One instance gets every connection from one wrk; two get half each from two wrk
    processes running together, and their req/s add up.
    """
    port = free_port()
    second_process, _ = start_service(workdir, port, args.threads, database)
    second = f"http://127.0.0.1:{port}"
    try:
        loads = {api: workloads_for(api) for api in (first, second)}
        runs: dict[str, list[tuple[float, float]]] = {"verify": [], "refresh": [], "login": []}
        half = max(1, args.connections // 2)

        def load(api: str, name: str, connections: int) -> float:
            path, body = loads[api][name]
            return wrk(f"{api}{path}", body, args.seconds, connections, workdir)["rps"]

        for _ in range(args.rounds):
            for name, pairs in runs.items():
                one = load(first, name, args.connections)
                with ThreadPoolExecutor(2) as pool:
                    both = list(pool.map(lambda api, n=name: load(api, n, half), (first, second)))
                pairs.append((one, sum(both)))
    finally:
        stop(second_process)
    return {
        name: (statistics.median(o for o, _ in pairs), statistics.median(t for _, t in pairs))
        for name, pairs in runs.items()
    }


def report(
    args: argparse.Namespace,
    *,
    rows: dict[tuple[str, str], tuple[dict[str, float], dict[str, float]]],
    started: dict[str, tuple[float, float]],
    loaded_rss: dict[str, float],
    hash_rate: float,
    scaling: dict[str, tuple[float, float]] | None,
) -> None:
    stores = sorted({store for _, store in rows}, key=["sqlite", "postgres"].index)
    print(
        f"waitress threads={args.threads}, wrk -t1 -c{args.connections} "
        f"-d{round(args.seconds)}s, median of {args.rounds} interleaved rounds, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"\n{'workload':10}{'store':10}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'non-2xx':>8}"
        f"{'ceiling':>9}{'ratio':>7}{'÷ SQLite':>10}  target"
    )
    for (name, store), (got, top) in rows.items():
        ratio = got["rps"] / top["rps"]
        versus = got["rps"] / rows[name, "sqlite"][0]["rps"]
        target = TARGETS.get(name)
        verdict = f"≥{target:.0%} {'met' if ratio >= target else 'MISSED'}" if target else ""
        if store == "postgres":
            verdict = ""
            if name == "refresh":
                met = versus >= POSTGRES_REFRESH_TARGET
                verdict = f"≥{POSTGRES_REFRESH_TARGET:.0%} of SQLite {'met' if met else 'MISSED'}"
        shown = f"{versus:9.0%}" if store != "sqlite" else f"{'':9}"
        print(
            f"{name:10}{store:10}{got['rps']:8.0f}{got['p50']:8.2f}{got['p99']:8.2f}"
            f"{got['non2xx']:8.0f}{top['rps']:9.0f}{ratio:7.0%} {shown}  {verdict}"
        )
    for store in stores:
        logins = rows["login", store][0]["rps"]
        login_ratio = logins / hash_rate
        print(
            f"\nlogin vs Argon2id cost ({store}): {logins:.1f} logins/s, {hash_rate:.1f} bare "
            f"verifications/s in {args.threads} threads → {login_ratio:.0%} "
            f"(target ≥90% {'met' if login_ratio >= 0.9 else 'MISSED'})"
        )
    for store in stores:
        startup, rss = started[store]
        print(
            f"{store}: start-up to first answer {startup * 1000:.0f} ms (target <500 ms "
            f"{'met' if startup < 0.5 else 'MISSED'}); idle RSS {rss:.1f} MB (target <40 MB "
            f"{'met' if rss < 40 else 'MISSED'}); after load {loaded_rss[store]:.1f} MB"
        )
    if scaling is not None:
        print(
            f"\nPostgreSQL, 2 instances vs 1 on one database (wrk -c{args.connections} on one; "
            f"-c{max(1, args.connections // 2)} on each of two, together; req/s summed):"
        )
        print(f"{'workload':10}{'1 instance':>12}{'2 instances':>13}{'ratio':>8}")
        for name, (one, two) in scaling.items():
            print(f"{name:10}{one:12.0f}{two:13.0f}{two / one:7.2f}x")


if __name__ == "__main__":
    raise SystemExit(main())
