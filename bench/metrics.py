"""What metrics cost: verify throughput with ``METRICS`` off and on, beside the ceiling, in one run.

Run: ``python bench/metrics.py`` (needs ``wrk``, as ``bench/server.py``).

Five servers run side by side on loopback, on the same waitress settings: the bare WSGI app
of ``bench/server.py`` that answers ``{}`` (the most any app can get out of this server),
``serve.py`` with ``JWTLITE_METRICS`` off, ``serve.py`` with it on and
``PROMETHEUS_MULTIPROC_DIR`` set, as under several gunicorn workers (every metric write then
goes to a memory-mapped file), ``serve.py`` with it on in one process (serve.py's own
set-up: one process, many threads), and a second ``serve.py`` with it off, the control: two
identical servers differ by a few per cent here, so the cost is measured against the mean of
both and their own difference is printed beside it. wrk loads each in turn with the same
verify request, for several rounds; in each, the off and on servers run back to back (each
first in turn), so a noisy neighbour hurts them alike. The table shows the medians (req/s,
p50/p99 latency, each as a ratio to the ceiling), and the cost of metrics is the median over
rounds of each round's ``1 - on/off`` (the target is under 5 %), with its quartiles to show
how noisy the machine was. Because a shared machine makes throughput jump by tens of percent
from one second to the next, the server's own CPU time per request (from
``/proc/<pid>/stat``, which other processes do not inflate) is measured too: on a CPU-bound
server its increase is what metrics take from throughput. Off, the metrics cost nothing by
construction: no middleware is installed and ``prometheus_client`` is never imported. Last,
the metric work of one request (the middleware's two hooks with a request counted and timed,
in multiprocess mode) is timed alone, best of several runs, and shown as a share of the off
server's CPU per request: the figure the noisy end-to-end ones scatter around.
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


PER_REQUEST = """
import time
from types import SimpleNamespace
from falcon import Context
from jwtlite.web.metrics import Metrics

metrics = Metrics()
resource = object()
metrics.bind_routes({"/accounts/token/verify": resource})
middleware = metrics.middleware()
resp = SimpleNamespace(status_code=200)
best = float("inf")
for _ in range(7):
    began = time.perf_counter()
    for _ in range(20000):
        req = SimpleNamespace(context=Context(), method="POST")
        middleware.process_request(req, resp)
        middleware.process_response(req, resp, resource, True)
    best = min(best, (time.perf_counter() - began) / 20000)
empty = float("inf")
for _ in range(7):
    began = time.perf_counter()
    for _ in range(20000):
        req = SimpleNamespace(context=Context(), method="POST")
    empty = min(empty, (time.perf_counter() - began) / 20000)
print((best - empty) * 1e6)
"""


def per_request_metric_us(multiproc: Path) -> float:
    """Microseconds of metric work per request (multiprocess mode, one thread, best run)."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    output = subprocess.run(
        [sys.executable, "-c", PER_REQUEST], env=env, capture_output=True, text=True, check=True
    ).stdout
    return float(output.strip())


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    parser.add_argument("--seconds", type=int, default=2, help="wrk duration per row and round")
    parser.add_argument("--rounds", type=int, default=11, help="interleaved rounds (medians)")
    parser.add_argument("--threads", type=int, default=8, help="waitress threads (all servers)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="jwtlite-bench-metrics-"))
    # As in production: a directory on a tmpfs when there is one (the values are mmapped
    # files, written at every request; a disk-backed page cache adds write-back faults).
    # mkdtemp: a fresh directory of mode 0700, so the shared /dev/shm is safe to use.
    shm = Path("/dev/shm")  # noqa: S108
    tmpfs = shm if shm.is_dir() else None
    multiproc = Path(tempfile.mkdtemp(prefix="jwtlite-prometheus-", dir=tmpfs))
    database = workdir / "bench.sqlite3"
    ports = {name: service_bench.free_port() for name in ("ceiling", "off", "on", "single", "off2")}
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
        processes.append(
            start_serve(workdir, database, ports["single"], args.threads, JWTLITE_METRICS="true")
        )
        # The control: a second server with metrics off, started last. Two identical servers
        # differ by a few per cent on this kind of machine (start order, placement); the cost
        # of metrics is measured against both, and their own difference is shown.
        processes.append(start_serve(workdir, database, ports["off2"], args.threads))
        token = access_token(f"http://127.0.0.1:{ports['off']}")
        body = {"token": token}
        urls = {
            "ceiling": f"http://127.0.0.1:{ports['ceiling']}/",
            "off": f"http://127.0.0.1:{ports['off']}/accounts/token/verify/",
            "on": f"http://127.0.0.1:{ports['on']}/accounts/token/verify/",
            "single": f"http://127.0.0.1:{ports['single']}/accounts/token/verify/",
            "off2": f"http://127.0.0.1:{ports['off2']}/accounts/token/verify/",
        }
        for name in ("off", "on", "single", "off2"):  # warm-up, and a check that verify answers 200
            status, answer = service_bench.post(urls[name], body)
            if status != 200:
                raise RuntimeError(f"verify on {name} answered {status}: {answer}")
        results: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
        pids = dict(zip(urls, (process.pid for process in processes), strict=True))
        for round_index in range(args.rounds):
            order = ["off", "on", "single", "off2"]
            turn = round_index % len(order)
            order = order[turn:] + order[:turn]  # each goes first in turn
            for name in ["ceiling", *order]:
                cpu = cpu_seconds(pids[name])
                figures = service_bench.wrk(
                    urls[name], body, args.seconds, args.connections, workdir
                )
                used = cpu_seconds(pids[name]) - cpu
                figures["cpu_us"] = used / (figures["rps"] * args.seconds) * 1e6
                if name != "ceiling" and figures["non2xx"]:
                    raise RuntimeError(f"{name}: {figures['non2xx']:.0f} non-2xx answers")
                results[name].append(figures)
            time.sleep(0.2)
        alone = multiproc / "alone"
        alone.mkdir()
        report(args, results, per_request_metric_us(alone))
    finally:
        for process in processes:
            service_bench.stop(process)
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(multiproc, ignore_errors=True)
    return 0


def report(
    args: argparse.Namespace, results: dict[str, list[dict[str, float]]], metric_us: float
) -> None:
    medians = {
        name: {f: statistics.median(run[f] for run in runs) for f in runs[0]}
        for name, runs in results.items()
    }
    ceiling = medians["ceiling"]["rps"]
    print(
        f"verify, {args.rounds} interleaved rounds of {args.seconds} s, {args.connections} "
        f"connections, {args.threads} waitress threads (medians)"
    )
    print(
        f"{'server':<38}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'of ceiling':>12}{'CPU us/req':>12}"
    )
    labels = {
        "ceiling": "bare waitress (ceiling)",
        "off": "serve.py, METRICS off",
        "on": "serve.py, METRICS on (multiprocess)",
        "single": "serve.py, METRICS on (one process)",
        "off2": "serve.py, METRICS off (control)",
    }
    for name, label in labels.items():
        m = medians[name]
        print(
            f"{label:<38}{m['rps']:>8.0f}{m['p50']:>9.2f}{m['p99']:>9.2f}"
            f"{m['rps'] / ceiling:>11.1%}{m['cpu_us']:>12.0f}"
        )
    # Each round's baseline: the mean of the two servers with metrics off.
    baseline = [
        {f: (a[f] + b[f]) / 2 for f in ("rps", "cpu_us")}
        for a, b in zip(results["off"], results["off2"], strict=True)
    ]
    control = [
        1 - b["rps"] / a["rps"] for a, b in zip(results["off"], results["off2"], strict=True)
    ]
    low, _, high = statistics.quantiles(control, n=4)
    print(
        f"control: two servers with metrics off differ by {statistics.median(control):+.1%} "
        f"(median of the rounds' 1 - off2/off; quartiles {low:+.1%} .. {high:+.1%}): what this "
        "machine's noise alone makes of a zero cost"
    )
    for name, mode in (("on", "multiprocess"), ("single", "one process")):
        per_round = [
            1 - on["rps"] / off["rps"] for on, off in zip(results[name], baseline, strict=True)
        ]
        cost = statistics.median(per_round)
        low, _, high = statistics.quantiles(per_round, n=4)
        verdict = "ok" if cost < TARGET_COST else "OVER TARGET"
        print(
            f"metrics cost, {mode} (median of the rounds' 1 - on/off, off the mean of both): "
            f"{cost:+.1%} of verify throughput (target < {TARGET_COST:.0%}: {verdict}); "
            f"quartiles {low:+.1%} .. {high:+.1%}"
        )
        print(f"  per round: {', '.join(f'{c:+.1%}' for c in per_round)}")
        cpu = [
            on["cpu_us"] / off["cpu_us"] - 1
            for on, off in zip(results[name], baseline, strict=True)
        ]
        low, _, high = statistics.quantiles(cpu, n=4)
        print(
            f"  server CPU per request, on vs off (median of rounds): "
            f"{statistics.median(cpu):+.1%} (quartiles {low:+.1%} .. {high:+.1%})"
        )
    off_cpu = medians["off"]["cpu_us"]
    print(
        f"metric work of one request, timed alone: {metric_us:.1f} us = "
        f"{metric_us / off_cpu:.1%} of the off server's {off_cpu:.0f} us of CPU per request"
    )
    print("metrics off: no middleware, prometheus_client not imported (cost 0 by construction)")


if __name__ == "__main__":
    sys.exit(main())
