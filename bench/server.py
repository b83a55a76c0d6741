"""Service benchmark: ``serve.py`` against the server's own ceiling, in one run.

Run: ``python bench/server.py`` (needs Debian's ``wrk``: ``apt-get install wrk``).

It starts ``serve.py`` (long token lifetimes, default Argon2id cost) and, on the same waitress
settings, a bare WSGI app that reads the body and answers ``{}`` — the most any app can get
out of this server. wrk loads each on loopback in turn, and the table shows req/s and
p50/p99 latency for verify, refresh, login and a tampered-token verify, each as a ratio to the
ceiling. Login is compared with what the Argon2id cost allows: the hashes per second that
the same number of threads reach calling the hasher directly. Start-up time (to the first
answered request) and idle RSS are measured too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jwtlite.service.passwords import PasswordHasher  # noqa: E402

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

TARGETS = {"verify": 0.75, "refresh": 0.60}
PASSWORD = "bench-password-Correct-7"


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


def start_service(workdir: Path, port: int, threads: int) -> tuple[subprocess.Popen[bytes], float]:
    env = {
        **os.environ,
        "JWTLITE_DATABASE": str(workdir / "bench.sqlite3"),
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
    script = workdir / "post.lua"
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
    parser.add_argument("--threads", type=int, default=8, help="waitress threads (both servers)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="jwtlite-bench-"))
    try:
        return run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path) -> int:
    startups, idle_rss = [], []
    for attempt in range(3):  # start-up: first run creates the database and key
        port = free_port()
        process, took = start_service(workdir, port, args.threads)
        if attempt:
            startups.append(took)
        idle_rss.append(rss_mb(process.pid))
        stop(process)

    ceiling_port = free_port()
    ceiling = subprocess.Popen(
        [sys.executable, "-c", CEILING_APP, str(ceiling_port), str(args.threads)],
        stdout=subprocess.PIPE,
    )
    assert ceiling.stdout is not None
    ceiling.stdout.readline()
    wait_until_up(f"http://127.0.0.1:{ceiling_port}/")
    port = free_port()
    service, _ = start_service(workdir, port, args.threads)
    api = f"http://127.0.0.1:{port}"
    try:
        post(f"{api}/accounts/register/", {"username": "bench", "password": PASSWORD})
        _, pair = post(f"{api}/accounts/token/", {"username": "bench", "password": PASSWORD})
        tampered = pair["access"][:-4] + ("AAAA" if not pair["access"].endswith("AAAA") else "BBBB")
        workloads = {
            "verify": ("/accounts/token/verify/", {"token": pair["access"]}),
            "refresh": ("/accounts/token/refresh/", {"refresh": pair["refresh"]}),
            "login": ("/accounts/token/", {"username": "bench", "password": PASSWORD}),
            "tampered": ("/accounts/token/verify/", {"token": tampered}),
        }
        samples: dict[str, list[tuple[dict[str, float], dict[str, float]]]] = {
            name: [] for name in workloads
        }
        for _ in range(args.rounds):
            for name, (path, body) in workloads.items():
                # Ceiling and service alternate row by row, so drift hits both alike.
                top = wrk(
                    f"http://127.0.0.1:{ceiling_port}{path}",
                    body,
                    args.seconds,
                    args.connections,
                    workdir,
                )
                got = wrk(f"{api}{path}", body, args.seconds, args.connections, workdir)
                samples[name].append((got, top))
        rows = {name: (median_of(runs, 0), median_of(runs, 1)) for name, runs in samples.items()}
        loaded_rss = rss_mb(service.pid)
    finally:
        stop(service)
        stop(ceiling)
    hash_rate = hashing_ceiling(args.threads, args.seconds * args.rounds)

    print(
        f"waitress threads={args.threads}, wrk -t1 -c{args.connections} "
        f"-d{round(args.seconds)}s, median of {args.rounds} interleaved rounds, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"\n{'workload':10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}"
        f"{'ceiling':>10}{'ratio':>8}  target"
    )
    for name, (got, top) in rows.items():
        ratio = got["rps"] / top["rps"]
        target = TARGETS.get(name)
        verdict = f"≥{target:.0%} {'met' if ratio >= target else 'MISSED'}" if target else ""
        print(
            f"{name:10}{got['rps']:9.0f}{got['p50']:9.2f}{got['p99']:9.2f}{got['non2xx']:9.0f}"
            f"{top['rps']:10.0f}{ratio:7.0%}  {verdict}"
        )
    login_ratio = rows["login"][0]["rps"] / hash_rate
    print(
        f"\nlogin vs Argon2id cost: {rows['login'][0]['rps']:.1f} logins/s, "
        f"{hash_rate:.1f} bare verifications/s in {args.threads} threads → {login_ratio:.0%} "
        f"(target ≥90% {'met' if login_ratio >= 0.9 else 'MISSED'})"
    )
    startup = statistics.median(startups)
    print(
        f"start-up to first answer: {startup * 1000:.0f} ms median of {len(startups)} "
        f"(target <500 ms {'met' if startup < 0.5 else 'MISSED'})"
    )
    rss = statistics.median(idle_rss)
    print(
        f"idle RSS: {rss:.1f} MB (target <40 MB {'met' if rss < 40 else 'MISSED'}); "
        f"after load: {loaded_rss:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
