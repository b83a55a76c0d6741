"""The PostgreSQL store's connections: their options, the migrations, and a checked pool.

Every connection is opened with bounded time: ``connect_timeout`` for opening one and for
waiting for one from the pool, ``statement_timeout`` (and the same idle-in-transaction
timeout) on the server, TCP keepalives for a peer that vanished. The migrations run once at
start-up over a connection of their own, under an advisory lock, so instances starting
together migrate once. The pool checks a connection that sat idle before lending it, and
replaces every idle connection when one is found broken (a restarted server broke them all).
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from jwtlite.store import _postgres_sql as sql
from jwtlite.store._postgres_sql import SCHEMA_VERSION
from jwtlite.store.errors import StoreUnavailableError
from jwtlite.store.url import ScrubbingFilter, scrub

__all__ = ["Connection", "Connections", "Cursor"]

Connection = psycopg.Connection[tuple[Any, ...]]
Cursor = psycopg.Cursor[tuple[Any, ...]]

# A connection whose peer vanished (host down, link cut) mid-statement is declared dead after
# about idle + interval * count seconds, instead of never. Used unless the URL sets them.
_NETWORK_DEFAULTS = {
    "application_name": "jwtlite",
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}
# psycopg_pool logs every checkout at INFO; a server logging at INFO would print one line per
# request. Its warnings (a failed reconnection) still show.
_DRIVER_LOGGERS = ("psycopg", "psycopg.pool")
# A broken connection makes the pool replace every idle connection at once (a restarted
# server broke them all), at most this often.
_DRAIN_INTERVAL = 1.0
# A connection back in the pool for less than this is lent without a check (a round trip):
# under load the check would double every round trip. One that broke meanwhile fails its
# statement; a read is then retried once on a fresh connection, a write is unavailable.
_CHECK_AFTER_IDLE = 1.0


class Connections:
    """The pool of one :class:`~jwtlite.store.postgres.PostgresStore`, opened when it is made.

    Opening it also migrates the schema.

    Raises:
        StoreUnavailableError: the database cannot be reached or migrated; the message
            never holds the password.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 8,
        connect_timeout: float = 5.0,
        statement_timeout: float = 5.0,
    ) -> None:
        self._url = url
        self._filter = ScrubbingFilter(url)
        self._last_drain = 0.0
        self._returned: weakref.WeakKeyDictionary[Connection, float] = weakref.WeakKeyDictionary()
        # One cursor per connection, kept: a new cursor per statement costs a quarter of a
        # read's client time. A connection is used by one thread at a time, so is its cursor.
        self._cursors: weakref.WeakKeyDictionary[Connection, Cursor] = weakref.WeakKeyDictionary()
        for name in _DRIVER_LOGGERS:
            logger = logging.getLogger(name)
            logger.addFilter(self._filter)
            if name == "psycopg.pool" and logger.level == logging.NOTSET:
                logger.setLevel(logging.WARNING)
        self._pool: ConnectionPool[Connection] | None = None
        try:
            self._open(pool_size, connect_timeout, statement_timeout)
        except psycopg.Error as error:
            self.close()
            raise StoreUnavailableError(self.describe(error)) from error
        except BaseException:
            self.close()
            raise

    def _open(self, pool_size: int, connect_timeout: float, statement_timeout: float) -> None:
        kwargs = _connection_options(
            self._url, connect_timeout=connect_timeout, statement_timeout=statement_timeout
        )
        # Migrate over a connection of its own: when the database cannot be reached, its
        # error says why (refused, no such database, authentication) where a pool would
        # only say it timed out.
        with psycopg.connect(self._url, **kwargs) as connection:
            _migrate(connection)
        self._pool = ConnectionPool(
            self._url,
            kwargs=kwargs,
            min_size=1,
            max_size=pool_size,
            open=False,
            name="jwtlite",
            timeout=connect_timeout,
            check=self._check,
            # Give up a reconnection loop early: a later checkout starts a fresh one
            # (immediate, then backing off from 1 s), so recovery never waits long.
            reconnect_timeout=max(10.0, 2 * connect_timeout),
        )
        self._pool.open(wait=True, timeout=connect_timeout)

    def describe(self, error: BaseException) -> str:
        return "the user store is unavailable: " + scrub(" ".join(str(error).split()), self._url)

    def _check(self, connection: Connection) -> None:
        """The pool's check before lending ``connection``.

        A round trip, unless the connection was in use a moment ago."""
        returned = self._returned.get(connection)
        if returned is not None and time.monotonic() - returned < _CHECK_AFTER_IDLE:
            return
        try:
            ConnectionPool.check_connection(connection)
        except psycopg.Error:
            self._replace_idle_connections()
            raise

    def _replace_idle_connections(self) -> None:
        # One broken connection usually means a restart broke them all: replace the idle
        # ones now rather than finding each by another failure.
        now = time.monotonic()
        if self._pool is not None and now - self._last_drain >= _DRAIN_INTERVAL:
            self._last_drain = now
            self._pool.drain()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        pool = self._pool  # one pool throughout, even if close() runs meanwhile
        if pool is None:
            raise StoreUnavailableError("the user store is closed")
        connection = pool.getconn()
        try:
            yield connection
        finally:
            if connection.broken:
                self._replace_idle_connections()
            self._returned[connection] = time.monotonic()
            pool.putconn(connection)

    def cursor(self, connection: Connection) -> Cursor:
        cursor = self._cursors.get(connection)
        if cursor is None:
            cursor = self._cursors[connection] = connection.cursor()
        return cursor

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.connection() as connection, connection.transaction():
            yield connection

    def read(self, sql: str, params: Any) -> tuple[Any, ...] | None:
        """One row of a query that changes nothing.

        Retried once on a fresh connection when the one it got turns out broken (by a server
        restart, say)."""
        with self.connection() as connection:
            try:
                return self.cursor(connection).execute(sql, params).fetchone()
            except psycopg.OperationalError:
                if not connection.broken:
                    raise
        return self.one(sql, params)

    def all(self, sql: str, params: Any) -> list[tuple[Any, ...]]:
        with self.connection() as connection:
            return self.cursor(connection).execute(sql, params).fetchall()

    def one(self, sql: str, params: Any) -> tuple[Any, ...] | None:
        with self.connection() as connection:
            return self.cursor(connection).execute(sql, params).fetchone()

    def rowcount(self, sql: str, params: Any) -> int:
        with self.connection() as connection:
            return self.cursor(connection).execute(sql, params).rowcount

    def close(self) -> None:
        """Close the pool and every connection; the store is unusable afterwards."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        for name in _DRIVER_LOGGERS:
            logging.getLogger(name).removeFilter(self._filter)


def _connection_options(
    url: str, *, connect_timeout: float, statement_timeout: float
) -> dict[str, Any]:
    """The options every connection is opened with.

    The URL's own are kept, except the timeouts, which the settings own."""
    given = conninfo_to_dict(url)
    milliseconds = max(1, round(statement_timeout * 1000))
    # Set at connection start-up, so no statement ever runs unbounded. A transaction left
    # open by a stuck client is ended by the server too (its locks would block others).
    options = " ".join(
        part
        for part in (
            str(given.get("options") or ""),
            f"-c statement_timeout={milliseconds}",
            f"-c idle_in_transaction_session_timeout={milliseconds}",
        )
        if part
    )
    network = {name: value for name, value in _NETWORK_DEFAULTS.items() if name not in given}
    return {
        **network,
        "autocommit": True,
        "connect_timeout": max(1, math.ceil(connect_timeout)),
        "options": options,
    }


def _migrate(connection: Connection) -> None:
    """Apply the pending migrations in one transaction under the migration lock.

    Raises:
        StoreUnavailableError: the database's schema is newer than this code knows.
    """
    with connection.transaction():
        # A migration may take long on a big table, and other instances wait their turn.
        connection.execute(sql.NO_STATEMENT_TIMEOUT)
        connection.execute(sql.TAKE_MIGRATION_LOCK, sql.MIGRATION_LOCK)
        connection.execute(sql.CREATE_MIGRATIONS_TABLE)
        row = connection.execute(sql.SCHEMA_VERSION_NOW).fetchone()
        version = 0 if row is None else int(row[0])
        if version > SCHEMA_VERSION:
            raise StoreUnavailableError(
                f"the database schema is version {version}, newer than the "
                f"{SCHEMA_VERSION} this jwtlite supports"
            )
        for number, steps in enumerate(sql.MIGRATIONS[version:], start=version + 1):
            for statement in steps:
                connection.execute(statement)
            connection.execute(sql.RECORD_MIGRATION, (number,))
