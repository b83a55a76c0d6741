"""Compact JWS (RFC 7515 §7.1): sign and verify bytes, with the header checks of RFC 8725.

The header's ``alg`` must be in the caller's allowlist and be the algorithm of the key that
verifies; ``crit`` is refused (we implement no extension), ``b64: false`` is refused, embedded
keys (``jwk``, ``jku``, ``x5u``, ``x5c``) are never used, and the token is size-capped before
any decoding.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from jwtlite._encoding import (
    EncodingError,
    b64url_decode,
    b64url_encode,
    json_dumps,
    json_frozen,
    json_loads,
    json_thawed,
)
from jwtlite.errors import (
    AlgorithmNotAllowedError,
    InvalidKeyError,
    InvalidSignatureError,
    MalformedTokenError,
)
from jwtlite.keys import Key, KeySet, KeySource, as_key

__all__ = [
    "DEFAULT_MAX_TOKEN_SIZE",
    "DecodedJWS",
    "decode",
    "decode_complete",
    "encode",
    "get_unverified_header",
    "verify",
]

DEFAULT_MAX_TOKEN_SIZE = 8 * 1024


class DecodedJWS(NamedTuple):
    """A verified JWS: its header, payload bytes and signature bytes."""

    header: dict[str, Any]
    payload: bytes
    signature: bytes


def encode(
    payload: bytes,
    key: Any,
    algorithm: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``payload`` and return a compact JWS.

    Args:
        payload: the bytes to sign.
        key: a secret, a ``cryptography`` key, PEM/DER, a JWK dict, a :class:`Key` or a
            :class:`KeySet` (whose current key signs and whose ``kid`` is written).
        algorithm: defaults to the key's own algorithm, else ``HS256``.
        headers: extra header members; ``alg`` is always the signing algorithm.

    Raises:
        InvalidKeyError: the key cannot sign with ``algorithm``.
        AlgorithmNotAllowedError: ``algorithm`` is unsupported or not the key's.
    """
    signing_key = _signing_key(key, algorithm)
    if headers:
        header_segment = _header_segment_for(signing_key, headers)
    else:
        header_segment = _default_header_segment(signing_key.algorithm, signing_key.kid)
    signing_input = header_segment + b"." + b64url_encode(payload)
    signature = b64url_encode(signing_key.sign(signing_input))
    return (signing_input + b"." + signature).decode("ascii")


def decode(
    token: str | bytes,
    key: Any,
    algorithms: Sequence[str],
    *,
    max_size: int = DEFAULT_MAX_TOKEN_SIZE,
) -> bytes:
    """Verify a compact JWS and return its payload bytes.

    ``key`` is what :func:`encode` takes, or a :class:`~jwtlite.keys.KeySource` such as
    :class:`~jwtlite.resource.jwks_client.JWKSClient`; a :class:`KeySet` or a key source picks the
    key by the header's ``kid``.

    Raises:
        MalformedTokenError: the token is too large or not a well-formed compact JWS.
        AlgorithmNotAllowedError: ``alg`` is not in ``algorithms`` or not the key's.
        InvalidKeyError: the key cannot verify ``alg``, or no key matches ``kid``.
        InvalidSignatureError: the signature does not verify.
    """
    return verify(token, key, algorithms, max_size=max_size)[1]


def decode_complete(
    token: str | bytes,
    key: Any,
    algorithms: Sequence[str],
    *,
    max_size: int = DEFAULT_MAX_TOKEN_SIZE,
) -> DecodedJWS:
    """Like :func:`decode`, returning the header and signature too."""
    header, payload, signature = verify(token, key, algorithms, max_size=max_size)
    return DecodedJWS(json_thawed(header), payload, signature)


def verify(
    token: str | bytes,
    key: Any,
    algorithms: Sequence[str],
    *,
    max_size: int = DEFAULT_MAX_TOKEN_SIZE,
) -> tuple[Mapping[str, Any], bytes, bytes]:
    """Verify ``token``; return (header, payload, signature) for the layer above.

    The header is a read-only view (objects are ``MappingProxyType``, arrays tuples), shared
    between tokens with the same header segment; :func:`decode_complete` hands out a mutable
    copy. The checks use the parser's own copy of ``alg`` and ``kid``, never this view.
    """
    if isinstance(algorithms, str | bytes) or not algorithms:
        raise TypeError("algorithms must be a non-empty list of algorithm names")
    signing_input, header_segment, payload_segment, signature_segment = _split(token, max_size)
    header = _parse_header(header_segment)
    algorithm = header.algorithm
    if algorithm not in algorithms:
        raise AlgorithmNotAllowedError(
            f"Algorithm {algorithm!r} is not allowed", algorithm=algorithm
        )
    verifying_key = _verifying_key(key, header)
    try:
        signature = b64url_decode(signature_segment)
    except EncodingError as exc:
        raise MalformedTokenError("Token signature is not base64url") from exc
    if not verifying_key.verify(signing_input, signature):
        raise InvalidSignatureError("Signature verification failed")
    try:
        payload = b64url_decode(payload_segment)
    except EncodingError as exc:
        raise MalformedTokenError("Token payload is not base64url") from exc
    return header.members, payload, signature


def get_unverified_header(
    token: str | bytes, *, max_size: int = DEFAULT_MAX_TOKEN_SIZE
) -> dict[str, Any]:
    """Return the header of ``token`` WITHOUT verifying anything. Never trust it.

    Raises:
        MalformedTokenError: the token or its header is malformed.
    """
    header: dict[str, Any] = json_thawed(_parse_header(_split(token, max_size)[1]).members)
    return header


def _split(token: str | bytes, max_size: int) -> tuple[bytes, bytes, bytes, bytes]:
    """(signing input, header, payload, signature) segments of a compact token."""
    if isinstance(token, str):
        if len(token) > max_size:
            raise MalformedTokenError(f"Token is larger than {max_size} bytes")
        try:
            token = token.encode("ascii")
        except UnicodeEncodeError as exc:
            raise MalformedTokenError("Token has non-ASCII characters") from exc
    elif not isinstance(token, bytes):
        raise MalformedTokenError("Token must be a str or bytes")
    if len(token) > max_size:
        raise MalformedTokenError(f"Token is larger than {max_size} bytes")
    signing_input, _, signature = token.rpartition(b".")
    header, dot, payload = signing_input.partition(b".")
    if not dot or b"." in payload:
        raise MalformedTokenError("Token must have exactly three segments")
    return signing_input, header, payload, signature


class _Header(NamedTuple):
    """A checked header: the verifier's own ``alg`` and ``kid``, and every member.

    The members are a read-only view, for callers."""

    algorithm: str
    kid: str | None
    members: Mapping[str, Any]


@functools.lru_cache(maxsize=256)
def _parse_header(segment: bytes) -> _Header:
    # Tokens from one issuer share their header segment byte for byte, so parsing and
    # checking it once per distinct segment is safe and saves a base64 and JSON pass. What
    # is cached is immutable: a caller cannot change how the next token is checked.
    try:
        header = json_loads(b64url_decode(segment))
    except EncodingError as exc:
        raise MalformedTokenError(f"Token header is invalid: {exc}") from exc
    if not isinstance(header, dict):
        raise MalformedTokenError("Token header must be a JSON object")
    _check_header(header)
    return _Header(header["alg"], header.get("kid"), json_frozen(header))


def _check_header(header: Mapping[str, Any]) -> None:
    if not isinstance(header.get("alg"), str):
        raise MalformedTokenError("Token header has no alg string")
    if "crit" in header:
        raise MalformedTokenError("Token header names critical extensions; none is supported")
    if header.get("b64", True) is not True:
        raise MalformedTokenError("Unencoded payloads (b64) are not supported")
    for name in ("kid", "typ", "cty"):
        if name in header and not isinstance(header[name], str):
            raise MalformedTokenError(f"Token header {name} must be a string")


def _signing_key(key: Any, algorithm: str | None) -> Key:
    if isinstance(key, KeySet):
        key = key.current
    if algorithm is None:
        # A Key signs with its own algorithm; a raw key defaults to HS256. An explicit
        # algorithm that is not a Key's own is refused by as_key.
        return key if isinstance(key, Key) else as_key(key, "HS256")
    return as_key(key, algorithm)


def _verifying_key(key: Any, header: _Header) -> Key:
    if isinstance(key, KeySet):
        if header.kid is None:
            raise InvalidKeyError("Token has no kid to choose a key with")
        key = key.get(header.kid)
    elif isinstance(key, KeySource):
        if header.kid is None:
            raise InvalidKeyError("Token has no kid to choose a key with")
        key = key.key_for(header.kid)
    return as_key(key, header.algorithm)


@functools.lru_cache(maxsize=64)
def _default_header_segment(algorithm: str, kid: str | None) -> bytes:
    header = {"alg": algorithm, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    return b64url_encode(json_dumps(header))


def _header_segment_for(key: Key, headers: Mapping[str, Any]) -> bytes:
    header: dict[str, Any] = {"alg": key.algorithm, "typ": "JWT"}
    if key.kid is not None:
        header["kid"] = key.kid
    header.update(headers)
    header["alg"] = key.algorithm
    _check_header(header)
    return b64url_encode(json_dumps(header))
