"""The service's refusals and its start-up error.

Token refusals that only the service makes (a refresh token used as an access token, a
blacklisted one) subclass :class:`jwtlite.errors.JWTError`, so the library's tree stays the
one tree; every other refusal derives from :class:`ServiceError`;
:class:`ConfigurationError` is raised at start-up. No exception here knows about HTTP:
``jwtlite.web.app`` maps them to responses in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from jwtlite.errors import (
    InvalidClaimError,
    JWTError,
)

__all__ = [
    "AccessTokenRejectedError",
    "AuthenticationError",
    "BusyError",
    "CSRFError",
    "ConfigurationError",
    "InactiveUserError",
    "NotAuthenticatedError",
    "NotFoundError",
    "ServiceError",
    "ThrottledError",
    "TokenRevokedError",
    "ValidationError",
    "WrongTokenTypeError",
]


class WrongTokenTypeError(InvalidClaimError):
    """A valid token used where the other type is needed (access given to refresh)."""

    def __init__(self, expected: str) -> None:
        super().__init__("Token has wrong type", claim="token_type", expected=expected)


class TokenRevokedError(JWTError):
    """A refresh token that was blacklisted, or already spent under rotation."""

    def __init__(self, jti: str) -> None:
        super().__init__("Token is blacklisted")
        self.jti = jti


class AccessTokenRejectedError(JWTError):
    """A token offered to authenticate a request is not a valid access token.

    ``cause`` is the specific problem (expired, wrong type, bad signature...).
    """

    def __init__(self, cause: JWTError) -> None:
        super().__init__("Given token not valid for any token type")
        self.cause = cause


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
    """What a request names does not exist for its caller.

    An unknown session id, or another user's: the same answer, so ids cannot be probed."""


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


class BusyError(ServiceError):
    """Too many requests already wait for a password hash, so this one is shed now.

    Shedding it keeps it from holding a server thread that other requests need."""


class ConfigurationError(ValueError):
    """A setting is invalid; ``setting`` names it. Raised at start-up, never per request."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
