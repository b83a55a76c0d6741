"""CSRF under the cookie transport, through the WSGI app: every refusal (missing, wrong,
swapped between access and refresh, from another session...) answers 403 and changes nothing;
header and body tokens need no CSRF value; and token cookies are set only for trusted origins
(login CSRF). The reusable "access token of this request" is checked on a toy endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import falcon
import pytest
import webtest

from jwtlite.service.auth import AuthService
from jwtlite.service.errors import CSRFError
from jwtlite.service.settings import Settings
from jwtlite.web.app import _add_error_handlers
from jwtlite.web.auth import RequestAuth
from jwtlite.web.cookies import TokenCookies

from support import FAST_HASH, PASSWORD, FakeClock, register
from support.contract import bearer, claims
from support.cookies import (
    ALLOWED,
    CSRF_MISSING,
    CSRF_WRONG,
    EVIL,
    Browser,
    no_cookie_jar,
    origin_refused,
    set_cookies,
)

TOKEN = "/accounts/token/"
REFRESH = "/accounts/token/refresh/"
VERIFY = "/accounts/token/verify/"
BLACKLIST = "/accounts/token/blacklist/"
ME = "/accounts/me/"


@pytest.fixture
def make(make_client: Callable[..., Any]) -> Callable[..., Browser]:
    """A browser on a cookie-transport app (rotation on) with alice registered."""

    def build(**overrides: Any) -> Browser:
        options = {"token_transport": "cookie", "rotate_refresh_tokens": True, **overrides}
        client = no_cookie_jar(make_client(**options))
        if client.store.get_user_by_key("alice") is None:
            register(client)
        return Browser(client)

    return build


@pytest.fixture
def browser(make: Callable[..., Browser]) -> Browser:
    browser = make()
    assert browser.login().status_int == 200
    return browser


def _state(browser: Browser, token: str) -> str:
    record = browser.client.store.get_refresh_token(claims(token)["jti"])
    assert record is not None
    state: str = record.state
    return state


def assert_forbidden(response: Any, body: dict[str, str]) -> None:
    """A 403 in DRF's shape, no cookie set, not cacheable, and no Bearer challenge."""
    assert response.status_int == 403, (response.status, response.body)
    assert response.headers["Content-Type"] == "application/json"
    assert response.json == body
    assert response.headers["Cache-Control"] == "no-store"
    assert "WWW-Authenticate" not in response.headers
    assert response.headers.getall("Set-Cookie") == []


# -- a request authenticated by the refresh cookie needs its CSRF value ------------------------

CSRF_CASES: dict[str, Callable[[Browser, Browser], dict[str, str]]] = {
    "missing": lambda mine, other: {},
    "empty": lambda mine, other: {"X-CSRF-TOKEN": ""},
    "wrong": lambda mine, other: {"X-CSRF-TOKEN": "A" * 43},
    "swapped-access-for-refresh": lambda mine, other: mine.csrf("access"),
    "from-another-session": lambda mine, other: other.csrf("refresh"),
    "django-header-name": lambda mine, other: {"X-CSRFToken": mine.value("csrf_refresh")},
    "the-refresh-token-itself": lambda mine, other: {"X-CSRF-TOKEN": mine.value("refresh")},
}
MISSING_CASES = {"missing", "empty", "django-header-name"}


@pytest.mark.parametrize(
    "endpoint", [REFRESH, VERIFY, BLACKLIST], ids=["refresh", "verify", "blacklist"]
)
@pytest.mark.parametrize("case", list(CSRF_CASES), ids=list(CSRF_CASES))
def test_refresh_cookie_without_its_csrf_value_is_refused(
    make: Callable[..., Browser], endpoint: str, case: str
) -> None:
    mine, other = make(), make()
    mine.login()
    other.login()
    refresh, access = mine.value("refresh"), mine.value("access")
    response = mine.post(endpoint, **CSRF_CASES[case](mine, other))
    assert_forbidden(response, CSRF_MISSING if case in MISSING_CASES else CSRF_WRONG)
    # Nothing changed: the token is neither spent nor blacklisted, the session goes on.
    assert _state(mine, refresh) == "active"
    assert mine.value("refresh") == refresh
    assert mine.value("access") == access
    assert mine.post(REFRESH, **mine.csrf("refresh")).status_int == 200


def test_csrf_value_in_the_body_does_not_count(browser: Browser) -> None:
    # A form can carry any field; only a header proves the page could read the cookie.
    value = browser.value("csrf_refresh")
    for field in ("csrf_token", "csrfmiddlewaretoken", "X-CSRF-TOKEN", "csrf_refresh_token"):
        response = browser.post(REFRESH, {field: value})
        assert_forbidden(response, CSRF_MISSING)


def test_form_post_with_cookies_is_refused(browser: Browser) -> None:
    # What a cross-site <form method=post> sends: a form body, the cookies, no custom header.
    refresh = browser.value("refresh")
    for path in (REFRESH, BLACKLIST, VERIFY):
        response = browser.client.post(
            path,
            "next=/",
            headers={
                **browser.cookie_header(),
                "Content-Type": "application/x-www-form-urlencoded",
            },
            expect_errors=True,
        )
        assert_forbidden(response, CSRF_MISSING)
    assert _state(browser, refresh) == "active"


def test_the_right_value_passes_and_rotates_the_session(browser: Browser) -> None:
    refresh = browser.value("refresh")
    response = browser.post(REFRESH, **browser.csrf("refresh"))
    assert response.status_int == 200
    assert _state(browser, refresh) == "spent"
    # The old CSRF value went with the old token.
    browser.jar[browser.names["refresh"]] = refresh
    stale = browser.post(REFRESH, **{"X-CSRF-TOKEN": browser.value("csrf_refresh")})
    assert stale.status_int == 403


def test_a_csrf_value_checked_against_an_expired_cookie_reports_the_expiry(
    browser: Browser, clock: FakeClock
) -> None:
    clock.advance(30)
    response = browser.post(REFRESH, **browser.csrf("refresh"))
    assert response.status_int == 401
    assert response.json == {"detail": "Token is expired", "code": "token_not_valid"}


def test_a_forged_cookie_is_refused_as_invalid(browser: Browser) -> None:
    token = browser.value("refresh")
    browser.jar[browser.names["refresh"]] = token[:-4] + (
        "AAAA" if token[-4:] != "AAAA" else "BBBB"
    )
    response = browser.post(REFRESH, **browser.csrf("refresh"))
    assert response.status_int == 401
    assert response.json == {"detail": "Token is invalid", "code": "token_not_valid"}


def test_403_carries_cors_for_an_allowed_origin(browser: Browser) -> None:
    response = browser.post(REFRESH, Origin=ALLOWED)
    assert_forbidden(response, CSRF_MISSING)
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


# -- header and body tokens need no CSRF value -------------------------------------------------


def test_bearer_header_needs_no_csrf(browser: Browser) -> None:
    response = browser.client.get(ME, headers=bearer(browser.value("access")))
    assert response.json["username"] == "alice"


@pytest.mark.parametrize(
    ("endpoint", "field"),
    [(REFRESH, "refresh"), (VERIFY, "token"), (BLACKLIST, "refresh")],
    ids=["refresh", "verify", "blacklist"],
)
def test_body_token_needs_no_csrf(browser: Browser, endpoint: str, field: str) -> None:
    response = browser.client.post_json(endpoint, {field: browser.value("refresh")})
    assert response.status_int == 200


# -- token cookies only for trusted origins (login CSRF) ---------------------------------------


@pytest.mark.parametrize(
    ("headers", "refusal"),
    [
        ({"Origin": EVIL}, origin_refused(EVIL)),
        ({"Origin": "null"}, origin_refused("null")),
        (
            {"Origin": "http://localhost:8001.evil.example"},
            origin_refused("an invalid origin"),
        ),
        ({"Origin": "https://localhost:8001"}, origin_refused("https://localhost:8001")),
        ({"Origin": "http://localhost:8002"}, origin_refused("http://localhost:8002")),
        ({"Origin": "not an origin"}, origin_refused("an invalid origin")),
        ({"Referer": f"{EVIL}/page.html"}, origin_refused(EVIL, "Referer")),
        ({"Referer": "garbage"}, origin_refused("an invalid origin", "Referer")),
        ({"Origin": EVIL, "Referer": f"{ALLOWED}/"}, origin_refused(EVIL)),
    ],
    ids=[
        "other-site",
        "opaque",
        "look-alike",
        "other-scheme",
        "same-site-other-port",
        "not-an-origin",
        "referer-other-site",
        "referer-garbage",
        "origin-wins-over-referer",
    ],
)
def test_login_from_an_untrusted_origin_is_refused_and_counts_nothing(
    make: Callable[..., Browser], headers: dict[str, str], refusal: dict[str, str]
) -> None:
    browser = make(login_max_failures=1)
    for _ in range(3):
        response = browser.post(
            TOKEN, {"username": "alice", "password": "wrong-password-1"}, **headers
        )
        assert_forbidden(response, refusal)
    response = browser.login(**headers)
    assert response.status_int == 403
    assert browser.jar == {}
    # Neither the refused attempts nor the refused login reached the throttle or the user.
    assert browser.client.store.get_user_by_key("alice").last_login is None
    assert browser.login().status_int == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": ALLOWED},
        {"Origin": "HTTP://LOCALHOST:8001"},
        {"Referer": f"{ALLOWED}/index.html"},
        {"Origin": "http://localhost"},
        {"Referer": "http://localhost/app"},
    ],
    ids=[
        "no-browser",
        "allowlisted",
        "allowlisted-unnormalised",
        "referer-allowlisted",
        "same-origin",
        "referer-same-origin",
    ],
)
def test_login_from_a_trusted_origin_sets_cookies(
    make: Callable[..., Browser], headers: dict[str, str]
) -> None:
    browser = make()
    # webtest's requests go to http://localhost: that is this server's own origin.
    response = browser.client.post_json(
        TOKEN,
        {"username": "alice", "password": PASSWORD},
        headers=headers,
        extra_environ={"HTTP_HOST": "localhost"},
    )
    assert response.status_int == 200
    assert len(set_cookies(response)) == 4


def test_login_origin_may_match_an_allowlist_regex(make: Callable[..., Browser]) -> None:
    browser = make(cors_allowed_origin_regexes=(r"https://[a-z]+\.example\.com",))
    assert browser.login(Origin="https://app.example.com").status_int == 200
    assert browser.login(Origin="https://app.example.com.evil.example").status_int == 403


def test_allow_all_origins_is_no_trust_for_cookies(make: Callable[..., Browser]) -> None:
    browser = make(cors_allow_all_origins=True)
    response = browser.login(Origin=EVIL)
    assert_forbidden(response, origin_refused(EVIL))
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_refresh_by_body_token_from_an_untrusted_origin_is_refused(browser: Browser) -> None:
    # Otherwise a page could plant its own session in a victim's cookies through refresh.
    refresh = browser.value("refresh")
    stranger = Browser(browser.client)
    response = stranger.post(REFRESH, {"refresh": refresh}, Origin=EVIL)
    assert_forbidden(response, origin_refused(EVIL))
    assert _state(browser, refresh) == "active"


def test_body_transport_keeps_todays_answer_for_any_origin(make_client: Callable[..., Any]) -> None:
    client = make_client()
    register(client)
    response = client.post_json(
        TOKEN, {"username": "alice", "password": PASSWORD}, headers={"Origin": EVIL}
    )
    assert response.status_int == 200
    assert set(response.json) == {"refresh", "access"}


# -- cookie tossing: a sibling host plants a second cookie of the same name -------------------


def _tossed(browser: Browser, kind: str, *planted: str) -> dict[str, str]:
    """A ``Cookie`` header with ``planted`` first under the name of the ``kind`` cookie (as a
    browser orders parent-domain cookies with longer paths), then the user's own."""
    name = browser.names[kind]
    others = [f"{key}={value}" for key, value in browser.jar.items() if key != name]
    tossed = [f"{name}={value}" for value in planted]
    return {"Cookie": "; ".join([*tossed, f"{name}={browser.jar[name]}", *others])}


@pytest.mark.parametrize("count", [1, 4, 20])
@pytest.mark.parametrize("planted", ["attacker", "garbage"])
def test_a_tossed_refresh_cookie_does_not_lock_the_user_out(
    make: Callable[..., Browser], planted: str, count: int
) -> None:
    """The third outside attack: the server read the first value only, so the user's refresh
    got 403 until the planted cookie expired; the fourth: four planted cookies (four paths
    under ``/accounts/token``) pushed the user's own past the ones looked at."""
    attacker = make()
    register(attacker.client, "mallory")
    assert attacker.login("mallory").status_int == 200
    user = make()
    assert user.login().status_int == 200
    own = user.value("refresh")
    value = attacker.value("refresh") if planted == "attacker" else "eyJhbGciOi.x.y"
    headers = _tossed(user, "refresh", *[value] * count)
    response = user.client.post_json(REFRESH, {}, headers={**headers, **user.csrf("refresh")})
    assert response.status_int == 200, response.json
    user.keep(response)
    # The user's own session rotated, not the planted one.
    assert claims(user.value("access"))["user_id"] == claims(own)["user_id"]
    assert user.value("refresh") != own
    if planted == "attacker":
        assert attacker.post(REFRESH, **attacker.csrf("refresh")).status_int == 200


def test_a_tossed_access_cookie_does_not_stand_in_for_the_users(
    make: Callable[..., Browser],
) -> None:
    attacker = make()
    register(attacker.client, "mallory")
    assert attacker.login("mallory").status_int == 200
    user = make()
    assert user.login().status_int == 200
    headers = {**_tossed(user, "access", attacker.value("access")), **user.csrf("access")}
    response = user.client.post_json("/accounts/logout-all/", {}, headers=headers)
    assert response.status_int == 200, response.json
    # The user's sessions ended; the attacker's, whose cookie came first, did not.
    assert attacker.get(ME).status_int == 200
    assert user.get(ME).status_int == 401


def test_a_tossed_access_cookie_is_not_read_by_a_safe_request_either(
    make: Callable[..., Browser],
) -> None:
    """A GET needs no CSRF value, so with two access cookies it cannot tell the user's from
    a planted one without it: the value chooses, and without it the request is refused
    rather than shown the attacker's account."""
    attacker = make()
    register(attacker.client, "mallory")
    assert attacker.login("mallory").status_int == 200
    user = make()
    assert user.login().status_int == 200
    planted = _tossed(user, "access", attacker.value("access"))
    response = user.client.get(ME, headers={**planted, **user.csrf("access")})
    assert response.status_int == 200
    assert response.json["username"] == "alice"
    refused = user.client.get(ME, headers=planted, expect_errors=True)
    assert_forbidden(refused, {"detail": "CSRF Failed: CSRF token missing."})
    assert user.get(ME).json["username"] == "alice"  # one cookie: no value needed


def test_tossed_cookies_without_a_matching_csrf_value_are_refused_as_one(
    browser: Browser,
) -> None:
    headers = {**_tossed(browser, "refresh", "eyJhbGciOi.x.y"), "X-CSRF-TOKEN": "x" * 43}
    response = browser.client.post_json(REFRESH, {}, headers=headers, expect_errors=True)
    assert response.status_int == 401  # the first cookie's refusal: not a token
    many = {"Cookie": "; ".join([f"{browser.names['refresh']}=junk{i}" for i in range(300)])}
    response = browser.client.post_json(
        REFRESH, {}, headers={**many, **browser.csrf("refresh")}, expect_errors=True
    )
    assert response.status_int == 401


def test_both_transport_checks_the_origin_too(make: Callable[..., Browser]) -> None:
    browser = make(token_transport="both")
    assert_forbidden(browser.login(Origin=EVIL), origin_refused(EVIL))


def test_both_transport_still_needs_csrf_for_cookies(make: Callable[..., Browser]) -> None:
    browser = make(token_transport="both")
    body = browser.login().json
    for path in (REFRESH, VERIFY, BLACKLIST):
        assert_forbidden(browser.post(path), CSRF_MISSING)
    assert _state(browser, body["refresh"]) == "active"
    # The same token in the body needs none.
    assert browser.post(VERIFY, {"token": body["refresh"]}).status_int == 200


# -- the reusable piece: RequestAuth.access_token on any endpoint ------------------------------


class _Probe:
    """A stand-in for a future endpoint authenticated by an access token (e.g. a session
    list): it only says which token authenticated it."""

    def __init__(self, service: AuthService, auth: RequestAuth) -> None:
        self._service = service
        self._auth = auth

    def _answer(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = self._auth.access_token(req)
        resp.media = {"user": self._service.authenticate(token)["username"]}

    on_get = on_post = on_put = on_patch = on_delete = _answer


@pytest.fixture
def probe(db_path: Any, clock: FakeClock) -> Any:
    from jwtlite.store.sqlite import SQLiteStore

    settings = Settings(database=str(db_path), token_transport="cookie", **FAST_HASH)
    store = SQLiteStore(settings.database)
    service = AuthService.from_settings(settings, store=store, clock=clock)
    service.register({"username": "alice", "password": PASSWORD}, address=None)
    pair = service.login({"username": "alice", "password": PASSWORD}, address="127.0.0.1")
    auth = RequestAuth(service, cookies=TokenCookies.from_settings(settings))
    app = falcon.App()
    app.add_route("/probe", _Probe(service, auth))
    _add_error_handlers(app)
    client = no_cookie_jar(webtest.TestApp(app))
    client.pair = pair
    client.csrf = {kind: service.describe(token).csrf for kind, token in pair.items()}
    yield client
    store.close()


def _cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"__Host-access_token_cookie={token}"}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_unsafe_request_by_access_cookie_needs_its_csrf_value(probe: Any, method: str) -> None:
    access = probe.pair["access"]
    cases = {
        "missing": ({}, CSRF_MISSING),
        "wrong": ({"X-CSRF-TOKEN": "A" * 43}, CSRF_WRONG),
        "swapped": ({"X-CSRF-TOKEN": probe.csrf["refresh"]}, CSRF_WRONG),
    }
    for headers, body in cases.values():
        response = probe.request(
            "/probe", method=method, headers={**_cookie(access), **headers}, expect_errors=True
        )
        assert response.status_int == 403
        assert response.json == body
    ok = probe.request(
        "/probe", method=method, headers={**_cookie(access), "X-CSRF-TOKEN": probe.csrf["access"]}
    )
    assert ok.json == {"user": "alice"}


def test_safe_request_by_access_cookie_and_any_header_token_need_none(probe: Any) -> None:
    access = probe.pair["access"]
    assert probe.get("/probe", headers=_cookie(access)).json == {"user": "alice"}
    assert probe.post("/probe", headers=bearer(access)).json == {"user": "alice"}


def test_an_invalid_access_cookie_gets_the_access_token_answer(probe: Any) -> None:
    response = probe.post(
        "/probe",
        headers={**_cookie("not-a-token"), "X-CSRF-TOKEN": probe.csrf["access"]},
        expect_errors=True,
    )
    assert response.status_int == 401
    assert response.json["detail"] == "Given token not valid for any token type"
    assert response.json["messages"][0]["token_type"] == "access"


def test_csrf_error_is_a_service_error_without_http() -> None:
    from jwtlite.service.errors import ServiceError

    assert issubclass(CSRFError, ServiceError)
    assert not hasattr(CSRFError("x"), "status")
