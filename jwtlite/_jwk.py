"""JSON Web Keys (RFC 7517, RFC 7518 §6, RFC 8037): parse key members, and write the public
members that RFC 7638 thumbprints and JWKS documents use.

Members are decoded with the same strict base64url as tokens; a private JWK whose public part
does not match its private part is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from jwtlite._encoding import EncodingError, b64url_decode, b64url_encode, json_loads
from jwtlite.errors import InvalidKeyError

__all__ = [
    "CURVES",
    "CURVE_NAMES",
    "EC_ALGORITHMS",
    "jwk_members",
    "material_from_jwk",
    "public_members",
]

CURVES: dict[str, type[ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
}
CURVE_NAMES = {curve().name: name for name, curve in CURVES.items()}
EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}


def jwk_members(jwk: Mapping[str, Any] | str) -> dict[str, Any]:
    if isinstance(jwk, str):
        try:
            jwk = json_loads(jwk.encode())
        except EncodingError as exc:
            raise InvalidKeyError("JWK is not valid JSON") from exc
    if not isinstance(jwk, Mapping):
        raise InvalidKeyError("JWK must be a JSON object")
    return dict(jwk)


def _jwk_bytes(members: Mapping[str, Any], name: str) -> bytes:
    value = members.get(name)
    if not isinstance(value, str):
        raise InvalidKeyError(f"JWK member {name!r} is missing or not a string")
    try:
        return b64url_decode(value.encode())
    except EncodingError as exc:
        raise InvalidKeyError(f"JWK member {name!r} is not base64url") from exc


def _jwk_int(members: Mapping[str, Any], name: str) -> int:
    return int.from_bytes(_jwk_bytes(members, name), "big")


def material_from_jwk(members: Mapping[str, Any]) -> Any:
    kty = members.get("kty")
    try:
        if kty == "oct":
            return _jwk_bytes(members, "k")
        if kty == "RSA":
            return _rsa_from_jwk(members)
        if kty == "EC":
            return _ec_from_jwk(members)
        if kty == "OKP":
            return _okp_from_jwk(members)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidKeyError(f"JWK of type {kty} holds an invalid key") from exc
    raise InvalidKeyError(f"unsupported JWK key type {kty!r}")


def _rsa_from_jwk(members: Mapping[str, Any]) -> Any:
    public = rsa.RSAPublicNumbers(_jwk_int(members, "e"), _jwk_int(members, "n"))
    if "d" not in members:
        return public.public_key()
    d = _jwk_int(members, "d")
    if all(name in members for name in ("p", "q", "dp", "dq", "qi")):
        p, q = _jwk_int(members, "p"), _jwk_int(members, "q")
        dmp1, dmq1, iqmp = (_jwk_int(members, name) for name in ("dp", "dq", "qi"))
    else:
        p, q = rsa.rsa_recover_prime_factors(public.n, public.e, d)
        dmp1, dmq1, iqmp = rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q)
    return rsa.RSAPrivateNumbers(p, q, d, dmp1, dmq1, iqmp, public).private_key()


def _ec_from_jwk(members: Mapping[str, Any]) -> Any:
    curve = CURVES.get(members.get("crv"))  # type: ignore[arg-type]
    if curve is None:
        raise InvalidKeyError(f"unsupported EC curve {members.get('crv')!r}")
    size = (curve().key_size + 7) // 8
    x, y = _jwk_bytes(members, "x"), _jwk_bytes(members, "y")
    if len(x) != size or len(y) != size:
        raise InvalidKeyError("EC JWK coordinates have the wrong length")
    public = ec.EllipticCurvePublicNumbers(
        int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve()
    )
    if "d" not in members:
        return public.public_key()
    private = ec.derive_private_key(_jwk_int(members, "d"), curve())
    if private.public_key().public_numbers() != public:
        raise InvalidKeyError("EC JWK private key does not match its public part")
    return private


def _okp_from_jwk(members: Mapping[str, Any]) -> Any:
    crv = members.get("crv")
    family: Any = {"Ed25519": ed25519, "Ed448": ed448}.get(crv)  # type: ignore[arg-type]
    if family is None:
        raise InvalidKeyError(f"unsupported OKP curve {crv!r}")
    private_cls = family.Ed25519PrivateKey if crv == "Ed25519" else family.Ed448PrivateKey
    public_cls = family.Ed25519PublicKey if crv == "Ed25519" else family.Ed448PublicKey
    x = _jwk_bytes(members, "x")
    if "d" not in members:
        return public_cls.from_public_bytes(x)
    private = private_cls.from_private_bytes(_jwk_bytes(members, "d"))
    public_bytes = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    if public_bytes != x:
        raise InvalidKeyError("OKP JWK private key does not match its public part")
    return private


def public_members(public: Any) -> dict[str, str]:
    """The RFC 7638 required members of a public key's JWK."""

    def b64(value: bytes) -> str:
        return b64url_encode(value).decode()

    def uint(value: int, size: int | None = None) -> str:
        return b64(value.to_bytes(size or max(1, (value.bit_length() + 7) // 8), "big"))

    if isinstance(public, rsa.RSAPublicKey):
        rsa_numbers = public.public_numbers()
        return {"e": uint(rsa_numbers.e), "kty": "RSA", "n": uint(rsa_numbers.n)}
    if isinstance(public, ec.EllipticCurvePublicKey):
        ec_numbers = public.public_numbers()
        size = (public.curve.key_size + 7) // 8
        crv = CURVE_NAMES[public.curve.name]
        return {
            "crv": crv,
            "kty": "EC",
            "x": uint(ec_numbers.x, size),
            "y": uint(ec_numbers.y, size),
        }
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    crv = "Ed25519" if isinstance(public, ed25519.Ed25519PublicKey) else "Ed448"
    return {"crv": crv, "kty": "OKP", "x": b64(raw)}
