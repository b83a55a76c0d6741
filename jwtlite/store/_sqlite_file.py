"""The SQLite store's file: how it is created, opened, migrated and written atomically.

A new file is created with mode 0600 (it holds password hashes); every connection runs in
autocommit mode with ``foreign_keys`` on, ``synchronous=FULL`` and WAL; a change that must be
atomic and depends on what it reads runs in :func:`immediate`, which takes the write lock up
front (``BEGIN IMMEDIATE``) so concurrent writers queue on the busy timeout instead of failing
mid-transaction.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, unquote, urlsplit

from jwtlite.store import _sqlite_sql as sql
from jwtlite.store._sqlite_sql import SCHEMA_VERSION
from jwtlite.store.errors import StoreUnavailableError

__all__ = ["create_private", "immediate", "migrate", "open_connection"]

_WAL_RETRY_SECONDS = 0.005


@contextmanager
def immediate(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction: BEGIN IMMEDIATE, COMMIT on success, ROLLBACK on any error."""
    connection.execute(sql.BEGIN_IMMEDIATE)
    try:
        yield connection
        connection.execute(sql.COMMIT)
    except BaseException:
        # A failed COMMIT (disk full, I/O error) can leave the transaction open.
        if connection.in_transaction:
            connection.execute(sql.ROLLBACK)
        raise


def create_private(path: str) -> None:
    """Create the database file with mode 0600 when it does not exist yet.

    It holds password hashes, and SQLite gives the ``-wal`` and ``-shm`` files it creates
    the mode of the database file (0644 under the usual umask if SQLite made it).
    """
    file = _file_path(path)
    if file is None:
        return
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        # It exists (its mode is the operator's choice), or SQLite will say why not.
        return
    os.close(fd)


def _file_path(database: str) -> str | None:
    """The file a database string names, or None for an in-memory database."""
    if not database.startswith("file:"):
        return None if database in ("", ":memory:") else database
    parts = urlsplit(database)
    if parse_qs(parts.query).get("mode") == ["memory"]:
        return None
    path = unquote(parts.path)
    return None if path in ("", ":memory:") else path


def open_connection(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    """A connection to ``path`` in autocommit mode, with the store's pragmas and WAL."""
    # check_same_thread=False only so close() may close other threads' connections;
    # each connection is otherwise used by the thread that opened it.
    connection = sqlite3.connect(
        path,
        timeout=busy_timeout_ms / 1000,
        isolation_level=None,
        check_same_thread=False,
        uri=path.startswith("file:"),
    )
    try:
        connection.execute(sql.busy_timeout(busy_timeout_ms))
        for pragma in sql.CONNECTION_PRAGMAS:
            connection.execute(pragma)
        mode = _enter_wal(connection, busy_timeout_ms)
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot use WAL journal mode (got {mode!r})")
    except BaseException:
        connection.close()
        raise
    return connection


def _enter_wal(connection: sqlite3.Connection, busy_timeout_ms: int) -> object:
    """Switch to WAL and return the journal mode now in force.

    Turning a new file to WAL needs a lock SQLite will not wait for: it answers
    SQLITE_BUSY at once, without the busy handler, when other connections are opening
    the same new file (several threads or processes starting together). So it is
    retried here, for as long as the busy timeout allows.
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            return connection.execute(sql.WAL_MODE).fetchone()[0]
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() >= deadline:
                raise
        time.sleep(_WAL_RETRY_SECONDS)


def migrate(connection: sqlite3.Connection) -> None:
    """Apply the pending migrations; refuse a schema newer than this code knows."""
    # Taking the write lock before reading the version makes two processes starting on
    # a fresh file apply the migrations exactly once.
    with immediate(connection):
        version = connection.execute(sql.USER_VERSION).fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreUnavailableError(
                f"the database schema is version {version}, newer than the "
                f"{SCHEMA_VERSION} this jwtlite supports"
            )
        for number, steps in enumerate(sql.MIGRATIONS[version:], start=version + 1):
            for statement in steps:
                connection.execute(statement)
            connection.execute(sql.set_user_version(number))
        # Rewriting the version even when nothing changed is a real write: a file
        # we can read but not write is refused now, not at the first login.
        connection.execute(sql.set_user_version(SCHEMA_VERSION))
