"""Login-storm benchmark: token verification latency with and without a concurrent storm of
logins hashing with the DEFAULT Argon2id cost (19 MiB, 2 passes), and login throughput.

Run: ``python bench/storm.py [--seconds 5] [--login-threads 4] [--verify-threads 2]``
(about 20 s with the defaults).

What it shows: Argon2id runs in Rust/OpenSSL code that releases the GIL, so

- verify requests keep being served while logins hash on other waitress threads (if a hash
  held the GIL, every verify queued behind it would wait up to a whole hash, ~20-50 ms);
- logins on several threads hash in parallel (login/s grows past one thread's);
- in-process, two threads hash nearly twice as fast as one on two cores, and a pure-Python
  thread keeps running during each hash even with a 100 s interpreter switch interval.

- memory stays bounded after a burst of logins: hashes run on a pool of one thread per core
  (``PASSWORD_HASH_CONCURRENCY``), so only that many 19 MiB Argon2 buffers ever exist. The
  reference, in the same run, is the same burst with the pool as large as waitress's eight
  request threads (what every login hashing on its own thread did before).

Throttling limits are raised for the run so that every login of the storm pays for a hash
(a throttled login answers 429 without hashing). The suite's version with a generous bound
is ``tests/system/test_concurrency.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from jwtlite.service.credentials.passwords import PasswordHasher  # noqa: E402

from support import PASSWORD, ServerProcess  # noqa: E402
from support.load import Client, percentile, python_progress_during_hashes  # noqa: E402

SERVER_ENV = {
    # The default Argon2id cost: no JWTLITE_PASSWORD_HASH_* override.
    "JWTLITE_LOGIN_MAX_FAILURES": "1000000",
    "JWTLITE_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000000",
    "JWTLITE_LOGIN_MAX_FAILURES_PER_USERNAME": "1000000",
    "JWTLITE_REGISTRATION_MAX_PER_ADDRESS": "1000000",
    # Every login of the storm waits for its hash instead of being shed with 503.
    "JWTLITE_PASSWORD_HASH_QUEUE": "1000",
    "JWTLITE_PASSWORD_HASH_PER_CLIENT": "1000",
    "JWTLITE_ACCESS_TOKEN_LIFETIME": "3600",
    "JWTLITE_REFRESH_TOKEN_LIFETIME": "3600",
}
LOGIN_USERS = 8


def loop(url: str, seconds: float, step: Callable[[Client, int], int]) -> tuple[list[float], int]:
    """Call ``step`` on one connection until ``seconds`` pass; latencies and bad answers."""
    client = Client(url)
    latencies: list[float] = []
    bad = 0
    deadline = time.monotonic() + seconds
    for number in range(10_000_000):
        if time.monotonic() >= deadline:
            break
        began = time.perf_counter()
        status = step(client, number)
        latencies.append(time.perf_counter() - began)
        bad += status not in (200, 401)
    client.close()
    return latencies, bad


def phase(
    url: str, seconds: float, verify_threads: int, login_threads: int, access: str
) -> dict[str, float]:
    """Run verify and login loops side by side for ``seconds``; their figures."""
    results: dict[str, list[tuple[list[float], int]]] = {"verify": [], "login": []}
    lock = threading.Lock()

    def verify(client: Client, _: int) -> int:
        return client.post("/accounts/token/verify/", {"token": access}).status

    def login(index: int) -> Callable[[Client, int], int]:
        def step(client: Client, number: int) -> int:
            # Three right passwords for one wrong one: both cost one hash.
            password = PASSWORD if number % 4 else "wrong-password-1"
            body = {"username": f"storm{(index + number) % LOGIN_USERS}", "password": password}
            return client.post("/accounts/token/", body).status

        return step

    def run(kind: str, step: Callable[[Client, int], int]) -> None:
        outcome = loop(url, seconds, step)
        with lock:
            results[kind].append(outcome)

    threads = [threading.Thread(target=run, args=("verify", verify)) for _ in range(verify_threads)]
    threads += [
        threading.Thread(target=run, args=("login", login(i))) for i in range(login_threads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    verify_times = [t for latencies, _ in results["verify"] for t in latencies]
    login_count = sum(len(latencies) for latencies, _ in results["login"])
    figures = {
        "bad": sum(bad for _, bad in results["verify"] + results["login"]),
        "logins_per_s": login_count / seconds,
    }
    if verify_times:
        figures |= {
            "p50": percentile(verify_times, 50) * 1000,
            "p99": percentile(verify_times, 99) * 1000,
            "max": max(verify_times) * 1000,
            "verify_per_s": len(verify_times) / seconds,
        }
    return figures


def rss_mib(pid: int) -> float:
    """The resident set size of process ``pid`` in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def rss_after_burst(directory: str, pool: str, seconds: float) -> tuple[float, float]:
    """RSS of a fresh ``serve.py --threads 8`` before and after an 8-thread login burst,
    with ``PASSWORD_HASH_CONCURRENCY=pool``."""
    database = Path(directory) / f"burst-{pool}.sqlite3"
    env = {**SERVER_ENV, "JWTLITE_PASSWORD_HASH_CONCURRENCY": pool}
    with ServerProcess(database=database, env=env, args=["--threads", "8"]) as server:
        assert server.process is not None
        client = Client(server.url)
        for name in [f"storm{i}" for i in range(LOGIN_USERS)]:
            body = {"username": name, "password": PASSWORD}
            assert client.post("/accounts/register/", body).status == 201
        client.close()
        idle = rss_mib(server.process.pid)
        phase(server.url, seconds, 0, 8, "")
        time.sleep(0.5)
        return idle, rss_mib(server.process.pid)


def hashes_per_second(hasher: PasswordHasher, threads: int, seconds: float) -> float:
    """Default-cost hashes per second on ``threads`` threads, in this process."""
    counts = [0] * threads
    deadline = time.monotonic() + seconds

    def work(index: int) -> None:
        while time.monotonic() < deadline:
            hasher.hash(PASSWORD)
            counts[index] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(seconds + 30)
    return sum(counts) / seconds


def main() -> int:
    """Run the phases and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    parser.add_argument("--login-threads", type=int, default=4)
    parser.add_argument("--verify-threads", type=int, default=2)
    args = parser.parse_args()
    hasher = PasswordHasher()
    print(
        f"Argon2id defaults: {hasher.hash(PASSWORD).split('$')[3]}; "
        f"{os.cpu_count()} CPUs; serve.py --threads 8; each phase {args.seconds:g} s"
    )
    with tempfile.TemporaryDirectory(prefix="jwtlite-storm-") as directory:
        database = Path(directory) / "storm.sqlite3"
        server = ServerProcess(database=database, env=SERVER_ENV, args=["--threads", "8"])
        with server:
            client = Client(server.url)
            for name in [f"storm{i}" for i in range(LOGIN_USERS)] + ["reader"]:
                body = {"username": name, "password": PASSWORD}
                assert client.post("/accounts/register/", body).status == 201
            body = {"username": "reader", "password": PASSWORD}
            access = client.post("/accounts/token/", body).json()["access"]
            client.close()
            alone = phase(server.url, args.seconds, args.verify_threads, 0, access)
            storm = phase(server.url, args.seconds, args.verify_threads, args.login_threads, access)
            single = phase(server.url, args.seconds / 2, 0, 1, access)
        pooled = rss_after_burst(directory, "0", args.seconds / 2)
        unpooled = rss_after_burst(directory, "8", args.seconds / 2)
    one = hashes_per_second(hasher, 1, 1.5)
    two = hashes_per_second(hasher, 2, 1.5)
    progress = python_progress_during_hashes(hasher)

    print()
    print(f"{'':34}{'verify p50':>11}{'verify p99':>11}{'max':>9}{'verify/s':>10}{'logins/s':>10}")

    def line(label: str, figures: dict[str, float]) -> None:
        cells = [
            f"{figures['p50']:.1f} ms" if "p50" in figures else "-",
            f"{figures['p99']:.1f} ms" if "p99" in figures else "-",
            f"{figures['max']:.0f} ms" if "max" in figures else "-",
            f"{figures['verify_per_s']:.0f}" if "verify_per_s" in figures else "-",
            f"{figures['logins_per_s']:.1f}" if figures["logins_per_s"] else "-",
        ]
        print(f"{label:34}{cells[0]:>11}{cells[1]:>11}{cells[2]:>9}{cells[3]:>10}{cells[4]:>10}")

    line(f"verify alone ({args.verify_threads} threads)", alone)
    line(f"verify + {args.login_threads}-thread login storm", storm)
    line("logins, 1 thread, no verify", single)
    print()
    print(
        f"in-process Argon2id: 1 thread {one:.1f} hash/s, 2 threads {two:.1f} hash/s "
        f"(x{two / one:.2f})"
    )
    print(f"pure-Python thread steps during each hash (0 if the GIL were held): {progress}")
    print()
    print("RSS of serve.py --threads 8 before and after an 8-thread login burst:")
    print(
        f"  hashing pool of {os.cpu_count()} (the default)   {pooled[0]:6.1f} MiB -> "
        f"{pooled[1]:6.1f} MiB"
    )
    print(
        f"  reference: pool of 8 (one per request)  {unpooled[0]:6.1f} MiB -> "
        f"{unpooled[1]:6.1f} MiB"
    )
    bad = alone["bad"] + storm["bad"] + single["bad"]
    print(f"answers other than 200/401: {bad:.0f}")
    return 1 if bad or min(progress) == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
