"""The cookie transport through the WSGI app (webtest): what each mode sets and reads, every
cookie attribute, and the cleared cookies at logout (docs/reference/http.md, "Cookie transport").

CSRF refusals and the login-CSRF origin rule are in ``test_cookies_csrf.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from jwtlite.service.errors import ConfigurationError
from jwtlite.service.settings import Settings

from support import PASSWORD, FakeClock, login, register
from support.contract import USER_INACTIVE, assert_unauthorized, bearer, claims
from support.cookies import (
    ACCESS_COOKIE,
    ALLOWED,
    CSRF_ACCESS_COOKIE,
    CSRF_REFRESH_COOKIE,
    REFRESH_COOKIE,
    Browser,
    SetCookie,
    no_cookie_jar,
    set_cookies,
)

TOKEN = "/accounts/token/"
REFRESH = "/accounts/token/refresh/"
VERIFY = "/accounts/token/verify/"
BLACKLIST = "/accounts/token/blacklist/"
ME = "/accounts/me/"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
B64URL_43 = re.compile(r"[A-Za-z0-9_-]{43}")
NOT_PROVIDED = {"detail": "Authentication credentials were not provided."}
REQUIRED = ["This field is required."]


@pytest.fixture
def make(make_client: Callable[..., Any]) -> Callable[..., Any]:
    """Build a client (without webtest's own cookie jar) with alice registered (once: later
    clients share the database)."""

    def build(**overrides: Any) -> Any:
        client = no_cookie_jar(make_client(**overrides))
        if client.store.get_user_by_key("alice") is None:
            register(client)
        return client

    return build


@pytest.fixture
def browser(make: Callable[..., Any]) -> Browser:
    """A browser on a cookie-transport app with the default cookie settings."""
    return Browser(make(token_transport="cookie"))


def _state(client: Any, token: str) -> str:
    record = client.store.get_refresh_token(claims(token)["jti"])
    assert record is not None
    state: str = record.state
    return state


# -- the cookies of a login, attribute by attribute -------------------------------------------


def test_login_sets_four_cookies_exactly(browser: Browser, clock: FakeClock) -> None:
    response = browser.login()
    assert response.status_int == 200
    cookies = set_cookies(response)
    access, refresh = browser.value("access"), browser.value("refresh")
    lines = {name: cookie.line for name, cookie in cookies.items()}
    assert lines == {
        ACCESS_COOKIE: f"{ACCESS_COOKIE}={access}; Path=/; Max-Age=10; HttpOnly; Secure; "
        "SameSite=Lax",
        CSRF_ACCESS_COOKIE: f"{CSRF_ACCESS_COOKIE}={browser.value('csrf_access')}; Path=/; "
        "Max-Age=10; Secure; SameSite=Lax",
        REFRESH_COOKIE: f"{REFRESH_COOKIE}={refresh}; Path=/accounts/token; Max-Age=30; "
        "HttpOnly; Secure; SameSite=Lax",
        CSRF_REFRESH_COOKIE: f"{CSRF_REFRESH_COOKIE}={browser.value('csrf_refresh')}; Path=/; "
        "Max-Age=30; Secure; SameSite=Lax",
    }
    assert claims(access)["token_type"] == "access"
    assert claims(refresh)["token_type"] == "refresh"
    assert claims(access)["exp"] == int(clock.now) + 10


COOKIE_CONFIGS = {
    "default": (
        {},
        ("__Host-access_token_cookie", "__Secure-refresh_token_cookie"),
        ("__Host-csrf_access_token", "__Host-csrf_refresh_token"),
        {"samesite": "Lax"},
        {"secure"},
    ),
    "strict": (
        {"cookie_samesite": "Strict"},
        ("__Host-access_token_cookie", "__Secure-refresh_token_cookie"),
        ("__Host-csrf_access_token", "__Host-csrf_refresh_token"),
        {"samesite": "Strict"},
        {"secure"},
    ),
    "samesite-none": (
        {"cookie_samesite": "None"},
        ("__Host-access_token_cookie", "__Secure-refresh_token_cookie"),
        ("__Host-csrf_access_token", "__Host-csrf_refresh_token"),
        {"samesite": "None"},
        {"secure"},
    ),
    "domain": (
        {"cookie_domain": "Example.com"},
        ("__Secure-access_token_cookie", "__Secure-refresh_token_cookie"),
        ("__Secure-csrf_access_token", "__Secure-csrf_refresh_token"),
        {"samesite": "Lax", "domain": "example.com"},
        {"secure"},
    ),
    "not-secure": (
        {"cookie_secure": False},
        ("access_token_cookie", "refresh_token_cookie"),
        ("csrf_access_token", "csrf_refresh_token"),
        {"samesite": "Lax"},
        set(),
    ),
    "not-secure-domain": (
        {"cookie_secure": False, "cookie_domain": "localhost"},
        ("access_token_cookie", "refresh_token_cookie"),
        ("csrf_access_token", "csrf_refresh_token"),
        {"samesite": "Lax", "domain": "localhost"},
        set(),
    ),
}


@pytest.mark.parametrize("config", list(COOKIE_CONFIGS.values()), ids=list(COOKIE_CONFIGS))
def test_cookie_names_and_attributes(make: Callable[..., Any], config: tuple[Any, ...]) -> None:
    overrides, (access, refresh), (csrf_access, csrf_refresh), attributes, flags = config
    client = make(token_transport="cookie", **overrides)
    response = client.post_json(TOKEN, {"username": "alice", "password": PASSWORD})
    cookies = set_cookies(response)
    assert set(cookies) == {access, refresh, csrf_access, csrf_refresh}
    for name, http_only in ((access, True), (refresh, True), (csrf_access, False)):
        cookie = cookies[name]
        assert dict(cookie.attributes) == {
            **attributes,
            "path": "/accounts/token" if name == refresh else "/",
            "max-age": "30" if name == refresh else "10",
        }
        assert cookie.flags == flags | ({"httponly"} if http_only else set())
    assert cookies[csrf_refresh].attributes["path"] == "/"
    assert "httponly" not in cookies[csrf_refresh].flags
    # The prefixes' own rules, as browsers enforce them.
    for cookie in cookies.values():
        if cookie.name.startswith("__Host-"):
            assert "secure" in cookie.flags
            assert cookie.attributes["path"] == "/"
            assert "domain" not in cookie.attributes
        if cookie.name.startswith("__Secure-"):
            assert "secure" in cookie.flags


def test_max_age_is_each_tokens_lifetime(make: Callable[..., Any]) -> None:
    browser = Browser(
        make(token_transport="cookie", access_token_lifetime=300, refresh_token_lifetime=86400)
    )
    cookies = set_cookies(browser.login())
    assert cookies[ACCESS_COOKIE].attributes["max-age"] == "300"
    assert cookies[CSRF_ACCESS_COOKIE].attributes["max-age"] == "300"
    assert cookies[REFRESH_COOKIE].attributes["max-age"] == "86400"
    assert cookies[CSRF_REFRESH_COOKIE].attributes["max-age"] == "86400"


def test_refresh_cookie_path_follows_the_mount_point(make: Callable[..., Any]) -> None:
    client = make(token_transport="cookie")
    response = client.post_json(
        TOKEN,
        {"username": "alice", "password": PASSWORD},
        extra_environ={"SCRIPT_NAME": "/auth"},
    )
    cookies = set_cookies(response)
    assert cookies[REFRESH_COOKIE].attributes["path"] == "/auth/accounts/token"
    assert cookies[ACCESS_COOKIE].attributes["path"] == "/"  # __Host- requires Path=/


# -- what each mode puts in the body -----------------------------------------------------------


def test_cookie_mode_login_body_has_expiries_and_csrf_values_only(
    browser: Browser, clock: FakeClock
) -> None:
    response = browser.login()
    body = response.json
    assert list(body) == [
        "refresh_expires_at",
        "csrf_refresh_token",
        "access_expires_at",
        "csrf_access_token",
    ]
    assert body["access_expires_at"] == claims(browser.value("access"))["exp"]
    assert body["refresh_expires_at"] == claims(browser.value("refresh"))["exp"]
    assert body["access_expires_at"] == int(clock.now) + 10
    assert body["csrf_access_token"] == browser.value("csrf_access")
    assert body["csrf_refresh_token"] == browser.value("csrf_refresh")
    assert B64URL_43.fullmatch(body["csrf_access_token"])
    assert JWT.search(response.text) is None  # no token anywhere in the body
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("rotate", [False, True], ids=["no-rotation", "rotation"])
def test_cookie_mode_refresh_body_has_no_token(
    make: Callable[..., Any], clock: FakeClock, rotate: bool
) -> None:
    browser = Browser(make(token_transport="cookie", rotate_refresh_tokens=rotate))
    browser.login()
    old_refresh = browser.value("refresh")
    clock.advance(2)
    response = browser.post(REFRESH, **browser.csrf("refresh"))
    assert response.status_int == 200, response.json
    expected = ["access_expires_at", "csrf_access_token"]
    if rotate:
        expected += ["refresh_expires_at", "csrf_refresh_token"]
    assert list(response.json) == expected
    assert JWT.search(response.text) is None
    assert response.headers["Cache-Control"] == "no-store"
    cookies = set_cookies(response)
    assert (REFRESH_COOKIE in cookies) is rotate
    assert claims(browser.value("access"))["iat"] == int(clock.now)
    assert response.json["csrf_access_token"] == browser.value("csrf_access")
    if rotate:
        assert browser.value("refresh") != old_refresh
        assert _state(browser.client, old_refresh) == "spent"
    else:
        assert browser.value("refresh") == old_refresh


def test_both_mode_body_has_tokens_and_cookies_too(make: Callable[..., Any]) -> None:
    browser = Browser(make(token_transport="both"))
    body = browser.login().json
    assert list(body) == [
        "refresh",
        "access",
        "refresh_expires_at",
        "csrf_refresh_token",
        "access_expires_at",
        "csrf_access_token",
    ]
    assert body["access"] == browser.value("access")
    assert body["refresh"] == browser.value("refresh")
    # Either way authenticates.
    assert browser.client.get(ME, headers=bearer(body["access"])).json["username"] == "alice"
    assert browser.get(ME).json["username"] == "alice"
    refreshed = browser.post(REFRESH, **browser.csrf("refresh"))
    assert set(refreshed.json) == {"access", "access_expires_at", "csrf_access_token"}
    assert refreshed.json["access"] == browser.value("access")
    by_body = browser.client.post_json(REFRESH, {"refresh": body["refresh"]})
    assert set(by_body.json) == {"access", "access_expires_at", "csrf_access_token"}


# -- every answer that issues tokens: the password change too ---------------------------------

PASSWORD_CHANGE = "/accounts/password/"
NEW_PASSWORD = "another-staple-horse-9"


@pytest.mark.parametrize("mode", ["cookie", "both"])
def test_a_password_change_sets_the_new_sessions_cookies(
    make: Callable[..., Any], mode: str
) -> None:
    """The third outside attack: the change answered raw tokens and set no cookie, so a script
    saw a fresh refresh token and the browser was left holding the revoked session."""
    browser = Browser(make(token_transport=mode))
    browser.login()
    old_refresh = browser.value("refresh")
    response = browser.post(
        PASSWORD_CHANGE,
        {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        **browser.csrf("access"),
    )
    assert response.status_int == 200, response.json
    tokens = ["refresh", "access"] if mode == "both" else []
    assert list(response.json) == [
        *tokens,
        "refresh_expires_at",
        "csrf_refresh_token",
        "access_expires_at",
        "csrf_access_token",
    ]
    assert (JWT.search(response.text) is None) is (mode == "cookie")
    assert response.headers["Cache-Control"] == "no-store"
    assert set(set_cookies(response)) == {
        ACCESS_COOKIE,
        REFRESH_COOKIE,
        CSRF_ACCESS_COOKIE,
        CSRF_REFRESH_COOKIE,
    }
    assert browser.value("refresh") != old_refresh
    assert _state(browser.client, old_refresh) == "blacklisted"
    # The device that changed the password stays in, by its cookies alone.
    assert browser.get(ME).json["username"] == "alice"
    assert browser.post(REFRESH, **browser.csrf("refresh")).status_int == 200


def test_a_password_change_from_an_untrusted_origin_changes_nothing(
    make: Callable[..., Any],
) -> None:
    """It would answer cookies, so the login's origin rule applies, before anything changes."""
    browser = Browser(make(token_transport="cookie"))
    browser.login()
    response = browser.post(
        PASSWORD_CHANGE,
        {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        Origin="https://evil.example",
        **browser.csrf("access"),
    )
    assert response.status_int == 403
    assert set_cookies(response) == {}
    assert browser.get(ME).status_int == 200  # the session was not ended
    assert browser.login().status_int == 200  # the old password still works


# -- the body transport: no cookie set, none read ---------------------------------------------


def _cookie_tokens(make: Callable[..., Any]) -> Browser:
    """A browser holding valid cookies of the same key and database, from a cookie app."""
    browser = Browser(make(token_transport="cookie"))
    browser.login()
    return browser


def test_body_mode_sets_no_cookie_anywhere(make: Callable[..., Any]) -> None:
    client = make()
    pair = login(client)
    responses = [
        client.post_json(TOKEN, {"username": "alice", "password": PASSWORD}),
        client.post_json(REFRESH, {"refresh": pair["refresh"]}),
        client.post_json(VERIFY, {"token": pair["access"]}),
        client.get(ME, headers=bearer(pair["access"])),
        client.post_json(BLACKLIST, {"refresh": pair["refresh"]}),
    ]
    for response in responses:
        assert response.status_int == 200
        assert response.headers.getall("Set-Cookie") == []


def test_body_mode_reads_no_cookie(make: Callable[..., Any]) -> None:
    holder = _cookie_tokens(make)
    client = make()  # body transport on the same database and key
    cookies = holder.cookie_header()
    csrf = holder.csrf("refresh")
    me = client.get(ME, headers=cookies, expect_errors=True)
    assert_unauthorized(me, NOT_PROVIDED)
    for path, field in ((REFRESH, "refresh"), (VERIFY, "token"), (BLACKLIST, "refresh")):
        response = client.post_json(path, {}, headers={**cookies, **csrf}, expect_errors=True)
        assert response.status_int == 400
        assert response.json == {field: REQUIRED}
        assert response.headers.getall("Set-Cookie") == []
    assert _state(client, holder.value("refresh")) == "active"


# -- requests authenticated by the cookies -----------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_me_from_the_access_cookie_needs_no_csrf(browser: Browser, method: str) -> None:
    browser.login()
    response = browser.client.request(
        ME, method=method, headers=browser.cookie_header(("access",)), expect_errors=True
    )
    assert response.status_int == 200
    if method == "GET":
        assert response.json["username"] == "alice"
        assert response.headers["Cache-Control"] == "no-store"


def test_me_without_header_or_cookie_is_not_authenticated(browser: Browser) -> None:
    browser.login()
    assert_unauthorized(browser.get(ME, only=("refresh", "csrf_access")), NOT_PROVIDED)


def test_me_prefers_the_header_to_the_cookie(browser: Browser) -> None:
    browser.login()
    # A valid cookie does not rescue an invalid Bearer token: the header is what was meant.
    response = browser.get(ME, Authorization="Bearer not-a-token")
    assert response.status_int == 401
    assert response.json["code"] == "token_not_valid"
    malformed = browser.get(ME, Authorization="Bearer two values")
    assert malformed.json["code"] == "bad_authorization_header"
    # Another scheme is no Bearer token at all: the cookie is used.
    assert browser.get(ME, Authorization="Basic YWxpY2U6eA==").json["username"] == "alice"


def test_me_from_an_expired_cookie(browser: Browser, clock: FakeClock) -> None:
    browser.login()
    clock.advance(10)
    response = browser.get(ME)
    assert response.status_int == 401
    assert response.json["messages"][0]["message"] == "Token is expired"


def test_me_from_the_cookie_of_a_deactivated_user(browser: Browser) -> None:
    browser.login()
    assert browser.client.store.set_active("alice", False)
    assert_unauthorized(browser.get(ME), USER_INACTIVE)


def test_verify_reads_the_refresh_cookie(browser: Browser) -> None:
    browser.login()
    response = browser.post(VERIFY, **browser.csrf("refresh"))
    assert response.status_int == 200
    assert response.json == {}
    assert response.headers.getall("Set-Cookie") == []


def test_a_body_token_wins_over_the_cookie_and_needs_no_csrf(browser: Browser) -> None:
    browser.login()
    other = Browser(browser.client)
    other.login()
    # No CSRF header: the token is in the body, which no cross-site page can fill.
    response = browser.post(VERIFY, {"token": "not-a-token"})
    assert response.status_int == 401
    refreshed = browser.post(REFRESH, {"refresh": other.value("refresh")})
    assert refreshed.status_int == 200
    assert claims(browser.value("access"))["user_id"] == "1"


def test_body_fields_that_are_present_but_blank_are_not_replaced(browser: Browser) -> None:
    browser.login()
    response = browser.post(REFRESH, {"refresh": ""}, **browser.csrf("refresh"))
    assert response.status_int == 400
    assert response.json == {"refresh": ["This field may not be blank."]}


def test_no_cookie_and_no_body_reports_the_field(browser: Browser) -> None:
    for path, field in ((REFRESH, "refresh"), (VERIFY, "token"), (BLACKLIST, "refresh")):
        response = browser.post(path)
        assert response.status_int == 400
        assert response.json == {field: REQUIRED}


# -- logout clears the cookies -----------------------------------------------------------------


def _assert_cleared(cookies: dict[str, SetCookie]) -> None:
    assert set(cookies) == {ACCESS_COOKIE, REFRESH_COOKIE, CSRF_ACCESS_COOKIE, CSRF_REFRESH_COOKIE}
    expired = "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    assert cookies[ACCESS_COOKIE].line == (
        f"{ACCESS_COOKIE}=; Path=/{expired}; HttpOnly; Secure; SameSite=Lax"
    )
    assert cookies[REFRESH_COOKIE].line == (
        f"{REFRESH_COOKIE}=; Path=/accounts/token{expired}; HttpOnly; Secure; SameSite=Lax"
    )
    for name in (CSRF_ACCESS_COOKIE, CSRF_REFRESH_COOKIE):
        assert cookies[name].line == f"{name}=; Path=/{expired}; Secure; SameSite=Lax"


@pytest.mark.parametrize("rotate", [False, True], ids=["no-rotation", "rotation"])
def test_logout_by_cookie_clears_every_cookie(make: Callable[..., Any], rotate: bool) -> None:
    browser = Browser(make(token_transport="cookie", rotate_refresh_tokens=rotate))
    browser.login()
    refresh = browser.value("refresh")
    response = browser.post(BLACKLIST, **browser.csrf("refresh"))
    assert response.status_int == 200
    assert response.json == {}
    assert response.headers["Cache-Control"] == "no-store"
    _assert_cleared(set_cookies(response))
    assert browser.jar == {}
    assert _state(browser.client, refresh) in {"blacklisted", "revoked"}


def test_cleared_cookies_keep_the_set_attributes(make: Callable[..., Any]) -> None:
    browser = Browser(
        make(token_transport="cookie", cookie_domain="example.com", cookie_samesite="Strict"),
        names={
            "access": "__Secure-access_token_cookie",
            "refresh": "__Secure-refresh_token_cookie",
            "csrf_access": "__Secure-csrf_access_token",
            "csrf_refresh": "__Secure-csrf_refresh_token",
        },
    )
    set_lines = set_cookies(browser.login())
    cleared = set_cookies(browser.post(BLACKLIST, **browser.csrf("refresh")))
    assert set(cleared) == set(set_lines)
    for name, cookie in cleared.items():
        kept = {k: v for k, v in set_lines[name].attributes.items() if k != "max-age"}
        assert {k: v for k, v in cookie.attributes.items() if k not in {"max-age", "expires"}} == (
            kept
        )
        assert cookie.flags == set_lines[name].flags
        assert cookie.value == ""
        assert cookie.attributes["max-age"] == "0"


def test_logout_of_this_session_by_body_token_clears_the_cookies(browser: Browser) -> None:
    browser.login()
    response = browser.post(BLACKLIST, {"refresh": browser.value("refresh")})
    assert response.status_int == 200
    _assert_cleared(set_cookies(response))


def test_logout_of_another_token_leaves_this_sessions_cookies(browser: Browser) -> None:
    browser.login()
    other = Browser(browser.client)
    other.login()
    response = browser.post(BLACKLIST, {"refresh": other.value("refresh")})
    assert response.status_int == 200
    assert response.headers.getall("Set-Cookie") == []
    assert browser.get(ME).status_int == 200


def test_failed_logout_clears_nothing(browser: Browser) -> None:
    browser.login()
    assert browser.post(BLACKLIST, **browser.csrf("refresh")).status_int == 200
    browser.login()
    refresh = browser.value("refresh")
    browser.client.store.blacklist_refresh_token(claims(refresh)["jti"])
    response = browser.post(BLACKLIST, **browser.csrf("refresh"))
    assert response.status_int == 401
    assert response.headers.getall("Set-Cookie") == []


# -- CORS for front-ends on another origin -----------------------------------------------------


def _preflight(client: Any, headers: str) -> Any:
    return client.options(
        TOKEN,
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": headers,
        },
    )


def test_cookie_mode_preflight_allows_the_csrf_header(make: Callable[..., Any]) -> None:
    client = make(token_transport="cookie", cors_allow_credentials=True)
    response = _preflight(client, "content-type, x-csrf-token")
    allowed = {h.strip() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "x-csrf-token", "authorization"} <= allowed
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_body_mode_preflight_is_unchanged(make: Callable[..., Any]) -> None:
    response = _preflight(make(), "content-type")
    assert response.headers["Access-Control-Allow-Headers"] == (
        "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with, "
        "x-request-id"
    )


def test_credentialed_login_from_an_allowed_origin(make: Callable[..., Any]) -> None:
    browser = Browser(make(token_transport="cookie", cors_allow_credentials=True))
    response = browser.login(Origin=ALLOWED)
    assert response.status_int == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "origin" in response.headers["Vary"].lower()
    assert len(set_cookies(response)) == 4
    me = browser.get(ME, Origin=ALLOWED)
    assert me.json["username"] == "alice"
    assert me.headers["Access-Control-Allow-Credentials"] == "true"


def test_allow_all_with_credentials_stays_refused_in_cookie_mode() -> None:
    with pytest.raises(ConfigurationError, match=r"^CORS_ALLOW_ALL_ORIGINS: "):
        Settings(token_transport="cookie", cors_allow_all_origins=True, cors_allow_credentials=True)
