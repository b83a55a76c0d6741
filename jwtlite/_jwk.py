"""JSON Web Keys (RFC 7517, RFC 7518 §6, RFC 8037): parsing, checks of use, public members.

Parse key members, check what a key is for, and write the public members that RFC 7638
thumbprints and JWKS documents use.

Members are decoded with the same strict base64url as tokens; a private JWK whose public part
does not match its private part is refused. A key means what its JWK says: ``alg`` names the
one algorithm it serves, ``use`` must be ``"sig"`` when present, and ``key_ops`` limits it to
the signature operations it lists (RFC 7517 §4.2-4.4).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from jwtlite._encoding import EncodingError, b64url_decode, b64url_encode, json_loads
from jwtlite.algorithms import check_rsa_private_numbers, check_rsa_public_numbers
from jwtlite.errors import InvalidKeyError

__all__ = [
    "CURVES",
    "CURVE_NAMES",
    "EC_ALGORITHMS",
    "SIGNATURE_OPERATIONS",
    "JWKKey",
    "is_signature_key",
    "jwk_members",
    "jwk_set_members",
    "load_jwk",
    "material_from_jwk",
    "permitted_operations",
    "public_members",
]

SIGNATURE_OPERATIONS = frozenset({"sign", "verify"})

CURVES: dict[str, type[ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
}
CURVE_NAMES = {curve().name: name for name, curve in CURVES.items()}
EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_RSA_CRT_MEMBERS = ("p", "q", "dp", "dq", "qi")


def jwk_members(jwk: Mapping[str, Any] | str) -> dict[str, Any]:
    if isinstance(jwk, str):
        try:
            jwk = json_loads(jwk.encode())
        except EncodingError as exc:
            raise InvalidKeyError("JWK is not valid JSON") from exc
    if not isinstance(jwk, Mapping):
        raise InvalidKeyError("JWK must be a JSON object")
    return dict(jwk)


def jwk_set_members(jwks: Mapping[str, Any] | str) -> list[dict[str, Any]]:
    """The members of each JWK of a JWK Set (RFC 7517 §5).

    The set is an object (or its JSON text) whose ``keys`` is a list of objects."""
    if isinstance(jwks, str):
        try:
            jwks = json_loads(jwks.encode())
        except EncodingError as exc:
            raise InvalidKeyError("JWK Set is not valid JSON") from exc
    if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
        raise InvalidKeyError('a JWK Set must be a JSON object with a "keys" list')
    return [jwk_members(jwk) for jwk in jwks["keys"]]


class JWKKey(NamedTuple):
    """A JWK's key material and the signature operations its JWK allows."""

    material: Any
    operations: frozenset[str]


def load_jwk(members: Mapping[str, Any], algorithm: str | None) -> JWKKey:
    """The key of a JWK meant for signatures.

    Refuses a JWK whose ``alg`` is not ``algorithm`` (when given) or whose ``use`` or
    ``key_ops`` say it is not a signature key."""
    declared = members.get("alg")
    if declared is not None and not isinstance(declared, str):
        raise InvalidKeyError("JWK alg must be a string")
    if algorithm is not None and declared is not None and declared != algorithm:
        raise InvalidKeyError(f"the JWK is for {declared!r}, not {algorithm!r}")
    operations = permitted_operations(members)
    return JWKKey(material_from_jwk(members), operations)


def is_signature_key(members: Mapping[str, Any]) -> bool:
    """Whether a JWK claims to be for signatures.

    False when its ``use`` is another use, or when its ``key_ops`` list operations and none of
    them is ``sign`` or ``verify``."""
    use = members.get("use")
    if isinstance(use, str) and use != "sig":
        return False
    key_ops = members.get("key_ops")
    if isinstance(key_ops, list) and key_ops:
        return not SIGNATURE_OPERATIONS.isdisjoint(key_ops)
    return True


def permitted_operations(members: Mapping[str, Any]) -> frozenset[str]:
    """The signature operations a JWK allows: both without ``key_ops``, else those it lists.

    Raises:
        InvalidKeyError: ``use`` is not ``"sig"``; ``key_ops`` is not a non-empty list of
            distinct strings, or lists an operation other than ``sign`` and ``verify``
            (RFC 7517 §4.3: unrelated operations should not share a key).
    """
    use = members.get("use")
    if use is not None and use != "sig":
        raise InvalidKeyError(f"the JWK is not a signature key (use is {use!r}, not 'sig')")
    if "key_ops" not in members:
        return SIGNATURE_OPERATIONS
    key_ops = members["key_ops"]
    if not isinstance(key_ops, list) or not all(isinstance(op, str) for op in key_ops):
        raise InvalidKeyError("JWK key_ops must be a list of strings")
    if len(set(key_ops)) != len(key_ops):
        raise InvalidKeyError("JWK key_ops repeats an operation")
    others = sorted(set(key_ops) - SIGNATURE_OPERATIONS)
    if others:
        raise InvalidKeyError(f"JWK key_ops {others} are not signature operations")
    if not key_ops:
        raise InvalidKeyError("JWK key_ops lists no operation")
    return frozenset(key_ops)


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


def _jwk_uint(members: Mapping[str, Any], name: str) -> int:
    # RFC 7518 §6.3.1.1: "MUST NOT ... leading zero octets". Padding is not harmless here: it
    # lets a 20 KB member carry a 2048-bit modulus, and two spellings of one key.
    raw = _jwk_bytes(members, name)
    if raw.startswith(b"\0"):
        raise InvalidKeyError(f"JWK member {name!r} has leading zero octets (RFC 7518 §6.3.1.1)")
    return int.from_bytes(raw, "big")


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
    n, e = _jwk_uint(members, "n"), _jwk_uint(members, "e")
    # Checked before any arithmetic: a modulus of tens of thousands of bits costs seconds per
    # operation (and minutes to check a private key), with the GIL held; a huge exponent
    # makes each verification dear.
    check_rsa_public_numbers(n, e)
    public = rsa.RSAPublicNumbers(e, n)
    if "d" not in members:
        return public.public_key()
    # RFC 7518 §6.3.2: the other private members "MUST be present" with d (unless the key
    # is multi-prime, "oth", which is not supported). Recovering p and q from d alone is a
    # modular exponentiation with an exponent the JWK chooses: refused rather than done.
    if "oth" in members:
        raise InvalidKeyError("multi-prime RSA JWKs (oth) are not supported")
    missing = [name for name in _RSA_CRT_MEMBERS if name not in members]
    if missing:
        raise InvalidKeyError(
            f"an RSA private JWK needs p, q, dp, dq and qi with d (RFC 7518 §6.3.2); "
            f"missing {missing}"
        )
    d = _jwk_int(members, "d")
    p, q, dmp1, dmq1, iqmp = (_jwk_int(members, name) for name in _RSA_CRT_MEMBERS)
    numbers = rsa.RSAPrivateNumbers(p, q, d, dmp1, dmq1, iqmp, public)
    # Before OpenSSL's key check, which tests p and q for primality with the GIL held: a
    # huge p beside a tiny q (n within the size cap) took half a minute to refuse.
    check_rsa_private_numbers(numbers)
    return numbers.private_key()


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
