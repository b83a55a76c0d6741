"""A WSGI middleware that lets only requests with a valid Bearer token reach an app (RFC 6750).

For resource servers that trust tokens issued elsewhere (by jwtlite's service).

Plain WSGI, no framework: wrap any WSGI app (Flask, Django, Falcon...) and serve it with any
WSGI server. The claims of a verified token are put in the environ under
:data:`CLAIMS_ENVIRON_KEY`. Answers, all with a small JSON body ``{"detail": ...}`` and
``Cache-Control: no-store``:

============================================  ====  =========================================
request                                       code  ``WWW-Authenticate``
============================================  ====  =========================================
no ``Authorization`` header, an empty or     401   ``Bearer realm="..."`` (no error code,
blank one, or another scheme (``Basic ...``)          RFC 6750 §3.1)
``Bearer`` without exactly one token68       400   ``error="invalid_request"``
after one or more spaces (a tab, a quote...)
bad, expired, wrong audience/issuer/type      401   ``error="invalid_token"``
valid token without the required scopes       403   ``error="insufficient_scope"``
no key can be fetched (JWKS down, no cache)   503   none (the token is not at fault); with
                                                      ``Retry-After``
============================================  ====  =========================================
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, NamedTuple

from jwtlite.algorithms import ALGORITHMS
from jwtlite.errors import (
    ExpiredTokenError,
    ImmatureTokenError,
    InvalidAudienceError,
    InvalidIssuerError,
    JWKSFetchError,
    JWTError,
    MissingClaimError,
)
from jwtlite.jwt import Options, decode

__all__ = ["CLAIMS_ENVIRON_KEY", "BearerAuth", "Refusal"]

#: Why a token was refused, at INFO: the reason and the error's class, never the token.
_log = logging.getLogger(__name__)

#: The environ key under which a verified token's claims (a dict) reach the app; ``None``
#: for an anonymous request let through by ``allow_anonymous=True``.
CLAIMS_ENVIRON_KEY = "jwtlite.claims"

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_REALM = re.compile(r"[\x20-\x7e]*")
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

# Short descriptions that say what is wrong without echoing the token or a key.
_DESCRIPTIONS: tuple[tuple[type[JWTError], str], ...] = (
    (ExpiredTokenError, "The access token expired"),
    (ImmatureTokenError, "The access token is not valid yet"),
    (InvalidAudienceError, "The access token is for another audience"),
    (InvalidIssuerError, "The access token is from another issuer"),
    (MissingClaimError, "The access token lacks a required claim"),
)


class BearerAuth:
    """Verify the Bearer token of every request before ``app`` sees it.

    Args:
        app: the WSGI application to guard.
        keys: what verifies the tokens: a :class:`jwtlite.JWKSClient` (usual), a
            :class:`jwtlite.KeySet`, a :class:`jwtlite.Key` or key material.
        algorithms: the allowlist of token algorithms; required, never a default.
        audience: the audience(s) a token must name; None refuses tokens with ``aud``.
        issuer: the issuer (or issuers) a token must name; None skips the check.
        leeway: seconds of clock skew tolerated for ``exp``, ``nbf`` and ``iat``.
        require: claim names every token must carry (``exp`` always is).
        token_types: accepted values of the ``token_type`` claim when present (jwtlite's
            refresh tokens say ``"refresh"``, and are signed by a key no JWKS publishes
            anyway); None accepts any.
        scopes: scopes every token must grant (a list, not a string), from its ``scope``
            claim (RFC 6749 §3.3: scope tokens separated by spaces, U+0020 only; repeated
            spaces are ignored; any other character, tabs and non-breaking spaces included,
            is part of a token) or, only when ``scope`` is absent, its ``scp`` claim (a list
            of strings); a token without them is answered 403.
        realm: the ``realm`` of ``WWW-Authenticate``.
        allow_anonymous: let requests *without* an ``Authorization`` header (or with an
            empty or blank one) through, with ``None`` as their claims; a bad token is still
            refused.
        retry_after: seconds sent in ``Retry-After`` when no key can be fetched (an int,
            0 or more).

    Raises:
        TypeError: ``algorithms`` is empty or a string; ``scopes``, ``token_types`` or
            ``require`` is a string; ``retry_after`` is not an int.
        ValueError: ``realm`` or a scope has characters a quoted header value cannot carry.
    """

    def __init__(
        self,
        app: WSGIApp,
        keys: Any,
        *,
        algorithms: Sequence[str],
        audience: str | Iterable[str] | None = None,
        issuer: str | Sequence[str] | None = None,
        leeway: float | timedelta = 0,
        require: Iterable[str] = (),
        token_types: Iterable[str] | None = ("access",),
        scopes: Iterable[str] = (),
        realm: str = "api",
        allow_anonymous: bool = False,
        retry_after: int = 30,
    ) -> None:
        if isinstance(algorithms, str | bytes) or not algorithms:
            raise TypeError("algorithms must be a non-empty list of algorithm names")
        unknown = sorted(str(a) for a in algorithms if a not in ALGORITHMS)
        if unknown:
            # "none" among them: every token would be refused, and the mistake found late.
            raise ValueError(f"algorithms names no signature algorithm of the library: {unknown}")
        for name, value in (("scopes", scopes), ("token_types", token_types), ("require", require)):
            if isinstance(value, str | bytes):
                raise TypeError(f"{name} must be a list of strings, not a string")
        if isinstance(retry_after, bool) or not isinstance(retry_after, int):
            raise TypeError("retry_after must be an int")
        if retry_after < 0:
            raise ValueError("retry_after must be 0 or more")
        if not _REALM.fullmatch(realm) or '"' in realm or "\\" in realm:
            raise ValueError("realm must be printable ASCII without quotes or backslashes")
        scopes = frozenset(scopes)
        if not all(isinstance(scope, str) and _SCOPE.fullmatch(scope) for scope in scopes):
            raise ValueError("scopes must be RFC 6749 scope tokens (no spaces or quotes)")
        self.app = app
        self._keys = keys
        self._algorithms = list(algorithms)
        self._audience = audience
        self._issuer = issuer
        self._leeway = leeway
        self._options = Options(require=tuple(dict.fromkeys(("exp", *require))))
        self._token_types = None if token_types is None else frozenset(token_types)
        self._scopes = scopes
        self._allow_anonymous = allow_anonymous
        self._challenge = f'Bearer realm="{realm}"'
        # The refusals that do not depend on the token, built once.
        self._no_credentials = Refusal(
            401, "Authentication credentials were not provided.", self._challenge
        )
        self._invalid_request = Refusal(
            400,
            "Authorization header must contain two space-delimited values",
            f'{self._challenge}, error="invalid_request", '
            'error_description="The Authorization header must be Bearer and one token"',
        )
        self._insufficient_scope = Refusal(
            403,
            "The access token does not grant the required scope",
            f'{self._challenge}, error="insufficient_scope", '
            f'scope="{" ".join(sorted(self._scopes))}"',
        )
        self._unavailable = Refusal(
            503,
            "The keys that verify tokens cannot be fetched now; try again later",
            None,
            (("Retry-After", str(retry_after)),),
        )

    @property
    def unavailable(self) -> Refusal:
        """The answer when no key can be had now: 503 with ``Retry-After``."""
        return self._unavailable

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Refuse the request, or pass it on to the app with its claims in the environ."""
        outcome = self.authenticate(environ.get("HTTP_AUTHORIZATION"))
        if isinstance(outcome, Refusal):
            return outcome.answer(start_response)
        environ[CLAIMS_ENVIRON_KEY] = outcome
        return self.app(environ, start_response)

    def authenticate(self, header: str | None, keys: Any = None) -> dict[str, Any] | Refusal | None:
        """The claims of the token in ``header`` (an ``Authorization`` value), or a refusal.

        None for a permitted anonymous request; otherwise the :class:`Refusal` to answer
        with. ``keys`` stands in for the guard's own keys for this call (the ASGI guard's
        cached-only view of a JWKS client). The same answers for any server interface."""
        if header is None or not header.strip(" \t"):
            # An empty or blank header carries no credentials: as if absent.
            return None if self._allow_anonymous else self._no_credentials
        token = self._token_in(header)
        if isinstance(token, Refusal):
            return token
        return self._claims_of(token, self._keys if keys is None else keys)

    def _token_in(self, header: str) -> str | Refusal:
        header = header.strip(" \t")
        scheme = header.split(" ", 1)[0].split("\t", 1)[0]
        if scheme.lower() != "bearer":
            return self._no_credentials
        # RFC 6750 §2.1: "Bearer" 1*SP b64token. A tab after the scheme is Bearer badly
        # written (400), not another scheme (401).
        rest = header[len(scheme) :]
        token = rest.strip(" ")
        if not rest.startswith(" ") or not _TOKEN68.fullmatch(token):
            return self._invalid_request
        return token

    def _claims_of(self, token: str, keys: Any) -> dict[str, Any] | Refusal:
        try:
            claims = self._verify(token, keys)
        except JWKSFetchError as exc:
            _log.info("bearer token refused: no key can be fetched from %s", exc.url)
            return self._unavailable
        except JWTError as exc:
            description = _describe(exc)
            _log.info("bearer token refused: %s (%s)", description, type(exc).__name__)
            return self._invalid_token(description)
        if not self._type_accepted(claims):
            _log.info(
                "bearer token refused: token_type %.40r is not accepted", claims["token_type"]
            )
            return self._invalid_token("The token is not an access token")
        if self._scopes and not self._scopes <= (granted := _granted_scopes(claims)):
            _log.info(
                "bearer token refused: scopes missing: %s", " ".join(sorted(self._scopes - granted))
            )
            return self._insufficient_scope
        return claims

    def _verify(self, token: str, keys: Any) -> dict[str, Any]:
        return decode(
            token,
            keys,
            self._algorithms,
            audience=self._audience,
            issuer=self._issuer,
            leeway=self._leeway,
            options=self._options,
        )

    def _type_accepted(self, claims: dict[str, Any]) -> bool:
        if self._token_types is None or "token_type" not in claims:
            return True
        token_type = claims["token_type"]
        return isinstance(token_type, str) and token_type in self._token_types

    def _invalid_token(self, description: str) -> Refusal:
        challenge = f'{self._challenge}, error="invalid_token", error_description="{description}"'
        return Refusal(401, description, challenge)


class Refusal(NamedTuple):
    """An answer that stops the request: status code, JSON detail, challenge, headers."""

    status: int
    detail: str
    challenge: str | None
    extra: tuple[tuple[str, str], ...] = ()

    def headers(self, body: bytes) -> list[tuple[str, str]]:
        """The response headers for ``body``."""
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ]
        if self.challenge is not None:
            headers.append(("WWW-Authenticate", self.challenge))
        return headers + list(self.extra)

    def body(self) -> bytes:
        """The JSON body ``{"detail": ...}``."""
        return json.dumps({"detail": self.detail}).encode()

    def answer(self, start_response: StartResponse) -> list[bytes]:
        """Answer a WSGI request with this refusal."""
        body = self.body()
        start_response(_STATUS_LINES[self.status], self.headers(body))
        return [body]


_STATUS_LINES = {
    400: "400 Bad Request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    503: "503 Service Unavailable",
}


def _describe(exc: JWTError) -> str:
    for kind, description in _DESCRIPTIONS:
        if isinstance(exc, kind):
            return description
    return "The access token is invalid"


def _granted_scopes(claims: dict[str, Any]) -> frozenset[str]:
    if "scope" in claims:
        # RFC 6749 §3.3: tokens are separated by %x20 only (str.split() also splits on tabs,
        # newlines and Unicode spaces, so "admin\u00a0read" granted "admin"). A scope claim
        # that is present, whatever its value, means scp is not consulted.
        scope = claims["scope"]
        if not isinstance(scope, str):
            return frozenset()
        return frozenset(token for token in scope.split(" ") if token)
    scp = claims.get("scp")
    if isinstance(scp, list) and all(isinstance(item, str) for item in scp):
        return frozenset(scp)
    return frozenset()
