"""PostgreSQL for the tests: find a server, make a database per run, empty it per test, and
stand between the service and the server to cut it off.

The server is ``JWTLITE_TEST_POSTGRES_URL`` when set, else ``postgresql://postgres@127.0.0.1:5432``
when one answers there (the project's machines run one: user ``postgres``, trust auth). A
pytest run creates its own database, ``jwtlite_test_<random>``, and drops it at the end;
tests never touch another database, and never stop the server (other people's tests use
it): a fault is made by terminating this database's backends or through a :class:`Proxy`.

Without a server the PostgreSQL tests skip with the reason; ``REQUIRE_POSTGRES_TESTS=1`` (as
in CI) makes that a failure.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import socket
import struct
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ENV_URL = "JWTLITE_TEST_POSTGRES_URL"
REQUIRE = "REQUIRE_POSTGRES_TESTS"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# The tables of the schema, children first (what emptying deletes, in order).
TABLES = ("attempts", "refresh_tokens", "sessions", "users")
SEQUENCES = ("users_id_seq", "attempts_id_seq")
# These tests send logins at once from 127.0.0.1 to test the store under load, not the
# shedding of logins beyond a client's share of the hash queue (test_attack_regressions.py).
WAIT_FOR_HASHES = {
    "JWTLITE_PASSWORD_HASH_QUEUE": "1000",
    "JWTLITE_PASSWORD_HASH_PER_CLIENT": "1000",
}
# Instances sharing a PostgreSQL database must share the signing key (Settings insists).
SECRET = "postgres-tests-shared-signing-key-0123456789"


def find_server() -> tuple[str | None, str]:
    """The admin URL of a server to test against and "", or None and why there is none."""
    try:
        import psycopg
    except ImportError:
        return None, "psycopg is not installed (pip install -e '.[test]')"
    url = os.environ.get(ENV_URL) or DEFAULT_URL
    try:
        psycopg.connect(url, connect_timeout=3, autocommit=True).close()
    except psycopg.Error as error:
        where = ENV_URL if os.environ.get(ENV_URL) else "127.0.0.1:5432 (set " + ENV_URL + ")"
        reason = " ".join(str(error).split())[:200]
        return None, f"no PostgreSQL server answers at {where}: {reason}"
    return url, ""


def with_database(url: str, name: str) -> str:
    """``url`` naming database ``name`` instead of its own."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def create_database(admin_url: str) -> tuple[str, str]:
    """Create a uniquely named empty database; its name and URL."""
    import psycopg

    name = f"jwtlite_test_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return name, with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name``, ending its sessions first."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as connection:
        terminate_backends(admin_url, name, connection=connection)
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def terminate_backends(admin_url: str, name: str, *, connection: Any = None) -> int:
    """End every session on database ``name`` but the caller's (what a server restart does
    to a client); return how many were ended."""
    import psycopg

    sql = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()"
    )
    if connection is not None:
        return int(connection.execute(sql, (name,)).fetchone()[0])
    with psycopg.connect(admin_url, autocommit=True) as own:
        return int(own.execute(sql, (name,)).fetchone()[0])


class Janitor:
    """Empties one database between tests over a connection of its own, reconnecting when a
    test ended it (terminating the database's backends ends every session)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: Any = None

    def empty(self) -> None:
        """Delete every row and restart the id sequences: the database a fresh SQLite file
        would be. (DELETE, not TRUNCATE: a tenth of the time on tables this small.)"""
        import psycopg

        for attempt in range(2):
            if self._connection is None or self._connection.closed:
                self._connection = psycopg.connect(self.url, autocommit=True)
            try:
                _empty(self._connection)
                return
            except psycopg.OperationalError:
                self._connection.close()
                if attempt:
                    raise

    def close(self) -> None:
        """Close the janitor's connection."""
        if self._connection is not None:
            self._connection.close()


def _empty(connection: Any) -> None:
    exists = connection.execute("SELECT to_regclass('users') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return
    with connection.transaction():
        for table in TABLES:
            connection.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
        for sequence in SEQUENCES:
            connection.execute(f"ALTER SEQUENCE {sequence} RESTART")


def rows(url: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one query on its own connection; every row."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        return connection.execute(sql, params).fetchall()


def sessions(url: str, *, application: str = "jwtlite") -> int:
    """How many sessions ``application`` holds on ``url``'s database."""
    name = urlsplit(url).path.lstrip("/")
    found = rows(
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
        (name, application),
    )
    return int(found[0][0])


def database_name(url: str) -> str:
    """The database ``url`` names."""
    return urlsplit(url).path.lstrip("/")


def through(url: str, port: int) -> str:
    """``url`` reaching its server on 127.0.0.1:``port`` instead (a :class:`Proxy`)."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user}@127.0.0.1:{port}" if user else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


class Proxy:
    """A TCP relay on 127.0.0.1 in front of the PostgreSQL server, to cut it off.

    ``stop()`` drops every relayed connection and stops listening (a stopped or crashed
    server, as the clients see it: reset connections, refused connects); ``start()``
    listens again on the same port. ``lose_answer_to(marker)`` makes the next client message
    holding ``marker`` reach the server and then resets that connection before any answer
    comes back (a lost ``COMMIT`` acknowledgement). The real server is never touched.
    """

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._marker: bytes | None = None
        self._stop_after = False
        self.answers_lost = threading.Event()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port: int = probe.getsockname()[1]
        probe.close()

    def start(self) -> Proxy:
        """Listen (again) and relay every connection to the server."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and reset every relayed connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            listener.close()
        with self._lock:
            doomed, self._sockets = self._sockets, []
        for sock in doomed:
            with contextlib.suppress(OSError):
                # Shut down first: it acts at once, even while the relay thread is waiting
                # on the socket (a close alone would wait for that wait to end).
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                # SO_LINGER 0: close with a reset, as a dying server's kernel would.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
        if self._thread is not None:
            self._thread.join(5)

    def lose_answer_to(self, marker: bytes, *, then_stop: bool = False) -> None:
        """Arm the proxy: the next client message holding ``marker`` goes through, its answer
        never comes back (the connection is reset once the server had time to act on it);
        ``answers_lost`` is set then. ``then_stop``: the proxy stops too, so that nobody can
        ask the server what became of it until ``start()``."""
        self.answers_lost.clear()
        with self._lock:
            self._marker = marker
            self._stop_after = then_stop

    def _take_marker(self, data: bytes) -> bool:
        with self._lock:
            if self._marker is None or self._marker not in data:
                return False
            self._marker = None
            return True

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by stop()
            if listener is not self._listener:  # accepted while stopping: refuse it
                client.close()
                return
            try:
                server = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        pair = {client: server, server: client}
        try:
            while True:
                ready, _, _ = select.select(list(pair), [], [], 1.0)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
                    if sock is client and self._take_marker(data):
                        time.sleep(0.5)  # the server acts on it; its answer stays unread
                        self.answers_lost.set()  # (the client waits until the reset)
                        if self._stop_after:
                            self.stop()  # no more connects first, then every reset
                        for either in pair:
                            with contextlib.suppress(OSError):
                                either.setsockopt(
                                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                                )
                        return
        except (OSError, ValueError):
            return
        finally:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.close()

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def instance(url: str, workdir: Path, *, threads: int = 8, **env: str) -> Any:
    """``serve.py`` on the PostgreSQL database ``url`` (cheap hashing, the shared key,
    concurrent logins from one address waiting for their hash instead of being shed),
    started; a :class:`support.ServerProcess` (``workdir`` is its working directory)."""
    from support import FAST_HASH_ENV, ServerProcess

    server = ServerProcess(
        database=workdir / "unused.sqlite3",
        env={
            **FAST_HASH_ENV,
            **WAIT_FOR_HASHES,
            "JWTLITE_DATABASE": url,
            "JWTLITE_SECRET_KEY": SECRET,
            **env,
        },
        args=["--threads", str(threads)],
    )
    return server.start()
