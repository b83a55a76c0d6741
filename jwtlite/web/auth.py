"""Where a request's tokens come from, and the CSRF rules that come with cookies.

:class:`RequestAuth` is built once by ``create_app``. Any endpoint authenticated by an access
token calls :meth:`RequestAuth.access_token` and gets, in one step, the token of the
``Authorization: Bearer`` header or, under a cookie transport, of the access cookie, with the
CSRF check that an unsafe request authenticated by a cookie needs. The token endpoints are
wired through :class:`CookieExchange`: the refresh cookie stands in for a missing body token
(CSRF-checked), answers that carry tokens set them as cookies (only for trusted origins), and
a logout clears them.

The rules (docs/reference/http.md, "Cookie transport"):

* Under the body transport no cookie is read or set: a cookie-borne token is ignored.
* A request authenticated by a header or body token needs no CSRF value: a cross-site page
  cannot make a browser add either.
* A request authenticated by a cookie with a method other than GET, HEAD, OPTIONS or TRACE
  must carry that token's CSRF value in ``X-CSRF-TOKEN`` (compared by the service).
* An answer that sets token cookies (log in, refresh) is given only to a request whose
  ``Origin`` (or, without one, ``Referer``) is this server's own origin or on the CORS
  allowlist (exact origins and regexes; allow-all does not count). A request with neither
  header comes from no browser (browsers send ``Origin`` on every POST) and is served.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import falcon

from jwtlite.errors import JWTError
from jwtlite.service import AuthService
from jwtlite.service.errors import (
    AccessTokenRejectedError,
    CSRFError,
    NotAuthenticatedError,
)
from jwtlite.service.origins import normalize_origin
from jwtlite.web.cookies import ACCESS, CSRF_HEADER, REFRESH, TokenCookies

__all__ = ["SAFE_METHODS", "CookieExchange", "RequestAuth", "bearer_token"]

#: Methods that change nothing, so a cookie suffices to authenticate them (RFC 9110 §9.2.1).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
NO_STORE = "no-store"


def bearer_token(req: falcon.Request) -> str:
    """The token of an ``Authorization: Bearer <token>`` header.

    Raises:
        NotAuthenticatedError: no header, another scheme, or not exactly two values.
    """
    header = req.get_header("Authorization")
    parts = header.split() if header else []
    if not parts or parts[0].lower() != "bearer":
        raise NotAuthenticatedError("Authentication credentials were not provided.")
    if len(parts) != 2:
        raise NotAuthenticatedError(
            "Authorization header must contain two space-delimited values",
            code="bad_authorization_header",
        )
    return parts[1]


class RequestAuth:
    """The token transport of one app: where tokens are read from and written to.

    Args:
        service: describes issued tokens and checks CSRF values.
        cookies: the token cookies, or None under the body transport.
        body_tokens: whether answers keep the tokens in the body too (the ``both``
            transport); meaningless without cookies.
        listed_origin: the CORS allowlist test (exact origins and regexes, not allow-all),
            returning the normalised origin or None.
    """

    def __init__(
        self,
        service: AuthService,
        *,
        cookies: TokenCookies | None,
        body_tokens: bool = False,
        listed_origin: Callable[[str], str | None] = lambda origin: None,
    ) -> None:
        self._service = service
        self._cookies = cookies
        self._body_tokens = body_tokens
        self._listed_origin = listed_origin

    @property
    def uses_cookies(self) -> bool:
        """Whether tokens travel in cookies (the ``cookie`` and ``both`` transports)."""
        return self._cookies is not None

    def access_token(self, req: falcon.Request) -> str:
        """The access token that authenticates ``req``.

        From ``Authorization: Bearer``; without that header (or with another scheme), under
        a cookie transport, from the access cookie, and then a request with an unsafe method
        must also carry the token's CSRF value in ``X-CSRF-TOKEN``.

        Raises:
            NotAuthenticatedError: no token at all, or a malformed ``Authorization`` header.
            CSRFError: a cookie-authenticated unsafe request without the token's CSRF value.
            AccessTokenRejectedError: the cookie's token is invalid (found while checking
                its CSRF value).
        """
        try:
            return bearer_token(req)
        except NotAuthenticatedError as exc:
            if self._cookies is None or exc.code is not None:
                raise
            tokens = self._cookies.read(req, ACCESS)
            if not tokens:
                raise
            if req.method in SAFE_METHODS and len(tokens) == 1:
                return tokens[0]
            # An unsafe method, or several access cookies (a planted one is sent first): only
            # the token the CSRF value binds authenticates; a safe request then needs it too.
            try:
                return self._bound(req, tokens)
            except JWTError as exc:
                raise AccessTokenRejectedError(exc) from exc

    def refresh_cookie(self, req: falcon.Request) -> str | None:
        """The token of the refresh cookie, CSRF-checked, or None when there is none.

        Every endpoint that reads it is a POST, so the check always applies.

        Raises:
            CSRFError: the request lacks the refresh token's CSRF value.
            JWTError: the cookie's token is invalid or expired.
        """
        if self._cookies is None:
            return None
        tokens = self._cookies.read(req, REFRESH)
        return self._bound(req, tokens) if tokens else None

    def _bound(self, req: falcon.Request, tokens: list[str]) -> str:
        """Of a cookie's ``tokens``, the one the request's ``X-CSRF-TOKEN`` belongs to.

        Raises:
            CSRFError: no token has this CSRF value (or it is missing).
            JWTError: the token checked is invalid or expired.
        """
        return self._service.bound_cookie(tokens, req.get_header(CSRF_HEADER))

    def check_origin(self, req: falcon.Request) -> None:
        """Refuse to answer with token cookies a request a page of another origin made.

        Raises:
            CSRFError: ``Origin`` (or, without it, ``Referer``) is present and is neither
                this server's own origin nor on the CORS allowlist.
        """
        if self._cookies is None:
            return
        origin, source = req.get_header("Origin"), "Origin"
        if origin is None:
            referer = req.get_header("Referer")
            if referer is None:
                return  # not a browser: it would have sent Origin with a POST
            origin, source = _origin_of(referer), "Referer"
        normalized = normalize_origin(origin)
        if normalized is not None and (
            normalized == normalize_origin(f"{req.scheme}://{req.netloc}")
            or self._listed_origin(normalized) is not None
        ):
            return
        shown = normalized or ("null" if origin == "null" else "an invalid origin")
        raise CSRFError(f"{source} checking failed - {shown} does not match any trusted origins.")

    def issue(
        self, req: falcon.Request, resp: falcon.Response, result: Mapping[str, str]
    ) -> dict[str, Any]:
        """Set the cookies of the tokens in ``result`` and return the body to answer with.

        The body holds each token's expiry (``<type>_expires_at``) and CSRF value
        (``csrf_<type>_token``), and the tokens themselves only under the ``both`` transport."""
        if self._cookies is None:
            return dict(result)
        body: dict[str, Any] = dict(result) if self._body_tokens else {}
        for token in result.values():
            issued = self._service.describe(token)
            self._cookies.set(req, resp, issued)
            body[f"{issued.token_type}_expires_at"] = issued.expires_at
            body[f"csrf_{issued.token_type}_token"] = issued.csrf
        resp.cache_control = [NO_STORE]
        return body

    def end_session(self, req: falcon.Request, resp: falcon.Response, token: object) -> None:
        """After ``token`` was logged out: clear the cookies if they held that session.

        A logout of some other token leaves this browser's session alone."""
        cookies = self._cookies
        if cookies is not None and token is not None and token in cookies.read(req, REFRESH):
            self.clear(req, resp)

    def clear(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Delete every token cookie (log out here, or everywhere)."""
        if self._cookies is not None:
            self._cookies.clear(req, resp)
            resp.cache_control = [NO_STORE]

    def exchange(
        self, field: str | None = None, *, issues_tokens: bool = False, ends_session: bool = False
    ) -> CookieExchange | None:
        """The cookie half of a token endpoint, or None under the body transport.

        The endpoint then runs exactly as without cookies."""
        if self._cookies is None:
            return None
        return CookieExchange(self, field, issues_tokens=issues_tokens, ends_session=ends_session)


@dataclass(frozen=True, slots=True)
class CookieExchange:
    """What a token endpoint does with cookies around its service call.

    Attributes:
        auth: the app's transport.
        field: the body field the refresh cookie stands in for when the body lacks it
            (None: the endpoint takes no token).
        issues_tokens: the call returns tokens, set as cookies (origin-checked first).
        ends_session: a success logs the token out: clear the cookies that held it.
    """

    auth: RequestAuth
    field: str | None = None
    issues_tokens: bool = False
    ends_session: bool = False

    def run(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        data: Mapping[str, Any],
        call: Callable[[Mapping[str, Any]], dict[str, Any]],
    ) -> dict[str, Any]:
        """Run ``call`` on ``data`` with the cookie rules; return the body to answer with.

        Every check comes before the call, so a refused request changes nothing.

        Raises:
            CSRFError: an untrusted origin would get cookies, or the refresh cookie came
                without its CSRF value.
        """
        if self.field is not None and self.field not in data:
            token = self.auth.refresh_cookie(req)
            if token is not None:
                data = {**data, self.field: token}
        if self.issues_tokens:
            self.auth.check_origin(req)
        result = call(data)
        if self.issues_tokens:
            return self.auth.issue(req, resp, result)
        if self.ends_session and self.field is not None:
            self.auth.end_session(req, resp, data.get(self.field))
        return result


def _origin_of(url: str) -> str:
    """The ``scheme://host[:port]`` of a URL (a ``Referer``), or "" if it has none."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return ""
    if not parts.scheme or not parts.hostname:
        return ""
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
