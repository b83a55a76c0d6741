"""Tests for jwtlite.service.origins: strict origin parsing of hostile Origin values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jwtlite.service.origins import MAX_ORIGIN_LENGTH, normalize_origin

NORMALISED = [
    ("http://localhost:8001", "http://localhost:8001"),
    ("HTTP://LOCALHOST:8001", "http://localhost:8001"),
    ("Http://LocalHost:8001", "http://localhost:8001"),
    ("http://example.com:80", "http://example.com"),
    ("https://example.com:443", "https://example.com"),
    ("https://example.com:80", "https://example.com:80"),
    ("http://example.com:443", "http://example.com:443"),
    ("https://a.b-c.example.com", "https://a.b-c.example.com"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://[::1]:8001", "http://[::1]:8001"),
    ("http://[::1]:80", "http://[::1]"),
    ("http://[0:0:0:0:0:0:0:1]", "http://[::1]"),
    ("http://[2001:DB8::A]", "http://[2001:db8::a]"),
    ("http://a:65535", "http://a:65535"),
    ("http://a:1", "http://a:1"),
    ("http://under_score.example", "http://under_score.example"),
]


@pytest.mark.parametrize(("value", "expected"), NORMALISED, ids=[v for v, _ in NORMALISED])
def test_normalises(value: str, expected: str) -> None:
    assert normalize_origin(value) == expected


REFUSED = {
    "empty": "",
    "null": "null",
    "star": "*",
    "no-scheme": "localhost:8001",
    "scheme-relative": "//localhost:8001",
    "no-host": "http://",
    "no-host-port": "http://:8001",
    "trailing-slash": "http://localhost:8001/",
    "path": "http://a.com/x",
    "query": "http://a.com?x=1",
    "query-smuggling": "https://evil.com/?https://a.example.com",
    "fragment": "http://a.com#x",
    "userinfo": "http://user@a.com",
    "userinfo-lookalike": "http://localhost:8001@evil.com",
    "password": "http://u:p@a.com",
    "ftp-scheme": "ftp://a.com",
    "file-scheme": "file:///etc/passwd",
    "javascript-scheme": "javascript://a.com",
    "data-scheme": "data:text/html,x",
    "chrome-extension": "chrome-extension://abcdef",
    "port-too-big": "http://localhost:80011",
    "port-65536": "http://a:65536",
    "port-zero": "http://a:0",
    "port-leading-zero": "http://a:08001",
    "port-empty": "http://a:",
    "port-alpha": "http://a:80a",
    "port-negative": "http://a:-1",
    "port-sign": "http://a:+80",
    "port-unicode-digits": "http://a:\u0668\u0660",
    "two-ports": "http://a:80:80",
    "leading-space": " http://a.com",
    "trailing-space": "http://a.com ",
    "inner-space": "http://a .com",
    "tab": "http://a.com\t",
    "crlf": "http://a.com\r\nSet-Cookie: x=1",
    "lf-only": "http://a.com\n",
    "nul": "http://a.com\x00",
    "nul-inside": "http://local\x00host:8001",
    "unicode-host": "http://ex\u00e4mple.com",
    "kelvin-sign-k": "http://\u212aa.com",
    "fullwidth-dot": "http://a\uff0ecom",
    "comma-joined": "http://localhost:8001, http://evil.com",
    "comma-no-space": "http://localhost:8001,http://evil.com",
    "percent-encoded": "http://a%2ecom",
    "backslash": "http:\\\\a.com",
    "ipv6-unbracketed": "http://::1",
    "ipv6-bad": "http://[::g]",
    "ipv6-zone": "http://[fe80::1%25eth0]",
    "ipv6-empty": "http://[]",
    "ipv6-unclosed": "http://[::1",
    "leading-dot": "http://.a.com",
    "leading-hyphen": "http://-a.com",
    "trailing-dot": "http://a.com.",
    "too-long": "http://" + "a" * MAX_ORIGIN_LENGTH + ".com",
    "10-kib": "http://localhost:8001" + "x" * 10240,
}


@pytest.mark.parametrize("value", list(REFUSED.values()), ids=list(REFUSED))
def test_refuses(value: str) -> None:
    assert normalize_origin(value) is None


@pytest.mark.parametrize("value", [None, 42, b"http://a.com", ["http://a.com"]], ids=repr)
def test_non_strings_give_none(value: object) -> None:
    assert normalize_origin(value) is None  # type: ignore[arg-type]


def test_length_limit_is_inclusive() -> None:
    host = "a" * (MAX_ORIGIN_LENGTH - len("http://"))
    assert normalize_origin("http://" + host) == "http://" + host
    assert normalize_origin("http://" + host + "a") is None


@given(st.text(max_size=300))
def test_never_raises_and_is_idempotent(value: str) -> None:
    result = normalize_origin(value)
    if result is not None:
        assert normalize_origin(result) == result


@given(st.from_regex(r"https?://[a-zA-Z0-9]{1,20}(:[1-9][0-9]{0,3})?", fullmatch=True))
def test_generated_origins_are_lower_cased(value: str) -> None:
    result = normalize_origin(value)
    assert result is not None
    assert result == result.lower()
    assert normalize_origin(result) == result
