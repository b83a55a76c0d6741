"""What metrics cost: verify throughput with ``METRICS`` off and on, beside the ceiling, in one run.

Run: ``python bench/metrics.py`` (needs ``wrk``, as ``bench/server.py``).

Three servers run side by side on loopback, on the same waitress settings: the bare WSGI app
of ``bench/server.py`` that answers ``{}`` (the most any app can get out of this server),
``serve.py`` with ``JWTLITE_METRICS`` off, and ``serve.py`` with it on and
``PROMETHEUS_MULTIPROC_DIR`` set, as in production (every metric write then goes to a
memory-mapped file). wrk loads each in turn with the same verify request, for several
interleaved rounds (so a noisy neighbour hurts all three alike), and the table shows the
medians: req/s, p50/p99 latency, each as a ratio to the ceiling, and the cost of metrics
(1 - on/off; the target is under 5 %). Off, the metrics cost nothing by construction: no
middleware is installed and ``prometheus_client`` is never imported.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import server as service_bench  # noqa: E402 - bench/server.py: wrk, the ceiling app, helpers

ROOT = service_bench.ROOT
TARGET_COST = 0.05


def start_serve(workdir: Path, database: Path, port: int, threads: int, **extra: str) -> Any:
    """``serve.py`` on ``port`` with long token lifetimes and ``extra`` settings."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("JWTLITE_")},
        "JWTLITE_DATABASE": str(database),
        "JWTLITE_SECRET_KEY": service_bench.SECRET,
        "JWTLITE_ACCESS_TOKEN_LIFETIME": "86400",
        "JWTLITE_REFRESH_TOKEN_LIFETIME": "86400",
        **extra,
    }
    if "PROMETHEUS_MULTIPROC_DIR" not in extra:
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "serve.py"), "--port", str(port), "--threads", str(threads)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    service_bench.wait_until_up(f"http://127.0.0.1:{port}/health")
    return process


def start_ceiling(workdir: Path, port: int, threads: int) -> Any:
    script = workdir / "ceiling.py"
    script.write_text(service_bench.CEILING_APP)
    process = subprocess.Popen(
        [sys.executable, str(script), str(port), str(threads)], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    process.stdout.readline()  # "listening"
    service_bench.wait_until_up(f"http://127.0.0.1:{port}/")
    return process


def access_token(url: str) -> str:
    credentials = {"username": "bench", "password": service_bench.PASSWORD}
    service_bench.post(f"{url}/accounts/register/", credentials)
    status, body = service_bench.post(f"{url}/accounts/token/", credentials)
    if status != 200:
        raise RuntimeError(f"login failed: {status} {body}")
    return str(body["access"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="wrk duration per row and round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians)")
    parser.add_argument("--threads", type=int, default=8, help="waitress threads (all servers)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="jwtlite-bench-metrics-"))
    multiproc = workdir / "prometheus"
    multiproc.mkdir()
    database = workdir / "bench.sqlite3"
    ports = {name: service_bench.free_port() for name in ("ceiling", "off", "on")}
    processes = []
    try:
        processes.append(start_ceiling(workdir, ports["ceiling"], args.threads))
        processes.append(start_serve(workdir, database, ports["off"], args.threads))
        processes.append(
            start_serve(
                workdir,
                database,
                ports["on"],
                args.threads,
                JWTLITE_METRICS="true",
                PROMETHEUS_MULTIPROC_DIR=str(multiproc),
            )
        )
        token = access_token(f"http://127.0.0.1:{ports['off']}")
        body = {"token": token}
        urls = {
            "ceiling": f"http://127.0.0.1:{ports['ceiling']}/",
            "off": f"http://127.0.0.1:{ports['off']}/accounts/token/verify/",
            "on": f"http://127.0.0.1:{ports['on']}/accounts/token/verify/",
        }
        for name in ("off", "on"):  # warm-up, and a check that verify answers 200
            status, answer = service_bench.post(urls[name], body)
            if status != 200:
                raise RuntimeError(f"verify on {name} answered {status}: {answer}")
        results: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
        order = list(urls)
        for round_index in range(args.rounds):
            rotated = order[round_index % 3 :] + order[: round_index % 3]
            for name in rotated:
                figures = service_bench.wrk(
                    urls[name], body, args.seconds, args.connections, workdir
                )
                if name != "ceiling" and figures["non2xx"]:
                    raise RuntimeError(f"{name}: {figures['non2xx']:.0f} non-2xx answers")
                results[name].append(figures)
            time.sleep(0.2)
        report(args, results)
    finally:
        for process in processes:
            service_bench.stop(process)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(args: argparse.Namespace, results: dict[str, list[dict[str, float]]]) -> None:
    medians = {
        name: {f: statistics.median(run[f] for run in runs) for f in runs[0]}
        for name, runs in results.items()
    }
    ceiling = medians["ceiling"]["rps"]
    print(
        f"verify, {args.rounds} interleaved rounds of {args.seconds} s, {args.connections} "
        f"connections, {args.threads} waitress threads (medians)"
    )
    print(f"{'server':<34}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'of ceiling':>12}")
    labels = {
        "ceiling": "bare waitress (ceiling)",
        "off": "serve.py, METRICS off",
        "on": "serve.py, METRICS on (multiprocess)",
    }
    for name, label in labels.items():
        m = medians[name]
        print(
            f"{label:<34}{m['rps']:>10.0f}{m['p50']:>9.2f}{m['p99']:>9.2f}"
            f"{m['rps'] / ceiling:>11.1%}"
        )
    per_round = [
        1 - on["rps"] / off["rps"] for on, off in zip(results["on"], results["off"], strict=True)
    ]
    cost = 1 - medians["on"]["rps"] / medians["off"]["rps"]
    verdict = "ok" if cost < TARGET_COST else "OVER TARGET"
    print(
        f"metrics cost: {cost:.1%} of verify throughput (target < {TARGET_COST:.0%}: {verdict}); "
        f"per round: {', '.join(f'{c:+.1%}' for c in per_round)}"
    )
    print("metrics off: no middleware, prometheus_client not imported (cost 0 by construction)")


if __name__ == "__main__":
    sys.exit(main())
