"""The demo front-end (``serve.py --demo``) in a real browser: Debian's headless Chromium.

The page is served on a second origin and calls the API with ``fetch``, so these tests see
what a browser enforces: CORS (an allowed origin works, another is blocked and the page says
so), token expiry in real time (1 s access tokens are refreshed as they expire and on a 401;
an expired refresh token asks to log in again), and the blacklisting logout. A screenshot of
the logged-in page is kept in ``test-artifacts/``.

Browser tests skip where ``/usr/bin/chromium`` or ``/usr/bin/chromedriver`` is missing, and
fail instead when ``REQUIRE_BROWSER_TESTS=1`` (CI installs them). The demo server's own
HTTP behaviour is tested without a browser at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jwtlite.demo.server import DemoConfigurationError, DemoServer, start_demo_server

from support import FAST_HASH_ENV, PASSWORD, ROOT, SERVE, ServerProcess, http
from support.contract import claims

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
MISSING_BROWSER = "Chromium/chromedriver not installed (apt-get install chromium chromium-driver)"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOT = ARTIFACTS / "demo-logged-in.png"
WAIT = 10.0  # seconds an explicit wait may take before the test fails
WRONG_PASSWORD = "not-the-password-1"
NO_ACCOUNT = "No active account found with the given credentials"


# --- fixtures: the browser and the servers ---------------------------------------------------


def free_port() -> int:
    """A loopback port that was free a moment ago (bind to 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def browser_available() -> None:
    """Skip (or fail, under ``REQUIRE_BROWSER_TESTS=1``) without Chromium and its driver."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    if os.environ.get("REQUIRE_BROWSER_TESTS") == "1":
        pytest.fail(f"REQUIRE_BROWSER_TESTS=1 but {MISSING_BROWSER}")
    pytest.skip(MISSING_BROWSER)


@pytest.fixture(scope="module")
def driver(browser_available: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for the module, with a fresh profile; every test loads a page."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument("--window-size=1100,1400")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield browser
    finally:
        browser.quit()


class Site:
    """A ``serve.py --demo`` process: the API plus the demo page on ``http://localhost:<port>``."""

    def __init__(self, server: ServerProcess, demo_port: int) -> None:
        self.server = server
        self.api_url = server.url
        self.origin = f"http://localhost:{demo_port}"
        self.database = server.database

    def refresh_token_state(self, jti: str) -> str:
        """The stored state of a refresh token (``active``, ``spent``, ``blacklisted``)."""
        with contextlib.closing(
            sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5)
        ) as connection:
            row = connection.execute(
                "SELECT state FROM refresh_tokens WHERE jti = ?", (jti,)
            ).fetchone()
        assert row is not None, f"no refresh token {jti} in the database"
        state: str = row[0]
        return state


@pytest.fixture
def make_site(tmp_path: Path) -> Iterator[Callable[..., Site]]:
    """Start ``serve.py --demo`` on free ports; the page's origin is the one CORS allows."""
    servers: list[ServerProcess] = []

    def start(**env: str) -> Site:
        demo_port = free_port()
        directory = tmp_path / f"site{len(servers)}"
        directory.mkdir()
        server = ServerProcess(
            database=directory / "jwtlite.sqlite3",
            env={
                **FAST_HASH_ENV,
                "JWTLITE_CORS_ALLOWED_ORIGINS": f"http://localhost:{demo_port}",
                **env,
            },
            args=["--demo", "--demo-port", str(demo_port)],
        )
        servers.append(server)
        server.start()
        return Site(server, demo_port)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def other_origin_demo(tmp_path: Path) -> Iterator[Callable[[str], DemoServer]]:
    """The same demo page served in-process from ``127.0.0.1:<another port>``."""
    demos: list[DemoServer] = []

    def start(api_url: str) -> DemoServer:
        demo = start_demo_server(api_url, host="127.0.0.1", port=0)
        demos.append(demo)
        return demo

    yield start
    for demo in demos:
        demo.stop()


# --- the page, as a user sees it -------------------------------------------------------------


class DemoPage:
    """Protocol steps on the demo page; every wait is explicit and bounded (``WAIT``)."""

    def __init__(self, driver: Any, url: str) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.wait = WebDriverWait(driver, WAIT)
        driver.get_log("browser")  # drop what earlier pages logged
        self.logs: list[str] = []
        driver.get(url)
        self.wait.until(lambda d: self.text("api-url") != "")

    def element(self, element_id: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, element_id)

    def text(self, element_id: str) -> str:
        value: str = self.element(element_id).get_attribute("textContent") or ""
        return value

    def visible(self, element_id: str) -> bool:
        shown: bool = self.element(element_id).is_displayed()
        return shown

    def wait_for_text(self, element_id: str, fragment: str, timeout: float = WAIT) -> str:
        """Wait until the element's text contains ``fragment``; return the text."""
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            WebDriverWait(self.driver, timeout).until(lambda d: fragment in self.text(element_id))
        except Exception as exc:
            raise AssertionError(
                f"#{element_id} never showed {fragment!r}; it shows {self.text(element_id)!r} "
                f"(status {self.text('status')!r}, error {self.text('error')!r})"
            ) from exc
        return self.text(element_id)

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        """Wait until ``condition()`` is true, failing with ``what`` after ``timeout`` s."""
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            WebDriverWait(self.driver, timeout).until(lambda d: condition())
        except Exception as exc:
            raise AssertionError(f"timed out waiting for {what}") from exc

    def fill(self, username: str, password: str, email: str = "") -> None:
        for element_id, value in (("username", username), ("password", password), ("email", email)):
            field = self.element(element_id)
            field.clear()
            field.send_keys(value)

    def click(self, element_id: str) -> None:
        button = self.element(element_id)
        self.wait.until(lambda d: button.is_enabled())  # the previous action has finished
        button.click()

    def register(self, username: str, password: str = PASSWORD, email: str = "") -> None:
        self.fill(username, password, email)
        self.click("register")

    def log_in(self, username: str, password: str = PASSWORD) -> None:
        self.fill(username, password)
        self.click("login")

    def wait_logged_in(self, username: str) -> None:
        self.wait_for_text("status", f"Logged in as {username}.")
        self.wait_until(lambda: self.visible("session"), "the session panel")

    def claims(self, which: str) -> dict[str, Any]:
        """The decoded (unverified) claims the page shows for ``access`` or ``refresh``."""
        value: dict[str, Any] = json.loads(self.text(f"{which}-claims"))
        return value

    def refresh_count(self) -> int:
        return int(self.text("refresh-count"))

    def call_me(self) -> dict[str, Any]:
        """Click "Call accounts/me/" and return the JSON the page shows."""
        self.driver.execute_script("document.getElementById('me').textContent = '';")
        self.click("call-me")
        self.wait_until(
            lambda: self.text("me").startswith("{") or self.visible("error"),
            "the accounts/me/ answer",
        )
        assert not self.visible("error"), self.text("error")
        value: dict[str, Any] = json.loads(self.text("me"))
        return value

    def console(self) -> list[str]:
        """Every browser console message since this page was loaded."""
        self.logs.extend(entry["message"] for entry in self.driver.get_log("browser"))
        return list(self.logs)

    def script_errors(self) -> list[str]:
        """Console messages other than failed requests (a 4xx, a CORS block): script
        exceptions and Content-Security-Policy refusals."""
        expected = ("Failed to load resource", "blocked by CORS policy")
        return [line for line in self.console() if not any(e in line for e in expected)]


# --- browser tests ---------------------------------------------------------------------------


@pytest.mark.browser
def test_full_flow_from_the_allowed_origin(driver: Any, make_site: Callable[..., Site]) -> None:
    site = make_site(
        JWTLITE_ACCESS_TOKEN_LIFETIME="300",
        JWTLITE_REFRESH_TOKEN_LIFETIME="600",
    )
    page = DemoPage(driver, site.origin + "/")
    assert page.text("api-url") == site.api_url  # the real bound port, not 8000
    assert page.text("page-origin") == site.origin
    page.wait_for_text("status", f"Connected to the API at {site.api_url}")

    page.register("alice", email="alice@example.com")
    page.wait_for_text("status", 'Registered "alice" (id 1)')
    page.register("Alice")
    assert "A user with that username already exists." in page.wait_for_text("error", "username:")

    page.log_in("alice", WRONG_PASSWORD)
    page.wait_for_text("error", NO_ACCOUNT)
    assert not page.visible("session")

    page.log_in("alice")
    page.wait_logged_in("alice")
    assert not page.visible("error")
    access, refresh = page.claims("access"), page.claims("refresh")
    assert access["token_type"] == "access"
    assert refresh["token_type"] == "refresh"
    assert access["user_id"] == refresh["user_id"] == "1"
    assert access["exp"] - access["iat"] == 300
    assert refresh["exp"] - refresh["iat"] == 600
    assert "alice (user_id 1)" in page.text("session-user")
    assert page.text("password") == ""  # not left in the form
    assert not page.element("password").get_attribute("value")

    # The countdown is live: its text changes while we watch.
    first = page.wait_for_text("access-countdown", " s (exp ")
    page.wait_until(lambda: page.text("access-countdown") != first, "the countdown to move")
    assert page.text("refresh-countdown").startswith(("9 min", "10 min"))

    me = page.call_me()
    assert me["username"] == "alice"
    assert me["email"] == "alice@example.com"
    assert me["id"] == 1
    page.wait_for_text("status", "accounts/me/ answered for alice")

    ARTIFACTS.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    assert site.refresh_token_state(refresh["jti"]) == "active"
    page.click("logout")
    page.wait_for_text("status", "Logged out: the refresh token is blacklisted.")
    assert not page.visible("session")
    assert page.text("access-claims") == page.text("refresh-claims") == "(none)"
    assert page.text("access-countdown") == "—"
    assert site.refresh_token_state(refresh["jti"]) == "blacklisted"
    assert page.script_errors() == []


@pytest.mark.browser
def test_throttled_login_shows_the_api_message(driver: Any, make_site: Callable[..., Site]) -> None:
    site = make_site(JWTLITE_LOGIN_MAX_FAILURES="2")
    page = DemoPage(driver, site.origin + "/")
    page.wait_for_text("status", "Connected to the API")

    for attempt in range(2):
        page.log_in("mallory", WRONG_PASSWORD)
        page.wait_for_text("error", NO_ACCOUNT)
        page.wait_until(lambda: page.element("login").is_enabled(), f"attempt {attempt} to end")
    page.log_in("mallory", WRONG_PASSWORD)
    message = page.wait_for_text("error", "Request was throttled.")
    assert "Expected available in" in message
    assert not page.visible("session")
    assert page.script_errors() == []


@pytest.mark.browser
def test_disallowed_origin_is_blocked_by_the_browser(
    driver: Any,
    make_site: Callable[..., Site],
    other_origin_demo: Callable[[str], DemoServer],
) -> None:
    site = make_site()
    demo = other_origin_demo(site.api_url)
    origin = f"http://127.0.0.1:{demo.port}"
    assert origin != site.origin

    page = DemoPage(driver, origin + "/")
    error = page.wait_for_text("error", "Cannot reach the API")  # the /health probe on load
    assert f"Cannot reach the API at {site.api_url} from this page ({origin})" in error
    assert "CORS" in error
    assert "Connected" not in page.text("status")

    page.register("eve")
    page.wait_until(lambda: page.element("register").is_enabled(), "the register attempt")
    assert "Cannot reach the API" in page.text("error")
    assert "Registered" not in page.text("status")
    # It was the browser's CORS check, not the network: the API is up, Chromium says why,
    # and the preflight failed, so the registration never reached the API.
    assert http("GET", site.api_url + "/health").status == 200
    console = page.console()
    assert any("blocked by CORS policy" in line for line in console), console
    created = http(
        "POST", site.api_url + "/accounts/register/", {"username": "eve", "password": PASSWORD}
    )
    assert created.status == 201, created.json()
    assert page.script_errors() == []


@pytest.mark.browser
def test_expired_access_token_is_refreshed_and_the_page_keeps_working(
    driver: Any, make_site: Callable[..., Site]
) -> None:
    site = make_site(JWTLITE_ACCESS_TOKEN_LIFETIME="1", JWTLITE_REFRESH_TOKEN_LIFETIME="60")
    page = DemoPage(driver, site.origin + "/")
    page.register("bob")
    page.wait_for_text("status", 'Registered "bob"')
    page.log_in("bob")
    page.wait_logged_in("bob")
    first, first_refresh = page.claims("access"), page.claims("refresh")

    # Real expiry: the page notices by its clock and refreshes without being asked. (With
    # whole-second claims the first token may be refreshed before we even read it: wait for
    # a token other than the one we saw.)
    page.wait_until(
        lambda: page.claims("access")["jti"] != first["jti"], "an automatic refresh", timeout=5
    )
    refreshed = page.claims("access")
    assert refreshed["exp"] > first["exp"]
    assert page.refresh_count() >= 1
    page.wait_for_text("log", "Access token refreshed (it expired)")
    assert page.claims("refresh") == first_refresh  # no rotation: the same refresh token
    assert page.call_me()["username"] == "bob"
    assert not page.visible("error")
    assert page.script_errors() == []


@pytest.mark.browser
def test_a_401_from_the_api_makes_the_page_refresh_and_retry(
    driver: Any, make_site: Callable[..., Site]
) -> None:
    site = make_site(JWTLITE_ACCESS_TOKEN_LIFETIME="1", JWTLITE_REFRESH_TOKEN_LIFETIME="60")
    page = DemoPage(driver, site.origin + "/")
    # The browser's clock runs a minute slow, so the page believes its token is still fresh
    # and only the API's 401 tells it otherwise.
    driver.execute_script(
        "const realNow = Date.now.bind(Date); Date.now = () => realNow() - 60000;"
    )
    page.register("carol")
    page.wait_for_text("status", 'Registered "carol"')
    page.log_in("carol")
    page.wait_logged_in("carol")
    expires = page.claims("access")["exp"]
    time.sleep(max(0.0, expires - time.time()) + 0.05)  # real expiry needs real time
    assert page.refresh_count() == 0

    assert page.call_me()["username"] == "carol"
    assert page.refresh_count() == 1
    page.wait_for_text("log", "The API refused the access token (")
    page.wait_for_text("log", "Access token refreshed (the API answered 401)")
    assert page.claims("access")["exp"] > expires
    assert page.script_errors() == []


@pytest.mark.browser
def test_expired_refresh_token_asks_to_log_in_again(
    driver: Any, make_site: Callable[..., Site]
) -> None:
    site = make_site(JWTLITE_ACCESS_TOKEN_LIFETIME="1", JWTLITE_REFRESH_TOKEN_LIFETIME="3")
    page = DemoPage(driver, site.origin + "/")
    page.register("dave")
    page.wait_for_text("status", 'Registered "dave"')
    page.log_in("dave")
    page.wait_logged_in("dave")
    refresh = page.claims("refresh")
    assert refresh["exp"] - refresh["iat"] == 3

    error = page.wait_for_text("error", "please log in again", timeout=8)
    assert "Token is expired" in error
    assert not page.visible("session")
    assert page.text("access-claims") == page.text("refresh-claims") == "(none)"

    page.log_in("dave")
    page.wait_logged_in("dave")
    assert page.claims("refresh")["jti"] != refresh["jti"]
    assert page.script_errors() == []


# --- the cookie transport in the browser ------------------------------------------------------

COOKIE_SITE = {
    "JWTLITE_TOKEN_TRANSPORT": "cookie",
    "JWTLITE_CORS_ALLOW_CREDENTIALS": "true",
    "JWTLITE_ROTATE_REFRESH_TOKENS": "true",
}
SECURE_NAMES = {
    "access": "__Host-access_token_cookie",
    "refresh": "__Secure-refresh_token_cookie",
    "csrf_access": "__Host-csrf_access_token",
    "csrf_refresh": "__Host-csrf_refresh_token",
}
PLAIN_NAMES = {kind: name.split("-", 1)[-1] for kind, name in SECURE_NAMES.items()}


def browser_cookies(driver: Any) -> dict[str, dict[str, Any]]:
    """Every cookie Chromium holds (HttpOnly ones included), by name, through DevTools."""
    cookies = driver.execute_cdp_cmd("Network.getAllCookies", {})["cookies"]
    return {cookie["name"]: cookie for cookie in cookies}


def document_cookie_names(driver: Any) -> set[str]:
    """The names a page's script sees in ``document.cookie``."""
    text: str = driver.execute_script("return document.cookie")
    return {pair.split("=", 1)[0].strip() for pair in text.split(";") if pair.strip()}


@pytest.fixture
def fresh_cookies(driver: Any) -> Any:
    """The module's Chromium without any cookie (earlier tests ran on localhost too)."""
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    return driver


class HostilePages:
    """A plain HTTP server on ``http://localhost:<port>``: the same site as the demo and the
    API (cookies are per host, not per port) but another origin, not on the allowlist."""

    def __init__(self) -> None:
        import http.server
        import threading

        pages: dict[str, bytes] = {}
        self.pages = pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path, b"not found")
                self.send_response(200 if self.path in pages else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://localhost:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def form_post(self, name: str, action: str, fields: dict[str, str]) -> str:
        """Publish a page that submits a plain HTML form POST to ``action`` as it loads (a
        simple request: no preflight, no custom header, the browser's cookies attached)."""
        inputs = "".join(
            f'<input type="hidden" name="{key}" value="{value}">' for key, value in fields.items()
        )
        self.pages[f"/{name}"] = (
            f'<!doctype html><form id="f" method="post" action="{action}">{inputs}</form>'
            '<script>document.getElementById("f").submit();</script>'
        ).encode()
        return f"{self.origin}/{name}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile_pages() -> Iterator[HostilePages]:
    pages = HostilePages()
    yield pages
    pages.stop()


def _page_shows(driver: Any, text: str) -> Callable[[], bool]:
    return lambda: text in (driver.page_source or "")


def _log_in_with_cookies(page: DemoPage, username: str) -> None:
    page.wait_for_text("status", "Connected to the API")
    page.register(username)
    page.wait_for_text("status", f'Registered "{username}"')
    page.log_in(username)
    page.wait_logged_in(username)


@pytest.mark.browser
def test_cookie_mode_keeps_every_token_out_of_javascript(
    fresh_cookies: Any, make_site: Callable[..., Site]
) -> None:
    driver = fresh_cookies
    site = make_site(
        **COOKIE_SITE, JWTLITE_ACCESS_TOKEN_LIFETIME="300", JWTLITE_REFRESH_TOKEN_LIFETIME="600"
    )
    page = DemoPage(driver, site.origin + "/")
    api_port = site.api_url.rsplit(":", 1)[1]
    # Cookies are per host: the page on localhost calls the API on localhost too.
    assert page.text("api-url") == f"http://localhost:{api_port}"
    assert "Token transport: cookies" in page.text("transport")
    _log_in_with_cookies(page, "alice")

    # The page's script sees the two CSRF values and nothing else...
    assert document_cookie_names(driver) == {
        SECURE_NAMES["csrf_access"],
        SECURE_NAMES["csrf_refresh"],
    }
    assert "eyJ" not in driver.execute_script("return document.cookie")
    assert "eyJ" not in driver.page_source  # no token shown, none kept in the page
    assert "HttpOnly cookie" in page.text("access-claims")
    # ...while the browser holds all four, the tokens HttpOnly, as the API set them.
    cookies = browser_cookies(driver)
    assert set(cookies) == set(SECURE_NAMES.values())
    access, refresh = cookies[SECURE_NAMES["access"]], cookies[SECURE_NAMES["refresh"]]
    assert access["httpOnly"]
    assert refresh["httpOnly"]
    assert not cookies[SECURE_NAMES["csrf_access"]]["httpOnly"]
    assert all(cookie["secure"] for cookie in cookies.values())
    assert all(cookie["sameSite"] == "Lax" for cookie in cookies.values())
    assert all(cookie["domain"] == "localhost" for cookie in cookies.values())
    assert refresh["path"] == "/accounts/token"
    assert access["path"] == "/"
    assert claims(access["value"])["token_type"] == "access"

    me = page.call_me()  # fetch with credentials: 'include', no Authorization header
    assert me["username"] == "alice"

    # Refresh through the cookie (rotation: a new refresh cookie, the old token spent).
    page.click("refresh-now")
    page.wait_for_text("status", "Access token refreshed.")
    after = browser_cookies(driver)
    assert after[SECURE_NAMES["access"]]["value"] != access["value"]
    assert after[SECURE_NAMES["refresh"]]["value"] != refresh["value"]
    assert site.refresh_token_state(claims(refresh["value"])["jti"]) == "spent"
    new_refresh = claims(after[SECURE_NAMES["refresh"]]["value"])["jti"]

    page.click("logout")
    page.wait_for_text("status", "Logged out: the refresh token is blacklisted.")
    assert browser_cookies(driver) == {}
    assert driver.execute_script("return document.cookie") == ""
    assert site.refresh_token_state(new_refresh) == "blacklisted"
    assert page.script_errors() == []


@pytest.mark.browser
def test_cookie_mode_access_token_refreshes_itself_through_the_cookie(
    fresh_cookies: Any, make_site: Callable[..., Site]
) -> None:
    driver = fresh_cookies
    # 2 s, not 1: iat is whole seconds, so a 1 s token issued late in a second lived a few
    # milliseconds, and on a loaded machine expired before the page's first call.
    site = make_site(
        **COOKIE_SITE, JWTLITE_ACCESS_TOKEN_LIFETIME="2", JWTLITE_REFRESH_TOKEN_LIFETIME="60"
    )
    page = DemoPage(driver, site.origin + "/")
    _log_in_with_cookies(page, "bob")
    first = browser_cookies(driver)[SECURE_NAMES["access"]]["value"]

    page.wait_until(
        lambda: browser_cookies(driver).get(SECURE_NAMES["access"], {}).get("value") != first,
        "a new access cookie",
    )
    page.wait_for_text("log", "Access token refreshed (it expired)")
    assert page.refresh_count() >= 1
    assert page.call_me()["username"] == "bob"
    assert document_cookie_names(driver) == {
        SECURE_NAMES["csrf_access"],
        SECURE_NAMES["csrf_refresh"],
    }
    assert page.script_errors() == []


@pytest.mark.browser
def test_cookie_mode_without_secure_uses_plain_names(
    fresh_cookies: Any, make_site: Callable[..., Site]
) -> None:
    driver = fresh_cookies
    site = make_site(
        **COOKIE_SITE,
        JWTLITE_COOKIE_SECURE="false",
        JWTLITE_ACCESS_TOKEN_LIFETIME="300",
        JWTLITE_REFRESH_TOKEN_LIFETIME="600",
    )
    page = DemoPage(driver, site.origin + "/")
    _log_in_with_cookies(page, "carol")
    assert document_cookie_names(driver) == {
        PLAIN_NAMES["csrf_access"],
        PLAIN_NAMES["csrf_refresh"],
    }
    cookies = browser_cookies(driver)
    assert set(cookies) == set(PLAIN_NAMES.values())
    assert not any(cookie["secure"] for cookie in cookies.values())
    assert page.call_me()["username"] == "carol"
    page.click("logout")
    page.wait_for_text("status", "Logged out: the refresh token is blacklisted.")
    assert browser_cookies(driver) == {}
    assert page.script_errors() == []


@pytest.mark.browser
def test_a_form_post_from_another_origin_is_refused_and_changes_nothing(
    fresh_cookies: Any, make_site: Callable[..., Site], hostile_pages: HostilePages
) -> None:
    driver = fresh_cookies
    site = make_site(
        **COOKIE_SITE, JWTLITE_ACCESS_TOKEN_LIFETIME="300", JWTLITE_REFRESH_TOKEN_LIFETIME="600"
    )
    api = f"http://localhost:{site.api_url.rsplit(':', 1)[1]}"
    assert hostile_pages.origin != site.origin
    page = DemoPage(driver, site.origin + "/")
    _log_in_with_cookies(page, "alice")
    created = http(
        "POST", site.api_url + "/accounts/register/", {"username": "mallory", "password": PASSWORD}
    )
    assert created.status == 201
    victim = browser_cookies(driver)
    refresh_jti = claims(victim[SECURE_NAMES["refresh"]]["value"])["jti"]
    demo_tab = driver.current_window_handle

    attacks = {
        # Rotation is on: a refresh that went through would spend the victim's token.
        "refresh": (
            "/accounts/token/refresh/",
            {"next": "/"},
            "CSRF Failed: CSRF token missing.",
        ),
        "logout": ("/accounts/token/blacklist/", {}, "CSRF Failed: CSRF token missing."),
        # Login CSRF: the victim's browser would be logged in as mallory.
        "login": (
            "/accounts/token/",
            {"username": "mallory", "password": PASSWORD},
            f"CSRF Failed: Origin checking failed - {hostile_pages.origin} does not match "
            "any trusted origins.",
        ),
    }
    driver.switch_to.new_window("tab")
    try:
        for name, (path, fields, refusal) in attacks.items():
            driver.get(hostile_pages.form_post(name, api + path, fields))
            # The browser followed the form to the API and shows its answer. "CSRF token
            # missing" (not "This field is required.") proves the cookies went along.
            page.wait_until(_page_shows(driver, refusal), f"the {name} refusal")
            assert driver.current_url.startswith(api + path)
    finally:
        driver.close()
        driver.switch_to.window(demo_tab)

    # Nothing changed: the same four cookies, the refresh token neither spent nor revoked,
    # and the victim's page goes on with its session.
    assert browser_cookies(driver) == victim
    assert site.refresh_token_state(refresh_jti) == "active"
    assert page.call_me()["username"] == "alice"
    page.click("refresh-now")
    page.wait_for_text("status", "Access token refreshed.")
    assert site.refresh_token_state(refresh_jti) == "spent"  # by the page itself, just now
    assert page.script_errors() == []


# --- the demo server without a browser -------------------------------------------------------


@pytest.fixture
def demo() -> Iterator[DemoServer]:
    server = start_demo_server("http://127.0.0.1:8000/", port=0)
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("path", "content_type", "fragment"),
    [
        ("/", "text/html; charset=utf-8", b"<title>jwtlite demo</title>"),
        ("/index.html", "text/html; charset=utf-8", b'<script src="config.js">'),
        ("/app.js", "text/javascript; charset=utf-8", b"decodeUnverified"),
        ("/style.css", "text/css; charset=utf-8", b".token-panels"),
        (
            "/config.js",
            "text/javascript; charset=utf-8",
            b'window.JWTLITE_DEMO_CONFIG = {"apiUrl": "http://127.0.0.1:8000"};',
        ),
    ],
    ids=["root", "index", "script", "stylesheet", "generated-config"],
)
def test_demo_server_serves_the_files(
    demo: DemoServer, path: str, content_type: str, fragment: bytes
) -> None:
    reply = http("GET", demo.url + path)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == content_type
    assert fragment in reply.body
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    policy = reply.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "connect-src 'self' http://127.0.0.1:8000;" in policy


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/accounts/token/", 404),
        ("GET", "/../setup.cfg", 404),
        ("GET", "/__init__.py", 404),
        ("POST", "/", 405),
        ("HEAD", "/app.js", 200),
    ],
    ids=["api-path", "traversal", "python-module", "post", "head"],
)
def test_demo_server_serves_nothing_else(
    demo: DemoServer, method: str, path: str, status: int
) -> None:
    reply = http(method, demo.url + path)
    assert reply.status == status
    if method == "HEAD":
        assert reply.body == b""
    if status == 405:
        assert reply.headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "api_url",
    ["localhost:8000", "ftp://localhost:8000", "http://", "http://localhost:99999", "/api"],
    ids=["no-scheme", "ftp", "no-host", "bad-port", "relative"],
)
def test_demo_server_refuses_a_bad_api_url(api_url: str) -> None:
    with pytest.raises(DemoConfigurationError, match="API_URL"):
        start_demo_server(api_url, port=0)


def test_serve_demo_tells_the_page_the_real_api_port(tmp_path: Path) -> None:
    demo_port = free_port()
    server = ServerProcess(
        database=tmp_path / "jwtlite.sqlite3",
        env=FAST_HASH_ENV,
        args=["--demo", "--demo-port", str(demo_port)],
    ).start()
    try:
        assert server.process is not None
        assert server.process.stdout is not None
        banner = server.process.stdout.readline().strip()
        assert banner == f"jwtlite demo on http://localhost:{demo_port} (API at {server.url})"
        config = http("GET", f"http://127.0.0.1:{demo_port}/config.js").body.decode()
        assert json.dumps({"apiUrl": server.url}) in config
        assert http("GET", server.url + "/health").status == 200
    finally:
        assert server.stop() == 0  # SIGTERM stops both servers cleanly
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR as servers use it: only a socket still listening there can refuse the
        # bind (the test's own finished connection may leave the port in TIME_WAIT).
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", demo_port))  # the demo's port was released


def test_serve_demo_port_in_use_fails_at_start(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, str(SERVE), "--port", "0", "--demo", "--demo-port", str(port)],
            cwd=tmp_path,
            env={**os.environ, **FAST_HASH_ENV},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 2
    assert f"--demo-port: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert result.stdout == ""  # no banner: nothing was served


@pytest.mark.parametrize(
    "args",
    [["--demo-port", "8001"], ["--api-url", "http://localhost:8000"]],
    ids=["demo-port-alone", "api-url-alone"],
)
def test_demo_options_need_demo(tmp_path: Path, args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, str(SERVE), "--port", "0", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "--demo-port and --api-url need --demo" in result.stderr


# ------------------------------------------------------------------------------------------
# The demo page's session panel: the session list with this
# device marked, ending another session, changing the password, and "log out everywhere",
# which logs a second browser profile out at its next call.


NEW_PASSWORD = "another-staple-horse-9"
LONG_LIVED = {"JWTLITE_ACCESS_TOKEN_LIFETIME": "300", "JWTLITE_REFRESH_TOKEN_LIFETIME": "600"}


@pytest.fixture(scope="module")
def second_driver(
    browser_available: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """Another headless Chromium with its own profile: another device."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile-2')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield browser
    finally:
        browser.quit()


def _logged_in(driver: Any, site: Site, *, register: bool = False) -> DemoPage:
    page = DemoPage(driver, site.origin + "/")
    page.wait_for_text("status", "Connected to the API")
    if register:
        page.register("alice")
        page.wait_for_text("status", 'Registered "alice"')
    page.log_in("alice")
    page.wait_logged_in("alice")
    return page


def _sessions(page: DemoPage) -> list[Any]:
    from selenium.webdriver.common.by import By

    page.driver.execute_script("document.getElementById('status').textContent = '';")
    page.click("list-sessions")
    page.wait_for_text("status", "You are logged in")
    items: list[Any] = page.driver.find_elements(By.CSS_SELECTOR, "#sessions-list li.session")
    return items


@pytest.mark.browser
def test_list_end_one_and_log_out_everywhere_across_two_profiles(
    driver: Any, second_driver: Any, make_site: Callable[..., Site]
) -> None:
    from selenium.webdriver.common.by import By

    site = make_site(**LONG_LIVED)
    here = _logged_in(driver, site, register=True)
    there = _logged_in(second_driver, site)
    assert there.call_me()["username"] == "alice"

    items = _sessions(here)
    assert len(items) == 2
    current = [item for item in items if "current" in item.get_attribute("class")]
    assert len(current) == 1
    assert current[0].text.startswith("This device:")
    assert current[0].get_attribute("data-id") == here.claims("access")["jti"][:16]

    # End the other profile's session from here: its next call is refused.
    other = next(item for item in items if item not in current)
    other.find_element(By.CSS_SELECTOR, "button.end-session").click()
    here.wait_until(lambda: len(_sessions(here)) == 1, "the ended session to leave the list")
    there.click("call-me")
    there.wait_for_text("error", "please log in again")
    assert not there.visible("session")

    # Log in again over there, then log out everywhere from here.
    there.log_in("alice")
    there.wait_logged_in("alice")
    here.click("logout-all")
    here.wait_for_text("status", "Logged out everywhere")
    assert not here.visible("session")
    there.click("call-me")
    there.wait_for_text("error", "please log in again")
    assert not there.visible("session")
    assert here.script_errors() == []


@pytest.mark.browser
def test_change_password_keeps_this_device_and_ends_the_other(
    driver: Any, second_driver: Any, make_site: Callable[..., Site]
) -> None:
    site = make_site(**LONG_LIVED)
    here = _logged_in(driver, site, register=True)
    there = _logged_in(second_driver, site)

    for element_id, value in (("old-password", "wrong-password-1"), ("new-password", NEW_PASSWORD)):
        here.element(element_id).send_keys(value)
    here.click("change-password")
    here.wait_for_text("error", "old_password:")

    here.element("old-password").clear()
    here.element("old-password").send_keys(PASSWORD)
    here.element("new-password").clear()
    here.element("new-password").send_keys(NEW_PASSWORD)
    here.click("change-password")
    here.wait_for_text("status", "Password changed")
    assert here.call_me()["username"] == "alice"  # this device stays in
    assert len(_sessions(here)) == 1

    there.click("call-me")
    there.wait_for_text("error", "please log in again")
    there.log_in("alice", NEW_PASSWORD)
    there.wait_logged_in("alice")
    assert here.script_errors() == []
