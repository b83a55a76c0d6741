"""Serialised key material (PEM, DER, OpenSSH, JWK text): load it, or recognise it.

Loading turns bytes into ``cryptography`` key objects. Recognising answers one question for
HMAC secrets: do these bytes *parse* as key material? Accepting a public key as a shared
secret is the classic algorithm-confusion attack (RFC 8725 §2.1), so such bytes are refused
as secrets; anything that does not parse is an ordinary secret, whatever its first byte
(a random 32-byte secret starts with ``{`` or ``0`` about once in 128 draws).
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from jwtlite._encoding import EncodingError, json_loads
from jwtlite._jwk import CURVE_NAMES, EC_ALGORITHMS, material_from_jwk
from jwtlite.algorithms import check_rsa_private_numbers
from jwtlite.errors import InvalidKeyError

__all__ = ["infer_algorithm", "is_key_material", "load_pem", "load_pem_or_der"]

# First bytes (after leading whitespace) of OpenSSH public keys and of PEM armour; a DER key
# starts with a SEQUENCE tag.
_SSH_STARTS = (b"ssh-", b"sk-ssh-", b"sk-ecdsa-", b"ecdsa-sha2-")
_TEXT_KEY_STARTS = (b"-----BEGIN", *_SSH_STARTS)
_DER_SEQUENCE = b"\x30"


def is_key_material(data: bytes) -> bool:
    """Whether ``data`` is key material: a key, a certificate, a JWK or a JWK Set.

    True when it loads as a PEM, DER or OpenSSH key or certificate, or is the JSON text of a
    JWK or JWK Set."""
    start = data.lstrip()
    if start.startswith(b"{"):
        return _is_jwk_text(data)
    if not start.startswith(_TEXT_KEY_STARTS) and not data.startswith(_DER_SEQUENCE):
        return False  # nothing else can load: skip the parsers
    try:
        load_pem_or_der(data)
    except InvalidKeyError:
        return False
    return True


def _is_jwk_text(data: bytes) -> bool:
    try:
        members = json_loads(data.strip())  # starts with "{": an object when it parses
    except EncodingError:
        return False
    if isinstance(members.get("keys"), list):
        return True  # a JWK Set document
    try:
        material_from_jwk(members)
    except InvalidKeyError:
        return False
    return True


def load_pem_or_der(data: bytes) -> Any:
    """Load a PEM key or certificate, an OpenSSH public key, or a DER key.

    Raises:
        InvalidKeyError: ``data`` is none of these.
    """
    if data.lstrip().startswith(b"-----BEGIN"):
        return load_pem(data, None)
    if data.lstrip().startswith(_SSH_STARTS):
        try:
            return serialization.load_ssh_public_key(data.strip())
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise InvalidKeyError("unreadable SSH public key") from exc
    for loader in (_der_private, serialization.load_der_public_key):
        try:
            return loader(data)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
    raise InvalidKeyError("key material is neither PEM, DER nor an SSH public key")


def _der_private(data: bytes) -> Any:
    return _checked_private(
        serialization.load_der_private_key(data, password=None, unsafe_skip_rsa_key_validation=True)
    )


def _checked_private(key: Any) -> Any:
    """``key``, loaded without OpenSSL's RSA key check, now checked.

    The cheap checks run first, then OpenSSL's (primality of p and q, seconds with the GIL held
    for a lopsided key)."""
    if not isinstance(key, rsa.RSAPrivateKey):
        return key
    numbers = key.private_numbers()
    check_rsa_private_numbers(numbers)
    return numbers.private_key()


def load_pem(data: bytes, password: bytes | None) -> Any:
    """Load a PEM private key, public key or certificate (its public key).

    Raises:
        InvalidKeyError: unreadable, or encrypted without the right ``password``.
    """
    first_line = data.lstrip().split(b"\n", 1)[0]
    if b"CERTIFICATE" in first_line:
        try:
            # Imported here: cryptography.x509 costs ~40 ms and a few MB, and only a
            # certificate needs it.
            from cryptography import x509  # noqa: PLC0415

            return x509.load_pem_x509_certificate(data).public_key()
        except ValueError as exc:
            raise InvalidKeyError("unreadable PEM certificate") from exc
    if b"PRIVATE KEY" in first_line:
        try:
            key = serialization.load_pem_private_key(
                data, password=password, unsafe_skip_rsa_key_validation=True
            )
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise InvalidKeyError("unreadable PEM private key") from exc
        try:
            return _checked_private(key)
        except ValueError as exc:
            raise InvalidKeyError("invalid RSA private key") from exc
    try:
        return serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidKeyError("unreadable PEM public key") from exc


def infer_algorithm(material: Any) -> str:
    """The one algorithm an EC or EdDSA key can serve (RSA keys serve several: name it).

    Raises:
        InvalidKeyError: an RSA key, or a curve no JWS algorithm uses.
    """
    if isinstance(material, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        name = CURVE_NAMES.get(material.curve.name)
        if name is None:
            raise InvalidKeyError(f"unsupported curve {material.curve.name}")
        return EC_ALGORITHMS[name]
    if isinstance(
        material,
        ed25519.Ed25519PrivateKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PrivateKey
        | ed448.Ed448PublicKey,
    ):
        return "EdDSA"
    raise InvalidKeyError("the algorithm cannot be inferred from this key; name it")
