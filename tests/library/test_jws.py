"""Tests for jwtlite.jws: compact JWS signing and verification over bytes."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

import jwtlite
from jwtlite import (
    AlgorithmNotAllowedError,
    InvalidKeyError,
    InvalidSignatureError,
    Key,
    KeySet,
    MalformedTokenError,
    jws,
)

from support.keys import private_pem, public_der, public_pem

SECRETS = {"HS256": b"a" * 32, "HS384": b"b" * 48, "HS512": b"c" * 64}
RSA_PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_PRIVATE = {
    "ES256": ec.generate_private_key(ec.SECP256R1()),
    "ES384": ec.generate_private_key(ec.SECP384R1()),
    "ES512": ec.generate_private_key(ec.SECP521R1()),
}
ED25519_PRIVATE = ed25519.Ed25519PrivateKey.generate()
ED448_PRIVATE = ed448.Ed448PrivateKey.generate()

# (id, algorithm, signing material, verifying material)
KEY_PAIRS: list[tuple[str, str, Any, Any]] = [
    *[(alg, alg, secret, secret) for alg, secret in SECRETS.items()],
    *[
        (alg, alg, RSA_PRIVATE, RSA_PRIVATE.public_key())
        for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
    ],
    *[(alg, alg, key, key.public_key()) for alg, key in EC_PRIVATE.items()],
    ("EdDSA-Ed25519", "EdDSA", ED25519_PRIVATE, ED25519_PRIVATE.public_key()),
    ("EdDSA-Ed448", "EdDSA", ED448_PRIVATE, ED448_PRIVATE.public_key()),
]
KEY_PAIR_IDS = [row[0] for row in KEY_PAIRS]
ASYMMETRIC_PAIRS = [row for row in KEY_PAIRS if not row[1].startswith("HS")]
ASYMMETRIC_IDS = [row[0] for row in ASYMMETRIC_PAIRS]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> list[bytes]:
    """The three segments of a compact JWS, decoded (padding restored)."""
    return [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(".")]


def header_of(token: str) -> dict[str, Any]:
    header: dict[str, Any] = json.loads(segments(token)[0])
    return header


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "algorithm", "signer", "verifier"), KEY_PAIRS, ids=KEY_PAIR_IDS)
def test_round_trip_every_algorithm(name: str, algorithm: str, signer: Any, verifier: Any) -> None:
    payload = b"\x00\xffany bytes at all\n"
    token = jws.encode(payload, signer, algorithm)
    assert jws.decode(token, verifier, [algorithm]) == payload
    assert jws.decode(token.encode(), verifier, [algorithm]) == payload
    assert header_of(token) == {"alg": algorithm, "typ": "JWT"}


@pytest.mark.parametrize(("name", "algorithm", "signer", "verifier"), KEY_PAIRS, ids=KEY_PAIR_IDS)
def test_round_trip_with_key_objects(name: str, algorithm: str, signer: Any, verifier: Any) -> None:
    token = jws.encode(b"p", Key(signer, algorithm))
    assert jws.decode(token, Key(verifier, algorithm), [algorithm]) == b"p"


def test_empty_payload_round_trips() -> None:
    token = jws.encode(b"", SECRETS["HS256"], "HS256")
    assert token.split(".")[1] == ""
    assert jws.decode(token, SECRETS["HS256"], ["HS256"]) == b""


def test_token_is_compact_base64url_without_padding() -> None:
    token = jws.encode(b"\xfb\xff" * 10, SECRETS["HS256"], "HS256")
    assert token.count(".") == 2
    assert "=" not in token
    assert "+" not in token
    assert "/" not in token


@pytest.mark.parametrize(("name", "algorithm", "signer", "verifier"), KEY_PAIRS, ids=KEY_PAIR_IDS)
def test_signature_has_the_algorithms_length(
    name: str, algorithm: str, signer: Any, verifier: Any
) -> None:
    expected = {
        "HS256": 32,
        "HS384": 48,
        "HS512": 64,
        "ES256": 64,
        "ES384": 96,
        "ES512": 132,
        "EdDSA-Ed25519": 64,
        "EdDSA-Ed448": 114,
    }.get(name, 256)
    signature = segments(jws.encode(b"p", signer, algorithm))[2]
    assert len(signature) == expected


def test_hmac_signature_is_deterministic_and_standard() -> None:
    import hashlib
    import hmac

    token = jws.encode(b"payload", SECRETS["HS256"], "HS256")
    signing_input, _, signature = token.rpartition(".")
    expected = hmac.new(SECRETS["HS256"], signing_input.encode(), hashlib.sha256).digest()
    assert signature == b64url(expected)
    assert jws.encode(b"payload", SECRETS["HS256"], "HS256") == token


# -- algorithm selection on encode ------------------------------------------------------------


def test_encode_defaults_to_hs256_for_raw_secrets() -> None:
    token = jws.encode(b"p", SECRETS["HS512"])
    assert header_of(token)["alg"] == "HS256"


def test_encode_defaults_to_the_keys_algorithm() -> None:
    token = jws.encode(b"p", Key(EC_PRIVATE["ES384"], "ES384"))
    assert header_of(token)["alg"] == "ES384"


def test_encode_refuses_an_algorithm_the_key_is_not_for() -> None:
    with pytest.raises(AlgorithmNotAllowedError) as info:
        jws.encode(b"p", Key(EC_PRIVATE["ES256"], "ES256"), "ES384")
    assert info.value.algorithm == "ES384"


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [
        (RSA_PRIVATE, None),  # defaults to HS256
        (RSA_PRIVATE.public_key(), "RS256"),
        (EC_PRIVATE["ES256"].public_key(), "ES256"),
        (EC_PRIVATE["ES384"], "ES256"),
        (b"short", "HS256"),
        (b"x" * 47, "HS384"),
    ],
    ids=[
        "rsa-as-default-hs256",
        "rsa-public-cannot-sign",
        "ec-public-cannot-sign",
        "p384-for-es256",
        "short-secret",
        "secret-too-short-for-hs384",
    ],
)
def test_encode_refuses_keys_that_cannot_sign(key: Any, algorithm: str | None) -> None:
    with pytest.raises(InvalidKeyError):
        jws.encode(b"p", key, algorithm)


@pytest.mark.parametrize("algorithm", ["none", "None", "NONE", "hs256", "HS", "", "ES256K"])
def test_encode_refuses_unsupported_algorithms(algorithm: str) -> None:
    with pytest.raises(AlgorithmNotAllowedError):
        jws.encode(b"p", SECRETS["HS256"], algorithm)


# -- headers ---------------------------------------------------------------------------------


def test_extra_headers_are_written() -> None:
    token = jws.encode(b"p", SECRETS["HS256"], "HS256", {"cty": "text/plain", "x-custom": [1]})
    assert header_of(token) == {"alg": "HS256", "typ": "JWT", "cty": "text/plain", "x-custom": [1]}
    assert jws.decode(token, SECRETS["HS256"], ["HS256"]) == b"p"


def test_headers_cannot_override_alg() -> None:
    token = jws.encode(b"p", SECRETS["HS256"], "HS256", {"alg": "none"})
    assert header_of(token)["alg"] == "HS256"


def test_headers_may_override_typ() -> None:
    token = jws.encode(b"p", SECRETS["HS256"], "HS256", {"typ": "at+jwt"})
    assert header_of(token)["typ"] == "at+jwt"


@pytest.mark.parametrize(
    "headers",
    [{"crit": ["exp"]}, {"crit": []}, {"b64": False}, {"kid": 1}, {"typ": None}],
    ids=["crit", "crit-empty", "b64-false", "kid-int", "typ-null"],
)
def test_encode_refuses_headers_decode_would_refuse(headers: dict[str, Any]) -> None:
    with pytest.raises(MalformedTokenError):
        jws.encode(b"p", SECRETS["HS256"], "HS256", headers)


def test_key_kid_is_written() -> None:
    token = jws.encode(b"p", Key(SECRETS["HS256"], "HS256", kid="k-1"))
    assert header_of(token) == {"alg": "HS256", "typ": "JWT", "kid": "k-1"}
    token = jws.encode(b"p", Key(SECRETS["HS256"], "HS256", kid="k-1"), headers={"x": 1})
    assert header_of(token)["kid"] == "k-1"


def test_get_unverified_header_does_not_verify() -> None:
    token = jws.encode(b"p", SECRETS["HS256"], "HS256", {"kid": "abc"})
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert jwtlite.get_unverified_header(tampered) == {"alg": "HS256", "typ": "JWT", "kid": "abc"}


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.b.c.d", "!!!.e30.", "e30.e30.", "WzFd.e30.", 5],
    ids=["empty", "two-segments", "four-segments", "bad-b64", "no-alg", "header-array", "int"],
)
def test_get_unverified_header_refuses_malformed_tokens(token: Any) -> None:
    with pytest.raises(MalformedTokenError):
        jwtlite.get_unverified_header(token)


def test_decode_complete_returns_header_payload_and_signature() -> None:
    token = jws.encode(b"payload", SECRETS["HS256"], "HS256", {"kid": "k"})
    decoded = jws.decode_complete(token, SECRETS["HS256"], ["HS256"])
    assert decoded.header == {"alg": "HS256", "typ": "JWT", "kid": "k"}
    assert decoded.payload == b"payload"
    assert decoded.signature == segments(token)[2]


def test_returned_headers_do_not_share_state_between_calls() -> None:
    token = jws.encode(b"p", SECRETS["HS256"], "HS256", {"x5c": ["cert"], "ext": {"a": 1}})
    first = jws.decode_complete(token, SECRETS["HS256"], ["HS256"]).header
    first["x5c"].append("injected")
    first["ext"]["a"] = 2
    first["alg"] = "none"
    again = jws.decode_complete(token, SECRETS["HS256"], ["HS256"]).header
    assert again == {"alg": "HS256", "typ": "JWT", "x5c": ["cert"], "ext": {"a": 1}}
    unverified = jwtlite.get_unverified_header(token)
    unverified["ext"]["a"] = 3
    assert jwtlite.get_unverified_header(token)["ext"] == {"a": 1}


def test_verify_hands_out_a_read_only_header() -> None:
    """jws.verify shared its cached header dict: setting h["alg"] or h["kid"] changed how
    later tokens with that header segment were checked."""
    token = jws.encode(b"p", SECRETS["HS256"], "HS256", {"kid": "k", "x5c": ["c"], "e": {"a": 1}})
    header, payload, _ = jws.verify(token, SECRETS["HS256"], ["HS256"])
    assert payload == b"p"
    assert header == {"alg": "HS256", "typ": "JWT", "kid": "k", "x5c": ("c",), "e": {"a": 1}}
    for name, value in [("alg", "none"), ("kid", "other"), ("new", 1)]:
        with pytest.raises(TypeError):
            header[name] = value  # type: ignore[index]
    with pytest.raises(TypeError):
        del header["kid"]  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        header["e"]["a"] = 2
    with pytest.raises(AttributeError):
        header["x5c"].append("injected")
    again, _, _ = jws.verify(token, SECRETS["HS256"], ["HS256"])
    assert dict(again) == dict(header)
    assert jws.decode_complete(token, SECRETS["HS256"], ["HS256"]).header["x5c"] == ["c"]


def test_a_changed_header_view_cannot_redirect_the_key_choice() -> None:
    """With a KeySet, the kid in the shared header picks the key: a caller must not be able
    to point the next token with this header at another key."""
    keyset = KeySet([Key(SECRETS["HS256"], "HS256", kid="a"), Key(b"z" * 32, "HS256", kid="b")])
    token = jws.encode(b"p", keyset)
    header = jws.verify(token, keyset, ["HS256"])[0]
    with pytest.raises(TypeError):
        header["kid"] = "b"  # type: ignore[index]
    assert jws.decode(token, keyset, ["HS256"]) == b"p"


# -- verification keys in every form ----------------------------------------------------------


def jwk_of(material: Any, algorithm: str) -> dict[str, str]:
    if isinstance(material, bytes):
        return {"kty": "oct", "k": b64url(material)}
    return Key(material, algorithm).public_key().public_jwk()


def verifier_forms(algorithm: str, signer: Any, verifier: Any) -> dict[str, Any]:
    if isinstance(signer, bytes):
        return {
            "bytes": signer,
            "str": signer.decode(),
            "key": Key(signer, algorithm),
            "jwk-dict": jwk_of(signer, algorithm),
            "jwk-dict-with-alg": {**jwk_of(signer, algorithm), "alg": algorithm},
        }
    return {
        "private-object": signer,
        "public-object": verifier,
        "public-pem-bytes": public_pem(signer),
        "public-pem-str": public_pem(signer).decode(),
        "private-pem": private_pem(signer),
        "public-der": public_der(signer),
        "key": Key(verifier, algorithm),
        "jwk-dict": jwk_of(signer, algorithm),
    }


VERIFIER_CASES = [
    pytest.param(algorithm, signer, verifier, form, id=f"{name}-{form}")
    for name, algorithm, signer, verifier in KEY_PAIRS
    for form in verifier_forms(algorithm, signer, verifier)
]


@pytest.mark.parametrize(("algorithm", "signer", "verifier", "form"), VERIFIER_CASES)
def test_decode_accepts_every_key_form(
    algorithm: str, signer: Any, verifier: Any, form: str
) -> None:
    token = jws.encode(b"p", signer, algorithm)
    key = verifier_forms(algorithm, signer, verifier)[form]
    assert jws.decode(token, key, [algorithm]) == b"p"


@pytest.mark.parametrize(
    ("algorithm", "signer"),
    [("RS256", RSA_PRIVATE), ("ES256", EC_PRIVATE["ES256"]), ("EdDSA", ED25519_PRIVATE)],
    ids=["rsa", "ec", "ed25519"],
)
def test_encode_accepts_private_pem(algorithm: str, signer: Any) -> None:
    token = jws.encode(b"p", private_pem(signer), algorithm)
    assert jws.decode(token, signer.public_key(), [algorithm]) == b"p"
    token = jws.encode(b"p", private_pem(signer).decode(), algorithm)
    assert jws.decode(token, signer.public_key(), [algorithm]) == b"p"


def test_jwk_dict_alg_binds_the_key_to_that_algorithm() -> None:
    jwk = Key(RSA_PRIVATE, "RS256").public_key().public_jwk()
    assert jwk["alg"] == "RS256"
    token = jws.encode(b"p", RSA_PRIVATE, "PS256")
    with pytest.raises((InvalidKeyError, AlgorithmNotAllowedError)):
        jws.decode(token, jwk, ["RS256", "PS256"])


# -- allowlist -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "algorithms", ["HS256", b"HS256", [], ()], ids=["str", "bytes", "empty-list", "empty-tuple"]
)
def test_algorithms_must_be_a_non_empty_list(algorithms: Any) -> None:
    token = jws.encode(b"p", SECRETS["HS256"], "HS256")
    with pytest.raises(TypeError):
        jws.decode(token, SECRETS["HS256"], algorithms)


def test_algorithms_may_be_any_sequence() -> None:
    token = jws.encode(b"p", SECRETS["HS256"], "HS256")
    assert jws.decode(token, SECRETS["HS256"], ("RS256", "HS256")) == b"p"


def test_alg_outside_allowlist_is_refused_with_its_name() -> None:
    token = jws.encode(b"p", SECRETS["HS256"], "HS256")
    with pytest.raises(AlgorithmNotAllowedError) as info:
        jws.decode(token, SECRETS["HS256"], ["HS384", "HS512"])
    assert info.value.algorithm == "HS256"


def test_alg_allowed_but_not_the_keys_algorithm_is_refused() -> None:
    token = jws.encode(b"p", RSA_PRIVATE, "RS256")
    key = Key(RSA_PRIVATE.public_key(), "PS256")
    with pytest.raises(AlgorithmNotAllowedError) as info:
        jws.decode(token, key, ["RS256", "PS256"])
    assert info.value.algorithm == "RS256"


def test_none_is_refused_even_when_allowlisted() -> None:
    header = b64url(b'{"alg":"none"}')
    token = f"{header}.{b64url(b'p')}."
    with pytest.raises(AlgorithmNotAllowedError):
        jws.decode(token, SECRETS["HS256"], ["none", "HS256"])


def test_wrong_key_of_the_right_type_is_an_invalid_signature() -> None:
    token = jws.encode(b"p", EC_PRIVATE["ES256"], "ES256")
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(InvalidSignatureError):
        jws.decode(token, other, ["ES256"])


# -- key sets --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyset() -> KeySet:
    return KeySet(
        [
            Key(EC_PRIVATE["ES256"], "ES256", kid="ec"),
            Key(ED25519_PRIVATE, "EdDSA", kid="ed"),
            Key(RSA_PRIVATE, "RS256", kid="rsa"),
        ],
        current="ed",
    )


def test_keyset_signs_with_current_key(keyset: KeySet) -> None:
    token = jws.encode(b"p", keyset)
    assert header_of(token) == {"alg": "EdDSA", "typ": "JWT", "kid": "ed"}
    assert jws.decode(token, keyset, ["EdDSA"]) == b"p"


def test_keyset_picks_the_key_by_kid(keyset: KeySet) -> None:
    for kid in ("ec", "rsa"):
        key = keyset.get(kid)
        token = jws.encode(b"p", key)
        assert jws.decode(token, keyset, [key.algorithm]) == b"p"


def test_keyset_refuses_unknown_and_missing_kid(keyset: KeySet) -> None:
    unknown = jws.encode(b"p", Key(SECRETS["HS256"], "HS256", kid="other"))
    with pytest.raises(InvalidKeyError):
        jws.decode(unknown, keyset, ["HS256"])
    no_kid = jws.encode(b"p", SECRETS["HS256"], "HS256")
    with pytest.raises(InvalidKeyError):
        jws.decode(no_kid, keyset, ["HS256"])


def test_keyset_kid_of_another_algorithm_is_refused(keyset: KeySet) -> None:
    # Signed with the set's HMAC secret, but naming the RSA key's kid.
    token = jws.encode(b"p", SECRETS["HS256"], "HS256", {"kid": "rsa"})
    with pytest.raises(AlgorithmNotAllowedError):
        jws.decode(token, keyset, ["HS256", "RS256"])


def test_keyset_signing_with_explicit_other_algorithm_is_refused(keyset: KeySet) -> None:
    with pytest.raises(AlgorithmNotAllowedError):
        jws.encode(b"p", keyset, "RS256")


# -- size cap --------------------------------------------------------------------------------


def test_max_size_is_configurable() -> None:
    token = jws.encode(b"x" * 3000, SECRETS["HS256"], "HS256")
    assert jws.decode(token, SECRETS["HS256"], ["HS256"]) == b"x" * 3000
    with pytest.raises(MalformedTokenError):
        jws.decode(token, SECRETS["HS256"], ["HS256"], max_size=len(token) - 1)
    assert jws.decode(token, SECRETS["HS256"], ["HS256"], max_size=len(token)) == b"x" * 3000


def test_decode_complete_and_verify_honour_max_size() -> None:
    token = jws.encode(b"x" * 100, SECRETS["HS256"], "HS256")
    for check in (jws.decode_complete, jws.verify):
        check(token, SECRETS["HS256"], ["HS256"], max_size=len(token))
        with pytest.raises(MalformedTokenError):
            check(token, SECRETS["HS256"], ["HS256"], max_size=len(token) - 1)
    big = jws.encode(b"x" * 7000, SECRETS["HS256"], "HS256")
    with pytest.raises(MalformedTokenError):
        jws.decode_complete(big, SECRETS["HS256"], ["HS256"])


def test_a_fourth_segment_is_named_in_the_error() -> None:
    token = jws.encode(b"p", SECRETS["HS256"], "HS256")
    for extra in (".AAAA", "."):
        with pytest.raises(MalformedTokenError, match="exactly three segments"):
            jws.decode(token + extra, SECRETS["HS256"], ["HS256"])


def test_default_max_size_is_8_kib() -> None:
    assert jws.DEFAULT_MAX_TOKEN_SIZE == 8192
    filler = b"x" * 7000
    token = jws.encode(filler, SECRETS["HS256"], "HS256")
    assert len(token) > 8192
    with pytest.raises(MalformedTokenError):
        jws.decode(token, SECRETS["HS256"], ["HS256"])
    with pytest.raises(MalformedTokenError):
        jws.decode(token.encode(), SECRETS["HS256"], ["HS256"])
