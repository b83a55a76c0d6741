"""Signature algorithms of RFC 7518 §3, RFC 8037 and RFC 9864, one small object per family.

Each algorithm names the key types it accepts and checks a key once (``check_key``), so
"HMAC with an RSA public key" or "ES256 with a P-384 key" cannot be expressed. There is no
``none`` algorithm.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from jwtlite._roca import has_roca_fingerprint
from jwtlite.errors import (
    AlgorithmNotAllowedError,
    InvalidKeyError,
)

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "ECDSAAlgorithm",
    "Ed448Algorithm",
    "Ed25519Algorithm",
    "EdDSAAlgorithm",
    "HMACAlgorithm",
    "RSAAlgorithm",
    "RSAPSSAlgorithm",
    "check_rsa_private_numbers",
    "check_rsa_public_numbers",
    "get_algorithm",
]

MIN_RSA_KEY_SIZE = 2048
# The largest RSA modulus accepted, from any source (JWK, PEM, DER, key objects): a modulus
# of 65,536 bits makes each verification cost a large fraction of a second, and no issuer
# uses more than 8192 bits. (OpenSSL's own limit, OPENSSL_RSA_MAX_MODULUS_BITS, is 16384.)
MAX_RSA_KEY_SIZE = 16384
# The largest public exponent accepted. Verification costs one modular exponentiation by e:
# a 3000-bit e makes every check of a junk signature ~200 times dearer than with 65537.
# Issuers use 65537 (NIST SP 800-56B and common practice bound e below 2^256; OpenSSL,
# Go and Windows CNG refuse or cap exponents above 2^32 or smaller).
MAX_RSA_EXPONENT = 2**32
# How far each prime's size may stray from half the modulus's. OpenSSL's private key check
# tests both primes for primality: a 4,400-bit p beside a 17-bit q takes seconds with the
# GIL held, while a balanced key of the same size takes milliseconds.
_RSA_PRIME_SLACK_BITS = 8

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)


def check_rsa_public_numbers(n: int, e: int) -> None:
    """Refuse an RSA modulus or exponent no key of ours can have, before any arithmetic.

    Refused: a modulus of more than :data:`MAX_RSA_KEY_SIZE` bits, an even modulus, an even
    exponent, one below 3 or above :data:`MAX_RSA_EXPONENT`.

    Raises:
        InvalidKeyError: naming the rule broken.
    """
    if n.bit_length() > MAX_RSA_KEY_SIZE:
        raise InvalidKeyError(f"RSA keys of more than {MAX_RSA_KEY_SIZE} bits are refused")
    if n % 2 == 0:
        raise InvalidKeyError("the RSA modulus is even")
    if e < 3 or e % 2 == 0:
        raise InvalidKeyError("the RSA public exponent must be odd and at least 3")
    if e > MAX_RSA_EXPONENT:
        raise InvalidKeyError("RSA public exponents above 2^32 are refused (65537 is usual)")


def check_rsa_private_numbers(numbers: rsa.RSAPrivateNumbers) -> None:
    """The cheap checks of an RSA private key, to run before OpenSSL's own.

    OpenSSL's check tests the primes for primality, seconds for a lopsided key. These check
    the public numbers, ``p*q == n``, primes of about half the modulus's size, and CRT members
    in range.

    Raises:
        InvalidKeyError: naming the rule broken.
    """
    public = numbers.public_numbers
    n = public.n
    check_rsa_public_numbers(n, public.e)
    p, q = numbers.p, numbers.q
    half = n.bit_length() / 2
    if any(abs(prime.bit_length() - half) > _RSA_PRIME_SLACK_BITS for prime in (p, q)):
        raise InvalidKeyError("the RSA primes are not each about half the modulus's size")
    if p * q != n:
        raise InvalidKeyError("the RSA primes do not multiply to the modulus")
    in_range = (
        1 < numbers.d < n and 0 < numbers.dmp1 < p and 0 < numbers.dmq1 < q and 0 < numbers.iqmp < p
    )
    if not in_range:
        raise InvalidKeyError("an RSA private member (d, dp, dq or qi) is out of range")


class Algorithm:
    """A JWS algorithm: signs and verifies bytes with a key it has already checked."""

    name: str
    family: ClassVar[str]
    symmetric: ClassVar[bool] = False

    def check_key(self, key: Any, *, signing: bool) -> None:
        """Raise :class:`InvalidKeyError` unless ``key`` can serve this algorithm."""
        raise NotImplementedError

    def prepare(self, key: Any) -> Any:
        """What ``sign`` and ``verify`` take for this checked key, made once per key."""
        return key

    def sign(self, key: Any, data: bytes) -> bytes:
        """Return the signature of ``data``; ``key`` must have passed ``check_key``."""
        raise NotImplementedError

    def verify(self, key: Any, data: bytes, signature: bytes) -> bool:
        """Return whether ``signature`` is valid for ``data`` under ``key``.

        ``key`` is the *public* key (or the secret). Never raises for bad input."""
        raise NotImplementedError


class HMACAlgorithm(Algorithm):
    """HS256/384/512 (RFC 7518 §3.2). Keys are bytes at least as long as the hash output."""

    family = "HMAC"
    symmetric = True

    def __init__(self, name: str, digest: str, size: int) -> None:
        self.name = name
        self.digest = digest
        self.min_key_length = size

    def check_key(self, key: Any, *, signing: bool) -> None:
        """Refuse a secret that is not bytes or is shorter than the hash output."""
        if not isinstance(key, bytes):
            raise InvalidKeyError(f"{self.name} needs a bytes secret")
        if len(key) < self.min_key_length:
            raise InvalidKeyError(
                f"{self.name} needs a secret of at least {self.min_key_length} bytes"
            )

    def prepare(self, key: bytes) -> hmac.HMAC:
        """A keyed HMAC state for ``key``, which ``sign`` copies for each token."""
        # A keyed HMAC state, copied per token: it skips the key schedule, and unlike
        # hmac.digest() it does not look the hash up in OpenSSL on every call, a lookup
        # that serialises threads on OpenSSL 3.
        return hmac.new(key, digestmod=self.digest)

    def sign(self, key: hmac.HMAC, data: bytes) -> bytes:
        """Return the HMAC of ``data``, computed on a copy of the keyed state."""
        state = key.copy()
        state.update(data)
        return state.digest()

    def verify(self, key: hmac.HMAC, data: bytes, signature: bytes) -> bool:
        """Compare the HMAC of ``data`` with ``signature`` in constant time."""
        return hmac.compare_digest(self.sign(key, data), signature)


class _AsymmetricAlgorithm(Algorithm):
    private_types: ClassVar[tuple[type, ...]]
    public_types: ClassVar[tuple[type, ...]]

    def check_key(self, key: Any, *, signing: bool) -> None:
        allowed = self.private_types if signing else self.private_types + self.public_types
        if not isinstance(key, allowed):
            kind = "a private" if signing else "a"
            raise InvalidKeyError(f"{self.name} needs {kind} {self.family} key")
        self._check_key_details(key)

    def _check_key_details(self, key: Any) -> None:
        """Family-specific checks (size, curve); the default accepts."""


class RSAAlgorithm(_AsymmetricAlgorithm):
    """RS256/384/512: RSASSA-PKCS1-v1_5 (RFC 7518 §3.3) with RSA keys of 2048 to 16384 bits.

    A key's modulus must lack the ROCA fingerprint (CVE-2017-15361: such keys can be factored)."""

    family = "RSA"
    private_types = (rsa.RSAPrivateKey,)
    public_types = (rsa.RSAPublicKey,)

    def __init__(self, name: str, hash_algorithm: hashes.HashAlgorithm) -> None:
        self.name = name
        self.hash = hash_algorithm
        self._pad = self._padding()

    def _padding(self) -> padding.AsymmetricPadding:
        return padding.PKCS1v15()

    def _check_key_details(self, key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> None:
        if key.key_size < MIN_RSA_KEY_SIZE:
            raise InvalidKeyError(f"{self.name} needs an RSA key of at least 2048 bits")
        if key.key_size > MAX_RSA_KEY_SIZE:
            raise InvalidKeyError(f"RSA keys of more than {MAX_RSA_KEY_SIZE} bits are refused")
        public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
        numbers = public.public_numbers()
        check_rsa_public_numbers(numbers.n, numbers.e)
        if has_roca_fingerprint(numbers.n):
            raise InvalidKeyError(
                "the RSA key has the ROCA fingerprint (CVE-2017-15361): it can be factored"
            )

    def sign(self, key: rsa.RSAPrivateKey, data: bytes) -> bytes:
        """Sign ``data`` with the private ``key``, this algorithm's padding and hash."""
        return key.sign(data, self._pad, self.hash)

    def verify(self, key: rsa.RSAPublicKey, data: bytes, signature: bytes) -> bool:
        """Return whether ``signature`` is valid for ``data`` under the public ``key``."""
        try:
            key.verify(signature, data, self._pad, self.hash)
        except InvalidSignature:
            return False
        return True


class RSAPSSAlgorithm(RSAAlgorithm):
    """PS256/384/512: RSASSA-PSS with MGF1 and a salt as long as the hash (RFC 7518 §3.5)."""

    def _padding(self) -> padding.AsymmetricPadding:
        return padding.PSS(mgf=padding.MGF1(self.hash), salt_length=self.hash.digest_size)


class ECDSAAlgorithm(_AsymmetricAlgorithm):
    """ES256/384/512 (RFC 7518 §3.4): the key's curve must match; signatures are raw r‖s."""

    family = "EC"
    private_types = (ec.EllipticCurvePrivateKey,)
    public_types = (ec.EllipticCurvePublicKey,)

    def __init__(
        self, name: str, hash_algorithm: hashes.HashAlgorithm, curve: type[ec.EllipticCurve]
    ) -> None:
        self.name = name
        self.hash = hash_algorithm
        self.curve = curve
        self.component_size = (curve().key_size + 7) // 8
        self._signature_algorithm = ec.ECDSA(hash_algorithm)

    def _check_key_details(self, key: Any) -> None:
        if not isinstance(key.curve, self.curve):
            raise InvalidKeyError(f"{self.name} needs a key on curve {self.curve.name}")

    def sign(self, key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
        """Sign ``data``; the signature is raw r‖s, each big-endian at the curve's size."""
        r, s = decode_dss_signature(key.sign(data, self._signature_algorithm))
        size = self.component_size
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    def verify(self, key: ec.EllipticCurvePublicKey, data: bytes, signature: bytes) -> bool:
        """Return whether the raw r‖s ``signature`` is valid for ``data`` under ``key``."""
        size = self.component_size
        if len(signature) != 2 * size:
            return False
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        try:
            key.verify(encode_dss_signature(r, s), data, self._signature_algorithm)
        except InvalidSignature:
            return False
        return True


# Public keys of small order (audit F6). With such a key, the signature R = the key's point
# (or the identity), S = 0 verifies for many or ANY message: OpenSSL's Ed25519/Ed448 verify
# does not refuse them. The points of small order are the torsion points: 8 on edwards25519
# (cofactor 8), 4 on edwards448 (cofactor 4). An encoding is the little-endian y with the
# sign of x in the top bit (RFC 8032 §5.1.2, §5.2.2), so each is listed by y alone, sign bit
# ignored; y + p is a non-canonical encoding of y when it still fits (only for y = 0 and 1).
# edwards25519 (p = 2^255 - 19): (0, 1) order 1, (0, -1) order 2, (±sqrt(-1), 0) order 4,
# and four points of order 8 with y = ±Y8 (the same seven y values as libsodium's
# ge25519_has_small_order blocklist; tests/library/test_keys.py recomputes the order of each).
_P25519 = 2**255 - 19
_Y8_25519 = 2707385501144840649318225287225658788936804267575313519463743609750303402022
_ED25519_SMALL_ORDER_Y = frozenset(
    {0, 1, _P25519 - 1, _Y8_25519, _P25519 - _Y8_25519, _P25519, _P25519 + 1}
)
# edwards448 (p = 2^448 - 2^224 - 1): (0, 1) order 1, (0, -1) order 2, (±1, 0) order 4.
_P448 = 2**448 - 2**224 - 1
_ED448_SMALL_ORDER_Y = frozenset({0, 1, _P448 - 1, _P448, _P448 + 1})


def has_small_order(public: ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) -> bool:
    """Whether an Ed25519 or Ed448 public key is a point of small order (in any encoding)."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if isinstance(public, ed25519.Ed25519PublicKey):
        return int.from_bytes(raw, "little") & ((1 << 255) - 1) in _ED25519_SMALL_ORDER_Y
    return int.from_bytes(raw[:56], "little") in _ED448_SMALL_ORDER_Y


class EdDSAAlgorithm(_AsymmetricAlgorithm):
    """EdDSA with Ed25519 or Ed448 keys (RFC 8037 §3.1).

    Deprecated by RFC 9864 in favour of the fully-specified :class:`Ed25519Algorithm` and
    :class:`Ed448Algorithm`."""

    family = "OKP"
    private_types: ClassVar[tuple[type, ...]] = (
        ed25519.Ed25519PrivateKey,
        ed448.Ed448PrivateKey,
    )
    public_types: ClassVar[tuple[type, ...]] = (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)
    name = "EdDSA"

    def _check_key_details(self, key: Any) -> None:
        if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) and has_small_order(
            key
        ):
            raise InvalidKeyError(
                "the public key is a point of small order: forged signatures would verify"
            )

    def sign(self, key: Any, data: bytes) -> bytes:
        """Sign ``data`` with the Ed25519 or Ed448 private ``key``."""
        return key.sign(data)  # type: ignore[no-any-return]

    def verify(self, key: Any, data: bytes, signature: bytes) -> bool:
        """Return whether ``signature`` is valid for ``data`` under the public ``key``."""
        try:
            key.verify(signature, data)
        except InvalidSignature:
            return False
        return True


class Ed25519Algorithm(EdDSAAlgorithm):
    """``Ed25519`` (RFC 9864 §2.2): EdDSA with Ed25519 keys only."""

    family = "Ed25519"
    private_types = (ed25519.Ed25519PrivateKey,)
    public_types = (ed25519.Ed25519PublicKey,)
    name = "Ed25519"


class Ed448Algorithm(EdDSAAlgorithm):
    """``Ed448`` (RFC 9864 §2.3): EdDSA with Ed448 keys only."""

    family = "Ed448"
    private_types = (ed448.Ed448PrivateKey,)
    public_types = (ed448.Ed448PublicKey,)
    name = "Ed448"


ALGORITHMS: Mapping[str, Algorithm] = {
    algorithm.name: algorithm
    for algorithm in (
        HMACAlgorithm("HS256", "sha256", 32),
        HMACAlgorithm("HS384", "sha384", 48),
        HMACAlgorithm("HS512", "sha512", 64),
        RSAAlgorithm("RS256", hashes.SHA256()),
        RSAAlgorithm("RS384", hashes.SHA384()),
        RSAAlgorithm("RS512", hashes.SHA512()),
        RSAPSSAlgorithm("PS256", hashes.SHA256()),
        RSAPSSAlgorithm("PS384", hashes.SHA384()),
        RSAPSSAlgorithm("PS512", hashes.SHA512()),
        ECDSAAlgorithm("ES256", hashes.SHA256(), ec.SECP256R1),
        ECDSAAlgorithm("ES384", hashes.SHA384(), ec.SECP384R1),
        ECDSAAlgorithm("ES512", hashes.SHA512(), ec.SECP521R1),
        EdDSAAlgorithm(),
        Ed25519Algorithm(),
        Ed448Algorithm(),
    )
}


def get_algorithm(name: object) -> Algorithm:
    """Return the registered algorithm called ``name``.

    Raises:
        AlgorithmNotAllowedError: ``name`` is not a supported algorithm (``none`` never is).
    """
    algorithm = ALGORITHMS.get(name) if isinstance(name, str) else None
    if algorithm is None:
        raise AlgorithmNotAllowedError(f"Unsupported algorithm: {name!r}", algorithm=name)
    return algorithm
