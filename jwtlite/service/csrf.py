"""CSRF values for tokens carried in cookies: the double submit, bound to each token.

A browser attaches cookies to every request it sends to the API, including the ones a
hostile page makes it send (a form POST needs no permission). So a request authenticated by
a cookie must also show a value that only the API's own front-end can have read: the CSRF
value, which the API hands out in a readable cookie (and in the response body) beside the
HttpOnly token cookie, and which the front-end sends back in a header. A page of another
origin can neither read that cookie nor add the header without a CORS preflight.

The value is not an independent random: it is HMAC-SHA256, under a key derived from the
signing key material, over a domain-separated message that names the token's type and its
``jti``. Hence:

* no one without the key can compute it, and nothing needs storing (every instance that
  shares the signing key computes the same value);
* it belongs to exactly one token: the access token's value does not pass for its refresh
  token, and one session's value does not pass for another's.

This module knows nothing of HTTP: the web layer moves cookies and headers, and asks here.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from jwtlite._encoding import b64url_encode
from jwtlite.errors import JWTError
from jwtlite.jwt import decode_unverified_claims
from jwtlite.service.errors import CSRFError

__all__ = ["CSRF_MISSING", "CSRF_WRONG", "CSRFKey", "IssuedToken"]

CSRF_MISSING = "CSRF token missing."
CSRF_WRONG = "CSRF token incorrect."
# Labels that keep these MACs apart from every other use of the same key material (the
# throttle keys its username hashes from it too, under its own label).
_KEY_LABEL = b"jwtlite csrf key v1"
_VALUE_LABEL = b"jwtlite csrf value v1\x00"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """What a cookie needs to know of a token this service issued.

    Attributes:
        token: the compact JWT.
        token_type: ``"access"`` or ``"refresh"``.
        expires_at: its ``exp`` (whole seconds since the epoch).
        lifetime: ``exp - iat`` in seconds, the cookie's ``Max-Age``.
        csrf: the CSRF value bound to it.
    """

    token: str
    token_type: str
    expires_at: int
    lifetime: int
    csrf: str


class CSRFKey:
    """Computes and checks the CSRF values of tokens.

    Args:
        material: secret key material (the signing key's), from which the MAC key is
            derived under a label of its own.
    """

    def __init__(self, material: bytes) -> None:
        self._key = hmac.digest(material, _KEY_LABEL, hashlib.sha256)

    def value(self, *, token_type: str, jti: str) -> str:
        """The CSRF value of the token of type ``token_type`` and id ``jti``.

        43 characters of base64url."""
        # Both parts are ASCII by the time they get here (the claims were checked); the NUL
        # separator keeps ("ab", "c") and ("a", "bc") apart all the same.
        message = _VALUE_LABEL + token_type.encode() + b"\x00" + jti.encode()
        return b64url_encode(hmac.digest(self._key, message, hashlib.sha256)).decode("ascii")

    def check(self, presented: str | None, *, token_type: str, jti: str) -> None:
        """Refuse unless ``presented`` is the CSRF value of that token.

        Compared in constant time, as bytes (so any text a client sends can be compared).

        Raises:
            CSRFError: ``presented`` is missing, empty or not the value.
        """
        if not presented:
            raise CSRFError(CSRF_MISSING)
        expected = self.value(token_type=token_type, jti=jti).encode("ascii")
        if not hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), expected):
            raise CSRFError(CSRF_WRONG)

    def binds(self, presented: str, token: str) -> bool:
        """Whether ``presented`` is the CSRF value of ``token``, read WITHOUT checking it.

        Only for choosing among cookies of one name (a base64url and JSON parse, no key
        operation); the token chosen must then be decoded and checked in full."""
        try:
            claims = decode_unverified_claims(token)
        except JWTError:
            return False
        kind, jti = claims.get("token_type"), claims.get("jti")
        if type(kind) is not str or type(jti) is not str or not (kind + jti).isascii():
            return False
        try:
            self.check(presented, token_type=kind, jti=jti)
        except CSRFError:
            return False
        return True
