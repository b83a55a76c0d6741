"""``GET /metrics``: off by default, loopback-only by default, bounded labels, the counters
the service's events feed, ``X-Request-ID`` everywhere, and one total across two gunicorn
workers in prometheus_client's multiprocess mode.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import webtest

from jwtlite.service.credentials.passwords import PasswordHasher
from jwtlite.service.errors import ConfigurationError
from jwtlite.service.settings import Settings
from jwtlite.web.app import create_app
from jwtlite.web.requestid import request_id

from support import FAST_HASH, FAST_HASH_ENV, PASSWORD, ROOT, ServerProcess, clean_environ, http
from support.raw import exchange, parse
from support.server import free_port

LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}
GUNICORN_CONFIG = """
from prometheus_client import multiprocess


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)
"""


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of an exposition (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        metric, _, rest = series.partition("{")
        found = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if metric == name and found == wanted:
            return float(value)
    return 0.0


@pytest.fixture
def make(tmp_path: Path) -> Callable[..., webtest.TestApp]:
    def build(**settings: Any) -> webtest.TestApp:
        config = Settings(database=str(tmp_path / "db.sqlite3"), **{**FAST_HASH, **settings})
        return webtest.TestApp(create_app(config), extra_environ=LOOPBACK)

    return build


def scrape(client: webtest.TestApp, **environ: str) -> str:
    response = client.get("/metrics", extra_environ={**LOOPBACK, **environ})
    assert response.content_type == "text/plain"
    return str(response.text)


def test_off_by_default_is_the_404_of_an_unknown_path(make: Callable[..., Any]) -> None:
    client = make()
    assert client.get("/metrics", status=404).json == client.get("/nowhere", status=404).json


def test_refused_client_gets_the_404_of_an_unknown_path(make: Callable[..., Any]) -> None:
    client = make(metrics=True)
    refused = client.get("/metrics", status=404, extra_environ={"REMOTE_ADDR": "10.0.0.7"})
    assert refused.json == {"detail": "Not found."}
    assert refused.headers["X-Request-ID"]
    assert "jwtlite_" not in refused.text


PAGE = "http://localhost:8001"
PREFLIGHT = {"Origin": PAGE, "Access-Control-Request-Method": "GET"}
PROBES = [
    *((method, {}) for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")),
    *((method, {}) for method in ("TRACE", "CONNECT", "PROPFIND", "BREW")),
    ("POST", {"Origin": PAGE}),
    ("OPTIONS", {"Origin": PAGE}),
    ("OPTIONS", PREFLIGHT),
    ("OPTIONS", {**PREFLIGHT, "Access-Control-Request-Method": "DELETE"}),
    ("OPTIONS", {"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"}),
]
PROBE_IDS = [
    "get", "head", "post", "put", "patch", "delete", "options", "trace", "connect", "propfind",
    "invented", "post-with-origin", "options-with-origin", "preflight", "preflight-delete",
    "preflight-unlisted-origin",
]  # fmt: skip


def _answer(client: webtest.TestApp, path: str, method: str, headers: dict[str, str]) -> Any:
    response = client.request(path, method=method, headers=headers, status="*")
    kept = sorted((k.lower(), v) for k, v in response.headerlist if k.lower() != "x-request-id")
    return response.status, kept, response.body


@pytest.mark.parametrize(("method", "headers"), PROBES, ids=PROBE_IDS)
def test_a_refused_client_cannot_tell_metrics_from_an_unknown_path(
    make: Callable[..., Any], method: str, headers: dict[str, str]
) -> None:
    app = make(metrics=True, cors_allowed_origins=(PAGE,)).app
    outside = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "10.0.0.7"}, lint=False)
    unknown = _answer(outside, "/nowhere-at-all", method, headers)
    assert _answer(outside, "/metrics", method, headers) == unknown
    assert _answer(outside, "/metrics/", method, headers) == unknown
    if "Access-Control-Request-Method" not in headers:
        assert unknown[0] == "404 Not Found"


def test_an_allowed_client_gets_the_usual_answers_to_other_methods(
    make: Callable[..., Any],
) -> None:
    client = make(metrics=True)
    for method in ("POST", "PUT", "DELETE"):
        refused = client.request("/metrics", method=method, status=405)
        assert refused.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert client.options("/metrics").json["allow"] == ["GET", "HEAD", "OPTIONS"]
    assert client.head("/metrics").status_int == 200


@pytest.mark.parametrize(
    ("allowed", "peer", "served"),
    [
        (("127.0.0.0/8", "::1"), "127.0.0.1", True),
        (("127.0.0.0/8", "::1"), "::1", True),
        (("127.0.0.0/8", "::1"), "::ffff:127.0.0.1", True),
        (("127.0.0.0/8", "::1"), "192.168.1.2", False),
        (("10.0.0.0/8",), "10.20.30.40", True),
        (("10.0.0.0/8",), "127.0.0.1", False),
        ((), "127.0.0.1", False),
    ],
    ids=["v4-loopback", "v6-loopback", "mapped", "lan", "listed-net", "not-listed", "none"],
)
def test_allowed_networks(
    make: Callable[..., Any], allowed: tuple[str, ...], peer: str, served: bool
) -> None:
    client = make(metrics=True, metrics_allowed=allowed)
    status = 200 if served else 404
    client.get("/metrics", status=status, extra_environ={"REMOTE_ADDR": peer})


def test_the_client_is_resolved_through_trusted_proxies_only(make: Callable[..., Any]) -> None:
    client = make(metrics=True, trusted_proxies=("127.0.0.1",))
    forwarded = {"X-Forwarded-For": "203.0.113.5"}
    client.get("/metrics", headers=forwarded, status=404)  # the proxy's client is outside
    client.get("/metrics", status=200)  # the proxy itself, on loopback
    # An untrusted peer cannot claim to be loopback.
    client = make(metrics=True, metrics_allowed=("127.0.0.0/8",))
    outside = {"REMOTE_ADDR": "198.51.100.1"}
    client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}, extra_environ=outside,
               status=404)  # fmt: skip


@pytest.mark.parametrize(
    ("setting", "value"),
    [("METRICS_ALLOWED", "10.0.0.1/8"), ("METRICS_ALLOWED", "localhost"), ("METRICS", "maybe")],
)
def test_bad_settings_are_refused_by_name(setting: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=setting):
        Settings.from_env({f"JWTLITE_{setting}": value})


def test_events_reach_the_counters(make: Callable[..., Any]) -> None:
    client = make(metrics=True, login_max_failures=2, rotate_refresh_tokens=True)
    credentials = {"username": "alice", "password": PASSWORD}
    client.post_json("/accounts/register/", credentials, status=201)
    pair = client.post_json("/accounts/token/", credentials).json
    client.post_json("/accounts/token/refresh/", {"refresh": pair["refresh"]})
    client.post_json("/accounts/token/refresh/", {"refresh": pair["refresh"]}, status=401)
    wrong = {"username": "alice", "password": "not-" + PASSWORD}
    for status in (401, 401, 429):
        client.post_json("/accounts/token/", wrong, status=status)
    text = scrape(client)
    assert sample(text, "jwtlite_logins_total", outcome="ok") == 1
    assert sample(text, "jwtlite_logins_total", outcome="bad_credentials") == 2
    assert sample(text, "jwtlite_logins_total", outcome="throttled") == 1
    assert sample(text, "jwtlite_registrations_total") == 1
    assert sample(text, "jwtlite_refreshes_total", outcome="ok") == 1
    assert sample(text, "jwtlite_refreshes_total", outcome="refused") == 1
    assert sample(text, "jwtlite_refresh_reuse_detected_total") == 1
    assert sample(text, "jwtlite_sessions_revoked_total", reason="reuse") == 1
    assert sample(text, "jwtlite_password_hashes_in_flight") == 0
    route = {"route": "/accounts/token", "method": "POST"}
    assert sample(text, "jwtlite_requests_total", **route, status="200") == 1
    assert sample(text, "jwtlite_requests_total", **route, status="429") == 1
    assert sample(text, "jwtlite_request_duration_seconds_count", route="/accounts/token") == 4
    for line in text.splitlines():
        if line.startswith("# HELP "):
            assert line.split()[2].startswith("jwtlite_"), line
            assert len(line.split(" ", 3)[3]) > 10, line  # a real help text


def test_ended_sessions_are_counted_by_reason(make: Callable[..., Any]) -> None:
    client = make(metrics=True, allow_account_deletion=True)
    credentials = {"username": "alice", "password": PASSWORD}
    client.post_json("/accounts/register/", credentials, status=201)
    pairs = [client.post_json("/accounts/token/", credentials).json for _ in range(4)]
    bearer = {"Authorization": f"Bearer {pairs[0]['access']}"}
    listed = client.get("/accounts/sessions/", headers=bearer).json
    other = next(s["id"] for s in listed if not s["current"])
    client.delete(f"/accounts/sessions/{other}/", headers=bearer, status=204)
    client.post_json("/accounts/token/blacklist/", {"refresh": pairs[1]["refresh"]})
    client.delete_json("/accounts/me/", {"password": PASSWORD}, headers=bearer, status=204)
    text = scrape(client)
    revoked = "jwtlite_sessions_revoked_total"
    assert sample(text, revoked, reason="session_deleted") == 1
    assert sample(text, revoked, reason="logout") == 1
    assert sample(text, revoked, reason="account_deleted") == 2  # the two still live


def test_the_hasher_reports_hashes_in_flight() -> None:
    calls: list[int] = []
    hasher = PasswordHasher(memory_kib=1024, iterations=1, in_flight=calls.append)
    assert calls == []  # its own dummy hash at construction is no caller's
    hasher.verify(PASSWORD, hasher.hash(PASSWORD))
    assert calls == [1, -1, 1, -1]


def test_paths_and_methods_cannot_create_label_values(make: Callable[..., Any]) -> None:
    client = make(metrics=True)
    unlinted = webtest.TestApp(client.app, extra_environ=LOOPBACK, lint=False)  # lets BREW by
    for index in range(20):
        client.get(f"/random-{index}", status=404)
        unlinted.request(f"/x{index}", method=f"BREW{index}", status="*")
    client.options("/accounts/token/", headers={"Origin": "http://localhost:8001",
                   "Access-Control-Request-Method": "POST"})  # fmt: skip
    text = scrape(client)
    routes = set(re.findall(r'route="([^"]*)"', text))
    methods = set(re.findall(r'method="([^"]*)"', text))
    assert "unmatched" in routes
    assert not {route for route in routes if "random" in route or route.startswith("/x")}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert (
        sample(text, "jwtlite_requests_total", route="unmatched", method="GET", status="404") == 20
    )


def test_request_id_is_kept_when_safe_and_replaced_when_not(make: Callable[..., Any]) -> None:
    client = make()
    kept = "Req_1.2:3-abc"
    assert client.get("/health", headers={"X-Request-ID": kept}).headers["X-Request-ID"] == kept
    for hostile in ("a" * 129, "", "two words", 'quote"d', "caf\u00e9", "a;b", "<x>"):
        answered = client.get("/health", headers={"X-Request-ID": hostile}).headers
        assert re.fullmatch(r"[0-9a-f]{32}", answered["X-Request-ID"]), hostile
    ids = {client.get("/health").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_worker_does_not_repeat_its_parents_request_ids() -> None:
    request_id(None)
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.write(writer, request_id(None).encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    theirs = os.read(reader, 64).decode()
    os.close(reader)
    mine = request_id(None)
    assert re.fullmatch(r"[0-9a-f]{32}", theirs)
    assert theirs[:16] != mine[:16]  # another process prefix


@pytest.mark.parametrize(
    ("method", "path", "status", "headers"),
    [
        ("GET", "/nowhere", 404, {}),
        ("POST", "/accounts/token/", 400, {}),
        ("GET", "/accounts/me/", 401, {}),
        ("PUT", "/health", 405, {}),
        ("OPTIONS", "/accounts/token/", 200,
         {"Origin": "http://localhost:8001", "Access-Control-Request-Method": "POST"}),
    ],
    ids=["404", "400", "401", "405", "preflight"],
)  # fmt: skip
def test_every_answer_carries_the_request_id(
    make: Callable[..., Any], method: str, path: str, status: int, headers: dict[str, str]
) -> None:
    client = make()
    response = client.request(
        path, method=method, headers={**headers, "X-Request-ID": "rid-7"}, status=status,
        body=b"{" if method == "POST" else b"", content_type="application/json",
    )  # fmt: skip
    assert response.headers["X-Request-ID"] == "rid-7"


def test_cors_lets_a_page_send_and_read_the_request_id(make: Callable[..., Any]) -> None:
    client = make()
    origin = {"Origin": "http://localhost:8001"}
    preflight = client.options(
        "/accounts/token/", headers={**origin, "Access-Control-Request-Method": "POST"}
    )
    assert "x-request-id" in preflight.headers["Access-Control-Allow-Headers"].split(", ")
    simple = client.get("/health", headers=origin)
    assert simple.headers["Access-Control-Expose-Headers"] == "x-request-id"


def test_multiprocess_dir_must_be_a_directory(make: Callable[..., Any], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="PROMETHEUS_MULTIPROC_DIR"):
        make(metrics=True)


# -- several processes ----------------------------------------------------------------------

needs_gunicorn = pytest.mark.skipif(
    importlib.util.find_spec("gunicorn") is None, reason="gunicorn is not installed"
)


def _wait_up(url: str, process: subprocess.Popen[str]) -> None:
    for _ in range(200):
        assert process.poll() is None, process.communicate(timeout=5)[1]
        try:
            if http("GET", f"{url}/health", timeout=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("gunicorn did not come up")


def _logins_per_process(directory: Path) -> dict[str, float]:
    """Each worker's own count of successful logins, read from its file alone."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    counts = {}
    for path in directory.glob("counter_*.db"):
        alone = Path(tempfile.mkdtemp(dir=directory.parent))
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
        text = generate_latest(registry).decode()
        counts[path.stem] = sample(text, "jwtlite_logins_total", outcome="ok")
    return counts


@pytest.mark.slow
@needs_gunicorn
def test_two_gunicorn_workers_report_the_same_totals(tmp_path: Path) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(GUNICORN_CONFIG)
    port = free_port()
    env = {
        **clean_environ(),
        **FAST_HASH_ENV,
        "JWTLITE_DATABASE": str(tmp_path / "db.sqlite3"),
        "JWTLITE_METRICS": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }
    command = [
        sys.executable, "-m", "gunicorn", "jwtlite.web.wsgi:application", "-c", str(config),
        "--bind", f"127.0.0.1:{port}", "--workers", "2", "--pythonpath", str(ROOT),
        "--graceful-timeout", "5", "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    credentials = {"username": "alice", "password": PASSWORD}
    try:
        _wait_up(url, process)
        assert http("POST", f"{url}/accounts/register/", credentials).status == 201
        logins = 0
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            for _ in range(10):  # bounded: stop as soon as both workers have served logins
                batch = list(pool.map(lambda _: http("POST", f"{url}/accounts/token/",
                                                     credentials).status, range(12)))  # fmt: skip
                assert batch == [200] * 12
                logins += len(batch)
                served = [n for n in _logins_per_process(directory).values() if n > 0]
                if len(served) >= 2:
                    break
        assert len(served) >= 2, "one worker served every login"
        assert sum(served) == logins
        totals = set()
        for _ in range(8):  # whichever worker answers each scrape
            text = http("GET", f"{url}/metrics").body.decode()
            totals.add(sample(text, "jwtlite_logins_total", outcome="ok"))
            requests = sample(
                text, "jwtlite_requests_total", route="/accounts/token", method="POST", status="200"
            )
            assert requests == logins
        assert totals == {float(logins)}
    finally:
        process.terminate()
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err


HOSTILE_IDS = [
    b"a\x0bSet-Cookie: x=1",  # waitress itself refuses the control character (400)
    b"<script>alert(1)</script>",
    b"x" * 200,
]


@pytest.mark.slow
def test_a_real_server_never_reflects_a_hostile_id_and_ids_its_own_errors(
    tmp_path: Path,
) -> None:
    with ServerProcess(tmp_path / "db.sqlite3", env=FAST_HASH_ENV) as server:
        port = int(server.url.rsplit(":", 1)[1])
        get = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-ID: %s\r\n\r\n"
        answers = [parse(exchange(port, get % value)) for value in HOSTILE_IDS]
        chunked = (
            b"POST /accounts/token/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\n{}\r\n0\r\n\r\n"
        )
        answers.append(parse(exchange(port, chunked)))
    assert [status for status, _, _ in answers] == [400, 200, 200, 411]
    for _, headers, body in answers:
        assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
        assert "set-cookie" not in headers
        assert json.loads(body)
