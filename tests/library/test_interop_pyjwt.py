"""Interoperability with PyJWT in both directions, every algorithm, keys as objects and PEM."""

from __future__ import annotations

from typing import Any, NamedTuple

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

import jwtlite
from jwtlite import InvalidSignatureError, Key

from support.keys import private_pem, public_pem

RSA_PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NOW = 1_700_000_000
CLAIMS = {
    "sub": "42",
    "name": "Zoë 山田",
    "iss": "https://issuer.example",
    "aud": ["api", "web"],
    "iat": NOW - 10,
    "nbf": NOW - 10,
    "exp": NOW + 600,
    "nested": {"roles": ["admin"], "n": 1.5, "ok": True, "none": None},
}


class Pair(NamedTuple):
    """Signing and verifying material in one form (object, PEM or secret), and the signing
    material of an unrelated key of the same kind and form."""

    signing: Any
    verifying: Any
    stranger: Any


def asymmetric_rows(name: str, algorithm: str, private_key: Any, stranger: Any) -> list[Any]:
    as_objects = Pair(private_key, private_key.public_key(), stranger)
    as_pem = Pair(private_pem(private_key), public_pem(private_key), private_pem(stranger))
    return [
        pytest.param(algorithm, as_objects, id=f"{name}-object"),
        pytest.param(algorithm, as_pem, id=f"{name}-pem"),
    ]


def secret_rows(algorithm: str, size: int) -> list[Any]:
    return [
        pytest.param(
            algorithm, Pair(b"k" * size, b"k" * size, b"j" * size), id=f"{algorithm}-bytes"
        ),
        pytest.param(algorithm, Pair("k" * size, "k" * size, "j" * size), id=f"{algorithm}-str"),
    ]


RSA_STRANGER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


ROWS = [
    *secret_rows("HS256", 32),
    *secret_rows("HS384", 48),
    *secret_rows("HS512", 64),
    *[
        row
        for algorithm in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
        for row in asymmetric_rows(algorithm, algorithm, RSA_PRIVATE, RSA_STRANGER)
    ],
    *[
        row
        for algorithm, curve in (
            ("ES256", ec.SECP256R1),
            ("ES384", ec.SECP384R1),
            ("ES512", ec.SECP521R1),
        )
        for row in asymmetric_rows(
            algorithm, algorithm, ec.generate_private_key(curve()), ec.generate_private_key(curve())
        )
    ],
    *asymmetric_rows(
        "EdDSA-Ed25519",
        "EdDSA",
        ed25519.Ed25519PrivateKey.generate(),
        ed25519.Ed25519PrivateKey.generate(),
    ),
    *asymmetric_rows(
        "EdDSA-Ed448", "EdDSA", ed448.Ed448PrivateKey.generate(), ed448.Ed448PrivateKey.generate()
    ),
]


def pyjwt_decode(token: str, key: Any, algorithm: str) -> dict[str, Any]:
    claims: dict[str, Any] = pyjwt.decode(
        token,
        key,
        algorithms=[algorithm],
        audience="web",
        issuer="https://issuer.example",
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    return claims


def jwtlite_decode(token: str, key: Any, algorithm: str) -> dict[str, Any]:
    return jwtlite.decode(
        token, key, [algorithm], audience="web", issuer="https://issuer.example", now=NOW
    )


@pytest.mark.parametrize(("algorithm", "keys"), ROWS)
def test_jwtlite_tokens_verify_in_pyjwt(algorithm: str, keys: Pair) -> None:
    token = jwtlite.encode(CLAIMS, keys.signing, algorithm)
    assert pyjwt.get_unverified_header(token) == {"alg": algorithm, "typ": "JWT"}
    assert pyjwt_decode(token, keys.verifying, algorithm) == CLAIMS


@pytest.mark.parametrize(("algorithm", "keys"), ROWS)
def test_pyjwt_tokens_verify_in_jwtlite(algorithm: str, keys: Pair) -> None:
    token = pyjwt.encode(CLAIMS, keys.signing, algorithm=algorithm)
    assert jwtlite.get_unverified_header(token)["alg"] == algorithm
    assert jwtlite_decode(token, keys.verifying, algorithm) == CLAIMS


@pytest.mark.parametrize(("algorithm", "keys"), ROWS)
def test_pyjwt_tokens_signed_by_another_key_fail_in_jwtlite(algorithm: str, keys: Pair) -> None:
    token = pyjwt.encode(CLAIMS, keys.stranger, algorithm=algorithm)
    with pytest.raises(InvalidSignatureError):
        jwtlite_decode(token, keys.verifying, algorithm)


@pytest.mark.parametrize(("algorithm", "keys"), ROWS)
def test_jwtlite_tokens_signed_by_another_key_fail_in_pyjwt(algorithm: str, keys: Pair) -> None:
    token = jwtlite.encode(CLAIMS, keys.stranger, algorithm)
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt_decode(token, keys.verifying, algorithm)


@pytest.mark.parametrize(("algorithm", "keys"), ROWS)
def test_jwtlite_key_objects_interoperate(algorithm: str, keys: Pair) -> None:
    signer = Key(keys.signing, algorithm, kid="k1")
    token = jwtlite.encode(CLAIMS, signer)
    assert pyjwt.get_unverified_header(token)["kid"] == "k1"
    assert pyjwt_decode(token, keys.verifying, algorithm) == CLAIMS
    token = pyjwt.encode(CLAIMS, keys.signing, algorithm=algorithm, headers={"kid": "k1"})
    keyset = jwtlite.KeySet([Key(keys.verifying, algorithm, kid="k1")])
    assert jwtlite_decode(token, keyset, algorithm) == CLAIMS


def test_pyjwt_jwk_of_a_jwtlite_key_verifies_jwtlite_tokens() -> None:
    key = Key.generate("ES256")
    jwk = pyjwt.PyJWK(key.public_jwk())
    token = jwtlite.encode({"sub": "1"}, key)
    assert pyjwt.decode(token, jwk, algorithms=["ES256"]) == {"sub": "1"}


def test_jwtlite_thumbprint_matches_pyjwt_jwk_export() -> None:
    key = Key(RSA_PRIVATE, "RS256")
    exported = pyjwt.algorithms.RSAAlgorithm.to_jwk(RSA_PRIVATE.public_key(), as_dict=True)
    assert Key.from_jwk(exported, "RS256").thumbprint() == key.thumbprint()


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"exp": NOW - 1}, jwtlite.ExpiredTokenError),
        ({"nbf": NOW + 60}, jwtlite.ImmatureTokenError),
        ({"aud": "other"}, jwtlite.InvalidAudienceError),
        ({"iss": "https://evil.example", "aud": "web"}, jwtlite.InvalidIssuerError),
    ],
    ids=["expired", "immature", "audience", "issuer"],
)
def test_pyjwt_claims_are_checked_by_jwtlite(claims: dict[str, Any], error: type) -> None:
    secret = b"k" * 32
    token = pyjwt.encode({"iss": "https://issuer.example", "aud": "web", **claims}, secret)
    with pytest.raises(error):
        jwtlite_decode(token, secret, "HS256")
