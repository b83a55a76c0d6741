"""The token library's exceptions: one tree under :class:`JWTError`.

Every problem with a token or a key derives from :class:`JWTError`, so ``except JWTError``
is the one catch a caller needs. No exception here knows about HTTP, SQL or the service:
the service's refusals live in :mod:`jwtlite.service.errors` (its token refusals still
subclass :class:`JWTError`), the store's in :mod:`jwtlite.store.errors`.
"""

from __future__ import annotations

__all__ = [
    "AlgorithmNotAllowedError",
    "ExpiredTokenError",
    "ImmatureTokenError",
    "InvalidAudienceError",
    "InvalidClaimError",
    "InvalidIssuerError",
    "InvalidKeyError",
    "InvalidSignatureError",
    "JWKSFetchError",
    "JWTError",
    "MalformedTokenError",
    "MissingClaimError",
]


class JWTError(Exception):
    """Root of every token problem: catch this to refuse a token."""


class MalformedTokenError(JWTError):
    """The token is not a well-formed compact JWS/JWT (segments, base64url, JSON, size)."""


class InvalidSignatureError(JWTError):
    """The signature does not verify with the given key."""


class AlgorithmNotAllowedError(JWTError):
    """The header's ``alg`` is not allowed, or the key cannot serve it."""

    def __init__(self, message: str, *, algorithm: object = None) -> None:
        super().__init__(message)
        self.algorithm = algorithm


class InvalidKeyError(JWTError):
    """The key material is unusable: wrong type, too weak, unparsable, or unknown ``kid``."""


class JWKSFetchError(JWTError):
    """A JWK Set could not be fetched or used, and no cached key can answer instead.

    The causes: network, HTTP status, size, JSON, a key the library refuses. ``url`` is the
    JWKS address without its query."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class InvalidClaimError(JWTError):
    """A claim is present but has the wrong type or value."""

    def __init__(self, message: str, *, claim: str, expected: object = None) -> None:
        super().__init__(message)
        self.claim = claim
        self.expected = expected


class MissingClaimError(InvalidClaimError):
    """A required claim is absent."""

    def __init__(self, claim: str) -> None:
        super().__init__(f'Token is missing the "{claim}" claim', claim=claim)


class ExpiredTokenError(InvalidClaimError):
    """``exp`` is in the past (beyond the leeway)."""

    def __init__(self, expired_at: float) -> None:
        super().__init__("Token is expired", claim="exp")
        self.expired_at = expired_at


class ImmatureTokenError(InvalidClaimError):
    """``nbf`` (or ``iat``) is in the future (beyond the leeway)."""

    def __init__(self, claim: str, valid_from: float) -> None:
        super().__init__("Token is not yet valid", claim=claim)
        self.valid_from = valid_from


class InvalidAudienceError(InvalidClaimError):
    """``aud`` does not name an expected audience."""

    def __init__(self, message: str, *, expected: object = None) -> None:
        super().__init__(message, claim="aud", expected=expected)


class InvalidIssuerError(InvalidClaimError):
    """``iss`` is not the expected issuer."""

    def __init__(self, message: str, *, expected: object = None) -> None:
        super().__init__(message, claim="iss", expected=expected)
