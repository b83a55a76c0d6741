"""Tests for jwtlite.keys: Key, KeySet, loading (PEM, DER, SSH, JWK), thumbprints, key files."""

from __future__ import annotations

import base64
import datetime
import json
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

import jwtlite
from jwtlite import AlgorithmNotAllowedError, InvalidKeyError, Key, KeySet
from jwtlite._encoding import b64url_encode
from jwtlite._jwk import public_members
from jwtlite.service.signing.keyfile import load_or_create_key_file

from support.keys import openssh_public, private_der, private_pem, public_der, public_pem

# Generated once per module: RSA generation is the slow part of this file.
RSA_PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_PRIVATE = {
    "ES256": ec.generate_private_key(ec.SECP256R1()),
    "ES384": ec.generate_private_key(ec.SECP384R1()),
    "ES512": ec.generate_private_key(ec.SECP521R1()),
}
ED25519_PRIVATE = ed25519.Ed25519PrivateKey.generate()
ED448_PRIVATE = ed448.Ed448PrivateKey.generate()

ALL_ALGORITHMS = [
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
]
ASYMMETRIC_ALGORITHMS = [alg for alg in ALL_ALGORITHMS if not alg.startswith("HS")]
PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}

# RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
RFC7638_JWK = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
        "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
        "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def private_key_for(algorithm: str) -> Any:
    if algorithm.startswith(("RS", "PS")):
        return RSA_PRIVATE
    if algorithm.startswith("ES"):
        return EC_PRIVATE[algorithm]
    return ED25519_PRIVATE


def self_signed_certificate_pem(private_key: Any) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jwtlite test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(private_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def secret_key(kid: str) -> Key:
    return Key(kid.encode().ljust(32, b"-"), "HS256", kid=kid)


def assert_signs_and_verifies(signer: Key, verifier: Key) -> None:
    signature = signer.sign(b"signing input")
    assert verifier.verify(b"signing input", signature)
    assert not verifier.verify(b"signing inpuT", signature)


# -- generation ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated() -> dict[str, Key]:
    return {alg: Key.generate(alg) for alg in ALL_ALGORITHMS}


@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
def test_generate_makes_a_signing_key(generated: dict[str, Key], algorithm: str) -> None:
    key = generated[algorithm]
    assert key.algorithm == algorithm
    assert key.can_sign
    assert_signs_and_verifies(key, key)
    token = jwtlite.encode({"sub": "1"}, key)
    assert jwtlite.decode(token, key, [algorithm]) == {"sub": "1"}


@pytest.mark.parametrize(("algorithm", "length"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_generated_hmac_secret_is_as_long_as_the_hash(algorithm: str, length: int) -> None:
    key = Key.generate(algorithm)
    assert key.is_symmetric
    assert key.kid is None
    assert len(key.sign(b"x")) == length
    assert Key.generate(algorithm).sign(b"x") != key.sign(b"x")


@pytest.mark.parametrize("algorithm", ASYMMETRIC_ALGORITHMS)
def test_generated_asymmetric_key_kid_is_its_thumbprint(
    generated: dict[str, Key], algorithm: str
) -> None:
    key = generated[algorithm]
    assert not key.is_symmetric
    assert key.kid == key.thumbprint()


def unlucky_then_plain(first: bytes) -> Callable[[int], bytes]:
    """A urandom whose first draw begins with ``first`` and whose later draws are plain."""
    draws = [first]

    def urandom(size: int) -> bytes:
        head = draws.pop() if draws else b"plain"
        return head.ljust(size, b"\x00")[:size]

    return urandom


# First bytes that made the old prefix check refuse a random secret: b"{" alone is ~1 draw
# in 256; b"0" (a DER SEQUENCE tag) another 1 in 256, refused by a mutant of the DER check.
UNLUCKY_STARTS = {
    "brace": b"{",
    "space-brace": b" {",
    "newline-brace": b"\n{",
    "zero": b"0",
    "der-sequence-header": b"0\x82\x01\x22",
    "ssh-rsa": b"ssh-rsa",
    "pem-armour": b"-----BEGIN",
}


@pytest.mark.parametrize("first_bytes", UNLUCKY_STARTS.values(), ids=UNLUCKY_STARTS.keys())
def test_generate_uses_its_first_random_draw_whatever_it_starts_with(
    monkeypatch: pytest.MonkeyPatch, first_bytes: bytes
) -> None:
    monkeypatch.setattr(os, "urandom", unlucky_then_plain(first_bytes))
    key = Key.generate("HS256")
    assert key.secret().startswith(first_bytes)
    assert key.verify(b"x", key.sign(b"x"))


@pytest.mark.parametrize("first_bytes", UNLUCKY_STARTS.values(), ids=UNLUCKY_STARTS.keys())
def test_random_secret_is_accepted_whatever_it_starts_with(first_bytes: bytes) -> None:
    """os.urandom(32) always makes a usable HS256 key: only key material is refused."""
    for _ in range(20):
        secret = first_bytes + os.urandom(32)
        assert Key(secret, "HS256").secret() == secret


@pytest.mark.parametrize(
    "secret",
    [
        b'{"kty": "oct", "note": "a JWK without k is no key"}',
        b'{"kty": "RSA", "n": "not base64url!", "e": "AQAB"}',
        b'{"greeting": "JSON that names no key at all"}',
        b'{"keys": "not a list, so not a JWK Set"}',
    ],
    ids=["oct-without-k", "rsa-with-bad-n", "no-kty", "keys-not-a-list"],
)
def test_json_that_is_not_key_material_is_a_valid_secret(secret: bytes) -> None:
    assert Key(secret, "HS256").secret() == secret


def test_generate_accepts_every_random_secret() -> None:
    # 2,000 draws: with the old b"{" check, the chance that none was refused was 0.04 %.
    for _ in range(2000):
        Key(os.urandom(32), "HS256")


@pytest.mark.parametrize("first_bytes", [b"{", b"\t{"], ids=["brace", "tab-brace"])
def test_created_key_file_loads_back_after_an_unlucky_draw(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, first_bytes: bytes
) -> None:
    monkeypatch.setattr(os, "urandom", unlucky_then_plain(first_bytes))
    path = tmp_path / "signing.key"
    created = load_or_create_key_file(str(path), "HS256", create=True)
    loaded = load_or_create_key_file(str(path), "HS256", create=False)
    assert loaded.sign(b"x") == created.sign(b"x")


def test_generate_honours_explicit_kid() -> None:
    assert Key.generate("ES256", kid="k1").kid == "k1"
    assert Key.generate("HS256", kid="k2").kid == "k2"


@pytest.mark.parametrize("algorithm", ["none", "None", "HS1", "RS1", "ES256K", "", "hs256"])
def test_generate_refuses_unknown_algorithms(algorithm: str) -> None:
    with pytest.raises(AlgorithmNotAllowedError) as info:
        Key.generate(algorithm)
    assert info.value.algorithm == algorithm


# -- construction checks ---------------------------------------------------------------------


@pytest.mark.parametrize(("algorithm", "length"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_hmac_secret_shorter_than_hash_is_refused(algorithm: str, length: int) -> None:
    Key(b"k" * length, algorithm)
    with pytest.raises(InvalidKeyError):
        Key(b"k" * (length - 1), algorithm)


def test_hmac_secret_may_be_str() -> None:
    as_str = Key("s" * 32, "HS256")
    as_bytes = Key(b"s" * 32, "HS256")
    assert as_str.sign(b"x") == as_bytes.sign(b"x")


LOOKS_ASYMMETRIC = {
    "rsa-public-pem": lambda: public_pem(RSA_PRIVATE),
    "rsa-public-pem-str": lambda: public_pem(RSA_PRIVATE).decode(),
    "rsa-private-pem": lambda: private_pem(RSA_PRIVATE),
    "pem-with-leading-whitespace": lambda: b"\n  " + public_pem(RSA_PRIVATE),
    "certificate-pem": lambda: self_signed_certificate_pem(EC_PRIVATE["ES256"]),
    "ssh-rsa": lambda: openssh_public(RSA_PRIVATE),
    "ssh-ed25519": lambda: openssh_public(ED25519_PRIVATE),
    "ecdsa-sha2": lambda: openssh_public(EC_PRIVATE["ES256"]),
    "jwk-json": lambda: '{"kty":"oct","k":"' + "A" * 43 + '"}',
    "ec-jwk-json-after-whitespace": lambda: (
        " \n" + json.dumps(Key(EC_PRIVATE["ES256"], "ES256").public_jwk())
    ),
    "jwk-set-json": lambda: json.dumps({"keys": [Key(RSA_PRIVATE, "RS256").public_jwk()]}),
    "rsa-public-der": lambda: public_der(RSA_PRIVATE),
    "ec-private-der": lambda: private_der(EC_PRIVATE["ES256"]),
    "certificate-pem-after-newline": lambda: (
        b"\n" + self_signed_certificate_pem(EC_PRIVATE["ES256"])
    ),
}


@pytest.mark.parametrize("make", LOOKS_ASYMMETRIC.values(), ids=LOOKS_ASYMMETRIC.keys())
def test_asymmetric_looking_material_is_refused_as_hmac_secret(make: Callable[[], Any]) -> None:
    with pytest.raises(InvalidKeyError):
        Key(make(), "HS256")


WRONG_MATERIAL = {
    "rsa-object-for-hs256": (lambda: RSA_PRIVATE, "HS256"),
    "rsa-public-object-for-hs256": (RSA_PRIVATE.public_key, "HS256"),
    "int-for-hs256": (lambda: 12345678901234567890123456789012, "HS256"),
    "none-for-hs256": (lambda: None, "HS256"),
    "ec-for-rs256": (lambda: EC_PRIVATE["ES256"], "RS256"),
    "ec-public-for-ps256": (EC_PRIVATE["ES256"].public_key, "PS256"),
    "rsa-for-es256": (lambda: RSA_PRIVATE, "ES256"),
    "p384-for-es256": (lambda: EC_PRIVATE["ES384"], "ES256"),
    "p384-public-for-es256": (EC_PRIVATE["ES384"].public_key, "ES256"),
    "p256-for-es512": (lambda: EC_PRIVATE["ES256"], "ES512"),
    "ed25519-for-es256": (lambda: ED25519_PRIVATE, "ES256"),
    "ec-for-eddsa": (lambda: EC_PRIVATE["ES256"], "EdDSA"),
    "secret-for-rs256": (lambda: b"s" * 64, "RS256"),
    "garbage-pem": (
        lambda: b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "RS256",
    ),
    "garbage-private-pem": (
        lambda: b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "RS256",
    ),
    "garbage-ssh": (lambda: b"ssh-rsa AAAA", "RS256"),
    "ec-pem-for-rs256": (lambda: public_pem(EC_PRIVATE["ES256"]), "RS256"),
    "rsa-der-for-es256": (lambda: public_der(RSA_PRIVATE), "ES256"),
    "encrypted-pem-without-password": (
        lambda: private_pem(EC_PRIVATE["ES256"], password=b"pw"),
        "ES256",
    ),
}


@pytest.mark.parametrize(
    ("make", "algorithm"), WRONG_MATERIAL.values(), ids=list(WRONG_MATERIAL.keys())
)
def test_material_that_cannot_serve_the_algorithm_is_refused(
    make: Callable[[], Any], algorithm: str
) -> None:
    with pytest.raises(InvalidKeyError):
        Key(make(), algorithm)


def test_rsa_keys_below_2048_bits_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    with pytest.raises(InvalidKeyError):
        Key(small, "RS256")
    with pytest.raises(InvalidKeyError):
        Key(small.public_key(), "PS256")


@pytest.mark.parametrize("kid", [1, b"kid", ["k"], {"k": 1}], ids=["int", "bytes", "list", "dict"])
def test_kid_must_be_a_string(kid: Any) -> None:
    with pytest.raises(InvalidKeyError):
        Key(b"k" * 32, "HS256", kid=kid)


def test_key_for_unknown_algorithm_is_refused() -> None:
    with pytest.raises(AlgorithmNotAllowedError):
        Key(b"k" * 32, "none")


# -- loading ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("private_key", "algorithm"),
    [
        (EC_PRIVATE["ES256"], "ES256"),
        (EC_PRIVATE["ES384"], "ES384"),
        (EC_PRIVATE["ES512"], "ES512"),
        (ED25519_PRIVATE, "EdDSA"),
        (ED448_PRIVATE, "EdDSA"),
    ],
    ids=["p256", "p384", "p521", "ed25519", "ed448"],
)
def test_from_pem_infers_the_algorithm_of_ec_and_okp_keys(private_key: Any, algorithm: str) -> None:
    signer = Key.from_pem(private_pem(private_key))
    verifier = Key.from_pem(public_pem(private_key))
    assert signer.algorithm == verifier.algorithm == algorithm
    assert signer.can_sign
    assert not verifier.can_sign
    assert signer.kid == verifier.kid == signer.thumbprint()
    assert_signs_and_verifies(signer, verifier)


def test_from_pem_needs_the_algorithm_for_rsa() -> None:
    with pytest.raises(InvalidKeyError):
        Key.from_pem(private_pem(RSA_PRIVATE))
    for algorithm in ("RS256", "PS512"):
        key = Key.from_pem(private_pem(RSA_PRIVATE), algorithm)
        assert key.algorithm == algorithm
        assert_signs_and_verifies(key, Key.from_pem(public_pem(RSA_PRIVATE), algorithm))


def test_from_pem_accepts_str_and_explicit_kid() -> None:
    key = Key.from_pem(public_pem(EC_PRIVATE["ES256"]).decode(), kid="mine")
    assert key.kid == "mine"
    assert key.algorithm == "ES256"


def test_from_pem_reads_the_public_key_of_a_certificate() -> None:
    key = Key.from_pem(self_signed_certificate_pem(EC_PRIVATE["ES256"]))
    assert not key.can_sign
    assert_signs_and_verifies(Key(EC_PRIVATE["ES256"], "ES256"), key)


def test_from_pem_decrypts_with_a_password() -> None:
    pem = private_pem(EC_PRIVATE["ES384"], password=b"correct horse")
    key = Key.from_pem(pem, password=b"correct horse")
    assert key.can_sign
    with pytest.raises(InvalidKeyError):
        Key.from_pem(pem, password=b"wrong")
    with pytest.raises(InvalidKeyError):
        Key.from_pem(pem)


@pytest.mark.parametrize(
    "pem",
    [
        b"-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----\n",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
        b"not a pem at all",
    ],
    ids=["public", "certificate", "private", "not-pem"],
)
def test_from_pem_refuses_garbage(pem: bytes) -> None:
    with pytest.raises(InvalidKeyError):
        Key.from_pem(pem, "ES256")


@pytest.mark.parametrize("algorithm", ASYMMETRIC_ALGORITHMS)
def test_der_private_and_public_keys_load(algorithm: str) -> None:
    private_key = private_key_for(algorithm)
    signer = Key(private_der(private_key), algorithm)
    verifier = Key(public_der(private_key), algorithm)
    assert signer.can_sign
    assert not verifier.can_sign
    assert_signs_and_verifies(signer, verifier)


@pytest.mark.parametrize(
    ("private_key", "algorithm"),
    [(RSA_PRIVATE, "RS256"), (EC_PRIVATE["ES256"], "ES256"), (ED25519_PRIVATE, "EdDSA")],
    ids=["ssh-rsa", "ecdsa-sha2-nistp256", "ssh-ed25519"],
)
def test_openssh_public_keys_load_for_verifying(private_key: Any, algorithm: str) -> None:
    verifier = Key(openssh_public(private_key), algorithm)
    assert not verifier.can_sign
    assert_signs_and_verifies(Key(private_key, algorithm), verifier)
    assert Key(openssh_public(private_key).decode(), algorithm).verify(
        b"x", Key(private_key, algorithm).sign(b"x")
    )


def test_public_key_drops_the_private_part() -> None:
    key = Key(EC_PRIVATE["ES256"], "ES256", kid="k")
    public = key.public_key()
    assert public.kid == "k"
    assert not public.can_sign
    with pytest.raises(InvalidKeyError):
        public.sign(b"x")
    assert public.verify(b"x", key.sign(b"x"))
    secret = Key(b"s" * 32, "HS256")
    assert secret.public_key() is secret


def test_private_and_public_pem_round_trip() -> None:
    key = Key(EC_PRIVATE["ES256"], "ES256")
    assert Key.from_pem(key.private_pem()).can_sign
    assert Key.from_pem(key.public_pem()).thumbprint() == key.thumbprint()
    with pytest.raises(InvalidKeyError):
        key.public_key().private_pem()
    with pytest.raises(InvalidKeyError):
        Key(b"s" * 32, "HS256").public_pem()


def test_repr_does_not_leak_the_secret() -> None:
    secret = b"super-secret-value-0123456789abcdef"
    text = repr(Key(secret, "HS256", kid="k"))
    assert "super-secret" not in text
    assert "HS256" in text


# -- JWK -------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ASYMMETRIC_ALGORITHMS)
def test_public_jwk_round_trips(generated: dict[str, Key], algorithm: str) -> None:
    key = generated[algorithm]
    jwk = key.public_jwk()
    assert jwk["alg"] == algorithm
    assert jwk["use"] == "sig"
    assert jwk["kid"] == key.kid
    assert not PRIVATE_JWK_MEMBERS & set(jwk)
    loaded = Key.from_jwk(jwk)
    assert loaded.algorithm == algorithm
    assert loaded.kid == key.kid
    assert not loaded.can_sign
    assert_signs_and_verifies(key, loaded)


def test_public_jwk_of_ed448_key() -> None:
    jwk = Key(ED448_PRIVATE, "EdDSA").public_jwk()
    assert jwk["kty"] == "OKP"
    assert jwk["crv"] == "Ed448"
    assert_signs_and_verifies(Key(ED448_PRIVATE, "EdDSA"), Key.from_jwk(jwk))


def test_symmetric_key_has_no_public_jwk_or_thumbprint() -> None:
    secret = Key(b"s" * 32, "HS256")
    with pytest.raises(InvalidKeyError):
        secret.public_jwk()
    with pytest.raises(InvalidKeyError):
        secret.thumbprint()


def test_ec_public_jwk_coordinates_are_full_length() -> None:
    jwk = Key(EC_PRIVATE["ES512"], "ES512").public_jwk()
    assert jwk["crv"] == "P-521"
    # 66 bytes -> 88 base64url characters, whatever the leading bits are.
    assert len(jwk["x"]) == len(jwk["y"]) == 88


def rsa_private_jwk(private_key: rsa.RSAPrivateKey, *, crt: bool = True) -> dict[str, str]:
    def uint(value: int) -> str:
        return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).decode()

    numbers = private_key.private_numbers()
    jwk = {
        "kty": "RSA",
        "n": uint(numbers.public_numbers.n),
        "e": uint(numbers.public_numbers.e),
        "d": uint(numbers.d),
    }
    if crt:
        jwk.update(
            p=uint(numbers.p),
            q=uint(numbers.q),
            dp=uint(numbers.dmp1),
            dq=uint(numbers.dmq1),
            qi=uint(numbers.iqmp),
        )
    return jwk


def test_rsa_private_jwk_loads() -> None:
    key = Key.from_jwk(rsa_private_jwk(RSA_PRIVATE), "RS256")
    assert key.can_sign
    assert_signs_and_verifies(key, Key(RSA_PRIVATE.public_key(), "RS256"))


def _without(jwk: dict[str, str], *names: str) -> dict[str, str]:
    return {name: value for name, value in jwk.items() if name not in names}


INCOMPLETE_RSA_PRIVATE_JWKS = {
    "d-only": lambda: rsa_private_jwk(RSA_PRIVATE, crt=False),
    "no-qi": lambda: _without(rsa_private_jwk(RSA_PRIVATE), "qi"),
    "no-p": lambda: _without(rsa_private_jwk(RSA_PRIVATE), "p"),
    "multi-prime-oth": lambda: {**rsa_private_jwk(RSA_PRIVATE), "oth": []},
    # Audit F5: d-only with a huge modulus and exponent froze the process for a minute and a
    # half in rsa_recover_prime_factors; now refused before any arithmetic.
    "d-only-huge": lambda: {
        "kty": "RSA",
        "n": b64url_encode(((1 << 16383) | secrets.randbits(16383) | 1).to_bytes(2048)).decode(),
        "e": "AQAB",
        "d": b64url_encode(secrets.token_bytes(2047) + b"\x01").decode(),
    },
}


@pytest.mark.parametrize(
    "make", INCOMPLETE_RSA_PRIVATE_JWKS.values(), ids=INCOMPLETE_RSA_PRIVATE_JWKS.keys()
)
def test_rsa_private_jwk_needs_every_crt_member(make: Callable[[], dict[str, str]]) -> None:
    with pytest.raises(InvalidKeyError, match=r"RFC 7518|oth"):
        Key.from_jwk(make(), "RS256")


def _huge_rsa_public_key(bits: int) -> rsa.RSAPublicKey:
    # Not a real RSA modulus (no factors known), but OpenSSL loads any odd n as a public key.
    return rsa.RSAPublicNumbers(
        65537, (1 << (bits - 1)) | secrets.randbits(bits - 1) | 1
    ).public_key()


OVERSIZED_RSA = {
    "jwk": lambda: {**public_members(_huge_rsa_public_key(16400)), "alg": "RS256"},
    "jwk-65536-bits": lambda: {**public_members(_huge_rsa_public_key(65536)), "alg": "RS256"},
    "key-object": lambda: _huge_rsa_public_key(16400),
    "pem": lambda: _huge_rsa_public_key(16400).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ),
}


@pytest.mark.parametrize("make", OVERSIZED_RSA.values(), ids=OVERSIZED_RSA.keys())
def test_rsa_keys_over_16384_bits_are_refused(make: Callable[[], Any]) -> None:
    material = make()
    load = Key.from_jwk if isinstance(material, dict) else lambda key: Key(key, "RS256")
    with pytest.raises(InvalidKeyError, match="more than 16384 bits"):
        load(material)


def test_jwk_may_be_json_text() -> None:
    key = Key(EC_PRIVATE["ES256"], "ES256")
    loaded = Key.from_jwk(json.dumps(key.public_jwk()))
    assert loaded.thumbprint() == key.thumbprint()


def test_oct_jwk_loads_as_hmac_secret() -> None:
    jwk = {"kty": "oct", "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T", "kid": "s1"}
    key = Key.from_jwk(jwk, "HS256")
    assert key.kid == "s1"
    assert key.is_symmetric
    with pytest.raises(InvalidKeyError):
        Key.from_jwk(jwk)  # an oct JWK without alg does not say which HMAC


def test_jwk_alg_must_agree_with_the_requested_algorithm() -> None:
    jwk = Key(RSA_PRIVATE, "RS256").public_jwk()
    with pytest.raises(InvalidKeyError):
        Key.from_jwk(jwk, "PS256")
    assert Key.from_jwk(jwk, "RS256").algorithm == "RS256"


def _ec_jwk(**changes: Any) -> dict[str, Any]:
    jwk: dict[str, Any] = dict(Key(EC_PRIVATE["ES256"], "ES256").public_jwk())
    jwk.update(changes)
    return {name: value for name, value in jwk.items() if value is not None}


BAD_JWKS = {
    "not-an-object": lambda: ["kty", "EC"],
    "invalid-json-text": lambda: '{"kty":',
    "duplicate-member-json-text": lambda: '{"kty":"oct","kty":"oct","k":"AAAA"}',
    "unknown-kty": lambda: {"kty": "XYZ"},
    "missing-kty": lambda: {"k": "AAAA"},
    "oct-missing-k": lambda: {"kty": "oct", "alg": "HS256"},
    "oct-padded-k": lambda: {"kty": "oct", "alg": "HS256", "k": "A" * 42 + "E="},
    "oct-k-not-string": lambda: {"kty": "oct", "alg": "HS256", "k": 5},
    "oct-too-short": lambda: {"kty": "oct", "alg": "HS256", "k": "AAAA"},
    "ec-unknown-curve": lambda: _ec_jwk(crv="P-192"),
    "ec-secp256k1": lambda: _ec_jwk(crv="secp256k1"),
    "ec-short-x": lambda: _ec_jwk(x="AAAA"),
    "ec-missing-y": lambda: _ec_jwk(y=None),
    "ec-point-not-on-curve": lambda: _ec_jwk(y="A" * 42 + "E"),
    "ec-private-does-not-match": lambda: _ec_jwk(
        d=Key(EC_PRIVATE["ES256"], "ES256").public_jwk()["x"]
    ),
    "ec-curve-disagrees-with-alg": lambda: _ec_jwk(alg="ES384"),
    "okp-unknown-curve": lambda: {"kty": "OKP", "crv": "X25519", "x": "A" * 43},
    "okp-wrong-length": lambda: {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
    "rsa-missing-n": lambda: {"kty": "RSA", "e": "AQAB", "alg": "RS256"},
    "rsa-too-small": lambda: {"kty": "RSA", "e": "AQAB", "n": "AQAB" * 10, "alg": "RS256"},
    "kid-not-string": lambda: _ec_jwk(kid=7),
    "alg-none": lambda: _ec_jwk(alg="none"),
}


@pytest.mark.parametrize("make", BAD_JWKS.values(), ids=BAD_JWKS.keys())
def test_bad_jwks_are_refused(make: Callable[[], Any]) -> None:
    with pytest.raises((InvalidKeyError, AlgorithmNotAllowedError)):
        Key.from_jwk(make())


def test_okp_private_jwk_must_match_its_public_part() -> None:
    raw = ED25519_PRIVATE.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    jwk = Key(ED25519_PRIVATE, "EdDSA").public_jwk()
    good = {**jwk, "d": b64url_encode(raw).decode()}
    assert Key.from_jwk(good).can_sign
    other = Key(ed25519.Ed25519PrivateKey.generate(), "EdDSA").public_jwk()["x"]
    with pytest.raises(InvalidKeyError):
        Key.from_jwk({**good, "x": other})


# -- what a JWK says its key is for (use, key_ops) --------------------------------------------


def ec_private_jwk(**changes: Any) -> dict[str, Any]:
    numbers = EC_PRIVATE["ES256"].private_numbers()
    jwk: dict[str, Any] = {
        **Key(EC_PRIVATE["ES256"], "ES256").public_jwk(),
        "d": b64url_encode(numbers.private_value.to_bytes(32, "big")).decode(),
    }
    jwk.update(changes)
    return {name: value for name, value in jwk.items() if value is not None}


# Every way a JWK reaches the library, each making a key for ES256 (None: no key made).
JWK_LOADERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "Key.from_jwk": Key.from_jwk,
    "Key.from_jwk-json-text": lambda jwk: Key.from_jwk(json.dumps(jwk)),
    "Key(jwk-dict)": lambda jwk: Key(jwk, "ES256"),
    "jws.decode(jwk-dict)": lambda jwk: jwtlite.jws.decode(
        jwtlite.jws.encode(b"p", EC_PRIVATE["ES256"], "ES256"), jwk, ["ES256"]
    ),
    "KeySet.from_jwks": lambda jwk: KeySet.from_jwks({"keys": [{"kid": "k", **jwk}]}),
}

NOT_FOR_SIGNATURES = {
    "use-enc": {"use": "enc"},
    "key-ops-encrypt": {"key_ops": ["encrypt"]},
    "key-ops-encrypt-decrypt": {"key_ops": ["encrypt", "decrypt"]},
    "key-ops-wrap-key": {"key_ops": ["wrapKey"]},
}


@pytest.mark.parametrize("loader", JWK_LOADERS.values(), ids=JWK_LOADERS.keys())
@pytest.mark.parametrize("changes", NOT_FOR_SIGNATURES.values(), ids=NOT_FOR_SIGNATURES.keys())
def test_jwk_not_for_signatures_is_refused_everywhere(
    loader: Callable[[dict[str, Any]], Any], changes: dict[str, Any]
) -> None:
    """Wycheproof: a key_ops ["encrypt"] JWK verified a token; use "enc" was checked only
    for a dict given to jws.decode. A JWK Set leaves such keys out, so none is left."""
    for jwk in (ec_private_jwk(**changes), _ec_jwk(**changes)):
        with pytest.raises(InvalidKeyError):
            loader(jwk)


MALFORMED_INTENT = {
    "key-ops-one-string-with-a-comma": {"key_ops": ["sign, verify"]},  # as in Wycheproof
    "key-ops-a-string": {"key_ops": "verify"},
    "key-ops-an-object": {"key_ops": {"verify": True}},
    "key-ops-empty": {"key_ops": []},
    "key-ops-repeated": {"key_ops": ["verify", "verify"]},
    "key-ops-not-strings": {"key_ops": [1]},
    "key-ops-signature-and-encryption": {"key_ops": ["verify", "encrypt"]},
    "use-not-a-string": {"use": 1},
    "use-sig-with-key-ops-encrypt": {"use": "sig", "key_ops": ["encrypt"]},
}


@pytest.mark.parametrize("loader", JWK_LOADERS.values(), ids=JWK_LOADERS.keys())
@pytest.mark.parametrize("changes", MALFORMED_INTENT.values(), ids=MALFORMED_INTENT.keys())
def test_jwk_with_malformed_use_or_key_ops_is_refused(
    loader: Callable[[dict[str, Any]], Any], changes: dict[str, Any]
) -> None:
    with pytest.raises(InvalidKeyError):
        loader(_ec_jwk(**changes))


def test_jwk_key_ops_verify_makes_a_verifying_key() -> None:
    key = Key.from_jwk(ec_private_jwk(key_ops=["verify"]))
    assert not key.can_sign
    assert key.can_verify
    with pytest.raises(InvalidKeyError):
        key.sign(b"data")
    with pytest.raises(InvalidKeyError):
        key.private_pem()
    assert key.verify(b"data", Key(EC_PRIVATE["ES256"], "ES256").sign(b"data"))


def test_jwk_key_ops_sign_makes_a_key_that_does_not_verify() -> None:
    key = Key.from_jwk(ec_private_jwk(key_ops=["sign"]))
    assert key.can_sign
    assert not key.can_verify
    signature = key.sign(b"data")
    with pytest.raises(InvalidKeyError):
        key.verify(b"data", signature)
    token = jwtlite.encode({"sub": "1"}, key)
    with pytest.raises(InvalidKeyError):
        jwtlite.decode(token, key, ["ES256"])
    # The public half is what the signer publishes for its verifiers.
    assert key.public_key().verify(b"data", signature)


def test_hmac_jwk_key_ops_are_honoured() -> None:
    jwk = {"kty": "oct", "alg": "HS256", "k": b64url_encode(b"s" * 32).decode()}
    verify_only = Key.from_jwk({**jwk, "key_ops": ["verify"]})
    assert not verify_only.can_sign
    assert verify_only.verify(b"x", Key(b"s" * 32, "HS256").sign(b"x"))
    sign_only = Key.from_jwk({**jwk, "key_ops": ["sign"]})
    with pytest.raises(InvalidKeyError):
        sign_only.verify(b"x", sign_only.sign(b"x"))


@pytest.mark.parametrize(
    "changes",
    [{}, {"use": "sig"}, {"key_ops": ["sign", "verify"]}, {"key_ops": ["verify", "sign"]}],
    ids=["neither", "use-sig", "key-ops-both", "key-ops-both-reversed"],
)
def test_jwk_for_signatures_signs_and_verifies(changes: dict[str, Any]) -> None:
    key = Key.from_jwk(ec_private_jwk(**changes))
    assert key.can_sign
    assert key.can_verify
    assert_signs_and_verifies(key, key)


# -- thumbprints (RFC 7638) ------------------------------------------------------------------


def test_thumbprint_matches_rfc7638_example() -> None:
    key = Key.from_jwk(RFC7638_JWK)
    assert key.kid == "2011-04-29"
    assert key.thumbprint() == RFC7638_THUMBPRINT


def test_thumbprint_ignores_optional_members() -> None:
    bare = {name: RFC7638_JWK[name] for name in ("kty", "n", "e")}
    assert Key.from_jwk(bare, "PS256").thumbprint() == RFC7638_THUMBPRINT


def test_thumbprint_is_the_same_for_private_and_public_key() -> None:
    key = Key(EC_PRIVATE["ES384"], "ES384")
    assert key.thumbprint() == key.public_key().thumbprint()
    assert key.thumbprint() != Key(EC_PRIVATE["ES256"], "ES256").thumbprint()


# -- KeySet ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyset_keys() -> list[Key]:
    return [
        Key(EC_PRIVATE["ES256"], "ES256", kid="ec"),
        Key(ED25519_PRIVATE, "EdDSA", kid="ed"),
        Key(RSA_PRIVATE, "PS256", kid="rsa"),
    ]


def test_keyset_signs_with_current_and_writes_its_kid(keyset_keys: list[Key]) -> None:
    keyset = KeySet(keyset_keys, current="ed")
    assert keyset.current.kid == "ed"
    token = jwtlite.encode({"sub": "1"}, keyset)
    assert jwtlite.get_unverified_header(token)["kid"] == "ed"
    assert jwtlite.get_unverified_header(token)["alg"] == "EdDSA"
    assert jwtlite.decode(token, keyset, ["EdDSA", "ES256"]) == {"sub": "1"}


def test_keyset_current_defaults_to_the_first_key(keyset_keys: list[Key]) -> None:
    assert KeySet(keyset_keys).current.kid == "ec"
    assert len(KeySet(keyset_keys)) == 3
    assert [key.kid for key in KeySet(keyset_keys)] == ["ec", "ed", "rsa"]


def test_keyset_verifies_by_kid(keyset_keys: list[Key]) -> None:
    keyset = KeySet(keyset_keys)
    for key in keyset_keys:
        token = jwtlite.encode({"k": key.kid}, key)
        assert jwtlite.decode(token, keyset, [key.algorithm]) == {"k": key.kid}


def test_keyset_get(keyset_keys: list[Key]) -> None:
    keyset = KeySet(keyset_keys)
    assert keyset.get("rsa") is keyset_keys[2]
    for kid in ("missing", None, 1, ["ec"]):
        with pytest.raises(InvalidKeyError):
            keyset.get(kid)


def test_keyset_construction_refusals(keyset_keys: list[Key]) -> None:
    with pytest.raises(InvalidKeyError):
        KeySet([])
    with pytest.raises(InvalidKeyError):
        KeySet([Key(b"s" * 32, "HS256")])  # no kid
    with pytest.raises(InvalidKeyError):
        KeySet([Key(b"s" * 32, "HS256", kid="")])
    with pytest.raises(InvalidKeyError):
        KeySet([keyset_keys[0], Key(EC_PRIVATE["ES384"], "ES384", kid="ec")])
    with pytest.raises(InvalidKeyError):
        KeySet(keyset_keys, current="nope")
    with pytest.raises(InvalidKeyError):
        KeySet([b"s" * 32])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param(
            lambda: [Key(b"s" * 32, "HS256", kid="hs"), Key(RSA_PRIVATE, "RS256", kid="rs")]
        ),
        pytest.param(
            lambda: [Key(EC_PRIVATE["ES256"].public_key(), "ES256", kid="ec"), secret_key("hs")]
        ),
    ],
    ids=["secret-then-rsa", "ec-public-then-secret"],
)
def test_keyset_refuses_secrets_mixed_with_asymmetric_keys(keys: Callable[[], list[Key]]) -> None:
    """Wycheproof jws_mixedSymmetryKeyset: whoever holds the set could mint tokens that its
    asymmetric kids are trusted for; and a token's kid would choose the kind of trust."""
    with pytest.raises(InvalidKeyError, match="mixes"):
        KeySet(keys())


def test_keyset_rotation_to_another_kind_of_key_is_refused() -> None:
    with pytest.raises(InvalidKeyError):
        KeySet([secret_key("k0")]).rotated(Key.generate("ES256"))


def test_keyset_rotation_keeps_old_keys_for_verifying(keyset_keys: list[Key]) -> None:
    old = KeySet(keyset_keys[:1])
    old_token = jwtlite.encode({"v": 1}, old)
    new_key = Key.generate("ES256")
    rotated = old.rotated(new_key)
    assert rotated.current is new_key
    assert old.current.kid == "ec"  # the original set is unchanged
    new_token = jwtlite.encode({"v": 2}, rotated)
    assert jwtlite.get_unverified_header(new_token)["kid"] == new_key.kid
    assert jwtlite.decode(old_token, rotated, ["ES256"]) == {"v": 1}
    assert jwtlite.decode(new_token, rotated, ["ES256"]) == {"v": 2}
    with pytest.raises(InvalidKeyError):
        jwtlite.decode(new_token, old, ["ES256"])


def test_keyset_rotation_keep_bounds_previous_keys_newest_first() -> None:
    keyset = KeySet([secret_key("k0")])
    for index in range(1, 4):
        keyset = keyset.rotated(secret_key(f"k{index}"), keep=2)
    assert [key.kid for key in keyset] == ["k3", "k2", "k1"]


def test_keyset_rotation_with_keep_still_verifies_the_just_retired_key() -> None:
    keyset = KeySet([secret_key("k0")])
    keyset = keyset.rotated(secret_key("k1"), keep=1)
    in_flight = jwtlite.encode({"sub": "1"}, keyset)  # signed by k1
    keyset = keyset.rotated(secret_key("k2"), keep=1)
    assert jwtlite.decode(in_flight, keyset, ["HS256"]) == {"sub": "1"}


def test_jwks_lists_public_keys_only(keyset_keys: list[Key]) -> None:
    jwks = KeySet(keyset_keys).jwks()
    assert [jwk["kid"] for jwk in jwks["keys"]] == ["ec", "ed", "rsa"]
    for jwk in jwks["keys"]:
        assert not PRIVATE_JWK_MEMBERS & set(jwk)
        assert Key.from_jwk(jwk).kid == jwk["kid"]


def test_jwks_of_a_set_of_secrets_is_empty() -> None:
    assert KeySet([secret_key("k0"), secret_key("k1")]).jwks() == {"keys": []}


def test_jwks_verifies_tokens_of_the_signing_set(keyset_keys: list[Key]) -> None:
    signing = KeySet(keyset_keys, current="ec")
    published = KeySet([Key.from_jwk(jwk) for jwk in signing.jwks()["keys"]])
    token = jwtlite.encode({"sub": "x"}, signing)
    assert jwtlite.decode(token, published, ["ES256"]) == {"sub": "x"}


# -- JWK Sets (RFC 7517 §5) -------------------------------------------------------------------


def test_from_jwks_loads_a_published_set(keyset_keys: list[Key]) -> None:
    signing = KeySet(keyset_keys)
    for document in (signing.jwks(), json.dumps(signing.jwks())):
        published = KeySet.from_jwks(document)
        assert [key.kid for key in published] == ["ec", "ed", "rsa"]
        assert not any(key.can_sign for key in published)
        for key in keyset_keys:
            token = jwtlite.encode({"k": key.kid}, key)
            assert jwtlite.decode(token, published, [key.algorithm]) == {"k": key.kid}


def test_from_jwks_leaves_out_keys_for_other_purposes(keyset_keys: list[Key]) -> None:
    encryption = {**_ec_jwk(kid="enc"), "use": "enc"}
    wrapping = {**_ec_jwk(kid="wrap"), "key_ops": ["wrapKey", "unwrapKey"]}
    jwks = {"keys": [encryption, keyset_keys[0].public_jwk(), wrapping]}
    keyset = KeySet.from_jwks(jwks)
    assert [key.kid for key in keyset] == ["ec"]
    token = jwtlite.encode({}, Key(EC_PRIVATE["ES256"], "ES256", kid="enc"))
    with pytest.raises(InvalidKeyError):
        jwtlite.decode(token, keyset, ["ES256"])


def test_from_jwks_passes_the_algorithm_to_every_key() -> None:
    jwk = {name: RFC7638_JWK[name] for name in ("kty", "n", "e", "kid")}
    assert KeySet.from_jwks({"keys": [jwk]}, "PS256").current.algorithm == "PS256"
    with pytest.raises(InvalidKeyError):
        KeySet.from_jwks({"keys": [jwk]})  # an RSA JWK without alg does not name RS or PS


def _secret_jwk(kid: str) -> dict[str, str]:
    return {"kty": "oct", "alg": "HS256", "kid": kid, "k": b64url_encode(b"s" * 32).decode()}


BAD_JWK_SETS = {
    "mixed-secret-and-ec": lambda: {"keys": [_secret_jwk("hs"), _ec_jwk(kid="ec")]},
    "duplicate-kid": lambda: {"keys": [_secret_jwk("k"), _secret_jwk("k")]},
    "duplicate-kid-ec-and-ed": lambda: {
        "keys": [_ec_jwk(kid="k"), {**Key(ED25519_PRIVATE, "EdDSA").public_jwk(), "kid": "k"}]
    },
    "key-without-kid": lambda: {"keys": [_ec_jwk(kid=None)]},
    "empty": lambda: {"keys": []},
    "only-encryption-keys": lambda: {"keys": [_ec_jwk(use="enc")]},
    "keys-not-a-list": lambda: {"keys": _ec_jwk()},
    "no-keys-member": lambda: {"key": [_ec_jwk()]},
    "not-an-object": lambda: [_ec_jwk()],
    "invalid-json-text": lambda: '{"keys": [',
    "duplicate-member-json-text": lambda: '{"keys": [], "keys": []}',
    "jwk-not-an-object": lambda: {"keys": ["kty"]},
    "one-bad-jwk": lambda: {"keys": [_ec_jwk(kid="ok"), _ec_jwk(kid="bad", y="AAAA")]},
    # Malformed purposes refuse the set; they are not read as "another purpose" and skipped.
    "one-jwk-with-key-ops-a-string": lambda: {
        "keys": [_ec_jwk(kid="ok"), _ec_jwk(kid="bad", key_ops="verify")]
    },
    "one-jwk-with-empty-key-ops": lambda: {
        "keys": [_ec_jwk(kid="ok"), _ec_jwk(kid="bad", key_ops=[])]
    },
    "one-jwk-with-use-not-a-string": lambda: {
        "keys": [_ec_jwk(kid="ok"), _ec_jwk(kid="bad", use=["sig"])]
    },
}


@pytest.mark.parametrize("make", BAD_JWK_SETS.values(), ids=BAD_JWK_SETS.keys())
def test_bad_jwk_sets_are_refused(make: Callable[[], Any]) -> None:
    with pytest.raises(InvalidKeyError):
        KeySet.from_jwks(make())


# -- RSA keys that can be factored ---------------------------------------------------------

# A 2048-bit modulus from an Infineon chip with the ROCA flaw (CVE-2017-15361): the authors'
# own positive sample, roca/tests/data/mod03.txt in github.com/crocs-muni/roca.
ROCA_MODULUS = int(
    "9dcd7420e420c270a68060eb8b5aa7457a9f6648f86fafed2775cc1f79ae962f1e63f1b9e51c55f9ea6fdc7"
    "332e9b0058c9ff2eb1fc89855029cf6aafe21e689feb38ac9ffb12f1ce371bb5d0e9aae64161abce74b4244"
    "bf68f1edb4411f756a097c8929c14740245ea355f8332d1aa36bb50c7dcb4505da8de02e4e53d38f8df0609"
    "7da7524df0df93db48eac8cc4af2d3a16257eb2b2adca6ba464e5974fa92550d31b1babf161e7692d00b86e"
    "3dd886ecab4abfbe1a8f8cc263ff4af55cdb45f4249a5193925f5e983d762f0b6800943eb0267b08f42ed311"
    "ce1f5c86eacbc8ce4d3cb7a2fee1ef5641423a1cf4114e5ecf50034a60a412523af9e6f4aa11",
    16,
)
ROCA_PUBLIC = rsa.RSAPublicNumbers(65537, ROCA_MODULUS).public_key()


def _rsa_public_jwk(public_key: rsa.RSAPublicKey, **members: str) -> dict[str, str]:
    numbers = public_key.public_numbers()

    def uint(value: int) -> str:
        return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).decode()

    return {"kty": "RSA", "n": uint(numbers.n), "e": uint(numbers.e), **members}


ROCA_FORMS = {
    "object": lambda: ROCA_PUBLIC,
    "pem": lambda: ROCA_PUBLIC.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ),
    "jwk": lambda: _rsa_public_jwk(ROCA_PUBLIC, alg="RS256"),
}


@pytest.mark.parametrize("make", ROCA_FORMS.values(), ids=ROCA_FORMS.keys())
@pytest.mark.parametrize("algorithm", ["RS256", "PS512"])
def test_rsa_key_with_the_roca_fingerprint_is_refused(
    make: Callable[[], Any], algorithm: str
) -> None:
    material = make()
    if isinstance(material, dict):
        material = {**material, "alg": algorithm}
    with pytest.raises(InvalidKeyError, match="ROCA"):
        Key(material, algorithm)


def test_roca_fingerprint_checks_the_modulus() -> None:
    from jwtlite._roca import has_roca_fingerprint

    assert has_roca_fingerprint(ROCA_MODULUS)
    assert not has_roca_fingerprint(ROCA_MODULUS + 2)
    assert not has_roca_fingerprint(RSA_PRIVATE.public_key().public_numbers().n)
    # One prime is enough to clear a modulus: 65537 = -1 mod 11, so its powers are 1 and 10
    # mod 11, and doubling a ROCA modulus leaves that subgroup.
    assert ROCA_MODULUS % 11 in (1, 10)
    assert not has_roca_fingerprint(ROCA_MODULUS * 2)


@pytest.mark.parametrize("size", [2048, 3072])
def test_generated_rsa_keys_are_not_flagged(size: int) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=size)
    assert Key(private, "RS256").can_sign
    assert Key(private.public_key(), "PS256").verify(b"x", Key(private, "PS256").sign(b"x"))


def test_rsa_jwk_under_2048_bits_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    with pytest.raises(InvalidKeyError, match="2048"):
        Key.from_jwk(_rsa_public_jwk(small.public_key(), alg="RS256"))
    with pytest.raises(InvalidKeyError, match="2048"):
        KeySet.from_jwks({"keys": [_rsa_public_jwk(small.public_key(), alg="PS256", kid="s")]})


# -- key files -------------------------------------------------------------------------------


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("algorithm", ["HS256", "HS512", "ES256", "EdDSA", "RS256"])
def test_key_file_is_created_with_mode_0600(tmp_path: Path, algorithm: str) -> None:
    path = tmp_path / "signing.key"
    key = load_or_create_key_file(str(path), algorithm, create=True)
    assert path.exists()
    assert file_mode(path) == 0o600
    assert key.algorithm == algorithm
    assert key.can_sign


@pytest.mark.parametrize("algorithm", ["HS256", "ES256"])
def test_existing_key_file_is_reused(tmp_path: Path, algorithm: str) -> None:
    path = tmp_path / "signing.key"
    first = load_or_create_key_file(str(path), algorithm, create=True)
    content = path.read_bytes()
    second = load_or_create_key_file(str(path), algorithm, create=True)
    assert path.read_bytes() == content
    token = jwtlite.encode({"sub": "1"}, first)
    assert jwtlite.decode(token, second, [algorithm]) == {"sub": "1"}


def test_prewritten_key_file_is_used(tmp_path: Path) -> None:
    path = tmp_path / "ec.pem"
    path.write_bytes(private_pem(EC_PRIVATE["ES256"]))
    path.chmod(0o600)
    key = load_or_create_key_file(str(path), "ES256", create=True)
    assert key.thumbprint() == Key(EC_PRIVATE["ES256"], "ES256").thumbprint()


def test_missing_key_file_without_create_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.key"
    with pytest.raises(InvalidKeyError):
        load_or_create_key_file(str(path), "HS256", create=False)
    assert not path.exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o610], ids=oct)
def test_key_file_accessible_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "signing.key"
    path.write_bytes(b64url_encode(b"s" * 32) + b"\n")
    path.chmod(0o600)
    assert load_or_create_key_file(str(path), "HS256", create=False).sign(b"x")
    path.chmod(mode)
    with pytest.raises(InvalidKeyError, match="chmod 600"):
        load_or_create_key_file(str(path), "HS256", create=True)


CORRUPT_FILES = {
    "hmac-garbage": (b"!!! not base64 !!!\n", "HS256"),
    "hmac-too-short": (b"c2hvcnQ\n", "HS256"),
    "hmac-empty": (b"", "HS256"),
    "ec-garbage": (b"garbage", "ES256"),
    "ec-truncated-pem": (b"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG\n", "ES256"),
    "rsa-pem-for-es256": (None, "ES256"),
}


@pytest.mark.parametrize(
    ("content", "algorithm"), CORRUPT_FILES.values(), ids=list(CORRUPT_FILES.keys())
)
def test_corrupt_key_file_is_refused(tmp_path: Path, content: bytes | None, algorithm: str) -> None:
    path = tmp_path / "signing.key"
    path.write_bytes(private_pem(RSA_PRIVATE) if content is None else content)
    path.chmod(0o600)
    with pytest.raises(InvalidKeyError):
        load_or_create_key_file(str(path), algorithm, create=True)
    assert path.read_bytes() == (private_pem(RSA_PRIVATE) if content is None else content)


def test_unwritable_key_directory_is_reported_as_invalid_key(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "signing.key"
    with pytest.raises(InvalidKeyError):
        load_or_create_key_file(str(path), "HS256", create=True)


def test_key_file_is_not_left_world_readable_under_a_lax_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        load_or_create_key_file(str(tmp_path / "k"), "HS256", create=True)
    finally:
        os.umask(old)
    assert file_mode(tmp_path / "k") == 0o600


# -- Ed25519/Ed448 public keys of small order (audit F6) ----------------------------------------

P25519 = 2**255 - 19
D25519 = -121665 * pow(121666, -1, P25519) % P25519
P448 = 2**448 - 2**224 - 1


def _ed25519_point(y: int, sign: int) -> tuple[int, int] | None:
    """Decode (x, y) from y and the sign of x (RFC 8032 §5.1.3); None when not a point."""
    y %= P25519
    u, v = (y * y - 1) % P25519, (D25519 * y * y + 1) % P25519
    x = u * pow(v, 3, P25519) * pow(u * pow(v, 7, P25519), (P25519 - 5) // 8, P25519) % P25519
    if v * x * x % P25519 == (-u) % P25519:
        x = x * pow(2, (P25519 - 1) // 4, P25519) % P25519
    if v * x * x % P25519 != u % P25519:
        return None
    return (P25519 - x if x and (x & 1) != sign else x), y


def _ed25519_add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = a, b
    t = D25519 * x1 * x2 * y1 * y2
    x3 = (x1 * y2 + y1 * x2) * pow(1 + t, -1, P25519)
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, -1, P25519)
    return x3 % P25519, y3 % P25519


def _ed25519_order(point: tuple[int, int]) -> int | None:
    current, order = point, 1
    while current != (0, 1):
        current, order = _ed25519_add(current, point), order + 1
        if order > 8:
            return None
    return order


def _encodings(ys: list[int], size: int) -> dict[str, bytes]:
    top = 1 << (size * 8 - 1)
    return {
        f"y={'p+' if y >= (P25519 if size == 32 else P448) else ''}{y % 1000}-sign{sign}": (
            y | (top if sign else 0)
        ).to_bytes(size, "little")
        for y in ys
        for sign in (0, 1)
    }


Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022
ED25519_SMALL_ORDER = _encodings([0, 1, P25519 - 1, Y8, P25519 - Y8, P25519, P25519 + 1], 32)
# edwards448: the 57th byte holds only the sign bit of x.
ED448_SMALL_ORDER = {
    f"y={name}-sign{sign}": y.to_bytes(56, "little") + bytes([0x80 if sign else 0])
    for name, y in (("0", 0), ("1", 1), ("p-1", P448 - 1), ("p", P448), ("p+1", P448 + 1))
    for sign in (0, 1)
}


def test_the_ed25519_blocklist_is_exactly_the_points_of_small_order() -> None:
    orders = set()
    for y in (0, 1, P25519 - 1, Y8, P25519 - Y8):
        for sign in (0, 1):
            point = _ed25519_point(y, sign)
            if point is not None:
                orders.add(_ed25519_order(point))
                assert _ed25519_order(point) in {1, 2, 4, 8}
    assert orders == {1, 2, 4, 8}
    # and an ordinary key is not of small order
    raw = (
        Key.generate("Ed25519")
        .public_key()
        ._verifying.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    assert _ed25519_order(_ed25519_point(y, raw[31] >> 7) or (0, 1)) is None


def _spki(raw: bytes) -> bytes:
    prefix = "302a300506032b6570032100" if len(raw) == 32 else "3043300506032b6571033a00"
    return bytes.fromhex(prefix) + raw


SMALL_ORDER_KEYS = {
    **{f"ed25519-{name}": (raw, "Ed25519") for name, raw in ED25519_SMALL_ORDER.items()},
    **{f"ed448-{name}": (raw, "Ed448") for name, raw in ED448_SMALL_ORDER.items()},
}
SMALL_ORDER_LOADERS: dict[str, Callable[[bytes, str], Any]] = {
    "jwk": lambda raw, crv: Key.from_jwk(
        {"kty": "OKP", "crv": crv, "x": b64url_encode(raw).decode(), "alg": crv}
    ),
    "der": lambda raw, crv: Key(_spki(raw), crv),
    "pem": lambda raw, crv: Key(
        b"-----BEGIN PUBLIC KEY-----\n"
        + base64.encodebytes(_spki(raw))
        + b"-----END PUBLIC KEY-----\n",
        crv,
    ),
    "eddsa-name": lambda raw, crv: Key(_spki(raw), "EdDSA"),
}


@pytest.mark.parametrize("loader", SMALL_ORDER_LOADERS.values(), ids=SMALL_ORDER_LOADERS.keys())
@pytest.mark.parametrize(("raw", "crv"), SMALL_ORDER_KEYS.values(), ids=SMALL_ORDER_KEYS.keys())
def test_public_keys_of_small_order_are_refused(
    loader: Callable[[bytes, str], Any], raw: bytes, crv: str
) -> None:
    with pytest.raises(InvalidKeyError):
        loader(raw, crv)


@pytest.mark.parametrize(
    ("raw", "crv"),
    [(bytes([1]) + bytes(31), "Ed25519"), (bytes([1]) + bytes(56), "Ed448")],
    ids=["ed25519-identity", "ed448-identity"],
)
def test_the_identity_key_is_refused_before_it_can_verify_a_forgery(raw: bytes, crv: str) -> None:
    # The audit's token: R = identity, S = 0 verified for ANY payload under this key.
    public = ed25519.Ed25519PublicKey if crv == "Ed25519" else ed448.Ed448PublicKey
    with pytest.raises(InvalidKeyError, match="small order"):
        Key(public.from_public_bytes(raw), crv)


# -- RSA numbers checked before OpenSSL's key check (re-audit N2, N3) -------------------------


def _uint(value: int) -> str:
    return b64url_encode(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")).decode()


def _lopsided_rsa_numbers() -> rsa.RSAPrivateNumbers:
    # p = 2^4423 - 1 (a Mersenne prime) beside q = 65537: n is 4440 bits, within the size cap,
    # and OpenSSL's primality test of p held the GIL for 5.6 s before refusing it.
    p, q = (1 << 4423) - 1, 65537
    return rsa.RSAPrivateNumbers(p, q, 12345, 1, 1, 1, rsa.RSAPublicNumbers(65537, p * q))


def _private_jwk_of(numbers: rsa.RSAPrivateNumbers) -> dict[str, str]:
    return {
        "kty": "RSA",
        "n": _uint(numbers.public_numbers.n),
        "e": _uint(numbers.public_numbers.e),
        "d": _uint(numbers.d),
        "p": _uint(numbers.p),
        "q": _uint(numbers.q),
        "dp": _uint(numbers.dmp1),
        "dq": _uint(numbers.dmq1),
        "qi": _uint(numbers.iqmp),
    }


def _unchecked_private_bytes(numbers: rsa.RSAPrivateNumbers, encoding: Any) -> bytes:
    return numbers.private_key(unsafe_skip_rsa_key_validation=True).private_bytes(
        encoding, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


LOPSIDED_RSA = {
    "jwk": lambda: Key.from_jwk(_private_jwk_of(_lopsided_rsa_numbers()), "RS256"),
    "pem": lambda: Key.from_pem(
        _unchecked_private_bytes(_lopsided_rsa_numbers(), serialization.Encoding.PEM), "RS256"
    ),
    "der": lambda: Key(
        _unchecked_private_bytes(_lopsided_rsa_numbers(), serialization.Encoding.DER), "RS256"
    ),
}


@pytest.mark.parametrize("load", LOPSIDED_RSA.values(), ids=LOPSIDED_RSA.keys())
def test_rsa_private_key_with_a_lopsided_prime_is_refused_before_primality_tests(
    load: Callable[[], Key],
) -> None:
    with pytest.raises(InvalidKeyError, match="half the modulus"):
        load()


def _changed_private(**changes: int) -> rsa.RSAPrivateNumbers:
    numbers = RSA_PRIVATE.private_numbers()
    members = {
        "p": numbers.p,
        "q": numbers.q,
        "d": numbers.d,
        "dmp1": numbers.dmp1,
        "dmq1": numbers.dmq1,
        "iqmp": numbers.iqmp,
    }
    members.update(changes)
    return rsa.RSAPrivateNumbers(**members, public_numbers=numbers.public_numbers)


BROKEN_RSA_PRIVATE = {
    "p-times-q-is-not-n": (
        lambda: _changed_private(q=RSA_PRIVATE.private_numbers().q + 2),
        "multiply",
    ),
    "dp-out-of-range": (
        lambda: _changed_private(dmp1=RSA_PRIVATE.private_numbers().p),
        "out of range",
    ),
    "qi-zero": (lambda: _changed_private(iqmp=0), "out of range"),
    "d-zero": (lambda: _changed_private(d=0), "out of range"),
}


@pytest.mark.parametrize(
    ("make", "reason"), BROKEN_RSA_PRIVATE.values(), ids=BROKEN_RSA_PRIVATE.keys()
)
def test_rsa_private_jwk_whose_members_disagree_is_refused(
    make: Callable[[], rsa.RSAPrivateNumbers], reason: str
) -> None:
    with pytest.raises(InvalidKeyError, match=reason):
        Key.from_jwk(_private_jwk_of(make()), "RS256")


def test_balanced_rsa_private_pem_and_der_still_load() -> None:
    assert Key.from_pem(private_pem(RSA_PRIVATE), "RS256").can_sign
    assert Key(private_der(RSA_PRIVATE), "RS256").can_sign


def _odd(bits: int) -> int:
    return (1 << (bits - 1)) | secrets.randbits(bits - 1) | 1


BAD_RSA_PUBLIC = {
    "e-3000-bits-n-3072": (lambda: (_odd(3072), _odd(3000)), "above 2\\^32"),
    "e-16000-bits-n-16384": (lambda: (_odd(16384), _odd(16000)), "above 2\\^32"),
    "e-2^32-plus-1": (lambda: (_odd(2048), 2**32 + 1), "above 2\\^32"),
    "e-even": (lambda: (_odd(2048), 65536), "odd and at least 3"),
    "e-1": (lambda: (_odd(2048), 1), "odd and at least 3"),
    "n-even": (lambda: (_odd(2048) + 1, 65537), "modulus is even"),
}


@pytest.mark.parametrize(("make", "reason"), BAD_RSA_PUBLIC.values(), ids=BAD_RSA_PUBLIC.keys())
def test_rsa_public_numbers_out_of_bounds_are_refused(
    make: Callable[[], tuple[int, int]], reason: str
) -> None:
    n, e = make()
    with pytest.raises(InvalidKeyError, match=reason):
        Key.from_jwk({"kty": "RSA", "n": _uint(n), "e": _uint(e), "alg": "RS256"})


def test_rsa_public_exponent_up_to_2_pow_32_is_accepted() -> None:
    n = RSA_PRIVATE.public_key().public_numbers().n
    key = Key.from_jwk({"kty": "RSA", "n": _uint(n), "e": _uint(2**32 - 1), "alg": "RS256"})
    assert key.can_verify


@pytest.mark.parametrize("member", ["n", "e"])
def test_rsa_jwk_with_leading_zero_octets_is_refused(member: str) -> None:
    jwk = Key(RSA_PRIVATE, "RS256").public_jwk()
    padded = b"\0" * 20000 + base64.urlsafe_b64decode(jwk[member] + "==")
    jwk[member] = b64url_encode(padded).decode()
    with pytest.raises(InvalidKeyError, match="leading zero octets"):
        Key.from_jwk(jwk)
