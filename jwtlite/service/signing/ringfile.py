"""``ring.json``: the record of a key directory's ring, parsed strictly and written whole.

::

    {"format": "jwtlite-keyring-1", "current": "<kid>", "keep_seconds": 45,
     "keys": [{"kid": "<kid>", "alg": "ES256", "created": 1767225600,
               "activates": 1767225600, "retired": null, "kidless": false}, ...]}

A key signs from ``activates`` (published and verifying from ``created``: a staged rotation,
``rotate-key --activate-after``) until ``retired`` (null for the current key; the previous
key of a staged rotation is retired at the new key's activation, in the future until then; a
staged key cancelled by a rotation before its activation has ``activates == retired``: it
never signed).

``keep_seconds`` is how long a retired key stays after its retirement: what the servers need
(their refresh-token lifetime + leeway + reload interval). It is written when the ring is
made (by the first server start, with that server's settings, or by ``rotate-key``) and only
ever raised (by a ``rotate-key`` whose own settings need more, or ``--keep``), so pruning
never depends on the settings of whoever happens to run ``rotate-key``.

Every member is required and no other is allowed; exactly the current key is unretired; a
``kid`` is 1 to 64 of ``A-Z a-z 0-9 _ -`` (it names a file); only an HMAC key may be
``kidless``, and only one. Times are Unix seconds.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from jwtlite.algorithms import get_algorithm
from jwtlite.errors import (
    InvalidKeyError,
    JWTError,
)

__all__ = ["FORMAT", "MANIFEST", "KeyRecord", "Manifest", "is_kid", "parse_manifest"]

FORMAT = "jwtlite-keyring-1"
MANIFEST = "ring.json"
_KID = re.compile(r"[A-Za-z0-9_-]{1,64}").fullmatch
_MEMBERS = frozenset({"format", "current", "keep_seconds", "keys"})
_MAX_KEEP_SECONDS = 10 * 366 * 86400
_RECORD_MEMBERS_ORDER = ("kid", "alg", "created", "activates", "retired", "kidless")
_RECORD_MEMBERS = frozenset(_RECORD_MEMBERS_ORDER)


def is_kid(text: str) -> bool:
    """Whether ``text`` is a ``kid`` a key directory may hold (and name a file by)."""
    return _KID(text) is not None


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One key of the ring: its id, algorithm, Unix times, and whether it signs kid-less.

    The times are when it was made, signing from and signing until."""

    kid: str
    algorithm: str
    created: int
    activates: int
    retired: int | None
    kidless: bool = False


@dataclass(frozen=True, slots=True)
class Manifest:
    """The content of ``ring.json``: the current key's id, every key's record, the keep window.

    The keep window is how long a retired key is kept (seconds after its retirement)."""

    current: str
    records: tuple[KeyRecord, ...]
    keep_seconds: int

    def to_json(self) -> bytes:
        """The manifest as ``ring.json`` holds it."""
        keys = [
            {
                "kid": r.kid,
                "alg": r.algorithm,
                "created": r.created,
                "activates": r.activates,
                "retired": r.retired,
                "kidless": r.kidless,
            }
            for r in self.records
        ]
        document = {
            "format": FORMAT,
            "current": self.current,
            "keep_seconds": self.keep_seconds,
            "keys": keys,
        }
        return json.dumps(document).encode()

    def signing_kid(self, now: int) -> str:
        """The kid that signs at ``now``.

        The current key once it is active; before (a staged key) the key retired at its
        activation that did sign (a key staged and then cancelled, retired the moment it
        activated, never signed)."""
        current = next(rec for rec in self.records if rec.kid == self.current)
        if now >= current.activates:
            return self.current
        before = self.signing_before()
        return self.current if before is None else before

    def signing_before(self) -> str | None:
        """The kid that signs until the current key's activation (None when no key did)."""
        current = next(rec for rec in self.records if rec.kid == self.current)
        return next(
            (
                rec.kid
                for rec in self.records
                if rec.retired == current.activates and rec.activates < rec.retired
            ),
            None,
        )


def parse_manifest(data: bytes, where: str) -> Manifest:
    """Parse ``ring.json`` strictly.

    Raises:
        InvalidKeyError: not the format above (unknown members, a repeated ``kid``, no or
            several current keys, a ``kidless`` asymmetric key, an unknown algorithm).
    """
    problem = f"{os.path.join(where, MANIFEST)} is malformed"
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidKeyError(f"{problem}: not JSON (truncated?)") from exc
    if not isinstance(document, dict) or set(document) != _MEMBERS:
        raise InvalidKeyError(f"{problem}: expected format, current, keep_seconds and keys")
    if document["format"] != FORMAT:
        raise InvalidKeyError(f"{problem}: unknown format {document['format']!r}")
    keep = document["keep_seconds"]
    if type(keep) is not int or not 0 <= keep <= _MAX_KEEP_SECONDS:
        raise InvalidKeyError(f"{problem}: keep_seconds is not a number of seconds")
    keys = document["keys"]
    if not isinstance(keys, list) or not keys:
        raise InvalidKeyError(f"{problem}: keys must be a non-empty list")
    records = tuple(_parse_record(item, problem) for item in keys)
    kids = [rec.kid for rec in records]
    if len(set(kids)) != len(kids):
        raise InvalidKeyError(f"{problem}: a kid repeats")
    active = [rec.kid for rec in records if rec.retired is None]
    if active != [document["current"]]:
        raise InvalidKeyError(f"{problem}: exactly the current key must be unretired")
    if sum(rec.kidless for rec in records) > 1:
        raise InvalidKeyError(f"{problem}: several kidless keys")
    return Manifest(document["current"], records, keep)


def _parse_record(item: Any, problem: str) -> KeyRecord:
    if not isinstance(item, dict) or set(item) != _RECORD_MEMBERS:
        raise InvalidKeyError(f"{problem}: each key needs exactly {sorted(_RECORD_MEMBERS)}")
    kid, alg, created, activates, retired, kidless = (item[name] for name in _RECORD_MEMBERS_ORDER)
    if not isinstance(kid, str) or not is_kid(kid):
        raise InvalidKeyError(f"{problem}: a kid is not 1 to 64 of A-Z a-z 0-9 _ -")
    try:
        algorithm = get_algorithm(alg) if isinstance(alg, str) else None
    except JWTError:  # any refusal means the same: not an algorithm of ours
        algorithm = None
    if algorithm is None or algorithm.name != alg:
        raise InvalidKeyError(f"{problem}: key {kid} has an unknown algorithm")
    times_ok = _is_time(created) and _is_time(activates)
    if not times_ok or not (retired is None or _is_time(retired)):
        raise InvalidKeyError(f"{problem}: key {kid} has a bad created/activates/retired time")
    if not created <= activates <= (activates if retired is None else retired):
        raise InvalidKeyError(f"{problem}: key {kid} is not created <= activates <= retired")
    if not isinstance(kidless, bool) or (kidless and not algorithm.symmetric):
        raise InvalidKeyError(f"{problem}: key {kid}: kidless is only for an HMAC key")
    return KeyRecord(kid, alg, created, activates, retired, kidless)


def _is_time(value: object) -> bool:
    return type(value) is int and 0 <= value < 95_000_000_000
