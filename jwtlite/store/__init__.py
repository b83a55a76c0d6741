"""The store layer: the only code that speaks SQL.

Owns the :class:`Store` protocol and its records (:mod:`jwtlite.store.base`), what a
``DATABASE`` string names (:mod:`jwtlite.store.url`) and the backends that implement the
protocol: :mod:`jwtlite.store.sqlite`, the embedded default, and
:mod:`jwtlite.store.postgres`, for several instances on one database. It may import the token
library's ``errors`` and its own drivers, each only in its backend's module and only when
that backend is selected; it must never import falcon, waitress, password hashing or token
code.
"""

from __future__ import annotations

from jwtlite.store.base import SESSION_STATES, AttemptLimits, RefreshRecord, Session, Store, User
from jwtlite.store.errors import StoreUnavailableError
from jwtlite.store.url import is_postgres_url, masked_url

__all__ = [
    "SESSION_STATES",
    "AttemptLimits",
    "RefreshRecord",
    "Session",
    "Store",
    "User",
    "is_postgres_url",
    "masked_url",
    "open_store",
]


def open_store(
    database: str,
    *,
    pool_size: int = 8,
    connect_timeout: float = 5.0,
    statement_timeout: float = 5.0,
) -> Store:
    """Open the store that ``database`` names and bring its schema up to date.

    ``database`` is a ``postgresql://`` (or ``postgres://``) URL, or else an SQLite file
    path or ``file:`` URI. The backend's driver is imported here, only when that backend is
    selected. ``pool_size`` and the timeouts (seconds) apply to PostgreSQL.

    Raises:
        StoreUnavailableError: the database cannot be opened, reached, written or migrated,
            or the PostgreSQL driver is not installed.
    """
    if is_postgres_url(database):
        try:
            from jwtlite.store.postgres import PostgresStore  # noqa: PLC0415
        except ImportError as exc:
            raise StoreUnavailableError(
                f"PostgreSQL needs psycopg 3 and psycopg_pool ({exc.name} is missing): "
                "pip install 'jwtlite[postgres]'"
            ) from None
        return PostgresStore(
            database,
            pool_size=pool_size,
            connect_timeout=connect_timeout,
            statement_timeout=statement_timeout,
        )
    from jwtlite.store.sqlite import SQLiteStore  # noqa: PLC0415

    return SQLiteStore(database)
