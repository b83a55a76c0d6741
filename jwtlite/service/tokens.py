"""The service's tokens: what an access or refresh token of ours says, and how it is checked.

Claims, in this order (clients of simplejwt rely on the first five): ``token_type``, ``exp``,
``iat``, ``jti``, ``user_id``, then ``iss``/``aud`` when configured, then, in access tokens
only, ``sub`` and ``client_id`` with ``ACCESS_TOKEN_FORMAT=rfc9068`` (whose header says
``typ: at+jwt``) and the extra claims of the ``claims`` callable given to the service.

Refresh tokens are signed with a key of their own: HS256 under a secret derived from the key
ring's pepper, which is never published and never rotated. So a resource server that checks
an access token as generic validators do (signature by the JWKS or the shared
``SECRET_KEY``, ``iss``, ``aud``, ``exp``; a ``token_type`` claim means nothing to it) cannot
take a refresh token for an access token: its signature verifies under no key it uses. (Under
``SECRET_KEY`` the pepper comes from the secret, so whoever holds it could derive the key;
that buys nothing, because a refresh token is only ever checked here and must match its
record in the store exactly, dates included.)

Every token belongs to a session: the first 16 hex digits of its ``jti`` are the session's
id, the last 16 are random per token, so ``jti`` stays what simplejwt clients see (32
lower-case hex digits, unique per token) while an access token names its session without a
claim the contract does not list. A token whose ``jti`` names no session of its user (one
issued before sessions existed) is refused as not ours.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from jwtlite import jws, jwt
from jwtlite._encoding import json_text
from jwtlite.errors import (
    InvalidClaimError,
    InvalidKeyError,
    InvalidSignatureError,
    MalformedTokenError,
)
from jwtlite.keys import Key, KeySet
from jwtlite.service.errors import (
    ConfigurationError,
    WrongTokenTypeError,
)
from jwtlite.service.settings import Settings
from jwtlite.service.signing.keyring import KeyRing, Ring, retirement_grace
from jwtlite.store import RefreshRecord, User

__all__ = [
    "ACCESS",
    "AT_JWT",
    "REFRESH",
    "RESERVED_CLAIMS",
    "ClaimsFunction",
    "TokenMinter",
    "new_session_id",
    "refresh_key",
    "session_of",
]

ACCESS = "access"
REFRESH = "refresh"
#: Claims a ``claims`` callable may not set: ours, and those the session rules use.
RESERVED_CLAIMS = frozenset(
    {"token_type", "exp", "iat", "jti", "user_id", "iss", "aud", "sid", "nbf", "sub", "client_id"}
)
#: The header ``typ`` of RFC 9068 access tokens (§2.1).
AT_JWT = "at+jwt"
#: Extra claims for access tokens, from the user they are issued to.
ClaimsFunction = Callable[[User], Mapping[str, Any]]

#: The algorithm of refresh tokens, whatever the ring's: they are checked only here.
REFRESH_ALGORITHM = "HS256"
# Keeps the refresh-token key apart from the other secrets derived from the same pepper.
_REFRESH_KEY_LABEL = b"jwtlite refresh-token key v1"

SESSION_ID_DIGITS = 16
# Claims every token we issue carries; a token without them is not ours.
_OPTIONS = jwt.Options(require=("token_type", "exp", "iat", "jti", "user_id"))
# What we put in the claims, exactly: a user id is the canonical decimal of a positive
# 64-bit row id (no sign, no leading zero: "01" is not user 1; at most 18 digits so int()
# and the drivers never overflow), a jti is 32 lower-case hex digits. Anything else,
# even correctly signed, is not ours.
_USER_ID = re.compile(r"[1-9][0-9]{0,17}").fullmatch
_JTI = re.compile(r"[0-9a-f]{32}").fullmatch
SESSION_ID = re.compile(r"[0-9a-f]{16}").fullmatch
# exp and iat are whole seconds we wrote: integers (not floats, not booleans) below the
# year 5000, never a 4,000-digit number that would keep a leaked token alive for ever.
_MAX_NUMERIC_DATE = 95_000_000_000


def refresh_key(pepper: bytes) -> Key:
    """The key that signs and checks refresh tokens, derived from the key ring's ``pepper``."""
    return Key(hmac.digest(pepper, _REFRESH_KEY_LABEL, hashlib.sha256), REFRESH_ALGORITHM)


def new_session_id() -> str:
    """A fresh session id: 64 random bits as 16 lower-case hex digits."""
    return secrets.token_hex(SESSION_ID_DIGITS // 2)


def session_of(claims: Mapping[str, Any]) -> str:
    """The id of the session a checked token belongs to (the first half of its ``jti``)."""
    jti: str = claims["jti"]
    return jti[:SESSION_ID_DIGITS]


def _new_jti(session_id: str) -> str:
    return session_id + secrets.token_hex(SESSION_ID_DIGITS // 2)


class TokenMinter:
    """Issues and checks the service's access and refresh tokens.

    Args:
        settings: lifetimes, ``iss``/``aud``, leeway.
        keys: a key, a key set that signs with its current key and verifies by ``kid``, or
            a :class:`~jwtlite.service.signing.keyring.KeyRing` that follows a key directory.
        clock: the service's clock (Unix seconds).
        claims: extra claims for access tokens, or None.

    Each call reads the ring's current snapshot once and uses it throughout; a check that
    meets an unknown ``kid`` may take the newer snapshot another instance's rotation made
    (:meth:`~jwtlite.service.signing.keyring.KeyRing.after_unknown_kid`).
    """

    def __init__(
        self,
        settings: Settings,
        keys: Key | KeySet | KeyRing,
        clock: Callable[[], float],
        *,
        claims: ClaimsFunction | None = None,
    ) -> None:
        self._settings = settings
        self._retirement_grace = retirement_grace(settings)
        self.keyring = keys if isinstance(keys, KeyRing) else KeyRing.fixed(keys)
        self._refresh_key = refresh_key(self.keyring.pepper)
        # Every refresh token starts with this header segment and a dot (no kid: one key).
        self._refresh_prefix = jws.encode(b"", self._refresh_key).partition(".")[0] + "."
        self._clock = clock
        self._claims = claims
        self._rfc9068 = settings.access_token_format == "rfc9068"
        self._access_header = {"typ": AT_JWT} if self._rfc9068 else None
        # Written after user_id, in this order, when configured.
        self._tail: dict[str, Any] = {}
        if settings.issuer is not None:
            self._tail["iss"] = settings.issuer
        if settings.audience is not None:
            self._tail["aud"] = settings.audience

    def access(self, user: User, session_id: str, iat: int) -> str:
        """A new access token of ``user`` in session ``session_id``, issued at ``iat``.

        Raises:
            ConfigurationError: the claims callable returned a reserved claim or a value
                JSON cannot carry (the message names the claim).
        """
        claims = self._standard(ACCESS, user, iat, iat + self._settings.access_token_lifetime)
        claims["jti"] = _new_jti(session_id)
        if self._rfc9068:
            # RFC 9068 §2.2: the subject and the client beside the seed's claims.
            claims["sub"] = claims["user_id"]
            claims["client_id"] = self._settings.client_id
        if self._claims is not None:
            claims.update(self._extra_claims(user))
        return jwt.encode(claims, self.signing_key, headers=self._access_header)

    def refresh(self, user: User, session_id: str, iat: int) -> tuple[str, RefreshRecord]:
        """A new refresh token of ``user`` in session ``session_id`` and its record."""
        expires = iat + self._settings.refresh_token_lifetime
        record = RefreshRecord(_new_jti(session_id), user.id, session_id, iat, expires, "active")
        return self.rebuild_refresh(record), record

    def rebuild_refresh(self, record: RefreshRecord) -> str:
        """The refresh token ``record`` stands for, rebuilt from it.

        The same claims, so the same bytes for deterministic signatures (HS*, RS*), the same
        token up to the signature's randomness for PS*, ES* and EdDSA."""
        claims: dict[str, Any] = {
            "token_type": REFRESH,
            "exp": record.expires_at,
            "iat": record.issued_at,
            "jti": record.jti,
            "user_id": str(record.user_id),
        }
        claims.update(self._tail)
        return jwt.encode(claims, self._refresh_key)

    @property
    def signing_key(self) -> Key:
        """The key that signs now, by the service's clock.

        A staged key signs from its activation time on."""
        return self.keyring.current().signing_key_at(self._clock())

    def decode(self, token: str, *, expected_type: str | None = None) -> dict[str, Any]:
        """The claims of a token of ours, checked (signature, time, ``iss``/``aud``, forms).

        Raises:
            JWTError: invalid, expired, of the wrong type, or not ours.
        """
        claims, ring, key = self._verified(token, expected_type)
        token_type = claims["token_type"]
        if (token_type == REFRESH) != (key is None):
            # Each type has its key: an access token under the refresh key, or a refresh
            # token under a signing key (one issued before they had their own), is not ours.
            raise MalformedTokenError("Token claims are not ours")
        user_id = claims["user_id"]
        jti = claims["jti"]
        if token_type not in (ACCESS, REFRESH) or not isinstance(jti, str) or not _JTI(jti):
            raise MalformedTokenError("Token claims are not ours")
        if not isinstance(user_id, str) or not _USER_ID(user_id):
            raise MalformedTokenError("Token user_id is not a user id")
        if not all(_is_our_date(claims[name]) for name in ("exp", "iat")):
            raise MalformedTokenError("Token dates are not ours")
        if expected_type is not None and token_type != expected_type:
            raise WrongTokenTypeError(expected_type)
        if (
            self._rfc9068
            and token_type == ACCESS
            and (
                claims.get("sub") != user_id or claims.get("client_id") != self._settings.client_id
            )
        ):
            # Every access token written in this format names its user twice, alike, and
            # our client: a resource server reading sub must see the user /me serves.
            raise MalformedTokenError("Token claims are not ours")
        self._check_lifetime(claims)
        if key is not None:
            self._check_retirement(claims, ring.retired_at(key))
        return claims

    def _verified(
        self, token: str, expected_type: str | None
    ) -> tuple[dict[str, Any], Ring, Key | None]:
        """The claims of ``token``, checked under the key that signed it.

        With them the ring the key was found in, and the key: None for the refresh key.

        Raises:
            JWTError: no key of ours signed it, or a check of :func:`jwt.decode` failed.
        """
        keyring = self.keyring
        ring = keyring.current()
        key = ring.verifying_key(token)
        refresh_header = token.startswith(self._refresh_prefix)
        ambiguous = key is not None and REFRESH_ALGORITHM in key.algorithms
        if refresh_header and (not ambiguous or expected_type == REFRESH):
            # Only the refresh key can have signed it; or another key could have (simplejwt's
            # kid-less HS256 header is the refresh tokens' header too), but a refresh token
            # is expected: that key second, so an access token here is "of the wrong type".
            try:
                return self._checked(token, self._refresh_key), ring, None
            except InvalidSignatureError:
                if key is None or not ambiguous:
                    raise
                return self._checked(token, key), ring, key
        if key is None:
            # Maybe another instance signs with a key we have not loaded yet.
            ring = keyring.after_unknown_kid(ring)
            key = ring.verifying_key(token)
            if key is None:
                raise InvalidKeyError("no key matches the token's kid")
        try:
            return self._checked(token, key), ring, key
        except InvalidSignatureError:
            if not refresh_header:
                raise
            return self._checked(token, self._refresh_key), ring, None

    def _checked(self, token: str, key: Key) -> dict[str, Any]:
        settings = self._settings
        return jwt.decode(
            token,
            key,
            # A key checks only its own algorithm's signatures (an Ed25519/Ed448 key also the
            # EdDSA ones it signed before RFC 9864 named its curve).
            tuple(key.algorithms),
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=settings.leeway,
            options=_OPTIONS,
            now=self._clock(),
        )

    def _check_lifetime(self, claims: Mapping[str, Any]) -> None:
        # We never issue a token living longer than its type's lifetime: one that does was
        # not made by us (a leaked key's forgery), whatever key signed it.
        settings = self._settings
        lifetime = (
            settings.access_token_lifetime
            if claims["token_type"] == ACCESS
            else settings.refresh_token_lifetime
        )
        if claims["exp"] - claims["iat"] > lifetime:
            raise InvalidClaimError("Token lifetime is not ours", claim="exp", expected=lifetime)

    def _check_retirement(self, claims: Mapping[str, Any], retired: int | None) -> None:
        # A retired key signs nothing new: only an instance that has not noticed the
        # rotation yet (its KEYS_RELOAD_INTERVAL, not necessarily ours) may still sign with
        # it, within the leeway. A later token is a forgery with a leaked key, refused
        # before the key is pruned.
        if retired is None:
            return
        if claims["iat"] > retired + self._retirement_grace:
            raise InvalidKeyError("Token issued after its key was retired")

    def _standard(self, token_type: str, user: User, iat: int, exp: int) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "token_type": token_type,
            "exp": exp,
            "iat": iat,
            "jti": "",
            "user_id": str(user.id),
        }
        claims.update(self._tail)
        return claims

    def _extra_claims(self, user: User) -> Mapping[str, Any]:
        assert self._claims is not None  # noqa: S101 - the caller checked
        extra = self._claims(user)
        if not isinstance(extra, Mapping):
            raise ConfigurationError("CLAIMS", "the claims function must return a mapping")
        reserved = sorted(RESERVED_CLAIMS.intersection(extra))
        if reserved:
            raise ConfigurationError(
                "CLAIMS",
                f'the claims function returned the reserved claim "{reserved[0]}"; '
                f"it may not set {', '.join(sorted(RESERVED_CLAIMS))}",
            )
        for name, value in extra.items():
            if not isinstance(name, str):
                raise ConfigurationError("CLAIMS", f"claim name {name!r} is not a string")
            try:
                json_text(value)
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(
                    "CLAIMS", f'the value of claim "{name}" cannot be JSON: {exc}'
                ) from exc
        return extra


def _is_our_date(value: object) -> bool:
    return type(value) is int and 0 < value < _MAX_NUMERIC_DATE
