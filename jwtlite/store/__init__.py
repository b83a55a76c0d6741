"""The store layer: the only code that speaks SQL.

Owns the :class:`Store` protocol and its records (:mod:`jwtlite.store.base`) and the
backends that implement it (:mod:`jwtlite.store.sqlite`, the embedded default). It may
import the token library's ``errors`` and its own driver, each only in its backend's
module; it must never import falcon, waitress, password hashing or token code.
"""

from __future__ import annotations

from jwtlite.store.base import SESSION_STATES, AttemptLimits, RefreshRecord, Session, Store, User

__all__ = [
    "SESSION_STATES",
    "AttemptLimits",
    "RefreshRecord",
    "Session",
    "Store",
    "User",
    "open_store",
]


def open_store(database: str) -> Store:
    """Open the store that ``database`` names: an SQLite file path or ``file:`` URI.

    The backend's driver is imported here, only when that backend is selected.

    Raises:
        StoreUnavailableError: the database cannot be opened, written or migrated.
    """
    from jwtlite.store.sqlite import SQLiteStore  # noqa: PLC0415

    return SQLiteStore(database)
