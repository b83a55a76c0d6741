"""One exception tree for jwtlite.

Token problems derive from :class:`JWTError`; the service's own refusals derive from
:class:`ServiceError`; :class:`ConfigurationError` is raised at start-up. No exception here
knows about HTTP: ``jwtlite.web.app`` maps them to responses in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = [
    "AccessTokenRejectedError",
    "AlgorithmNotAllowedError",
    "AuthenticationError",
    "BusyError",
    "CSRFError",
    "ConfigurationError",
    "ExpiredTokenError",
    "ImmatureTokenError",
    "InactiveUserError",
    "InvalidAudienceError",
    "InvalidClaimError",
    "InvalidIssuerError",
    "InvalidKeyError",
    "InvalidSignatureError",
    "JWKSFetchError",
    "JWTError",
    "MalformedTokenError",
    "MissingClaimError",
    "NotAuthenticatedError",
    "NotFoundError",
    "ServiceError",
    "StoreUnavailableError",
    "ThrottledError",
    "TokenRevokedError",
    "ValidationError",
    "WrongTokenTypeError",
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
    """A JWK Set could not be fetched or used (network, HTTP status, size, JSON, a key the
    library refuses) and no cached key can answer instead. ``url`` is the JWKS address
    without its query."""

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


class WrongTokenTypeError(InvalidClaimError):
    """A valid token used where the other type is needed (access given to refresh)."""

    def __init__(self, expected: str) -> None:
        super().__init__("Token has wrong type", claim="token_type", expected=expected)


class TokenRevokedError(JWTError):
    """A refresh token that was blacklisted, or already spent under rotation."""

    def __init__(self, jti: str) -> None:
        super().__init__("Token is blacklisted")
        self.jti = jti


class ServiceError(Exception):
    """Root of the service's refusals that are not token problems."""


class ValidationError(ServiceError):
    """Request data broke one or more rules; ``errors`` maps field names to messages."""

    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = {field: list(messages) for field, messages in errors.items()}


class AuthenticationError(ServiceError):
    """Wrong credentials, unknown user or inactive user: deliberately indistinguishable."""


class InactiveUserError(ServiceError):
    """A token's user no longer exists (``code="user_not_found"``) or is inactive."""

    def __init__(self, code: str = "user_inactive") -> None:
        super().__init__("No active account found for the given token.")
        self.code = code


class NotAuthenticatedError(ServiceError):
    """A protected resource was called without usable credentials.

    ``code`` is None when credentials are missing, ``"bad_authorization_header"`` when the
    ``Authorization`` header is not ``Bearer <token>``.
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class NotFoundError(ServiceError):
    """What a request names does not exist for its caller (an unknown session id, or
    another user's: the same answer, so ids cannot be probed)."""


class AccessTokenRejectedError(JWTError):
    """A token offered to authenticate a request is not a valid access token.

    ``cause`` is the specific problem (expired, wrong type, bad signature...).
    """

    def __init__(self, cause: JWTError) -> None:
        super().__init__("Given token not valid for any token type")
        self.cause = cause


class ThrottledError(ServiceError):
    """Too many failed logins; ``retry_after`` is in whole seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Request was throttled. Expected available in {retry_after} seconds.")
        self.retry_after = retry_after


class CSRFError(ServiceError):
    """A request that a cross-site page could have made the browser send was refused.

    Either a request authenticated by a cookie lacks the CSRF value bound to that cookie's
    token, or a request whose answer would set token cookies comes from an origin that is not
    trusted (login CSRF). The message says which, in Django's wording.
    """


class StoreUnavailableError(ServiceError):
    """The user store cannot be read or written (disk full, read-only, missing)."""


class BusyError(ServiceError):
    """Too many requests already wait for a password hash: shed this one now rather than
    let it hold a server thread that other requests need."""


class ConfigurationError(ValueError):
    """A setting is invalid; ``setting`` names it. Raised at start-up, never per request."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
