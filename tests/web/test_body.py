"""Request bodies (``jwtlite.web.body``): a body is UTF-8 or it is refused before decoding.

An outside audit got 500s from ``charset=utf-7`` (and ``unicode_escape``,
``raw_unicode_escape``: lone surrogates) and half a second of GIL per request from
``charset=punycode`` with 65,000 digits. A body must be UTF-8 (named, aliased, or US-ASCII),
and any other charset is refused before a byte is decoded, with 400 and the parse-error
shape Django REST framework gives an unknown charset.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest

from support import PASSWORD, register
from support.contract import assert_error, assert_json

ENDPOINTS = [
    "/accounts/register/",
    "/accounts/token/",
    "/accounts/token/verify/",
    "/accounts/token/refresh/",
    "/accounts/token/blacklist/",
]
# What the audit sent, and its cousins: codecs Python knows that are not UTF-8.
HOSTILE_CHARSETS = {
    "utf-7-surrogate": ("utf-7", b'{"username":"+2AA-","password":"x"}'),
    "unicode-escape-surrogate": ("unicode_escape", b'{"username":"\\\\ud800","password":"x"}'),
    "raw-unicode-escape-surrogate": ("raw_unicode_escape", b'{"username":"\\ud800"}'),
    "punycode-65000-digits": ("punycode", b"9" * 65000),
    "utf-16": ("utf-16", '{"username": "alice"}'.encode("utf-16")),
    "utf-32": ("utf-32", '{"username": "alice"}'.encode("utf-32")),
    "latin-1": ("latin-1", b'{"username": "caf\xe9"}'),
    "cp1252": ("cp1252", b'{"username": "x"}'),
    "idna": ("idna", b'{"username": "x"}'),
    "rot13": ("rot_13", b'{"hfreanzr": "k"}'),
    "base64-codec": ("base64", b"eyJ1c2VybmFtZSI6ICJ4In0="),
    "zlib-codec": ("zlib", b"x\x9c\xab\x06\x00\x00|\x00|"),
    "hex-codec": ("hex", b"7b7d"),
    "unknown": ("no-such-charset", b'{"username": "x"}'),
    "empty": ("", b'{"username": "x"}'),
    "utf-8-with-junk": ("utf-8x", b'{"username": "x"}'),
    "two-charsets": ("utf-8; charset=utf-7", b'{"username": "x"}'),
    "quoted-utf-7": ('"utf-7"', b'{"username": "x"}'),
}


@pytest.mark.parametrize("media_type", ["application/json", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize(("charset", "body"), HOSTILE_CHARSETS.values(), ids=list(HOSTILE_CHARSETS))
@pytest.mark.parametrize("path", ENDPOINTS)
def test_charsets_other_than_utf8_are_refused_before_decoding(
    client: Any, path: str, media_type: str, charset: str, body: bytes
) -> None:
    content_type = f"{media_type}; charset={charset}"
    started = time.perf_counter()
    response = client.post(path, body, content_type=content_type, expect_errors=True)
    elapsed = time.perf_counter() - started
    assert response.status_int == 400, (response.status, response.body)
    detail = assert_json(response)["detail"]
    what = "JSON" if media_type == "application/json" else "Form"
    assert detail.startswith(f"{what} parse error - unsupported charset"), detail
    assert detail.endswith("send UTF-8")
    # No decoding happened: punycode's 65,000 digits took ~0.5 s of CPU before the fix.
    assert elapsed < 0.25, elapsed


@pytest.mark.parametrize(
    "charset",
    ["utf-8", "UTF-8", "utf8", '"utf-8"', "Unicode-1-1-UTF-8", "unicode20utf8", "x-unicode20utf8"],
)
@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_utf8_and_its_labels_are_accepted(client: Any, charset: str, form: bool) -> None:
    name = "zoë"
    if form:
        body = f"username={quote(name)}&password={quote(PASSWORD)}".encode()
        media_type = "application/x-www-form-urlencoded"
    else:
        body = f'{{"username": "{name}", "password": "{PASSWORD}"}}'.encode()
        media_type = "application/json"
    response = client.post(
        "/accounts/register/", body, content_type=f"{media_type}; charset={charset}", status=201
    )
    assert response.json["username"] == name


@pytest.mark.parametrize("charset", ["us-ascii", "ASCII"])
def test_us_ascii_is_accepted_and_checked(client: Any, charset: str) -> None:
    ascii_body = f'{{"username": "alice", "password": "{PASSWORD}"}}'.encode()
    client.post(
        "/accounts/register/",
        ascii_body,
        content_type=f"application/json; charset={charset}",
        status=201,
    )
    response = client.post(
        "/accounts/register/",
        '{"username": "zoë"}'.encode(),
        content_type=f"application/json; charset={charset}",
        expect_errors=True,
    )
    assert_error(response, 400, {"detail": "JSON parse error - body is not US-ASCII"})


def test_form_without_charset_is_utf8(client: Any) -> None:
    """What browsers send: no charset parameter, the page's UTF-8 percent-encoded."""
    body = f"username={quote('zoë')}&password={quote(PASSWORD)}"
    response = client.post(
        "/accounts/register/",
        body,
        content_type="application/x-www-form-urlencoded",
        status=201,
    )
    assert response.json["username"] == "zoë"


@pytest.mark.parametrize(
    "body",
    [b"username=caf\xe9&password=x", b"username=\xed\xa0\x80"],
    ids=["latin-1-byte", "encoded-surrogate"],
)
def test_form_body_that_is_not_utf8_is_a_400(client: Any, body: bytes) -> None:
    response = client.post(
        "/accounts/token/",
        body,
        content_type="application/x-www-form-urlencoded",
        expect_errors=True,
    )
    assert_error(response, 400, {"detail": "Form parse error - body is not UTF-8"})


@pytest.mark.parametrize(
    "escaped", ["%ED%A0%80", "%F0%28%8C%BC", "%C0%AF"], ids=["surrogate", "bad-4-byte", "overlong"]
)
def test_percent_escaped_invalid_utf8_never_becomes_a_surrogate(client: Any, escaped: str) -> None:
    register(client)
    response = client.post(
        "/accounts/token/",
        f"username=alice{escaped}&password=x",
        content_type="application/x-www-form-urlencoded",
        expect_errors=True,
    )
    # Replacement characters in a username: an ordinary failed login, never a 500.
    assert response.status_int == 401, response.body


def test_unknown_charset_message_is_bounded(client: Any) -> None:
    charset = "x" * 5000
    response = client.post(
        "/accounts/token/",
        b"{}",
        content_type=f"application/json; charset={charset}",
        expect_errors=True,
    )
    assert response.status_int == 400
    assert len(response.body) < 200
