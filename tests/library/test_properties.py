"""Property tests: round trips for every algorithm, single-byte changes are always caught,
and arbitrary input only ever raises JWTError."""

from __future__ import annotations

import base64
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import jwtlite
from jwtlite import JWTError, Key, jws

NOW = 1_700_000_000
SECRET = b"property-tests-secret-0123456789abcdefghijklmnopqrstuvwxyz0123456789"

# Keys are prepared once: every example reuses them.
_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SIGNING_KEYS: dict[str, Key] = {
    "HS256": Key(SECRET, "HS256"),
    "HS384": Key(SECRET, "HS384"),
    "HS512": Key(SECRET, "HS512"),
    **{alg: Key(_RSA, alg) for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")},
    "ES256": Key(ec.generate_private_key(ec.SECP256R1()), "ES256"),
    "ES384": Key(ec.generate_private_key(ec.SECP384R1()), "ES384"),
    "ES512": Key(ec.generate_private_key(ec.SECP521R1()), "ES512"),
    "EdDSA-Ed25519": Key(ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
    "EdDSA-Ed448": Key(ed448.Ed448PrivateKey.generate(), "EdDSA"),
}
VERIFYING_KEYS = {name: key.public_key() for name, key in SIGNING_KEYS.items()}
REGISTERED = {"exp", "nbf", "iat", "aud", "iss", "sub", "jti"}  # claims decode checks

# -- strategies ------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
claim_names = st.text(max_size=10).filter(lambda name: name not in REGISTERED)
json_objects = st.dictionaries(claim_names, json_values, max_size=6)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token(header: Any, payload: Any) -> str:
    """Sign arbitrary JSON (NaN and all, via json.dumps) with the HS512-sized secret."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.digest(SECRET, signing_input.encode(), "sha256")
    return f"{signing_input}.{b64(signature)}"


def decode_or_jwt_error(token: Any, key: Any = SECRET, **kwargs: Any) -> Any:
    """Run decode; a JWTError is a fine outcome, anything else propagates."""
    kwargs.setdefault("now", NOW)
    try:
        return jwtlite.decode(token, key, kwargs.pop("algorithms", ["HS256"]), **kwargs)
    except JWTError as exc:
        return exc


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SIGNING_KEYS))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=json_objects)
def test_any_json_object_round_trips(name: str, payload: dict[str, Any]) -> None:
    signer = SIGNING_KEYS[name]
    token = jwtlite.encode(payload, signer)
    assert jwtlite.decode(token, VERIFYING_KEYS[name], [signer.algorithm], now=NOW) == payload


@settings(max_examples=100, deadline=None)
@given(payload=st.binary(max_size=512))
def test_any_bytes_round_trip_at_the_jws_level(payload: bytes) -> None:
    token = jws.encode(payload, SIGNING_KEYS["HS256"])
    assert jws.decode(token, SECRET, ["HS256"]) == payload


# -- single-byte changes ---------------------------------------------------------------------

MUTATED = ["HS256", "ES256", "EdDSA-Ed25519", "RS256", "ES512"]
BASE_TOKENS = {
    name: jwtlite.encode({"sub": "42", "exp": NOW + 60}, SIGNING_KEYS[name]).encode()
    for name in MUTATED
}


@pytest.mark.parametrize("name", MUTATED)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_single_byte_change_is_rejected(name: str, data: st.DataObject) -> None:
    token = BASE_TOKENS[name]
    index = data.draw(st.integers(min_value=0, max_value=len(token) - 1), label="index")
    byte = data.draw(st.integers(min_value=0, max_value=255), label="byte")
    assume(byte != token[index])
    mutated = token[:index] + bytes([byte]) + token[index + 1 :]
    algorithm = SIGNING_KEYS[name].algorithm
    with pytest.raises(JWTError):
        jwtlite.decode(mutated, VERIFYING_KEYS[name], [algorithm], now=NOW)
    with pytest.raises(JWTError):
        jwtlite.decode(mutated.decode("latin-1"), VERIFYING_KEYS[name], [algorithm], now=NOW)


@pytest.mark.parametrize("name", ["HS256", "ES256"])
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_any_deletion_or_insertion_is_rejected(name: str, data: st.DataObject) -> None:
    token = BASE_TOKENS[name]
    index = data.draw(st.integers(min_value=0, max_value=len(token)), label="index")
    if data.draw(st.booleans(), label="insert"):
        mutated = token[:index] + data.draw(st.binary(min_size=1, max_size=3)) + token[index:]
    else:
        assume(index < len(token))
        mutated = token[:index] + token[index + 1 :]
    algorithm = SIGNING_KEYS[name].algorithm
    with pytest.raises(JWTError):
        jwtlite.decode(mutated, VERIFYING_KEYS[name], [algorithm], now=NOW)


# -- arbitrary input -------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(token=st.binary(max_size=300))
def test_random_bytes_only_raise_jwt_error(token: bytes) -> None:
    with pytest.raises(JWTError):
        jwtlite.decode(token, SECRET, ["HS256"], now=NOW)


@settings(max_examples=150, deadline=None)
@given(token=st.text(max_size=300))
def test_random_strings_only_raise_jwt_error(token: str) -> None:
    with pytest.raises(JWTError):
        jwtlite.decode(token, SECRET, ["HS256", "ES256", "EdDSA"], now=NOW)
    with pytest.raises(JWTError):
        jwtlite.get_unverified_header(token)


BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@settings(max_examples=150, deadline=None)
@given(segments=st.lists(st.text(alphabet=BASE64URL + "=+/ ", max_size=60), max_size=5))
def test_random_segments_only_raise_jwt_error(segments: list[str]) -> None:
    with pytest.raises(JWTError):
        jwtlite.decode(".".join(segments), SECRET, ["HS256"], now=NOW)


@settings(max_examples=150, deadline=None)
@given(
    header=st.dictionaries(
        st.sampled_from(["alg", "kid", "typ", "cty", "crit", "b64", "jwk", "x5c", "zip"])
        | st.text(max_size=5),
        json_values,
        max_size=5,
    ),
    alg=st.sampled_from(["HS256", "none", "RS256", "hs256", ""]) | json_values,
)
def test_signed_random_headers_only_raise_jwt_error(header: dict[str, Any], alg: Any) -> None:
    token = hs256_token({**header, "alg": alg}, {"sub": "1"})
    outcome = decode_or_jwt_error(token)
    if not isinstance(outcome, JWTError):
        assert outcome == {"sub": "1"}
        assert alg == "HS256"


numeric_dates = (
    st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()
    | st.integers(min_value=NOW - 100, max_value=NOW + 100)
    | json_values
)
audiences = st.text(max_size=4) | st.lists(st.text(max_size=4), max_size=3) | json_values


@settings(max_examples=150, deadline=None)
@given(
    payload=json_values,
    claims=st.fixed_dictionaries(
        {},
        optional={
            "exp": numeric_dates,
            "nbf": numeric_dates,
            "iat": numeric_dates,
            "aud": audiences,
            "iss": audiences,
        },
    ),
    audience=st.none() | st.text(max_size=4) | st.lists(st.text(max_size=4), max_size=3),
    issuer=st.none() | st.text(max_size=4),
    leeway=st.floats(min_value=0, max_value=1e6) | st.integers(min_value=0, max_value=10**6),
)
def test_signed_random_claims_only_raise_jwt_error(
    payload: Any, claims: dict[str, Any], audience: Any, issuer: Any, leeway: float
) -> None:
    body = {**payload, **claims} if isinstance(payload, dict) else (claims or payload)
    token = hs256_token({"alg": "HS256"}, body)
    outcome = decode_or_jwt_error(token, audience=audience, issuer=issuer, leeway=leeway)
    if not isinstance(outcome, JWTError):
        assert outcome == body


@settings(max_examples=100, deadline=None)
@given(key=st.binary(max_size=80) | st.text(max_size=80) | json_values)
def test_random_keys_only_raise_jwt_error(key: Any) -> None:
    token = jwtlite.encode({"sub": "1"}, SIGNING_KEYS["HS256"])
    outcome = decode_or_jwt_error(token, key, algorithms=["HS256", "RS256", "ES256", "EdDSA"])
    if not isinstance(outcome, JWTError):
        assert outcome == {"sub": "1"}
