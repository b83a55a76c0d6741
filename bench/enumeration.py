"""User-enumeration timing over real HTTP: unknown username vs wrong password.

Run: ``python bench/enumeration.py [--tries 200]``.

It starts ``serve.py`` on loopback with the default Argon2id cost (the real cost of a login),
registers one user and then sends failed logins, alternating an unknown username and a wrong
password for the real user (each pair in alternating order, so drift and noise hit both
series alike). It prints both medians (and p10/p90) and their relative difference, and exits
1 when the medians differ by 10 % or more: then the service tells its users apart by time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support import PASSWORD, ServerProcess  # noqa: E402

MAX_RELATIVE_DIFFERENCE = 0.10
WRONG = b"No active account found with the given credentials"


def post(connection: http.client.HTTPConnection, path: str, body: dict[str, str]) -> int:
    """POST JSON on a kept-alive connection; return the status (the body is read)."""
    connection.request("POST", path, json.dumps(body), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    if response.status == 401 and WRONG not in data:
        raise AssertionError(f"unexpected 401 body: {data!r}")
    return response.status


def timed_login(connection: http.client.HTTPConnection, username: str, password: str) -> float:
    """Seconds for one failed login (anything but 401 aborts the run)."""
    began = time.perf_counter()
    status = post(connection, "/accounts/token/", {"username": username, "password": password})
    elapsed = time.perf_counter() - began
    if status != 401:
        raise AssertionError(f"login of {username!r} answered {status}, expected 401")
    return elapsed


def describe(name: str, series: list[float]) -> str:
    """One line: median, p10 and p90 in milliseconds."""
    deciles = statistics.quantiles(series, n=10)
    return (
        f"{name:<15} median {statistics.median(series) * 1000:7.2f} ms   "
        f"p10 {deciles[0] * 1000:7.2f} ms   p90 {deciles[-1] * 1000:7.2f} ms"
    )


def main() -> int:
    """Measure, print, and return 1 if the medians differ by 10 % or more."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=200, help="failed logins per series")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        env = {
            # Throttling would turn the series into 429s after 5 failures.
            "JWTLITE_LOGIN_MAX_FAILURES": "1000000",
            "JWTLITE_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000000",
        }
        with ServerProcess(database=Path(directory) / "jwtlite.sqlite3", env=env) as server:
            host, port = server.url.removeprefix("http://").split(":")
            connection = http.client.HTTPConnection(host, int(port), timeout=30)
            register = {"username": "alice", "password": PASSWORD}
            if post(connection, "/accounts/register/", register) != 201:
                raise AssertionError("could not register alice")
            unknown: list[float] = []
            wrong: list[float] = []
            for i in range(5):  # warm-up: first requests pay for imports and caches
                timed_login(connection, f"warmup{i}", "wrong-password-1")
                timed_login(connection, "alice", "wrong-password-1")
            for i in range(args.tries):
                pair = [
                    (unknown, f"nobody{i}", "wrong-password-1"),
                    (wrong, "alice", f"wrong-password-{i}"),
                ]
                for series, username, password in pair if i % 2 else reversed(pair):
                    series.append(timed_login(connection, username, password))
            connection.close()
    a, b = statistics.median(unknown), statistics.median(wrong)
    difference = abs(a - b) / max(a, b)
    print(f"{args.tries} failed logins per series over HTTP (default Argon2id cost)")
    print(describe("unknown user", unknown))
    print(describe("wrong password", wrong))
    verdict = "ok" if difference < MAX_RELATIVE_DIFFERENCE else "TOO DIFFERENT"
    print(f"difference of medians: {difference * 100:.2f} % (limit 10 %): {verdict}")
    return 0 if difference < MAX_RELATIVE_DIFFERENCE else 1


if __name__ == "__main__":
    sys.exit(main())
