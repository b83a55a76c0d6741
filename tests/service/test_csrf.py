"""Tests for jwtlite.service.csrf and the service's CSRF calls: values bound to one token by a
keyed MAC, checked in constant time, refused when missing, wrong or borrowed."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from pathlib import Path
from typing import Any

import pytest

from jwtlite import Key
from jwtlite._encoding import b64url_encode
from jwtlite.errors import (
    ExpiredTokenError,
    InvalidSignatureError,
)
from jwtlite.service.auth import AuthService
from jwtlite.service.csrf import CSRF_MISSING, CSRF_WRONG, CSRFKey, IssuedToken
from jwtlite.service.errors import CSRFError
from jwtlite.service.settings import Settings
from jwtlite.store.sqlite import SQLiteStore

from support import FAST_HASH, PASSWORD, FakeClock
from support.contract import claims

MATERIAL = b"k" * 32
JTI = "0123456789abcdef0123456789abcdef"
OTHER_JTI = "fedcba9876543210fedcba9876543210"
B64URL_43 = re.compile(r"[A-Za-z0-9_-]{43}").fullmatch


# -- the MAC ----------------------------------------------------------------------------------


def test_value_is_hmac_sha256_over_a_labelled_message() -> None:
    key = hmac.digest(MATERIAL, b"jwtlite csrf key v1", hashlib.sha256)
    message = b"jwtlite csrf value v1\x00access\x00" + JTI.encode()
    expected = b64url_encode(hmac.digest(key, message, hashlib.sha256)).decode()
    assert CSRFKey(MATERIAL).value(token_type="access", jti=JTI) == expected


def test_value_is_43_characters_of_base64url() -> None:
    value = CSRFKey(MATERIAL).value(token_type="refresh", jti=JTI)
    assert B64URL_43(value), value


def test_value_is_deterministic_across_instances() -> None:
    # Every instance sharing the signing key computes the same value: nothing is stored.
    first = CSRFKey(MATERIAL).value(token_type="access", jti=JTI)
    assert CSRFKey(MATERIAL).value(token_type="access", jti=JTI) == first


@pytest.mark.parametrize(
    ("token_type", "jti", "material"),
    [
        ("refresh", JTI, MATERIAL),
        ("access", OTHER_JTI, MATERIAL),
        ("access", JTI, b"j" * 32),
    ],
    ids=["other-type", "other-jti", "other-key"],
)
def test_value_depends_on_type_jti_and_key(token_type: str, jti: str, material: bytes) -> None:
    reference = CSRFKey(MATERIAL).value(token_type="access", jti=JTI)
    assert CSRFKey(material).value(token_type=token_type, jti=jti) != reference


def test_value_is_not_the_throttle_pepper() -> None:
    # The same key material keys the throttle's username hash, under another label.
    throttle_key = hmac.digest(MATERIAL, b"jwtlite throttle subject", hashlib.sha256)
    csrf_key = hmac.digest(MATERIAL, b"jwtlite csrf key v1", hashlib.sha256)
    assert throttle_key != csrf_key


def test_check_accepts_the_value() -> None:
    key = CSRFKey(MATERIAL)
    key.check(key.value(token_type="access", jti=JTI), token_type="access", jti=JTI)


@pytest.mark.parametrize(
    ("presented", "message"),
    [
        (None, CSRF_MISSING),
        ("", CSRF_MISSING),
        ("x" * 43, CSRF_WRONG),
        ("value-of-the-other-type", CSRF_WRONG),
        ("value-of-another-session", CSRF_WRONG),
        ("right-value-plus-one", CSRF_WRONG),
        ("right-value-truncated", CSRF_WRONG),
        ("right-value-upper-case", CSRF_WRONG),
        ("é" * 43, CSRF_WRONG),
        ("\udcff" * 43, CSRF_WRONG),
    ],
    ids=[
        "missing",
        "empty",
        "wrong",
        "swapped-type",
        "other-session",
        "extended",
        "truncated",
        "case-changed",
        "non-ascii",
        "lone-surrogate",
    ],
)
def test_check_refuses(presented: str | None, message: str) -> None:
    key = CSRFKey(MATERIAL)
    right = key.value(token_type="access", jti=JTI)
    presented = {
        "value-of-the-other-type": key.value(token_type="refresh", jti=JTI),
        "value-of-another-session": key.value(token_type="access", jti=OTHER_JTI),
        "right-value-plus-one": right + "A",
        "right-value-truncated": right[:-1],
        "right-value-upper-case": right.upper(),
    }.get(presented or "", presented)
    with pytest.raises(CSRFError, match=f"^{re.escape(message)}$"):
        key.check(presented, token_type="access", jti=JTI)


def test_check_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr("jwtlite.service.csrf.hmac.compare_digest", spy)
    key = CSRFKey(MATERIAL)
    key.check(key.value(token_type="access", jti=JTI), token_type="access", jti=JTI)
    assert len(seen) == 1
    assert all(isinstance(side, bytes) for side in seen[0])


# -- the service: describe and check the tokens it issued -------------------------------------


@pytest.fixture
def service(tmp_path: Path, clock: FakeClock) -> Any:
    settings = Settings(database=str(tmp_path / "db.sqlite3"), **FAST_HASH)
    store = SQLiteStore(settings.database)
    service = AuthService.from_settings(settings, store=store, clock=clock)
    service.register({"username": "alice", "password": PASSWORD}, address=None)
    yield service
    store.close()


def _pair(service: Any) -> dict[str, str]:
    tokens: dict[str, str] = service.login(
        {"username": "alice", "password": PASSWORD}, address="127.0.0.1"
    )
    return tokens


@pytest.mark.parametrize("kind", ["access", "refresh"])
def test_describe_an_issued_token(service: Any, clock: FakeClock, kind: str) -> None:
    token = _pair(service)[kind]
    issued = service.describe(token)
    lifetime = {"access": 10, "refresh": 30}[kind]
    assert isinstance(issued, IssuedToken)
    assert issued.token == token
    assert issued.token_type == kind
    assert issued.expires_at == int(clock.now) + lifetime
    assert issued.lifetime == lifetime
    assert B64URL_43(issued.csrf)


def test_describe_keys_the_csrf_value_from_the_signing_key(service: Any) -> None:
    issued = service.describe(_pair(service)["access"])
    jti = claims(issued.token)["jti"]
    assert issued.csrf == CSRFKey(service.keys.secret()).value(token_type="access", jti=jti)


def test_the_two_tokens_of_a_login_have_different_values(service: Any) -> None:
    pair = _pair(service)
    assert service.describe(pair["access"]).csrf != service.describe(pair["refresh"]).csrf


def test_check_csrf_accepts_the_tokens_own_value(service: Any) -> None:
    pair = _pair(service)
    for token in pair.values():
        service.check_csrf(token, service.describe(token).csrf)


def test_check_csrf_refuses_a_value_of_another_session(service: Any) -> None:
    first, second = _pair(service), _pair(service)
    with pytest.raises(CSRFError, match=re.escape(CSRF_WRONG)):
        service.check_csrf(first["access"], service.describe(second["access"]).csrf)


def test_check_csrf_refuses_the_swapped_value(service: Any) -> None:
    pair = _pair(service)
    with pytest.raises(CSRFError, match=re.escape(CSRF_WRONG)):
        service.check_csrf(pair["refresh"], service.describe(pair["access"]).csrf)


def test_check_csrf_refuses_a_missing_value_before_decoding(service: Any) -> None:
    # Not even a token: the missing value is what the client hears.
    with pytest.raises(CSRFError, match=re.escape(CSRF_MISSING)):
        service.check_csrf("not.a.token", None)


def test_check_csrf_refuses_an_invalid_token_as_a_token_problem(service: Any) -> None:
    token = _pair(service)["access"]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(InvalidSignatureError):
        service.check_csrf(forged, service.describe(token).csrf)


def test_check_csrf_refuses_an_expired_token(service: Any, clock: FakeClock) -> None:
    token = _pair(service)["access"]
    value = service.describe(token).csrf
    clock.advance(10)
    with pytest.raises(ExpiredTokenError):
        service.check_csrf(token, value)


def test_values_differ_between_deployments() -> None:
    # Another signing key (another deployment) gives another value for the same jti.
    one = CSRFKey(Key(secrets.token_bytes(32), "HS256").secret())
    two = CSRFKey(Key(secrets.token_bytes(32), "HS256").secret())
    assert one.value(token_type="access", jti=JTI) != two.value(token_type="access", jti=JTI)
