"""The client address behind a trusted proxy (``client_address``), as each of its readers
sees it through a real app: the session list's ``address``, the audit log's ``client``, the
login throttle's buckets and the ``/metrics`` allowlist.

The forms proxies write (``ip:port``, ``[v6]``, ``[v6]:port``) name the client; a malformed
entry the walk from the right must read makes it ``unknown`` (fail closed), never the proxy
itself, which is loopback in a same-host set-up (audit L9); a zone id is malformed, so free
text never becomes an address (audit L11).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from jwtlite.web.resources import UNKNOWN_CLIENT

from support import PASSWORD, register
from support.sessions import sessions

PROXY = "127.0.0.1"
THROUGH_PROXY = {"REMOTE_ADDR": PROXY}
LOGIN = "/accounts/token/"
ZONE = "2001:db8::1%<script>" + "x" * 3000

FORMS = [
    ("203.0.113.9", "203.0.113.9"),
    ("203.0.113.9:443", "203.0.113.9"),
    (" 203.0.113.9:65535\t", "203.0.113.9"),
    ("2001:db8::1", "2001:db8::1"),
    ("[2001:db8::1]", "2001:db8::1"),
    ("[2001:DB8:0::1]:8443", "2001:db8::1"),
    ("::ffff:203.0.113.9", "203.0.113.9"),
    ("garbage, 198.51.100.1, 203.0.113.9", "203.0.113.9"),  # left of the client: unread
    ("203.0.113.9, 127.0.0.1", "203.0.113.9"),  # through the trusted proxy twice
    ("127.0.0.1", PROXY),  # trusted proxies only: the proxy host itself
    (None, PROXY),  # no header: the proxy host itself
    ("unknown", UNKNOWN_CLIENT),
    ("", UNKNOWN_CLIENT),
    ("203.0.113.9,", UNKNOWN_CLIENT),
    ("203.0.113.9, garbage", UNKNOWN_CLIENT),
    ("garbage, 127.0.0.1", UNKNOWN_CLIENT),
    ("203.0.113.9:", UNKNOWN_CLIENT),
    ("203.0.113.9:65536", UNKNOWN_CLIENT),
    ("203.0.113.9:http", UNKNOWN_CLIENT),
    ("203.0.113.9:4\u00b2", UNKNOWN_CLIENT),  # a superscript two is a digit to str.isdigit
    ("[203.0.113.9]", UNKNOWN_CLIENT),
    ("[2001:db8::1", UNKNOWN_CLIENT),
    ("[2001:db8::1]443", UNKNOWN_CLIENT),
    ("2001:db8::1:443:1:2:3:4:5", UNKNOWN_CLIENT),
    ("_hidden", UNKNOWN_CLIENT),  # RFC 7239 obfuscated identifier
    ("fe80::1%eth0", UNKNOWN_CLIENT),
    (ZONE, UNKNOWN_CLIENT),
    ("203.0.113.9\u00a0", UNKNOWN_CLIENT),
]
FORM_IDS = [
    "ipv4", "ipv4-port", "whitespace", "ipv6", "ipv6-brackets", "ipv6-brackets-port",
    "mapped", "chain", "through-proxy", "proxies-only", "no-header", "unknown", "empty",
    "trailing-comma", "garbage-last", "garbage-before-proxy", "empty-port", "port-too-big",
    "named-port", "unicode-digits", "bracketed-ipv4", "open-bracket", "no-colon",
    "too-many-groups", "obfuscated", "zone-id", "zone-id-script", "nbsp",
]  # fmt: skip


def _headers(forwarded: str | None) -> dict[str, str]:
    return {} if forwarded is None else {"X-Forwarded-For": forwarded}


def _login(client: Any, forwarded: str | None, password: str = PASSWORD) -> Any:
    return client.post_json(
        LOGIN,
        {"username": "alice", "password": password},
        headers=_headers(forwarded),
        extra_environ=THROUGH_PROXY,
        expect_errors=True,
    )


@pytest.mark.parametrize(("forwarded", "expected"), FORMS, ids=FORM_IDS)
def test_sessions_and_audit_name_the_parsed_client(
    make_client: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    forwarded: str | None,
    expected: str,
) -> None:
    client = make_client(trusted_proxies=(PROXY,))
    register(client)
    with caplog.at_level(logging.INFO, logger="jwtlite.audit"):
        pair = _login(client, forwarded).json
    (record,) = [r for r in caplog.records if r.getMessage() == "login.succeeded"]
    assert record.audit["client"] == expected  # type: ignore[attr-defined]
    assert sessions(client, pair["access"]).json[0]["address"] == expected


@pytest.mark.parametrize(
    ("trusted", "peer"),
    [("::ffff:127.0.0.1", "127.0.0.1"), ("127.0.0.1", "::ffff:127.0.0.1")],
    ids=["mapped-setting-ipv4-peer", "ipv4-setting-mapped-peer"],
)
def test_ipv4_mapped_proxy_matches_either_form(
    make_client: Callable[..., Any], caplog: pytest.LogCaptureFixture, trusted: str, peer: str
) -> None:
    # Re-audit N4: a proxy written IPv4-mapped must match the same host seen as IPv4.
    client = make_client(trusted_proxies=(trusted,))
    register(client)
    with caplog.at_level(logging.INFO, logger="jwtlite.audit"):
        client.post_json(
            LOGIN,
            {"username": "alice", "password": PASSWORD},
            headers=_headers("203.0.113.9"),
            extra_environ={"REMOTE_ADDR": peer},
        )
    (record,) = [r for r in caplog.records if r.getMessage() == "login.succeeded"]
    assert record.audit["client"] == "203.0.113.9"  # type: ignore[attr-defined]


def test_a_zone_id_never_reaches_the_session_list_or_the_log(
    make_client: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(trusted_proxies=(PROXY,))
    register(client)
    with caplog.at_level(logging.INFO, logger="jwtlite.audit"):
        pair = _login(client, ZONE).json
    listed = sessions(client, pair["access"]).text
    assert "script" not in listed
    assert "script" not in caplog.text
    assert "xxx" not in listed


def test_the_peer_is_canonical_text(make_client: Callable[..., Any]) -> None:
    client = make_client()
    register(client)
    for peer, expected in [
        ("2001:0DB8:0000::0001", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("fe80::1%eth0", "fe80::1"),  # the OS's interface name, not the client's text
        ("/run/jwtlite.sock", UNKNOWN_CLIENT),
    ]:
        pair = client.post_json(
            LOGIN, {"username": "alice", "password": PASSWORD}, extra_environ={"REMOTE_ADDR": peer}
        ).json
        (current,) = [s for s in sessions(client, pair["access"]).json if s["current"]]
        assert current["address"] == expected, peer


def test_every_form_of_one_client_shares_its_throttle_bucket(
    make_client: Callable[..., Any],
) -> None:
    client = make_client(trusted_proxies=(PROXY,), login_max_failures_per_address=3)
    register(client)
    for form in ("203.0.113.9", "203.0.113.9:443", "203.0.113.9:51000"):
        assert _login(client, form, password="wrong").status_int == 401
    assert _login(client, "203.0.113.9:1234").status_int == 429
    assert _login(client, "203.0.113.10:1234").status_int == 200  # another client


def test_malformed_chains_share_the_unknown_bucket_not_the_proxys(
    make_client: Callable[..., Any],
) -> None:
    client = make_client(trusted_proxies=(PROXY,), login_max_failures_per_address=3)
    register(client)
    for form in ("unknown", "203.0.113.9,", "203.0.113.9, garbage"):
        assert _login(client, form, password="wrong").status_int == 401
    assert _login(client, "[2001:db8::1").status_int == 429  # "unknown" again
    assert _login(client, None).status_int == 200  # the proxy host itself: its own bucket


@pytest.mark.parametrize(("forwarded", "expected"), FORMS, ids=FORM_IDS)
def test_metrics_allowlist_sees_the_parsed_client(
    make_client: Callable[..., Any], forwarded: str | None, expected: str
) -> None:
    client = make_client(metrics=True, trusted_proxies=(PROXY,))  # METRICS_ALLOWED: loopback
    status = 200 if expected == PROXY else 404
    client.get("/metrics", headers=_headers(forwarded), extra_environ=THROUGH_PROXY, status=status)


@pytest.mark.parametrize(
    "forwarded", ["127.0.0.5:9000", "[::1]:9000", "[::1]"], ids=["ipv4-port", "v6-port", "v6"]
)
def test_a_loopback_client_with_a_port_is_allowed(
    make_client: Callable[..., Any], forwarded: str
) -> None:
    client = make_client(metrics=True, trusted_proxies=(PROXY,))
    client.get("/metrics", headers=_headers(forwarded), extra_environ=THROUGH_PROXY, status=200)
