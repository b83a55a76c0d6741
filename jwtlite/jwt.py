"""JWT claims (RFC 7519 §4.1) on top of :mod:`jwtlite.jws`.

One ``_check_<claim>`` per registered claim and a short orchestrator. NumericDates must be
finite JSON numbers (never booleans or strings); ``exp`` is reached when ``now >= exp``;
``iss`` and ``aud`` are compared exactly; an ``aud`` nobody asked for is refused; ``sub`` and
``jti``, when present, must be strings (RFC 7519 §4.1.2, §4.1.7; PyJWT refuses others too).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from jwtlite import jws
from jwtlite._encoding import EncodingError, b64url_decode, json_dumps, json_loads, json_thawed
from jwtlite.errors import (
    ExpiredTokenError,
    ImmatureTokenError,
    InvalidAudienceError,
    InvalidClaimError,
    InvalidIssuerError,
    MalformedTokenError,
    MissingClaimError,
)

__all__ = ["Options", "decode", "decode_complete", "decode_unverified_claims", "encode"]


@dataclass(frozen=True, slots=True)
class Options:
    """Which claim checks run; signature verification is not optional and has no switch."""

    verify_exp: bool = True
    verify_nbf: bool = True
    verify_iat: bool = True
    verify_aud: bool = True
    verify_iss: bool = True
    require: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any] | Options | None) -> Options:
        """Build options from PyJWT-style keys; unknown keys are refused, not ignored.

        An ``Options`` instance is returned as it is (callers on a hot path build one once).
        """
        if not options:
            return _DEFAULT_OPTIONS
        if isinstance(options, Options):
            return options
        unknown = set(options) - {*cls.__slots__}
        if unknown:
            raise ValueError(f"unknown decode options: {sorted(unknown)}")
        values = dict(options)
        if "require" in values:
            values["require"] = tuple(values["require"])
        return cls(**values)


_DEFAULT_OPTIONS = Options()


def encode(
    payload: Mapping[str, Any],
    key: Any,
    algorithm: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``payload`` as a JWT and return the compact token.

    ``datetime`` values (``exp``, ``nbf``, ``iat`` or any other) become whole-second
    NumericDates. ``algorithm`` defaults to the key's own, else ``HS256``; see
    :func:`jwtlite.jws.encode` for the accepted keys.

    Raises:
        TypeError: ``payload`` is not a mapping, or holds a value JSON cannot carry.
        ValueError: ``payload`` holds NaN or an infinity.
        InvalidKeyError, AlgorithmNotAllowedError: the key cannot sign.
    """
    if type(payload) is not dict:
        if not isinstance(payload, Mapping):
            raise TypeError("the JWT payload must be a mapping")
        payload = dict(payload)
    return jws.encode(json_dumps(payload), key, algorithm, headers)


def decode(
    token: str | bytes,
    key: Any,
    algorithms: Sequence[str],
    *,
    audience: str | Iterable[str] | None = None,
    issuer: str | Sequence[str] | None = None,
    leeway: float | timedelta = 0,
    options: Mapping[str, Any] | Options | None = None,
    now: float | None = None,
    max_size: int = jws.DEFAULT_MAX_TOKEN_SIZE,
) -> dict[str, Any]:
    """Verify ``token`` and its claims; return the claims.

    Args:
        token: the compact JWT.
        key: the verifying key (see :func:`jwtlite.jws.decode`).
        algorithms: the allowlist; the header's ``alg`` must be in it and be the key's.
        audience: accepted audience(s); when None, a token with ``aud`` is refused.
        issuer: the expected issuer (or several); compared exactly.
        leeway: seconds of clock skew tolerated for ``exp``, ``nbf`` and ``iat``.
        options: ``verify_exp``, ``verify_nbf``, ``verify_iat``, ``verify_aud``,
            ``verify_iss`` (default True) and ``require`` (claim names that must be present).
        now: the current time as a Unix timestamp; ``time.time()`` when None.
        max_size: tokens longer than this are refused before decoding.

    Raises:
        JWTError: a subclass naming the problem; never anything else for untrusted input.
    """
    _, payload, _ = jws.verify(token, key, algorithms, max_size=max_size)
    claims = _load_claims(payload)
    check_claims(
        claims,
        audience=audience,
        issuer=issuer,
        leeway=leeway,
        options=Options.from_mapping(options),
        now=time.time() if now is None else now,
    )
    return claims


def decode_complete(
    token: str | bytes,
    key: Any,
    algorithms: Sequence[str],
    *,
    audience: str | Iterable[str] | None = None,
    issuer: str | Sequence[str] | None = None,
    leeway: float | timedelta = 0,
    options: Mapping[str, Any] | Options | None = None,
    now: float | None = None,
    max_size: int = jws.DEFAULT_MAX_TOKEN_SIZE,
) -> dict[str, Any]:
    """Like :func:`decode`; returns ``{"header", "payload", "signature"}``."""
    header, payload, signature = jws.verify(token, key, algorithms, max_size=max_size)
    claims = _load_claims(payload)
    check_claims(
        claims,
        audience=audience,
        issuer=issuer,
        leeway=leeway,
        options=Options.from_mapping(options),
        now=time.time() if now is None else now,
    )
    return {"header": json_thawed(header), "payload": claims, "signature": signature}


def decode_unverified_claims(
    token: str | bytes, *, max_size: int = jws.DEFAULT_MAX_TOKEN_SIZE
) -> dict[str, Any]:
    """Return the claims of ``token`` WITHOUT verifying its signature or any claim.

    For inspecting a token (``python -m jwtlite decode`` without a key); never trust the
    result. The token must still be well formed, with a header :func:`decode` would parse.

    Raises:
        MalformedTokenError: the token, its header or its payload is malformed.
    """
    jws.get_unverified_header(token, max_size=max_size)  # the same shape checks as decode
    raw = token.encode("ascii") if isinstance(token, str) else token
    try:
        payload = b64url_decode(raw.split(b".")[1])
    except EncodingError as exc:
        raise MalformedTokenError("Token payload is not base64url") from exc
    return _load_claims(payload)


def _load_claims(payload: bytes) -> dict[str, Any]:
    try:
        claims = json_loads(payload)
    except EncodingError as exc:
        raise MalformedTokenError(f"Token payload is invalid: {exc}") from exc
    if type(claims) is not dict:
        raise MalformedTokenError("Token payload must be a JSON object")
    return claims


def check_claims(
    claims: Mapping[str, Any],
    *,
    audience: str | Iterable[str] | None,
    issuer: str | Sequence[str] | None,
    leeway: float | timedelta,
    options: Options,
    now: float,
) -> None:
    """Run every enabled claim check on already-verified ``claims``."""
    if isinstance(leeway, timedelta):
        leeway = leeway.total_seconds()
    for name in options.require:
        if name not in claims:
            raise MissingClaimError(name)
    if "sub" in claims:
        _check_string(claims["sub"], "sub")
    if "jti" in claims:
        _check_string(claims["jti"], "jti")
    if options.verify_exp and "exp" in claims:
        _check_exp(claims["exp"], now, leeway)
    if options.verify_nbf and "nbf" in claims:
        _check_nbf(claims["nbf"], now, leeway)
    if options.verify_iat and "iat" in claims:
        _check_iat(claims["iat"], now, leeway)
    if options.verify_aud and (audience is not None or "aud" in claims):
        _check_aud(claims, audience)
    if options.verify_iss and issuer is not None:
        _check_iss(claims, issuer)


def _check_string(value: Any, claim: str) -> None:
    if type(value) is not str:
        raise InvalidClaimError(f"{claim} must be a string", claim=claim, expected="string")


def _numeric_date(value: Any, claim: str) -> float:
    # JSON numbers arrive as exactly int or float; bool (an int subclass) and strings are
    # refused, and so are the infinities a literal like 1e999 parses to.
    kind = type(value)
    if kind is int or (kind is float and math.isfinite(value)):
        return value  # type: ignore[no-any-return]
    raise InvalidClaimError(
        f"{claim} must be a NumericDate (a JSON number)", claim=claim, expected="number"
    )


def _check_exp(value: Any, now: float, leeway: float) -> None:
    exp = _numeric_date(value, "exp")
    # Compare as ``now - leeway`` so a huge integer claim never meets float arithmetic.
    if now - leeway >= exp:
        raise ExpiredTokenError(exp)


def _check_nbf(value: Any, now: float, leeway: float) -> None:
    nbf = _numeric_date(value, "nbf")
    if nbf > now + leeway:  # int/float comparison is exact and cannot overflow
        raise ImmatureTokenError("nbf", nbf)


def _check_iat(value: Any, now: float, leeway: float) -> None:
    iat = _numeric_date(value, "iat")
    if iat > now + leeway:
        raise ImmatureTokenError("iat", iat)


def _check_aud(claims: Mapping[str, Any], audience: str | Iterable[str] | None) -> None:
    if audience is None:
        if "aud" in claims:
            raise InvalidAudienceError("Token has an audience but none was expected")
        return
    expected = {audience} if isinstance(audience, str) else set(audience)
    if "aud" not in claims:
        raise MissingClaimError("aud")
    value = claims["aud"]
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise InvalidAudienceError("aud must be a string or a list of strings", expected=expected)
    if expected.isdisjoint(names):
        raise InvalidAudienceError("Token audience does not match", expected=expected)


def _check_iss(claims: Mapping[str, Any], issuer: str | Sequence[str]) -> None:
    if "iss" not in claims:
        raise MissingClaimError("iss")
    value = claims["iss"]
    accepted = (issuer,) if isinstance(issuer, str) else tuple(issuer)
    if not isinstance(value, str) or value not in accepted:
        raise InvalidIssuerError("Token issuer does not match", expected=issuer)
