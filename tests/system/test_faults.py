"""Faults: a broken database or key refuses to start with one clear line; a database that
fails while the service runs answers 503 JSON (never a traceback) and the service recovers,
in the same process, once the fault is gone.

Running as root, file permissions prove nothing (root writes a 0444 file), so faults are made
in ways that bind root too: a ``file:...?mode=ro`` URI, ``PRAGMA query_only``, ``PRAGMA
max_page_count`` (SQLite's own "disk full"), an authorizer that refuses one statement, a lock
held by another connection, a store whose connections fail, and, where mounting is allowed, a
genuinely full tmpfs.
"""

from __future__ import annotations

import base64
import contextlib
import os
import sqlite3
import stat
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support import FAST_HASH, FAST_HASH_ENV, PASSWORD, SERVE, ServerProcess, http, login, register
from support.load import read_only

with warnings.catch_warnings():  # webob imports the deprecated cgi module on Python 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    import webtest

UNAVAILABLE = {"detail": "Service temporarily unavailable."}
# Words of SQLite's own messages that must never reach a client.
LEAKS = ("Traceback", "sqlite", "locked", "readonly", "disk", "full", "authorized", "I/O")


# -- start-up refusals ----------------------------------------------------------------------


def start_up(
    database: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``serve.py`` in ``cwd`` expecting it to refuse to start (a timeout means it
    served)."""
    return subprocess.run(
        [sys.executable, str(SERVE), "--host", "127.0.0.1", "--port", "0"],
        env={**os.environ, **FAST_HASH_ENV, "JWTLITE_DATABASE": database, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def assert_refused(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit status 2, nothing on stdout, one ``jwtlite: error:`` line naming ``fragments``."""
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("jwtlite: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def make_database(path: Path) -> None:
    """Create a valid, migrated jwtlite database at ``path``."""
    from jwtlite.store.sqlite import SQLiteStore

    SQLiteStore(str(path)).close()


def hmac_key_text(size: int = 32) -> bytes:
    """A key file's content for HS256: base64url of ``size`` random bytes."""
    return base64.urlsafe_b64encode(os.urandom(size)).rstrip(b"=") + b"\n"


def write_file(path: Path, data: bytes, mode: int = 0o600) -> Path:
    """Write ``data`` to ``path`` with exactly ``mode``."""
    path.write_bytes(data)
    path.chmod(mode)
    return path


DATABASE_CASES: dict[str, tuple[Callable[[Path], str], tuple[str, ...]]] = {
    "directory-missing": (
        lambda tmp: str(tmp / "missing" / "db.sqlite3"),
        ("DATABASE", "unable to open database file"),
    ),
    "path-is-a-directory": (
        str,
        ("DATABASE", "unable to open database file"),
    ),
    "not-a-database": (
        lambda tmp: str(write_file(tmp / "db.sqlite3", b"this is not sqlite\n" * 100)),
        ("DATABASE", "file is not a database"),
    ),
    "read-only": (
        lambda tmp: (make_database(tmp / "db.sqlite3"), f"file:{tmp / 'db.sqlite3'}?mode=ro")[1],
        ("DATABASE", "readonly"),
    ),
    "newer-schema": (
        lambda tmp: newer_schema(tmp / "db.sqlite3"),
        ("DATABASE", "newer"),
    ),
}


def newer_schema(path: Path) -> str:
    """A database whose schema version is newer than this jwtlite knows."""
    make_database(path)
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA user_version = 99")
    return str(path)


@pytest.mark.parametrize("case", list(DATABASE_CASES), ids=list(DATABASE_CASES))
def test_a_database_that_cannot_be_used_refuses_start_up(tmp_path: Path, case: str) -> None:
    make, fragments = DATABASE_CASES[case]
    assert_refused(start_up(make(tmp_path), tmp_path), *fragments)


KEY_CASES: dict[str, tuple[Callable[[Path], dict[str, str]], tuple[str, ...]]] = {
    "private-key-file-missing": (
        lambda tmp: {"JWTLITE_PRIVATE_KEY_FILE": str(tmp / "missing.key")},
        ("PRIVATE_KEY_FILE", "missing.key"),
    ),
    "private-key-file-is-a-directory": (
        lambda tmp: {"JWTLITE_PRIVATE_KEY_FILE": str(tmp)},
        ("PRIVATE_KEY_FILE",),
    ),
    "hmac-key-not-base64url": (
        lambda tmp: {
            "JWTLITE_PRIVATE_KEY_FILE": str(write_file(tmp / "s.key", b"*** not a key! ***\n"))
        },
        ("PRIVATE_KEY_FILE", "s.key"),
    ),
    "hmac-key-empty": (
        lambda tmp: {"JWTLITE_PRIVATE_KEY_FILE": str(write_file(tmp / "s.key", b""))},
        ("PRIVATE_KEY_FILE", "at least 32 bytes"),
    ),
    "hmac-key-too-short": (
        lambda tmp: {"JWTLITE_PRIVATE_KEY_FILE": str(write_file(tmp / "s.key", hmac_key_text(8)))},
        ("PRIVATE_KEY_FILE", "at least 32 bytes"),
    ),
    "rsa-key-not-pem": (
        lambda tmp: {
            "JWTLITE_ALGORITHM": "RS256",
            "JWTLITE_PRIVATE_KEY_FILE": str(
                write_file(
                    tmp / "rsa.pem",
                    b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                )
            ),
        },
        ("PRIVATE_KEY_FILE", "rsa.pem"),
    ),
    "hmac-key-for-rsa": (
        lambda tmp: {
            "JWTLITE_ALGORITHM": "RS256",
            "JWTLITE_PRIVATE_KEY_FILE": str(write_file(tmp / "s.key", hmac_key_text())),
        },
        ("PRIVATE_KEY_FILE", "s.key"),
    ),
    "key-file-group-readable": (
        lambda tmp: {
            "JWTLITE_PRIVATE_KEY_FILE": str(write_file(tmp / "s.key", hmac_key_text(), 0o640))
        },
        ("PRIVATE_KEY_FILE", "640", "chmod 600"),
    ),
    "key-file-world-readable": (
        lambda tmp: {
            "JWTLITE_PRIVATE_KEY_FILE": str(write_file(tmp / "s.key", hmac_key_text(), 0o604))
        },
        ("PRIVATE_KEY_FILE", "604", "chmod 600"),
    ),
    "generated-key-corrupt": (
        lambda tmp: (write_file(tmp / "db.key", b"%%% garbage %%%\n"), {})[1],
        ("db.key",),
    ),
    "generated-key-group-readable": (
        lambda tmp: (write_file(tmp / "db.key", hmac_key_text(), 0o660), {})[1],
        ("db.key", "660"),
    ),
}


@pytest.mark.parametrize("case", list(KEY_CASES), ids=list(KEY_CASES))
def test_a_key_file_that_cannot_be_used_refuses_start_up(tmp_path: Path, case: str) -> None:
    make, fragments = KEY_CASES[case]
    env = make(tmp_path)
    key_files = [Path(env.get("JWTLITE_PRIVATE_KEY_FILE", tmp_path / "db.key"))]
    secrets = [p.read_bytes().strip() for p in key_files if p.is_file() and p.stat().st_size]

    result = start_up(str(tmp_path / "db.sqlite3"), tmp_path, env)

    assert_refused(result, *fragments)
    for secret in secrets:
        assert secret.decode() not in result.stderr  # the key itself is never printed


def test_a_uri_database_keeps_its_generated_key_beside_the_file(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite3"
    server = ServerProcess(database=database, env={"JWTLITE_DATABASE": f"file:{database}?mode=rwc"})
    with server:
        body = {"username": "alice", "password": PASSWORD}
        assert http("POST", server.url + "/accounts/register/", body).status == 201
    assert (tmp_path / "db.key").is_file()
    with read_only(database) as check:
        assert check.execute("SELECT username FROM users").fetchall() == [("alice",)]


# -- files holding secrets are private ------------------------------------------------------


def test_database_wal_shm_and_key_files_are_created_private(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite3"
    previous = os.umask(0o022)
    try:
        with ServerProcess(database=database, env=FAST_HASH_ENV) as server:
            body = {"username": "alice", "password": PASSWORD}
            assert http("POST", server.url + "/accounts/register/", body).status == 201
            modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in tmp_path.iterdir()}
    finally:
        os.umask(previous)

    assert modes == {
        "db.sqlite3": 0o600,
        "db.sqlite3-wal": 0o600,
        "db.sqlite3-shm": 0o600,
        "db.key": 0o600,
    }


def test_an_existing_database_keeps_the_mode_its_operator_gave_it(db_path: Path) -> None:
    from jwtlite.store.sqlite import SQLiteStore

    make_database(db_path)
    db_path.chmod(0o640)
    SQLiteStore(str(db_path)).close()
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o640


# -- faults while serving: 503 JSON, then recovery ------------------------------------------


def assert_unavailable(response: Any) -> None:
    """A 503 in the one JSON shape, with Retry-After and nothing of SQLite in it."""
    assert response.status_int == 503, response
    assert response.content_type == "application/json"
    assert response.json == UNAVAILABLE
    assert response.headers["Retry-After"] == "5"
    for word in LEAKS:
        assert word.lower() not in response.text.lower()


class Calls:
    """Every endpoint, called through a webtest client for one prepared user."""

    def __init__(self, client: Any) -> None:
        register(client, "alice")
        self.client = client
        self.tokens = login(client, "alice")
        self.registered = 0

    def register(self) -> Any:
        self.registered += 1
        body = {"username": f"newcomer{self.registered}", "password": PASSWORD}
        return self.client.post_json("/accounts/register/", body, expect_errors=True)

    def login(self) -> Any:
        body = {"username": "alice", "password": PASSWORD}
        return self.client.post_json("/accounts/token/", body, expect_errors=True)

    def wrong_login(self) -> Any:
        body = {"username": "alice", "password": "wrong-password-1"}
        return self.client.post_json("/accounts/token/", body, expect_errors=True)

    def refresh(self) -> Any:
        body = {"refresh": self.tokens["refresh"]}
        return self.client.post_json("/accounts/token/refresh/", body, expect_errors=True)

    def verify_access(self) -> Any:
        body = {"token": self.tokens["access"]}
        return self.client.post_json("/accounts/token/verify/", body, expect_errors=True)

    def verify_refresh(self) -> Any:
        body = {"token": self.tokens["refresh"]}
        return self.client.post_json("/accounts/token/verify/", body, expect_errors=True)

    def me(self) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens['access']}"}
        return self.client.get("/accounts/me/", headers=headers, expect_errors=True)

    def health(self) -> Any:
        return self.client.get("/health", expect_errors=True)


HEALTHY = {
    "register": 201,
    "login": 200,
    "wrong_login": 401,
    "refresh": 200,
    "verify_access": 200,
    "verify_refresh": 200,
    "me": 200,
    "health": 200,
}


def check_all(calls: Calls, expected: dict[str, int]) -> None:
    """Call every endpoint; 503s must be well formed, the rest as ``expected``."""
    seen = {}
    for name in expected:
        response = getattr(calls, name)()
        if response.status_int == 503:
            assert_unavailable(response)
        seen[name] = response.status_int
    assert seen == expected


@pytest.fixture
def rotating(make_client: Callable[..., Any]) -> Calls:
    """Endpoint calls on a client with rotation off (so one refresh token serves many)."""
    return Calls(make_client())


def test_query_only_database_answers_503_to_writes_and_recovers(rotating: Calls) -> None:
    connection = rotating.client.store._connection()
    connection.execute("PRAGMA query_only = ON")
    try:
        check_all(
            rotating,
            {
                **HEALTHY,
                "register": 503,
                "login": 503,
                "wrong_login": 503,
            },
        )
    finally:
        connection.execute("PRAGMA query_only = OFF")
    check_all(rotating, HEALTHY)


def test_disk_full_answers_503_and_recovers_when_space_returns(
    make_client: Callable[..., Any], db_path: Path
) -> None:
    calls = Calls(make_client())
    connection = calls.client.store._connection()
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    limit = connection.execute("PRAGMA max_page_count").fetchone()[0]
    connection.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from now on
    try:
        for _ in range(500):
            response = calls.register()
            if response.status_int != 201:
                break
        assert_unavailable(response)
        # Reading needs no space: tokens, the profile and health still work.
        for call in (calls.verify_access, calls.verify_refresh, calls.me, calls.health):
            assert call().status_int == 200
    finally:
        connection.execute(f"PRAGMA max_page_count = {limit}")
    failed = f"newcomer{calls.registered}"
    check_all(calls, HEALTHY)
    body = {"username": failed, "password": PASSWORD}
    assert calls.client.post_json("/accounts/register/", body, status=201)
    for number in range(1, calls.registered):
        login(calls.client, f"newcomer{number}")
    calls.client.store.close()
    with read_only(db_path) as check:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_a_failed_rotation_leaves_the_refresh_token_unspent(
    make_client: Callable[..., Any], db_path: Path
) -> None:
    calls = Calls(make_client(rotate_refresh_tokens=True))
    connection = calls.client.store._connection()
    insert = 18  # SQLITE_INSERT

    def refuse_token_inserts(action: int, table: str | None, *_: Any) -> int:
        return sqlite3.SQLITE_DENY if action == insert and table == "refresh_tokens" else 0

    connection.set_authorizer(refuse_token_inserts)
    try:
        # The UPDATE that spends the token runs, the INSERT of its successor fails: the
        # transaction must roll back, or the client would hold a token that was spent.
        assert_unavailable(calls.refresh())
        assert_unavailable(calls.login())
        states = connection.execute("SELECT state FROM refresh_tokens").fetchall()
        assert states == [("active",)]
    finally:
        connection.set_authorizer(None)
    response = calls.refresh()
    assert response.status_int == 200
    assert set(response.json) == {"access", "refresh"}


def test_a_write_lock_held_too_long_answers_503_and_recovers(db_path: Path, clock: Any) -> None:
    from jwtlite.service.settings import Settings
    from jwtlite.store.sqlite import SQLiteStore
    from jwtlite.web.app import create_app

    store = SQLiteStore(str(db_path), busy_timeout_ms=100)
    client = webtest.TestApp(
        create_app(Settings(database=str(db_path), **FAST_HASH), store=store, clock=clock)
    )
    client.store = store
    calls = Calls(client)
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
        check_all(
            calls,
            {**HEALTHY, "register": 503, "login": 503, "wrong_login": 503},
        )
        other.execute("COMMIT")
        check_all(calls, HEALTHY)
    finally:
        other.close()
        store.close()


def failing_store(path: str) -> Any:
    """A :class:`~jwtlite.store.sqlite.Store` whose every statement fails with ``store.fault`` while
    it is set (an I/O error, the file gone), as if the disk had vanished."""
    from jwtlite.store.sqlite import SQLiteStore

    class FailingStore(SQLiteStore):
        fault: str | None = None

        def _connection(self) -> sqlite3.Connection:
            if self.fault is not None:
                raise sqlite3.OperationalError(self.fault)
            return super()._connection()

    return FailingStore(path)


@pytest.mark.parametrize(
    "fault",
    ["disk I/O error", "unable to open database file", "database disk image is malformed"],
    ids=["io-error", "file-gone", "malformed"],
)
def test_a_store_that_fails_on_every_statement_answers_503_and_recovers(
    db_path: Path, clock: Any, fault: str
) -> None:
    from jwtlite.service.settings import Settings
    from jwtlite.web.app import create_app

    store = failing_store(str(db_path))
    client = webtest.TestApp(
        create_app(Settings(database=str(db_path), **FAST_HASH), store=store, clock=clock)
    )
    client.store = store
    calls = Calls(client)
    store.fault = fault
    try:
        # Verifying an access token needs its user's state too (fail closed): only what this
        # process read within USER_STATE_CACHE_SECONDS may answer without the database, and
        # the clock has moved past that.
        clock.advance(1)
        check_all(calls, dict.fromkeys(HEALTHY, 503))
    finally:
        store.fault = None
    check_all(calls, HEALTHY)
    store.fault = fault
    try:
        # Just read (the clock has not moved): inside the bound, the access token verifies.
        check_all(calls, dict.fromkeys(HEALTHY, 503) | {"verify_access": 200})
    finally:
        store.fault = None
    store.close()


# -- a genuinely full filesystem under a real server ----------------------------------------


@contextlib.contextmanager
def tiny_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` at ``where`` (needs root and CAP_SYS_ADMIN)."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True, capture_output=True)


def fill(directory: Path) -> Path:
    """Fill the filesystem of ``directory`` with one ballast file; return it."""
    ballast = directory / "ballast"
    with ballast.open("wb") as handle:
        for _ in range(10_000):  # bounded: 10,000 x 4 KiB = 40 MiB at most
            try:
                handle.write(b"\0" * 4096)
                handle.flush()
            except OSError:
                break
        with contextlib.suppress(OSError):
            handle.close()
    return ballast


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_full_filesystem_answers_503_and_the_server_recovers_without_restart(
    tmp_path: Path,
) -> None:
    with tiny_tmpfs(tmp_path / "small", "1m") as small:
        database = small / "db.sqlite3"
        with ServerProcess(database=database, env=FAST_HASH_ENV) as server:
            url = server.url
            first = {"username": "alice", "password": PASSWORD}
            assert http("POST", url + "/accounts/register/", first).status == 201
            tokens = http("POST", url + "/accounts/token/", first).json()
            ballast = fill(small)
            refused = None
            for number in range(500):
                body = {"username": f"newcomer{number}", "password": PASSWORD}
                reply = http("POST", url + "/accounts/register/", body)
                if reply.status != 201:
                    refused = (number, reply)
                    break
            assert refused is not None
            number, reply = refused
            assert (reply.status, reply.json()) == (503, UNAVAILABLE)
            assert reply.headers["Content-Type"] == "application/json"
            verify = http("POST", url + "/accounts/token/verify/", {"token": tokens["access"]})
            assert verify.status == 200
            ballast.unlink()  # the space comes back
            body = {"username": f"newcomer{number}", "password": PASSWORD}
            assert http("POST", url + "/accounts/register/", body).status == 201
            for name in ["alice", *(f"newcomer{n}" for n in range(number + 1))]:
                body = {"username": name, "password": PASSWORD}
                assert http("POST", url + "/accounts/token/", body).status == 200
            assert http("GET", url + "/health").status == 200
        with read_only(database) as check:
            assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
