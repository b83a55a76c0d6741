"""A snapshot of the signing keys.

The one that signs (by time, for a staged rotation), every key that verifies (by ``kid``, each
bound to its one algorithm), when each retired key was retired, the JWKS to publish, and the
exact header segments the service writes.

:mod:`jwtlite.service.signing.keyring` holds the live snapshot and follows the key directory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jwtlite import jws
from jwtlite.keys import Key, KeySet
from jwtlite.service.signing.directory import RingFiles

__all__ = ["Ring"]


class Ring:
    """An immutable snapshot of the keys: one signs, all verify.

    Args:
        keys: the keys, each with a ``kid``.
        signing_key: the key that signs (a kid-less copy for simplejwt's header).
        kidless: the key that checks tokens without a ``kid``, or None.
        only: a single key that checks every token whatever its ``kid`` (a ``Key`` given
            to the service directly, as before rings existed).
        current_kid: the ``kid`` the directory records as current (the signing key's own
            ``kid`` when not given; a kid-less HMAC signing key still has one on disk).
        retired: when each retired key was retired (Unix seconds), by ``kid``.
        activates: when ``signing_key`` starts signing (Unix seconds; a staged rotation);
            until then ``signing_before`` signs.
        signing_before: the key that signs before ``activates``.
        signing_before_kid: its ``kid`` on disk (a kid-less HMAC signing key has one).
    """

    __slots__ = (
        "_activates",
        "_by_header",
        "_by_kid",
        "_kidless",
        "_only",
        "_retired",
        "_signing_before",
        "_signing_before_kid",
        "current_kid",
        "jwks",
        "kids",
        "signing_key",
    )

    def __init__(
        self,
        keys: Iterable[Key],
        signing_key: Key,
        *,
        kidless: Key | None = None,
        only: Key | None = None,
        current_kid: str | None = None,
        retired: Mapping[str, int] | None = None,
        activates: int = 0,
        signing_before: Key | None = None,
        signing_before_kid: str | None = None,
    ) -> None:
        self.current_kid = current_kid if current_kid is not None else signing_key.kid
        self._retired = dict(retired or {})
        self._activates = activates if signing_before is not None else 0
        self._signing_before = signing_before
        if signing_before_kid is None and signing_before is not None:
            signing_before_kid = signing_before.kid
        self._signing_before_kid = signing_before_kid
        self._by_kid = {key.kid: key for key in keys if key.kid}
        self._kidless = kidless
        self._only = only
        self._by_header = _our_headers(self._by_kid.values(), kidless)
        self.signing_key = signing_key
        self.kids = tuple(self._by_kid)
        public = [key for key in self._by_kid.values() if not key.is_symmetric]
        self.jwks: dict[str, Any] = {"keys": [key.public_jwk() for key in public]}

    @classmethod
    def of(cls, keys: Key | KeySet) -> Ring:
        """The ring of a single key or of a :class:`KeySet` (no directory)."""
        if isinstance(keys, KeySet):
            return cls(keys, keys.current)
        return cls([keys], keys, only=keys)

    @classmethod
    def from_files(cls, files: RingFiles) -> Ring:
        """The ring a key directory holds."""
        manifest = files.manifest
        kidless = next((files.keys[r.kid] for r in manifest.records if r.kidless), None)

        def signing(kid: str) -> Key:
            key = files.keys[kid]
            # The first HMAC key signs simplejwt's exact header, without a kid, while it signs.
            return Key(key.secret(), key.algorithm) if key is kidless else key

        current = next(r for r in manifest.records if r.kid == manifest.current)
        retired = {r.kid: r.retired for r in manifest.records if r.retired is not None}
        # A staged key waits for its activation: the key retired at that time signs until then.
        before = manifest.signing_before()
        return cls(
            files.keys.values(),
            signing(manifest.current),
            kidless=kidless,
            current_kid=manifest.current,
            retired=retired,
            activates=current.activates,
            signing_before=None if before is None else signing(before),
            signing_before_kid=before,
        )

    def verifying_key(self, token: str | bytes) -> Key | None:
        """The key that may check ``token`` (by its ``kid``), or None when none is known.

        Raises:
            MalformedTokenError: the token's header cannot be read.
        """
        if self._only is not None:
            return self._only
        if isinstance(token, bytes):
            token = token.decode("ascii", "replace")
        segment = token[: token.find(".")]  # a token without a dot fails its parse below
        key = self._by_header.get(segment)
        if key is not None:
            return key
        # Not a header we write: parsed every time (nothing a request sends is kept).
        kid = jws.get_unverified_header(token).get("kid")
        return self._kidless if kid is None else self._by_kid.get(kid)

    @property
    def activates(self) -> int:
        """When the current key starts (or started) signing, in Unix seconds.

        Its rotation's time, or later for a staged rotation; 0 for a ring of one key."""
        return self._activates

    def signing_key_at(self, now: float) -> Key:
        """The key that signs at ``now`` (Unix seconds).

        The current key once it is active, the one it takes over from before (a staged
        rotation)."""
        if now >= self._activates or self._signing_before is None:
            return self.signing_key
        return self._signing_before

    def signing_kid_at(self, now: float) -> str | None:
        """The ``kid`` (on disk) of the key that signs at ``now``.

        What an audit event names as the key a rotation took over from."""
        if now >= self._activates or self._signing_before is None:
            return self.current_kid
        return self._signing_before_kid

    def retired_at(self, key: Key) -> int | None:
        """When ``key`` (a key of this ring) was retired, or None while it signs."""
        return None if key.kid is None else self._retired.get(key.kid)

    def __repr__(self) -> str:
        return f"Ring(kids={list(self.kids)!r}, signing={self.signing_key.kid!r})"


def _our_headers(keys: Iterable[Key], kidless: Key | None) -> dict[str, Key]:
    """The exact header segments the service signs with, mapped to their key.

    ``{"alg","typ","kid"}`` of each key and simplejwt's kid-less header of the ``kidless`` key,
    as the library encodes them: the tokens we issued skip the header parse."""
    headers: dict[str, Key] = {}
    for key in keys:
        if key.can_sign:
            headers[_header_segment(key)] = key
    if kidless is not None:
        headers[_header_segment(Key(kidless.secret(), kidless.algorithm))] = kidless
    return headers


def _header_segment(key: Key) -> str:
    return jws.encode(b"", key).partition(".")[0]
