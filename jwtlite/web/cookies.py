"""Token cookies: names, attributes, and the ``Set-Cookie`` lines that write and clear them.

Behaviour: docs/guides/cookies.md, docs/reference/http.md "Cookie transport".

Everything is fixed at construction: the names, and the attribute strings every line ends
with. Per request only the value, ``Max-Age`` and the refresh cookie's ``Path`` (which follows
the mount point, ``SCRIPT_NAME``) are filled in. A token cookie is ``HttpOnly`` (no script can
read it); its CSRF cookie is readable, so that the front-end can send the value back in
``X-CSRF-TOKEN``. This module knows nothing of what a token means: the service describes
issued tokens (expiry, CSRF value) and :mod:`jwtlite.web.auth` decides when cookies are read,
set or cleared.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import falcon

from jwtlite.service.csrf import IssuedToken
from jwtlite.service.settings import Settings

__all__ = [
    "ACCESS",
    "CSRF_HEADER",
    "REFRESH",
    "REFRESH_COOKIE_PATH",
    "CookieNames",
    "TokenCookies",
    "cookie_names",
]

ACCESS = "access"
REFRESH = "refresh"
#: The request header that carries a CSRF value back (flask-jwt-extended's name).
CSRF_HEADER = "X-CSRF-TOKEN"
#: The refresh cookie goes only to the token endpoints (login, refresh, verify, blacklist),
#: below the application's mount point.
REFRESH_COOKIE_PATH = "/accounts/token"
_HOST_PREFIX = "__Host-"  # Secure, no Domain, Path=/: only this very host can have set it
_SECURE_PREFIX = "__Secure-"  # Secure: no plain-HTTP page can have set it
_CLEARED = "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
# What a path attribute may hold besides letters and digits: no ";" (a new attribute), no
# space, no control character.
_PATH_SAFE = "/-._~!$&'()*+,=:@%"


@dataclass(frozen=True, slots=True)
class CookieNames:
    """The four cookie names of one configuration."""

    access: str
    refresh: str
    csrf_access: str
    csrf_refresh: str


def cookie_names(*, secure: bool, domain: str | None) -> CookieNames:
    """The cookie names for these attributes.

    Cookies at ``Path=/`` (the access token and both CSRF values) take ``__Host-`` when they
    are ``Secure`` without a ``Domain``, which browsers then accept only from this very host
    over a secure connection; with a ``Domain`` they take ``__Secure-``. The refresh cookie's
    path is narrower than ``/``, which ``__Host-`` forbids, so it takes ``__Secure-`` whenever
    it is ``Secure``. Without ``Secure`` (plain-HTTP development) no prefix is allowed.
    """
    if not secure:
        root = narrow = ""
    elif domain is None:
        root, narrow = _HOST_PREFIX, _SECURE_PREFIX
    else:
        root = narrow = _SECURE_PREFIX
    return CookieNames(
        access=root + "access_token_cookie",
        refresh=narrow + "refresh_token_cookie",
        csrf_access=root + "csrf_access_token",
        csrf_refresh=root + "csrf_refresh_token",
    )


#: The most cookies of one name a request is searched for the one its CSRF value binds (each
#: costs a base64url and JSON parse; the request header is at most 32 KiB anyway).
MAX_SAME_NAME = 64


class TokenCookies:
    """Reads, writes and clears the token cookies of one configuration.

    Args:
        secure: mark every cookie ``Secure`` (sent over HTTPS only; browsers also treat
            ``http://localhost`` as secure).
        samesite: ``Lax``, ``Strict`` or ``None``.
        domain: the ``Domain`` attribute, or None for host-only cookies.
    """

    def __init__(self, *, secure: bool = True, samesite: str = "Lax", domain: str | None = None):
        self.names = cookie_names(secure=secure, domain=domain)
        common = (
            (f"; Domain={domain}" if domain else "")
            + ("; Secure" if secure else "")
            + f"; SameSite={samesite}"
        )
        self._token_tail = "; HttpOnly" + common
        self._csrf_tail = common
        self._token_name = {ACCESS: self.names.access, REFRESH: self.names.refresh}
        self._csrf_name = {ACCESS: self.names.csrf_access, REFRESH: self.names.csrf_refresh}

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenCookies | None:
        """The cookies ``settings`` describe, or None under the body transport."""
        if settings.token_transport == "body":
            return None
        return cls(
            secure=settings.cookie_secure,
            samesite=settings.cookie_samesite,
            domain=settings.cookie_domain,
        )

    def read(self, req: falcon.Request, token_type: str) -> list[str]:
        """The tokens in the request's ``access`` or ``refresh`` cookies, in the browser's order.

        Usually one. More when a sibling host planted a cookie of the same name (``Domain=``
        the parent, a longer ``Path``, so sent first: "cookie tossing"); the caller picks the
        one the request's CSRF value belongs to. At most :data:`MAX_SAME_NAME` are returned,
        so a crafted header cannot make a request check hundreds; empty values are dropped.
        """
        values = req.get_cookie_values(self._token_name[token_type]) or []
        return [value for value in values if value][:MAX_SAME_NAME]

    def set(self, req: falcon.Request, resp: falcon.Response, issued: IssuedToken) -> None:
        """Add the ``Set-Cookie`` lines of a token and of its CSRF value.

        Both live as long as the token."""
        kind = issued.token_type
        age = f"; Max-Age={issued.lifetime}"
        resp.append_header(
            "Set-Cookie",
            f"{self._token_name[kind]}={issued.token}; Path={self._path(req, kind)}"
            f"{age}{self._token_tail}",
        )
        resp.append_header(
            "Set-Cookie", f"{self._csrf_name[kind]}={issued.csrf}; Path=/{age}{self._csrf_tail}"
        )

    def clear(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Add the ``Set-Cookie`` lines that delete all four cookies.

        Each is empty, already expired, and has the attributes it was set with (a browser only
        replaces a cookie of the same name, domain and path)."""
        for kind in (ACCESS, REFRESH):
            resp.append_header(
                "Set-Cookie",
                f"{self._token_name[kind]}=; Path={self._path(req, kind)}"
                f"{_CLEARED}{self._token_tail}",
            )
            resp.append_header(
                "Set-Cookie", f"{self._csrf_name[kind]}=; Path=/{_CLEARED}{self._csrf_tail}"
            )

    @staticmethod
    def _path(req: falcon.Request, token_type: str) -> str:
        if token_type == ACCESS:
            return "/"
        # SCRIPT_NAME comes from the server's configuration, not the client; quoted anyway
        # so that nothing in it can end the attribute.
        return quote(req.root_path, safe=_PATH_SAFE) + REFRESH_COOKIE_PATH
