"""The audit log: one JSON line per security event on stderr of a real ``serve.py``, with the
request's id and client, and never a password, token, hash or key.

The end-to-end test drives a real server through every audited event, then reads its whole
stderr; the smaller tests pin the event seam (a failing subscriber never fails a request),
the formatters (no line can be forged) and the ``LOG_FORMAT`` setting.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from jwtlite.service.audit import AuditLog, JSONFormatter, TextFormatter, key_rotated
from jwtlite.service.context import RequestContext, request_context
from jwtlite.service.errors import ConfigurationError
from jwtlite.service.events import Event, EventName, Events
from jwtlite.service.settings import Settings

from support import FAST_HASH_ENV, PASSWORD, Response, ServerProcess, http
from support.server import header

NEW_PASSWORD = "staple-Gun-quarter-19"
# Typed into the username field: it may be someone's password, so it must never be logged.
MISTYPED = "Tr0ub4dor-and-3-oops"
COMMON = ("time", "event", "user_id", "client", "session_id", "request_id")
RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
EVIL_ORIGIN = "http://evil.example"


def _post(url: str, path: str, body: Any, **headers: str) -> Response:
    return http("POST", f"{url}{path}", body, headers=headers)


def _login(url: str, username: str, password: str, **headers: str) -> Response:
    return _post(url, "/accounts/token/", {"username": username, "password": password}, **headers)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _drive(url: str) -> tuple[list[str], dict[str, str]]:
    """Cause every audited event once; return every token seen and the request ids of the
    answers whose events the test checks."""
    tokens: list[str] = []
    ids: dict[str, str] = {}

    def pair(response: Response) -> dict[str, str]:
        assert response.status == 200, response.body
        body: dict[str, str] = response.json()
        tokens.extend(body[name] for name in ("refresh", "access") if name in body)
        return body

    created = _post(
        url, "/accounts/register/", {"username": "alice", "password": PASSWORD},
        **{"X-Request-ID": "audit-test.1"},
    )  # fmt: skip
    assert created.status == 201
    ids["user.registered"] = header(created, "X-Request-ID")
    assert (
        _post(url, "/accounts/register/", {"username": "bob", "password": PASSWORD}).status == 201
    )
    failed = _login(url, "alice", NEW_PASSWORD)
    assert failed.status == 401
    ids["login.failed"] = header(failed, "X-Request-ID")
    assert _login(url, MISTYPED, PASSWORD).status == 401
    first = pair(_login(url, "alice", PASSWORD))
    pair(_post(url, "/accounts/token/refresh/", {"refresh": first["refresh"]}))
    reused = _post(url, "/accounts/token/refresh/", {"refresh": first["refresh"]})
    assert reused.status == 401
    ids["refresh.reuse_detected"] = header(reused, "X-Request-ID")
    third = pair(_login(url, "alice", PASSWORD))
    changed = http(
        "POST",
        f"{url}/accounts/password/",
        {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=_bearer(third["access"]),
    )
    fourth = pair(changed)
    assert _post(url, "/accounts/token/blacklist/", {"refresh": fourth["refresh"]}).status == 200
    fifth = pair(_login(url, "alice", NEW_PASSWORD))
    ended = http("POST", f"{url}/accounts/logout-all/", headers=_bearer(fifth["access"]))
    assert ended.status == 200
    refused = _login(url, "alice", NEW_PASSWORD, Origin=EVIL_ORIGIN)
    assert refused.status == 403
    ids["csrf.refused"] = header(refused, "X-Request-ID")
    statuses = [_login(url, "bob", NEW_PASSWORD).status for _ in range(3)]
    assert statuses == [401, 401, 429]
    return tokens, ids


@pytest.mark.slow
def test_a_real_server_writes_every_event_and_no_secret(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite3"
    env = {
        **FAST_HASH_ENV,
        "JWTLITE_ROTATE_REFRESH_TOKENS": "true",
        "JWTLITE_TOKEN_TRANSPORT": "both",  # tokens in bodies, and the login CSRF check
        "JWTLITE_COOKIE_SECURE": "false",
        "JWTLITE_LOGIN_MAX_FAILURES": "2",
    }
    with ServerProcess(database, env=env) as server:
        tokens, ids = _drive(server.url)
    output = server.stderr()
    lines = output.splitlines()
    records = [json.loads(line) for line in lines]  # every line is JSON, nothing else
    events: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if "event" in record:
            assert tuple(record)[: len(COMMON)] == COMMON, record
            assert RFC3339_MS.fullmatch(record["time"]), record
            assert record["client"] == "127.0.0.1"
            assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", record["request_id"])
            events.setdefault(record["event"], []).append(record)

    (registered, _) = events["user.registered"]
    assert registered["request_id"] == "audit-test.1" == ids["user.registered"]
    assert registered["user_id"] == 1
    failed = events["login.failed"]
    assert failed[0] | {"time": None} == {
        "time": None,
        "event": "login.failed",
        "user_id": 1,
        "client": "127.0.0.1",
        "session_id": None,
        "request_id": ids["login.failed"],
        "reason": "bad_password",
    }
    assert failed[1]["user_id"] is None
    assert failed[1]["reason"] == "unknown_user"
    assert [r["user_id"] for r in failed[2:]] == [2, 2]  # bob's two failures
    assert len(events["login.succeeded"]) == 3
    assert all(isinstance(r["session_id"], str) for r in events["login.succeeded"])
    (reuse,) = events["refresh.reuse_detected"]
    assert reuse["request_id"] == ids["refresh.reuse_detected"]
    assert reuse["family_revoked"] is True
    assert reuse["session_id"] == events["login.succeeded"][0]["session_id"]
    (changed,) = events["password.changed"]
    assert changed["user_id"] == 1
    assert changed["sessions_ended"] >= 1
    (logout,) = events["logout"]
    assert logout["session_id"] == changed["session_id"]  # the session the change started
    (ended,) = events["sessions.ended"]
    assert ended["reason"] == "logout_all"
    assert ended["sessions_ended"] >= 1
    (csrf,) = events["csrf.refused"]
    assert csrf["reason"] == "origin"
    assert csrf["request_id"] == ids["csrf.refused"]
    (throttled,) = events["login.throttled"]
    assert throttled["user_id"] is None

    with sqlite3.connect(database) as connection:
        hashes = [row[0] for row in connection.execute("SELECT password_hash FROM users")]
    key = (tmp_path / "db.key").read_text().strip()
    secrets = [PASSWORD, NEW_PASSWORD, MISTYPED, key, *tokens, *hashes]
    secrets += [part for token in tokens for part in token.split(".")[1:]]  # claims, signature
    secrets += [h.rsplit("$", 2)[-1] for h in hashes] + [h.rsplit("$", 2)[-2] for h in hashes]
    assert len(tokens) == 10
    assert len(hashes) == 2
    leaked = [secret[:12] for secret in secrets if secret in output]
    assert leaked == []


def _audit_events(output: str) -> dict[str, list[dict[str, Any]]]:
    events: dict[str, list[dict[str, Any]]] = {}
    for line in output.splitlines():
        record = json.loads(line)
        if "event" in record:
            events.setdefault(record["event"], []).append(record)
    return events


def _metric(text: str, series: str) -> float:
    (value,) = [
        line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(series + " ")
    ]
    return float(value)


@pytest.mark.slow
def test_password_checks_outside_a_login_are_audited_and_counted_as_logins(
    tmp_path: Path,
) -> None:
    """Audit L2: wrong passwords at POST /accounts/password/ and DELETE /accounts/me/, and
    throttled registrations, used to leave no audit line and no count."""
    env = {
        **FAST_HASH_ENV,
        "JWTLITE_METRICS": "true",
        "JWTLITE_ALLOW_ACCOUNT_DELETION": "true",
        "JWTLITE_REGISTRATION_MAX_PER_ADDRESS": "2",
    }
    with ServerProcess(tmp_path / "db.sqlite3", env=env) as server:
        url = server.url
        for name in ("alice", "bob"):
            assert (
                _post(url, "/accounts/register/", {"username": name, "password": PASSWORD}).status
                == 201
            )
        refused = _post(url, "/accounts/register/", {"username": "carol", "password": PASSWORD})
        assert refused.status == 429
        alice = _login(url, "alice", PASSWORD).json()
        wrong = {"old_password": NEW_PASSWORD, "new_password": NEW_PASSWORD + "!"}
        statuses = [
            http(
                "POST", f"{url}/accounts/password/", wrong, headers=_bearer(alice["access"])
            ).status
            for _ in range(7)
        ]
        assert statuses == [400] * 5 + [429] * 2
        bob = _login(url, "bob", PASSWORD).json()
        deleted = http(
            "DELETE",
            f"{url}/accounts/me/",
            {"password": NEW_PASSWORD},
            headers=_bearer(bob["access"]),
        )
        assert deleted.status == 400
        scraped = http("GET", f"{url}/metrics").body.decode()
    events = _audit_events(server.stderr())

    (registration,) = events["registration.throttled"]
    assert registration["request_id"] == header(refused, "X-Request-ID")
    assert registration["client"] == "127.0.0.1"
    failed = events["login.failed"]
    assert [(r["user_id"], r["reason"], r["action"]) for r in failed] == [
        *[(1, "bad_password", "password_change")] * 5,
        (2, "bad_password", "account_deletion"),
    ]
    alices_session = events["login.succeeded"][0]["session_id"]
    assert {r["session_id"] for r in failed[:5]} == {alices_session}
    throttled = events["login.throttled"]
    assert [(r["user_id"], r["session_id"], r["action"]) for r in throttled] == [
        (1, alices_session, "password_change")
    ] * 2
    assert _metric(scraped, 'jwtlite_logins_total{outcome="bad_credentials"}') == 6
    assert _metric(scraped, 'jwtlite_logins_total{outcome="throttled"}') == 2
    assert _metric(scraped, 'jwtlite_logins_total{outcome="ok"}') == 2
    assert _metric(scraped, "jwtlite_registrations_throttled_total") == 1
    assert _metric(scraped, "jwtlite_registrations_total") == 2
    assert PASSWORD not in server.stderr()
    assert NEW_PASSWORD not in server.stderr()


# -- the seam -----------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def notify(self, event: Event) -> None:
        self.events.append(event)


class Broken:
    def notify(self, event: Event) -> None:
        raise RuntimeError("disk full")


def test_events_carry_the_request_context_and_survive_a_broken_subscriber(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    events = Events([Broken(), recorder], clock=lambda: 1_800_000_000.25)
    token = request_context.set(RequestContext("req-1", "203.0.113.9"))
    try:
        with caplog.at_level(logging.ERROR, logger="jwtlite"):
            events.login_succeeded(7, "0123456789abcdef")
    finally:
        request_context.reset(token)
    events.logout(7, "0123456789abcdef")  # outside a request
    first, second = recorder.events
    assert (first.name, first.user_id, first.request_id, first.client) == (
        EventName.LOGIN_SUCCEEDED,
        7,
        "req-1",
        "203.0.113.9",
    )
    assert (second.request_id, second.client) == (None, None)
    assert "event subscriber" in caplog.text
    assert "disk full" in caplog.text


def test_no_subscriber_means_no_work() -> None:
    events = Events()
    assert not events.enabled
    events.login_failed(None, "unknown_user")  # nothing to call, nothing raised


def test_the_audit_log_writes_only_security_events_when_info_is_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = Events([AuditLog()], clock=lambda: 1_800_000_000.0)
    with caplog.at_level(logging.WARNING, logger="jwtlite.audit"):
        events.login_succeeded(1, "s")
    assert caplog.records == []  # filtered by level: one check, no document built
    with caplog.at_level(logging.INFO, logger="jwtlite.audit"):
        events.refreshed("ok")  # counted by metrics, not audited
        events.hashes_in_flight(1)
        events.login_succeeded(1, "s")
    (record,) = caplog.records
    assert record.name == "jwtlite.audit"
    assert record.getMessage() == "login.succeeded"
    assert record.audit == {  # type: ignore[attr-defined]
        "time": "2027-01-15T08:00:00.000Z",
        "event": "login.succeeded",
        "user_id": 1,
        "client": None,
        "session_id": "s",
        "request_id": None,
    }


def test_key_rotated_writes_its_event(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="jwtlite.audit"):
        key_rotated(kid="new-kid", previous_kid="old-kid")
    (record,) = caplog.records
    document = record.audit  # type: ignore[attr-defined]
    assert (document["event"], document["kid"], document["previous_kid"]) == (
        "key.rotated",
        "new-kid",
        "old-kid",
    )


# -- formats ------------------------------------------------------------------------------------

FORGERY = 'x\n{"event": "login.succeeded", "user_id": 1}\r\u2028'


def _record(message: str, audit: dict[str, Any] | None = None) -> logging.LogRecord:
    record = logging.LogRecord("jwtlite", logging.WARNING, __file__, 1, message, (), None)
    if audit is not None:
        record.audit = audit
    return record


@pytest.mark.parametrize("formatter", [JSONFormatter(), TextFormatter()], ids=["json", "text"])
def test_no_value_can_break_a_line(formatter: logging.Formatter) -> None:
    for record in (_record(FORGERY), _record("login.failed", {"event": "x", "reason": FORGERY})):
        line = formatter.format(record)
        assert "\n" not in line
        assert "\r" not in line
        assert "\u2028" not in line
        assert line.isascii()


def test_json_lines_of_other_records() -> None:
    document = json.loads(JSONFormatter().format(_record("store unavailable: disk")))
    assert (document["level"], document["logger"], document["message"]) == (
        "WARNING",
        "jwtlite",
        "store unavailable: disk",
    )


def test_text_lines_name_the_fields() -> None:
    line = TextFormatter().format(
        _record("login.failed", {"event": "login.failed", "user_id": 3, "reason": "bad"})
    )
    assert line.endswith('login.failed user_id=3 reason="bad"')


@pytest.mark.parametrize(("value", "expected"), [(" JSON ", "json"), ("Text", "text")])
def test_log_format_setting(value: str, expected: str) -> None:
    assert Settings.from_env({"JWTLITE_LOG_FORMAT": value}).log_format == expected


@pytest.mark.parametrize("value", ["xml", "", "jsonl"])
def test_unknown_log_format_is_refused_by_name(value: str) -> None:
    with pytest.raises(ConfigurationError, match="LOG_FORMAT"):
        Settings(log_format=value)
