"""``JWKSClient`` against a real loopback HTTP server serving JWKS documents we control.

Hostile or broken issuers (slow, dripping, huge, redirecting, failing, unparsable, publishing
secrets or keys this library cannot use) and the cache rules (one background fetch at a time
shared by its waiters, a cooldown counted from the end of an attempt, cached keys kept when a
refetch fails) are each shown by counting the requests the server saw. ``RawServer`` sends
the answers ``http.server`` cannot (audit findings F1, F3). Timing assertions are generous
bounds that only show "no hang".
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import jwtlite
from jwtlite import InvalidKeyError, JWKSClient, JWKSFetchError, Key, KeySet, KeySource
from jwtlite._jwk import public_members

from support import FakeClock
from support.jwks import JWKSServer, RawServer, black_holed_port, raw_answer, self_signed_tls

CLAIMS = {"sub": "42", "exp": 4_102_444_800}
ES256 = Key.generate("ES256", kid="es-1")
ED25519 = Key.generate("Ed25519", kid="ed-1")
# The point of this key is to be too weak: a JWKS publishing it must be refused.
WEAK_RSA = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505


@pytest.fixture
def server() -> Iterator[JWKSServer]:
    jwks_server = JWKSServer()
    jwks_server.serve_jwks(KeySet([ES256, ED25519]).jwks())
    yield jwks_server
    jwks_server.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def client_for(server: JWKSServer, clock: FakeClock, **options: Any) -> JWKSClient:
    options = {"timeout": 2.0, **options}
    return JWKSClient(server.url, clock=clock, **options)


def token(key: Key = ES256) -> str:
    return jwtlite.encode(CLAIMS, key)


# -- fetching and caching ---------------------------------------------------------------------


def test_decode_with_a_client_fetches_once_then_uses_the_cache(
    server: JWKSServer, clock: FakeClock
) -> None:
    client = client_for(server, clock)
    for _ in range(5):
        assert jwtlite.decode(token(), client, ["ES256"]) == CLAIMS
        assert jwtlite.decode(token(ED25519), client, ["Ed25519"]) == CLAIMS
    assert server.requests == 1
    assert server.paths == ["/.well-known/jwks.json"]


def test_a_token_without_kid_is_refused(server: JWKSServer, clock: FakeClock) -> None:
    bare = Key(ES256.private_pem(), "ES256")  # no kid
    with pytest.raises(InvalidKeyError, match="kid"):
        jwtlite.decode(jwtlite.encode(CLAIMS, bare), client_for(server, clock), ["ES256"])
    assert server.requests == 0


def test_unknown_kids_refetch_at_most_once_per_cooldown(
    server: JWKSServer, clock: FakeClock
) -> None:
    client = client_for(server, clock, refetch_cooldown=30.0)
    client.key_for("es-1")
    with pytest.raises(InvalidKeyError):
        client.key_for("unknown")  # the first fetch was just now: no refetch yet
    assert server.requests == 1
    clock.advance(30)
    for _ in range(50):  # an attacker's random kids
        with pytest.raises(InvalidKeyError):
            client.key_for(secrets.token_hex(8))
    assert server.requests == 2  # the first fetch, and one refetch for the first random kid
    clock.advance(30)
    with pytest.raises(InvalidKeyError):
        client.key_for("still-unknown")
    assert server.requests == 3


def test_a_new_kid_after_a_rotation_is_found_by_a_refetch(
    server: JWKSServer, clock: FakeClock
) -> None:
    client = client_for(server, clock, refetch_cooldown=1.0)
    assert jwtlite.decode(token(), client, ["ES256"]) == CLAIMS
    rotated = Key.generate("ES256", kid="es-2")
    server.serve_jwks(KeySet([rotated, ES256]).jwks())
    clock.advance(1)
    assert jwtlite.decode(token(rotated), client, ["ES256"]) == CLAIMS
    assert server.requests == 2


def test_concurrent_callers_with_an_unknown_kid_share_one_fetch(
    server: JWKSServer, clock: FakeClock
) -> None:
    client = client_for(server, clock, max_waiters=16)
    client.key_for("es-1")
    clock.advance(10)  # the cooldown since the first fetch
    rotated = Key.generate("ES256", kid="es-2")
    server.serve_jwks(KeySet([rotated, ES256]).jwks())
    server.delay = 0.3  # the refetch is slow: every caller arrives while it runs
    start = threading.Barrier(16)

    def verify(_: int) -> dict[str, Any]:
        start.wait(5)
        return jwtlite.decode(token(rotated), client, ["ES256"])

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(verify, range(16)))
    assert results == [CLAIMS] * 16
    assert server.requests == 2


def test_callers_waiting_for_a_slow_fetch_share_it(server: JWKSServer) -> None:
    # Audit F4: with the cooldown counted from the START of a fetch, a fetch slower than the
    # cooldown let every queued unknown-kid caller fetch again in turn.
    client = JWKSClient(server.url, timeout=5.0, refetch_cooldown=1.0, max_waiters=4)
    client.key_for("es-1")
    time.sleep(1.1)
    server.delay = 1.5
    start = threading.Barrier(4)

    def unknown(_: int) -> type[Exception]:
        start.wait(5)
        with pytest.raises(InvalidKeyError) as info:
            client.key_for(secrets.token_hex(8))
        return info.type

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(unknown, range(4))) == [InvalidKeyError] * 4
    assert server.requests == 2  # the first fetch and ONE refetch, shared by the four


def test_a_cached_key_never_waits_for_a_fetch(server: JWKSServer, clock: FakeClock) -> None:
    client = client_for(server, clock, timeout=5.0, lifetime=60.0)
    client.key_for("es-1")
    clock.advance(61)  # stale
    server.delay = 3.0
    started = time.monotonic()
    assert client.key_for("es-1").kid == "es-1"  # the stale key, at once
    assert time.monotonic() - started < 1.5  # generous: the refresh takes 3 s
    with pytest.raises(InvalidKeyError):
        client.key_for("unknown")  # waits for the refresh in flight, does not start another
    assert client.key_for("ed-1").kid == "ed-1"
    assert server.requests == 2


def test_unknown_kids_beyond_max_waiters_are_told_to_try_later_at_once(
    server: JWKSServer,
) -> None:
    """The third outside attack: 8 random-kid tokens parked every worker thread on a 4 s
    fetch, so a token whose key was cached waited 3.5 s. Now at most ``max_waiters`` wait."""
    client = JWKSClient(server.url, timeout=5.0, refetch_cooldown=1.0, max_waiters=2)
    client.key_for("es-1")
    time.sleep(1.1)
    server.delay = 2.0
    start = threading.Barrier(8)

    def unknown(_: int) -> tuple[str, float]:
        start.wait(5)
        began = time.monotonic()
        try:
            client.key_for(secrets.token_hex(8))
        except (InvalidKeyError, JWKSFetchError) as exc:
            return type(exc).__name__, time.monotonic() - began
        return "found", time.monotonic() - began

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(unknown, range(8)))
    waited = [took for name, took in outcomes if name == "InvalidKeyError"]
    refused = [took for name, took in outcomes if name == "JWKSFetchError"]
    assert len(waited) == 2, outcomes  # they waited for the fetch and found no such key
    assert min(waited) > 1.5
    assert len(refused) == 6, outcomes
    assert max(refused) < 0.5  # "try later" at once, no thread held
    assert server.requests == 2


def test_max_waiters_must_be_a_positive_whole_number() -> None:
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="max_waiters"):
            JWKSClient("https://issuer.example/jwks.json", max_waiters=bad)  # type: ignore[arg-type]


def test_a_black_holed_issuer_costs_one_timeout_for_all_waiting_callers(
    raw: RawServer,
) -> None:
    raw.respond = lambda conn: raw.stop.wait(30)  # accepts, reads, never answers
    # The audit's case: a cooldown shorter than the timeout; each queued caller used to
    # fetch again in turn (4, 8, ... 24 s with timeout=4, refetch_cooldown=3).
    client = JWKSClient(raw.url, timeout=1.5, refetch_cooldown=1.0)
    start = threading.Barrier(6)

    def verify(_: int) -> float:
        start.wait(5)
        began = time.monotonic()
        with pytest.raises(JWKSFetchError):
            client.key_for("es-1")
        return time.monotonic() - began

    with ThreadPoolExecutor(6) as pool:
        waited = list(pool.map(verify, range(6)))
    assert max(waited) < 4  # one shared timeout (plus margin), not 1.5, 3, ... 9 s
    assert raw.requests == 1


def test_a_key_removed_by_a_refresh_is_refused_once_it_ends(
    server: JWKSServer, clock: FakeClock
) -> None:
    # Audit F7: the caller that refreshed returned the removed key ("cache.get(kid) or key").
    client = client_for(server, clock, lifetime=60.0)
    client.key_for("ed-1")
    server.serve_jwks(KeySet([ES256]).jwks())  # the issuer drops ed-1
    clock.advance(61)
    client.key_for("es-1")  # stale: starts the refresh
    assert client.wait_for_refresh(5)
    with pytest.raises(InvalidKeyError):
        client.key_for("ed-1")
    with pytest.raises(InvalidKeyError):
        jwtlite.decode(token(ED25519), client, ["Ed25519"])


def test_max_age_sets_the_lifetime_within_bounds(server: JWKSServer, clock: FakeClock) -> None:
    server.serve_jwks(KeySet([ES256]).jwks(), **{"Cache-Control": "public, max-age=1000"})
    client = client_for(server, clock, refetch_cooldown=10.0, lifetime=60.0)
    client.key_for("es-1")
    clock.advance(999)
    client.key_for("es-1")
    assert server.requests == 1
    clock.advance(2)
    client.key_for("es-1")  # stale: served, and refreshed in the background
    assert client.wait_for_refresh(5)
    assert server.requests == 2


@pytest.mark.parametrize(
    ("cache_control", "fresh_for"),
    [
        ("max-age=999999999", 500.0),  # capped by max_lifetime
        ("max-age=1", 10.0),  # raised to the cooldown
        ("no-store", 10.0),
        ("max-age=abc", 60.0),  # unreadable: the default lifetime
        ("", 60.0),
    ],
    ids=["huge", "tiny", "no-store", "unreadable", "absent"],
)
def test_cache_lifetime_bounds(
    server: JWKSServer, clock: FakeClock, cache_control: str, fresh_for: float
) -> None:
    headers = {"Cache-Control": cache_control} if cache_control else {}
    server.serve_jwks(KeySet([ES256]).jwks(), **headers)
    client = client_for(server, clock, refetch_cooldown=10.0, lifetime=60.0, max_lifetime=500.0)
    client.key_for("es-1")
    clock.advance(fresh_for - 0.5)
    client.key_for("es-1")
    assert server.requests == 1
    clock.advance(1)
    client.key_for("es-1")
    assert client.wait_for_refresh(5)
    assert server.requests == 2


# -- failures ---------------------------------------------------------------------------------


def test_a_failed_refetch_keeps_serving_the_cached_keys(
    server: JWKSServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    client = client_for(server, clock, lifetime=60.0, refetch_cooldown=30.0)
    good = token()
    assert jwtlite.decode(good, client, ["ES256"]) == CLAIMS
    server.status, server.body = 500, b"oops"
    clock.advance(61)
    with caplog.at_level(logging.WARNING, logger="jwtlite.jwks"):
        assert jwtlite.decode(good, client, ["ES256"]) == CLAIMS
        assert client.wait_for_refresh(5)
        with pytest.raises(JWKSFetchError):
            client.key_for("unknown")  # within the cooldown: no fetch, and "cannot tell"
    assert server.requests == 2
    assert "HTTP 500" in caplog.text
    assert "keeping the cached keys" in caplog.text
    assert good not in caplog.text
    clock.advance(31)
    assert jwtlite.decode(good, client, ["ES256"]) == CLAIMS
    assert client.wait_for_refresh(5)
    assert server.requests == 3


def test_no_cache_and_a_failing_server_is_a_fetch_error_without_a_storm(
    server: JWKSServer, clock: FakeClock
) -> None:
    server.status = 503
    client = client_for(server, clock, refetch_cooldown=30.0)
    for _ in range(10):
        with pytest.raises(JWKSFetchError) as info:
            jwtlite.decode(token(), client, ["ES256"])
    assert info.value.url == server.url
    assert isinstance(info.value, jwtlite.JWTError)
    assert server.requests == 1
    server.serve_jwks(KeySet([ES256]).jwks())
    clock.advance(31)
    assert jwtlite.decode(token(), client, ["ES256"]) == CLAIMS


def test_a_slow_server_times_out(server: JWKSServer, clock: FakeClock) -> None:
    server.delay = 5.0
    client = client_for(server, clock, timeout=0.3)
    with pytest.raises(JWKSFetchError, match=r"TimeoutError|took more than"):
        client.key_for("es-1")


def test_a_closed_port_is_a_fetch_error(clock: FakeClock) -> None:
    closed = JWKSServer()
    url = closed.url
    closed.close()
    with pytest.raises(JWKSFetchError):
        JWKSClient(url, clock=clock, timeout=1.0).key_for("es-1")


@pytest.mark.parametrize("send_length", [True, False], ids=["content-length", "until-close"])
def test_an_oversized_body_is_refused(
    server: JWKSServer, clock: FakeClock, send_length: bool
) -> None:
    server.body = b'{"keys": [' + b" " * (4 * 1024 * 1024) + b"]}"
    server.send_length = send_length
    with pytest.raises(JWKSFetchError, match="larger than 65536"):
        client_for(server, clock, max_size=65536).key_for("es-1")


def test_an_endless_body_is_cut_off_while_reading(server: JWKSServer, clock: FakeClock) -> None:
    server.body = b'{"keys": ['
    server.send_length = False
    server.endless = True
    with pytest.raises(JWKSFetchError, match="larger than 65536"):
        client_for(server, clock, max_size=65536).key_for("es-1")
    assert server.sent < 256 * 1024 * 1024  # the client hung up long before the end


def test_a_dripping_body_meets_the_whole_body_deadline(
    server: JWKSServer, clock: FakeClock
) -> None:
    server.body = b'{"keys": ['
    server.send_length = False
    server.endless = True
    server.drip = 0.05  # every read gets a byte well within the timeout
    with pytest.raises(JWKSFetchError, match="took more than"):
        client_for(server, clock, timeout=0.5).key_for("es-1")


def test_redirects_are_not_followed(server: JWKSServer, clock: FakeClock) -> None:
    server.status = 302
    server.headers = {"Location": server.url + "?elsewhere"}
    with pytest.raises(JWKSFetchError, match="HTTP 302"):
        client_for(server, clock).key_for("es-1")
    assert server.requests == 1


RSA_JWK = {**public_members(rsa.generate_private_key(65537, 2048).public_key()), "alg": "RS256"}
HOSTILE_DOCUMENTS = {
    "hmac-key": {"keys": [{"kty": "oct", "k": "c2VjcmV0" * 8, "alg": "HS256", "kid": "h"}]},
    "hmac-beside-a-good-key": {"keys": [ES256.public_jwk(), {"kty": "oct", "k": "AAAA"}]},
    "weak-rsa": {"keys": [{**public_members(WEAK_RSA), "alg": "RS256", "kid": "weak"}]},
    "no-keys-member": {"keys_": []},
    "keys-not-a-list": {"keys": {"kty": "EC"}},
    "only-encryption-keys": {"keys": [{**ES256.public_jwk(), "use": "enc"}]},
    "private-member-d": {"keys": [ES256.public_jwk(), {**ED25519.public_jwk(), "d": "AAAA"}]},
    "private-rsa-prime": {"keys": [ES256.public_jwk(), {**RSA_JWK, "kid": "r", "p": "AQAB"}]},
    "duplicate-kid": {"keys": [ES256.public_jwk(), {**ED25519.public_jwk(), "kid": "es-1"}]},
    "entry-not-an-object": {"keys": [ES256.public_jwk(), "EC"]},
}


@pytest.mark.parametrize("document", HOSTILE_DOCUMENTS.values(), ids=HOSTILE_DOCUMENTS.keys())
def test_documents_the_library_refuses_are_fetch_errors(
    server: JWKSServer, clock: FakeClock, document: Any
) -> None:
    server.serve_jwks(document)
    with pytest.raises(JWKSFetchError):
        client_for(server, clock).key_for("h")


def test_a_bad_refetch_keeps_the_good_keys(server: JWKSServer, clock: FakeClock) -> None:
    client = client_for(server, clock, refetch_cooldown=1.0)
    client.key_for("es-1")
    server.serve_jwks(HOSTILE_DOCUMENTS["hmac-key"])
    clock.advance(1)
    with pytest.raises(JWKSFetchError, match="oct"):
        client.key_for("h")  # the HMAC key is never usable
    assert client.key_for("es-1").algorithm == "ES256"
    server.serve_jwks(KeySet([ES256]).jwks())
    clock.advance(1)
    with pytest.raises(InvalidKeyError):
        client.key_for("h")  # a good fetch again: now simply unknown


def _ec_jwk(kid: str, **members: str) -> dict[str, str]:
    jwk = {**Key.generate("ES256", kid=kid).public_jwk(), **members}
    jwk.pop("use", None)
    return jwk


# Members an issuer may publish beside its signing keys, which this library cannot use (audit
# F8): each is skipped, the rest of the set still serves.
UNUSABLE_MEMBERS = {
    "ecdh-es-without-use": _ec_jwk("enc-1", alg="ECDH-ES"),
    "ecdh-es-a256kw": _ec_jwk("enc-2", alg="ECDH-ES+A256KW"),
    "rsa-oaep-without-use": {**RSA_JWK, "alg": "RSA-OAEP", "kid": "enc-3"},
    "alg-none": _ec_jwk("none-1", alg="none"),
    "alg-not-a-string": _ec_jwk("bad-alg", alg=7),  # type: ignore[arg-type]
    "weak-rsa": {**public_members(WEAK_RSA), "alg": "RS256", "kid": "weak"},
    "rsa-without-alg": {**{k: v for k, v in RSA_JWK.items() if k != "alg"}, "kid": "no-alg"},
    "x25519": {"kty": "OKP", "crv": "X25519", "x": "AQID" * 10 + "AQ", "kid": "x25519"},
    "secp256k1": {**_ec_jwk("k1"), "crv": "secp256k1", "alg": "ES256K"},
    "kty-akp": {"kty": "AKP", "alg": "ML-DSA-44", "pub": "AAAA", "kid": "pq-1"},
    "no-kid": {k: v for k, v in _ec_jwk("x").items() if k != "kid"},
    "kid-not-a-string": {**_ec_jwk("x"), "kid": 5},
    "bad-base64": {**_ec_jwk("b64"), "x": "not base64!"},
    "use-enc": {**ED25519.public_jwk(), "use": "enc", "kid": "ed-enc"},
    # Re-audit N5: a null member is malformed, not absent; a published key that may not
    # verify would load and then refuse every token.
    "alg-null": _ec_jwk("alg-null", alg=None),  # type: ignore[arg-type]
    "use-null": {**_ec_jwk("use-null"), "use": None},
    "key-ops-sign-only": {**_ec_jwk("sign-only"), "key_ops": ["sign"]},
}


@pytest.mark.parametrize("member", UNUSABLE_MEMBERS.values(), ids=UNUSABLE_MEMBERS.keys())
def test_a_member_the_library_cannot_use_is_skipped_with_a_warning(
    server: JWKSServer, clock: FakeClock, caplog: pytest.LogCaptureFixture, member: Any
) -> None:
    server.serve_jwks({"keys": [ES256.public_jwk(), member]})
    client = client_for(server, clock)
    with caplog.at_level(logging.WARNING, logger="jwtlite.jwks"):
        assert jwtlite.decode(token(), client, ["ES256"]) == CLAIMS
        kid = member.get("kid")
        if isinstance(kid, str):
            with pytest.raises(InvalidKeyError):
                client.key_for(kid)
    warnings = [r for r in caplog.records if "skipped 1 key" in r.getMessage()]
    assert len(warnings) == 1
    for name in ("x", "n", "pub"):
        if isinstance(member.get(name), str) and len(member[name]) > 8:
            assert member[name] not in caplog.text  # never key material


def _junk_members(count: int) -> list[dict[str, str]]:
    return [
        {"kty": "EC", "crv": "P-256", "kid": f"junk-{i:04}", "x": "A", "y": "A"}
        for i in range(count)
    ]


def test_the_skip_warning_names_only_the_first_few_keys(
    server: JWKSServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # Re-audit N4: 2,400 junk keys made one 206 KB warning per fetch.
    server.serve_jwks({"keys": [ES256.public_jwk(), *_junk_members(2400)]})
    client = client_for(server, clock)
    with caplog.at_level(logging.WARNING, logger="jwtlite.jwks"):
        assert jwtlite.decode(token(), client, ["ES256"]) == CLAIMS
    (warning,) = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert "skipped 2400 key(s)" in warning
    assert "junk-0004" in warning
    assert "junk-0005" not in warning
    assert warning.endswith("and 2395 more")
    assert len(warning) < 2000


def test_a_set_of_only_junk_is_refused_with_a_short_reason(
    server: JWKSServer, clock: FakeClock
) -> None:
    server.serve_jwks({"keys": _junk_members(2400)})
    client = client_for(server, clock)
    with pytest.raises(JWKSFetchError, match="and 2395 more") as caught:
        client.key_for("junk-0000")
    assert len(str(caught.value)) < 2000


def test_a_set_gaining_an_unknown_alg_keeps_serving_after_the_refresh(
    server: JWKSServer, clock: FakeClock
) -> None:
    # Audit F2: an encryption key without use, alg ECDH-ES, made every request 401 once the
    # cache went stale, and every request refetch.
    client = client_for(server, clock, lifetime=60.0, refetch_cooldown=10.0)
    good = token()
    assert jwtlite.decode(good, client, ["ES256"]) == CLAIMS
    server.serve_jwks({"keys": [ES256.public_jwk(), UNUSABLE_MEMBERS["ecdh-es-without-use"]]})
    clock.advance(61)
    for _ in range(5):
        assert jwtlite.decode(good, client, ["ES256"]) == CLAIMS
    client.wait_for_refresh(5)
    for _ in range(5):
        assert jwtlite.decode(good, client, ["ES256"]) == CLAIMS
    assert server.requests == 2


def test_algorithm_only_fills_in_a_missing_alg(server: JWKSServer, clock: FakeClock) -> None:
    # An EdDSA -> Ed25519 migration: the set says Ed25519; algorithm="EdDSA" must not refuse it.
    bare = dict(Key.generate("EdDSA", kid="ed-old").public_jwk())
    bare.pop("alg")
    server.serve_jwks({"keys": [ED25519.public_jwk(), bare]})
    client = client_for(server, clock, algorithm="EdDSA")
    assert client.key_for("ed-1").algorithm == "Ed25519"
    assert client.key_for("ed-old").algorithm == "EdDSA"


def test_keys_for_other_uses_are_skipped(server: JWKSServer, clock: FakeClock) -> None:
    server.serve_jwks({"keys": [ES256.public_jwk(), {**ED25519.public_jwk(), "use": "enc"}]})
    client = client_for(server, clock)
    assert client.key_for("es-1").algorithm == "ES256"
    with pytest.raises(InvalidKeyError):
        client.key_for("ed-1")


BAD_BODIES = {
    "duplicate-member": b'{"keys": [], "keys": []}',
    "not-json": b"<html>hello</html>",
    "nan": b'{"keys": [], "x": NaN}',
    "bom": b'\xef\xbb\xbf{"keys": []}',
    "not-utf8": b'{"keys": [], "x": "\xff"}',
    "empty": b"",
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bodies_that_are_not_strict_json_are_refused(
    server: JWKSServer, clock: FakeClock, body: bytes
) -> None:
    server.body = body
    with pytest.raises(JWKSFetchError, match="strict JSON"):
        client_for(server, clock).key_for("es-1")


# -- answers http.client cannot parse (audit F1) ----------------------------------------------

BROKEN_ANSWERS = {
    "101-headers": b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 101 + b"Content-Length: 2\r\n\r\n{}",
    "status-99": b"HTTP/1.1 99 X\r\nContent-Length: 2\r\n\r\n{}",
    "status-garbage": b"HELLO\r\n\r\n",
    "line-too-long": b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n",
    "http-2": b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    "short-body": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}",
    "bad-chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "nothing": b"",
}


@pytest.fixture
def raw() -> Iterator[RawServer]:
    raw_server = RawServer()
    yield raw_server
    raw_server.close()


@pytest.mark.parametrize("answer", BROKEN_ANSWERS.values(), ids=BROKEN_ANSWERS.keys())
def test_an_unparsable_answer_is_a_failed_fetch_with_a_cooldown(
    raw: RawServer, clock: FakeClock, answer: bytes
) -> None:
    raw.respond = raw_answer(json.dumps(KeySet([ES256]).jwks()).encode())
    client = JWKSClient(raw.url, clock=clock, timeout=2.0, lifetime=60.0)
    assert client.key_for("es-1").kid == "es-1"
    raw.respond = answer
    clock.advance(61)  # stale: the next caller refreshes
    for _ in range(5):
        assert client.key_for("es-1").kid == "es-1"  # the cached key still serves
        with pytest.raises(JWKSFetchError):
            client.key_for("unknown")  # "cannot tell", not an escaping http.client error
    assert raw.requests == 2  # one failed attempt, then the cooldown


def test_an_unparsable_answer_without_a_cache_is_a_fetch_error(
    raw: RawServer, clock: FakeClock
) -> None:
    raw.respond = BROKEN_ANSWERS["101-headers"]
    client = JWKSClient(raw.url, clock=clock, timeout=2.0)
    for _ in range(3):
        with pytest.raises(JWKSFetchError):
            client.key_for("es-1")
    assert raw.requests == 1


def test_interim_answers_before_the_answer_are_skipped(raw: RawServer, clock: FakeClock) -> None:
    # Re-audit N6: a 103 Early Hints before the 200 failed the fetch (only 100 was skipped).
    interim = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    raw.respond = (
        interim
        + b"HTTP/1.1 102 Processing\r\n\r\n"
        + raw_answer(json.dumps(KeySet([ES256]).jwks()).encode())
    )
    client = JWKSClient(raw.url, clock=clock, timeout=2.0)
    assert client.key_for("es-1").kid == "es-1"


def test_endless_interim_answers_are_cut_off_by_the_byte_budget(
    raw: RawServer, clock: FakeClock
) -> None:
    hint = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
    raw.respond = hint * 20_000  # 1 MB of interim answers, never a final one
    client = JWKSClient(raw.url, clock=clock, timeout=5.0, max_size=16 * 1024)
    with pytest.raises(JWKSFetchError, match="larger than"):
        client.key_for("es-1")


# -- a whole-fetch deadline and a byte budget for everything read (audit F3, F11) -------------


def _drip(parts: list[bytes], every: float) -> Callable[[socket.socket], None]:
    """An answer sent one part at a time, ``every`` seconds apart (each well within a
    per-read timeout), until the client hangs up."""

    def respond(conn: socket.socket) -> None:
        for part in parts:
            conn.sendall(part)
            time.sleep(every)

    return respond


ES256_BODY = json.dumps(KeySet([ES256]).jwks()).encode()
DRIPPED_ANSWERS = {
    "header-lines": [b"HTTP/1.1 200 OK\r\n", *[b"X: y\r\n"] * 60, b"\r\n"],
    "status-line": [bytes([byte]) for byte in b"HTTP/1.1 200 OK\r\n" * 4],
    "chunk-extension": [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;",
        *[b"a"] * 60,
    ],
    "trailer-lines": [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n" % (len(ES256_BODY), ES256_BODY),
        *[b"X: y\r\n"] * 60,
        b"\r\n",
    ],
}


@pytest.mark.parametrize("parts", DRIPPED_ANSWERS.values(), ids=DRIPPED_ANSWERS.keys())
def test_a_dripped_answer_meets_the_whole_fetch_deadline(
    raw: RawServer, clock: FakeClock, parts: list[bytes]
) -> None:
    raw.respond = _drip(parts, 0.1)  # 60 parts: 6 s, each read well within the timeout
    client = JWKSClient(raw.url, clock=clock, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(JWKSFetchError, match=r"took more than 1\.0 s"):
        client.key_for("es-1")
    assert time.monotonic() - started < 4  # generous: the point is "not 6 s or more"


def test_a_host_with_several_black_holed_addresses_meets_the_whole_fetch_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Re-audit N1: socket.create_connection gave each address the whole timeout in turn (three
    # black-holed addresses held a 2 s fetch for 6 s).
    real_getaddrinfo = socket.getaddrinfo
    with black_holed_port() as port:
        addresses = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))] * 6

        def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
            return addresses if host == "jwks.test" else real_getaddrinfo(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        client = JWKSClient(
            f"http://jwks.test:{port}/jwks", timeout=1.0, allow_http_hosts=["jwks.test"]
        )
        began = time.monotonic()
        with pytest.raises(JWKSFetchError):
            client.key_for("es-1")
        assert client.wait_for_refresh(10)
        assert time.monotonic() - began < 3.5  # one timeout plus margin, not 6 x 1 s


def test_an_endless_trailer_is_cut_off_by_the_byte_budget(raw: RawServer, clock: FakeClock) -> None:
    # http.client reads and discards trailer lines without limit: 8 GB went by in 15 s and
    # the keys were then accepted.
    sent = [0]

    def respond(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n0\r\n" % (len(ES256_BODY), ES256_BODY)
        )
        line = b"X: " + b"a" * 60000 + b"\r\n"
        while not raw.stop.is_set() and sent[0] < 512 * 1024 * 1024:
            conn.sendall(line)
            sent[0] += len(line)

    raw.respond = respond
    client = JWKSClient(raw.url, clock=clock, timeout=10.0, max_size=65536)
    with pytest.raises(JWKSFetchError, match="larger than 65536"):
        client.key_for("es-1")
    assert sent[0] < 16 * 1024 * 1024  # the client hung up within its budget (+ buffers)


def test_the_header_section_counts_against_the_byte_budget(
    raw: RawServer, clock: FakeClock
) -> None:
    headers = [b"X-%d: %s" % (n, b"a" * 1000) for n in range(60)]  # 60 KB, under 100 lines
    raw.respond = raw_answer(ES256_BODY, *headers)
    with pytest.raises(JWKSFetchError, match="larger than 1024"):
        JWKSClient(raw.url, clock=clock, timeout=2.0, max_size=1024).key_for("es-1")


def test_https_verifies_the_certificate(tmp_path: Path, clock: FakeClock) -> None:
    server_tls, trusting = self_signed_tls(tmp_path)
    tls_server = JWKSServer(tls=server_tls)
    try:
        tls_server.serve_jwks(KeySet([ES256]).jwks())
        with pytest.raises(JWKSFetchError, match="SSLCertVerificationError"):
            JWKSClient(tls_server.url, clock=clock, timeout=2.0).key_for("es-1")
        client = JWKSClient(tls_server.url, clock=clock, timeout=2.0, ssl_context=trusting)
        assert client.key_for("es-1").kid == "es-1"
    finally:
        tls_server.close()


def test_a_stalled_tls_handshake_meets_the_deadline(raw: RawServer, clock: FakeClock) -> None:
    raw.respond = lambda conn: raw.stop.wait(30)  # never answers the ClientHello
    url = raw.url.replace("http://", "https://")
    client = JWKSClient(url, clock=clock, timeout=1.0, ssl_context=ssl.create_default_context())
    started = time.monotonic()
    with pytest.raises(JWKSFetchError):
        client.key_for("es-1")
    assert time.monotonic() - started < 4


def test_environment_proxies_are_not_used(
    server: JWKSServer, raw: RawServer, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, raw.url.removesuffix("/jwks"))
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    raw.respond = raw_answer(b'{"keys": []}')
    assert client_for(server, clock).key_for("es-1").kid == "es-1"
    assert server.requests == 1
    assert raw.requests == 0


# -- URLs -------------------------------------------------------------------------------------

REFUSED_URLS = {
    "http-remote": "http://issuer.example/.well-known/jwks.json",
    "http-private-address": "http://10.0.0.1/jwks",
    "ftp": "ftp://127.0.0.1/jwks",
    "file": "file:///etc/passwd",
    "credentials": "https://user:pass@issuer.example/jwks",
    "no-host": "https:///jwks",
    "loopback-lookalike": "http://127.0.0.1.evil.example/jwks",
    "localhost-subdomain": "http://localhost.evil.example/jwks",
    "space": "https://issuer.example/jw ks",
    "newline": "https://issuer.example/jwks\r\nX-Injected: 1",
    "tab": "https://issuer.example/\tjwks",
    "non-ascii": "https://issuer.example/jwks\u00e9",
    "port-not-a-number": "https://issuer.example:port/jwks",
    "port-out-of-range": "https://issuer.example:70000/jwks",
}


@pytest.mark.parametrize("url", REFUSED_URLS.values(), ids=REFUSED_URLS.keys())
def test_urls_refused_at_construction(url: str) -> None:
    with pytest.raises(ValueError, match="JWKS URL"):
        JWKSClient(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://issuer.example/.well-known/jwks.json",
        "http://127.0.0.1:8000/.well-known/jwks.json",
        "http://127.8.9.10/jwks",
        "http://[::1]:8000/jwks",
        "http://localhost:8000/jwks",
        "http://LOCALHOST/jwks",
    ],
)
def test_urls_accepted(url: str) -> None:
    assert repr(JWKSClient(url)).startswith("JWKSClient(")


def test_a_named_host_may_use_http() -> None:
    JWKSClient("http://auth.internal/jwks", allow_http_hosts=["auth.internal"])
    with pytest.raises(ValueError, match="JWKS URL"):
        JWKSClient("http://other.internal/jwks", allow_http_hosts=["auth.internal"])


def test_the_query_stays_out_of_errors(server: JWKSServer, clock: FakeClock) -> None:
    server.status = 500
    client = JWKSClient(server.url + "?api_key=hunter2", clock=clock, timeout=2.0)
    with pytest.raises(JWKSFetchError) as info:
        client.key_for("es-1")
    assert "hunter2" not in str(info.value)
    assert server.paths == ["/.well-known/jwks.json?api_key=hunter2"]


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": 0},
        {"max_size": 0},
        {"refetch_cooldown": 100.0, "lifetime": 50.0},
        {"lifetime": 100.0, "max_lifetime": 50.0},
    ],
    ids=["timeout", "max-size", "cooldown-over-lifetime", "lifetime-over-max"],
)
def test_unusable_limits_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"positive|refetch_cooldown"):
        JWKSClient("https://issuer.example/jwks", **options)  # type: ignore[arg-type]


BAD_OPTIONS = {
    # Audit F10: each was accepted, some failing only at the first fetch.
    "timeout-inf": ({"timeout": float("inf")}, ValueError),
    "timeout-nan": ({"timeout": float("nan")}, ValueError),
    "timeout-huge": ({"timeout": 1e9}, ValueError),
    "timeout-str": ({"timeout": "5"}, TypeError),
    "timeout-bool": ({"timeout": True}, TypeError),
    "lifetime-nan": ({"lifetime": float("nan")}, ValueError),
    "cooldown-zero": ({"refetch_cooldown": 0}, ValueError),
    "cooldown-half-second": ({"refetch_cooldown": 0.5}, ValueError),
    "max-size-float": ({"max_size": 1e6}, TypeError),
    "allow-http-hosts-str": ({"allow_http_hosts": "example.com"}, TypeError),
    "allow-http-hosts-empty-name": ({"allow_http_hosts": [""]}, TypeError),
    "algorithm-unknown": ({"algorithm": "RSA-OAEP"}, ValueError),
    "algorithm-hmac": ({"algorithm": "HS256"}, ValueError),
    "ssl-context-not-a-context": ({"ssl_context": True}, TypeError),
}


@pytest.mark.parametrize(("options", "error"), BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_unusable_options_are_refused_at_construction(
    options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        JWKSClient("https://issuer.example/jwks", **options)


def test_key_set_returns_the_cached_set(server: JWKSServer, clock: FakeClock) -> None:
    client = client_for(server, clock)
    assert {key.kid for key in client.key_set()} == {"es-1", "ed-1"}
    assert {key.kid for key in client.key_set()} == {"es-1", "ed-1"}
    assert server.requests == 1


def test_any_key_source_serves_decode() -> None:
    class Directory(KeySource):
        def __init__(self) -> None:
            self.asked: list[str] = []

        def key_for(self, kid: str) -> Key:
            self.asked.append(kid)
            return KeySet([ES256]).get(kid)

    directory = Directory()
    assert jwtlite.decode(token(), directory, ["ES256"]) == CLAIMS
    with pytest.raises(InvalidKeyError):
        jwtlite.decode(token(ED25519), directory, ["Ed25519"])
    assert directory.asked == ["es-1", "ed-1"]
