"""``serve.py`` and the cookie transport: COOKIE_SECURE=false only on a loopback address, and a
real server answering a real HTTP client with cookies (what curl would see)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from jwtlite.cli import serve as server
from jwtlite.service.errors import ConfigurationError
from jwtlite.service.settings import Settings

from support import FAST_HASH_ENV, PASSWORD, SERVE, ServerProcess, clean_environ, http
from support.cookies import parse_set_cookie

WILDCARD = "0.0.0.0"  # noqa: S104 - refused here, never bound


@pytest.mark.parametrize("host", [WILDCARD, "::", "192.0.2.7", "example.com", ""])
def test_insecure_cookies_refused_off_loopback(
    host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {
        **clean_environ(),
        "JWTLITE_DATABASE": str(tmp_path / "db.sqlite3"),
        "JWTLITE_COOKIE_SECURE": "false",
    }
    assert server.main(["--host", host, "--port", "0"], environ) == 2
    out, err = capsys.readouterr()
    assert out == ""  # no banner: nothing was served
    assert err.startswith("jwtlite: error: COOKIE_SECURE: false is only for development on")
    assert err.count("\n") == 1
    assert not (tmp_path / "db.sqlite3").exists()  # refused before anything was opened


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"])
def test_insecure_cookies_allowed_on_loopback(host: str) -> None:
    server._check_cookie_host(Settings(cookie_secure=False), host)


def test_secure_cookies_allowed_anywhere() -> None:
    server._check_cookie_host(Settings(), WILDCARD)


def test_refusal_from_a_subprocess_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SERVE), "--host", WILDCARD, "--port", "0"],
        cwd=tmp_path,
        env={
            **clean_environ(),
            "JWTLITE_COOKIE_SECURE": "false",
            "JWTLITE_TOKEN_TRANSPORT": "cookie",
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("jwtlite: error: COOKIE_SECURE: ")
    assert "Traceback" not in result.stderr


def test_bad_cookie_setting_stops_start_up() -> None:
    with pytest.raises(ConfigurationError, match=r"^COOKIE_SAMESITE: "):
        Settings.from_env({"JWTLITE_COOKIE_SAMESITE": "none", "JWTLITE_COOKIE_SECURE": "no"})


def _post_with_cookies(url: str, body: dict[str, str]) -> tuple[Any, list[str]]:
    """POST JSON; return the answer's JSON and every Set-Cookie line (urllib keeps them all)."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 200
        return json.loads(reply.read()), reply.headers.get_all("Set-Cookie") or []


def test_a_real_server_sets_and_reads_cookies(tmp_path: Path) -> None:
    env = {**FAST_HASH_ENV, "JWTLITE_TOKEN_TRANSPORT": "cookie"}
    with ServerProcess(database=tmp_path / "db.sqlite3", env=env) as live:
        user = {"username": "alice", "password": PASSWORD}
        assert http("POST", live.url + "/accounts/register/", user).status == 201
        # A non-browser client sends no Origin: served, as curl would be.
        logged_in, lines = _post_with_cookies(live.url + "/accounts/token/", user)
        assert set(logged_in) == {
            "refresh_expires_at",
            "csrf_refresh_token",
            "access_expires_at",
            "csrf_access_token",
        }
        cookies = {c.name: c for c in map(parse_set_cookie, lines)}
        assert set(cookies) == {
            "__Host-access_token_cookie",
            "__Secure-refresh_token_cookie",
            "__Host-csrf_access_token",
            "__Host-csrf_refresh_token",
        }
        jar = "; ".join(f"{c.name}={c.value}" for c in cookies.values())
        me = http("GET", live.url + "/accounts/me/", headers={"Cookie": jar})
        assert me.json()["username"] == "alice"
        refused = http("POST", live.url + "/accounts/token/refresh/", {}, headers={"Cookie": jar})
        assert refused.status == 403
        assert refused.json() == {"detail": "CSRF Failed: CSRF token missing."}
        csrf = logged_in["csrf_refresh_token"]
        refreshed = http(
            "POST",
            live.url + "/accounts/token/refresh/",
            {},
            headers={"Cookie": jar, "X-CSRF-TOKEN": csrf},
        )
        assert refreshed.status == 200
        assert set(refreshed.json()) == {"access_expires_at", "csrf_access_token"}


@pytest.mark.parametrize(
    ("bound", "cookies", "url"),
    [
        ("127.0.0.1", False, "http://127.0.0.1:8000"),
        ("127.0.0.1", True, "http://localhost:8000"),
        ("::1", True, "http://localhost:8000"),
        ("::1", False, "http://[::1]:8000"),
        (WILDCARD, False, "http://localhost:8000"),
        ("192.0.2.7", True, "http://192.0.2.7:8000"),
    ],
)
def test_the_demo_calls_the_api_by_the_pages_host_name_with_cookies(
    bound: str, cookies: bool, url: str
) -> None:
    # The page is on http://localhost:8001; cookies belong to a host name.
    assert server._api_url(bound, 8000, cookies=cookies) == url


def test_the_demo_page_is_told_the_transport() -> None:
    from jwtlite.demo.server import start_demo_server

    for transport, expected in (
        ("body", b'{"apiUrl": "http://localhost:8000"}'),
        ("cookie", b'{"apiUrl": "http://localhost:8000", "tokenTransport": "cookie"}'),
        ("both", b'{"apiUrl": "http://localhost:8000", "tokenTransport": "both"}'),
    ):
        demo = start_demo_server("http://localhost:8000", port=0, token_transport=transport)
        try:
            assert expected in http("GET", demo.url + "/config.js").body
        finally:
            demo.stop()
