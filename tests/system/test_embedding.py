"""``create_app`` hosted by other WSGI servers and mounted under a path prefix.

The app is a plain WSGI callable: these tests serve it with ``wsgiref`` in a thread, under a
``SCRIPT_NAME`` prefix, and with gunicorn (``jwtlite.web.wsgi:application``) in a subprocess,
and check the documented entry points, injection of store and clock, and the generic 500.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest
import webtest

from jwtlite import decode
from jwtlite.keys import Key
from jwtlite.service.settings import Settings
from jwtlite.store.sqlite import SQLiteStore
from jwtlite.web.app import create_app

from support import (
    FAST_HASH,
    FAST_HASH_ENV,
    PASSWORD,
    ROOT,
    FakeClock,
    clean_environ,
    http,
    login,
    register,
)
from support.server import free_port, header, unverified_segment

WSGIApp = Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]
GENERIC_500 = {"detail": "A server error occurred."}
SECRET = "s" * 40  # a known HS256 key, so tests can decode the tokens they get


# -- helpers ---------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def wsgiref_server(app: WSGIApp) -> Iterator[str]:
    """Serve ``app`` with ``wsgiref.simple_server`` on an ephemeral loopback port; yield its URL."""
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def mount(prefix: str, app: WSGIApp) -> WSGIApp:
    """A tiny dispatcher: requests under ``prefix`` go to ``app`` with the prefix moved from
    ``PATH_INFO`` to ``SCRIPT_NAME``; anything else is a plain-text 404 of the host."""

    def dispatch(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == prefix or path.startswith(prefix + "/"):
            environ = {
                **environ,
                "SCRIPT_NAME": environ.get("SCRIPT_NAME", "") + prefix,
                "PATH_INFO": path[len(prefix) :],
            }
            return app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"host: not found"]

    return dispatch


def wait_until_up(url: str, process: subprocess.Popen[str], timeout: float = 20.0) -> float:
    """Poll ``url`` until it answers (bounded); return the seconds it took."""
    began = time.monotonic()
    for _ in range(int(timeout / 0.1)):
        if process.poll() is not None:
            break
        try:
            if http("GET", url, timeout=2).status == 200:
                return time.monotonic() - began
        except OSError:
            pass
        time.sleep(0.1)
    detail = process.communicate(timeout=5)[1] if process.poll() is not None else "still running"
    raise AssertionError(f"{url} did not come up: {detail}")


@pytest.fixture
def settings(db_path: Path) -> Settings:
    """Test settings with a known secret and cheap hashing."""
    return Settings(database=str(db_path), secret_key=SECRET, **FAST_HASH)


@pytest.fixture
def store(settings: Settings) -> Iterator[SQLiteStore]:
    """The test database's store, closed at teardown."""
    opened = SQLiteStore(settings.database)
    yield opened
    opened.close()


@pytest.fixture
def app(settings: Settings, store: SQLiteStore, clock: FakeClock) -> WSGIApp:
    """The service on the test's store and fake clock."""
    return create_app(settings, store=store, clock=clock)


def register_and_login(url: str) -> dict[str, str]:
    """Register alice and log her in over real HTTP at ``url``; return the token pair."""
    created = http("POST", f"{url}/accounts/register/", {"username": "alice", "password": PASSWORD})
    assert created.status == 201, created.body
    assert created.json() == {"id": 1, "username": "alice", "email": ""}
    tokens = http("POST", f"{url}/accounts/token/", {"username": "alice", "password": PASSWORD})
    assert tokens.status == 200, tokens.body
    body: dict[str, str] = tokens.json()
    assert set(body) == {"refresh", "access"}
    return body


# -- wsgiref ---------------------------------------------------------------------------------


def test_wsgiref_serves_the_app(app: WSGIApp, clock: FakeClock) -> None:
    with wsgiref_server(app) as url:
        tokens = register_and_login(url)
        me = http(
            "GET", f"{url}/accounts/me/", headers={"Authorization": f"Bearer {tokens['access']}"}
        )
        assert me.status == 200
        assert me.json()["username"] == "alice"
        refreshed = http("POST", f"{url}/accounts/token/refresh", {"refresh": tokens["refresh"]})
        assert refreshed.status == 200
        assert set(refreshed.json()) == {"access"}
        missing = http("GET", f"{url}/nowhere")
    assert missing.status == 404
    assert header(missing, "Content-Type").startswith("application/json")
    assert missing.json() == {"detail": "Not found."}
    claims = decode(tokens["access"], Key(SECRET.encode(), "HS256"), algorithms=["HS256"],
                    now=clock.now)  # fmt: skip
    assert claims["iat"] == int(clock.now)


def test_wsgiref_generic_500(settings: Settings, db_path: Path, clock: FakeClock) -> None:
    broken = _broken_store(db_path, "ping")
    try:
        with wsgiref_server(create_app(settings, store=broken, clock=clock)) as url:
            response = http("GET", f"{url}/health")
    finally:
        broken.close()
    assert response.status == 500
    assert response.json() == GENERIC_500
    assert header(response, "Content-Type").startswith("application/json")


# -- mounted under a prefix ------------------------------------------------------------------


def test_mounted_under_prefix_over_http(app: WSGIApp) -> None:
    with wsgiref_server(mount("/auth", app)) as url:
        tokens = register_and_login(f"{url}/auth")
        verified = http("POST", f"{url}/auth/accounts/token/verify/", {"token": tokens["access"]})
        assert verified.status == 200
        assert verified.json() == {}
        unknown = http("GET", f"{url}/auth/nowhere/")
        outside = http("POST", f"{url}/accounts/token/", {"username": "alice"})
    assert unknown.status == 404
    assert unknown.json() == {"detail": "Not found."}
    assert outside.status == 404  # the host's own 404: the app is only under /auth
    assert outside.body == b"host: not found"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/auth/accounts/token/", 200),
        ("/auth/accounts/token", 200),
        ("/auth/nowhere", 404),
        ("/auth/accounts/tokenx/", 404),
        ("/auth", 404),
    ],
    ids=["token", "token-no-slash", "unknown", "near-miss", "prefix-root"],
)
def test_mounted_under_prefix_routes(app: WSGIApp, path: str, status: int) -> None:
    client = webtest.TestApp(mount("/auth", app))
    register(webtest.TestApp(app))
    response = client.post_json(path, {"username": "alice", "password": PASSWORD}, status=status)
    assert response.content_type == "application/json"
    if status == 200:
        assert set(response.json) == {"refresh", "access"}
    else:
        assert response.json == {"detail": "Not found."}


def test_mounted_preflight_and_cors(app: WSGIApp) -> None:
    client = webtest.TestApp(mount("/auth", app))
    response = client.options(
        "/auth/accounts/token/",
        headers={"Origin": "http://localhost:8001", "Access-Control-Request-Method": "POST"},
        status=200,
    )
    assert response.body == b""
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:8001"


# -- gunicorn --------------------------------------------------------------------------------

needs_gunicorn = pytest.mark.skipif(
    importlib.util.find_spec("gunicorn") is None, reason="gunicorn is not installed"
)


def _gunicorn(port: int, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "gunicorn", "jwtlite.web.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "2",
        "--pythonpath", str(ROOT), "--graceful-timeout", "5", "--log-level", "warning",
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=cwd,
        env={**clean_environ(), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate(timeout=5)
    return process.returncode, err


@pytest.mark.slow
@needs_gunicorn
def test_gunicorn_serves_wsgi_entry_point(db_path: Path) -> None:
    port = free_port()
    env = {
        **FAST_HASH_ENV,
        "JWTLITE_DATABASE": str(db_path),
        "JWTLITE_ACCESS_TOKEN_LIFETIME": "60",
        "JWTLITE_REFRESH_TOKEN_LIFETIME": "120",
    }
    process = _gunicorn(port, env, db_path.parent)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(f"{url}/health", process)
        tokens = register_and_login(url)
        me = http(
            "GET", f"{url}/accounts/me", headers={"Authorization": f"Bearer {tokens['access']}"}
        )
        assert me.status == 200
        assert me.json()["username"] == "alice"
    finally:
        code, err = _stop(process)
    assert code == 0, err
    header = unverified_segment(tokens["access"], 0)
    assert header == {"alg": "HS256", "typ": "JWT"}
    claims = unverified_segment(tokens["access"], 1)
    assert claims["exp"] - claims["iat"] == 60  # the environment reached Settings
    assert (db_path.parent / "jwtlite.key").exists()


@pytest.mark.slow
@needs_gunicorn
def test_gunicorn_refuses_bad_settings(db_path: Path) -> None:
    env = {"JWTLITE_DATABASE": str(db_path), "JWTLITE_SECRET_KEY": "short"}
    process = _gunicorn(free_port(), env, db_path.parent)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(30)  # gunicorn gives up by itself when its worker cannot boot
    code, err = _stop(process)
    assert code != 0
    assert "SECRET_KEY" in err
    assert "short" not in err.replace("too short", "")  # the secret itself never leaks


# -- the package and the factory -------------------------------------------------------------


def test_documented_entry_points_resolve() -> None:
    script = """
import sys
import jwtlite
assert "falcon" not in sys.modules and "sqlite3" not in sys.modules, "eager import"
assert not hasattr(jwtlite, "create_app"), "the library must not reach up into the web layer"
from jwtlite.web import create_app
from jwtlite.web.app import create_app as defined
from jwtlite.service import AuthService, Settings
from jwtlite.store import Store, open_store
assert create_app is defined and "falcon" in sys.modules
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_create_app_uses_injected_store_and_clock(
    settings: Settings, store: SQLiteStore, clock: FakeClock
) -> None:
    client = webtest.TestApp(create_app(settings, store=store, clock=clock))
    created = register(client)
    assert store.get_user(created["id"]) is not None  # written to the injected store
    tokens = login(client)
    key = Key(SECRET.encode(), "HS256")
    claims = decode(tokens["access"], key, algorithms=["HS256"], now=clock.now)
    assert claims["iat"] == int(clock.now)
    assert claims["exp"] == int(clock.now) + settings.access_token_lifetime
    bearer = {"Authorization": f"Bearer {tokens['access']}"}
    client.get("/accounts/me/", headers=bearer, status=200)
    clock.advance(settings.access_token_lifetime)  # expired once now >= exp
    expired = client.get("/accounts/me/", headers=bearer, status=401)
    assert expired.json["messages"][0]["message"] == "Token is expired"


def test_create_app_defaults_to_settings_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No store given: the app opens settings.database itself (relative to the cwd here).
    monkeypatch.chdir(tmp_path)
    app = create_app(Settings(database="own.sqlite3", **FAST_HASH))
    webtest.TestApp(app).get("/health", status=200)
    assert (tmp_path / "own.sqlite3").exists()
    assert (tmp_path / "own.key").exists()


# -- the generic 500 -------------------------------------------------------------------------


def _broken_store(db_path: Path, method: str) -> SQLiteStore:
    def fail(*args: object, **kwargs: object) -> Any:
        raise RuntimeError("secret internal detail: /var/lib/db")

    store = SQLiteStore(str(db_path))
    setattr(store, method, fail)
    return store


BROKEN_CALLS: dict[str, tuple[str, Callable[[webtest.TestApp], Any]]] = {
    "health-ping": ("ping", lambda c: c.get("/health", status=500)),
    "login-lookup": (
        "get_user_by_key",
        lambda c: c.post_json("/accounts/token/", {"username": "a", "password": "b"}, status=500),
    ),
    "register-create": (
        "create_user",
        lambda c: c.post_json(
            "/accounts/register/", {"username": "bob", "password": PASSWORD}, status=500
        ),
    ),
}


@pytest.mark.parametrize("case", list(BROKEN_CALLS.values()), ids=list(BROKEN_CALLS))
def test_unexpected_exception_is_a_generic_500(
    settings: Settings,
    db_path: Path,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    case: tuple[str, Callable[[webtest.TestApp], Any]],
) -> None:
    method, send = case
    broken = _broken_store(db_path, method)
    try:
        client = webtest.TestApp(create_app(settings, store=broken, clock=clock))
        with caplog.at_level(logging.ERROR, logger="jwtlite"):
            response = send(client)
    finally:
        broken.close()
    assert response.json == GENERIC_500
    assert response.content_type == "application/json"
    for leak in (b"Traceback", b"RuntimeError", b"secret internal detail", b".py"):
        assert leak not in response.body
    logged = [r for r in caplog.records if r.name == "jwtlite" and r.exc_info]
    assert len(logged) == 1
    assert logged[0].levelno == logging.ERROR
    assert logged[0].exc_info is not None
    assert isinstance(logged[0].exc_info[1], RuntimeError)
    assert "secret internal detail" in caplog.text  # the traceback is kept server-side
