"""Fixtures for the service tests: a fresh database, a fake clock and a WSGI test client per
test, on SQLite and, where a module asks for it, on PostgreSQL too.

A module (or test) marked ``both_backends`` runs every test that uses the ``backend``
fixture (through ``database``, ``make_client``, ``client`` or ``db_rows``) twice, as
``[sqlite]`` and ``[postgres]``; a test marked ``sqlite_only`` in such a module stays on
SQLite (it inspects the SQLite file itself). Everything else runs on SQLite alone, as
before. PostgreSQL runs happen in one database created for the pytest run
(``support.postgres``), emptied before each test, dropped at the end.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from support import FAST_HASH, FakeClock
from support import postgres as support_postgres

with warnings.catch_warnings():  # webob imports the deprecated cgi module on Python 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    import webtest

BACKENDS = ("sqlite", "postgres")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``backend`` over both stores for tests marked ``both_backends``."""
    if "backend" not in metafunc.fixturenames:
        return
    marked = metafunc.definition.get_closest_marker("both_backends") is not None
    if marked and metafunc.definition.get_closest_marker("sqlite_only") is None:
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The store this test runs on: ``"sqlite"`` unless parametrised."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    """The URL of the PostgreSQL server's maintenance database (to create databases).

    Skips with the reason when no server answers, or fails under
    ``REQUIRE_POSTGRES_TESTS=1``.
    """
    admin, reason = support_postgres.find_server()
    if admin is None:
        if os.environ.get(support_postgres.REQUIRE) == "1":
            pytest.fail(f"{support_postgres.REQUIRE}=1 but {reason}")
        pytest.skip(reason)
    return admin


@pytest.fixture(scope="session")
def postgres_server(postgres_admin: str) -> Iterator[support_postgres.Janitor]:
    """This run's own PostgreSQL database (created once, dropped at the end), with what
    empties it between tests (its ``url``)."""
    name, url = support_postgres.create_database(postgres_admin)
    janitor = support_postgres.Janitor(url)
    try:
        yield janitor
    finally:
        janitor.close()
        support_postgres.drop_database(postgres_admin, name)


@pytest.fixture
def postgres_url(postgres_server: support_postgres.Janitor) -> str:
    """This run's PostgreSQL database, emptied for this test (ids restart at 1)."""
    postgres_server.empty()
    return postgres_server.url


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh SQLite file path (not yet created)."""
    return tmp_path / "jwtlite.sqlite3"


@pytest.fixture
def database(backend: str, db_path: Path, request: pytest.FixtureRequest) -> str:
    """The test's empty database: an SQLite path, or the PostgreSQL URL."""
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(db_path)


@pytest.fixture
def db_rows(backend: str, database: str) -> Callable[..., list[tuple[Any, ...]]]:
    """``db_rows(sql)``: the rows of one query on the test's database, through the backend's
    own driver (SQL without parameters, valid on both)."""

    def query(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if backend == "postgres":
            return support_postgres.rows(database, sql, params)
        from support.load import read_only

        with read_only(Path(database)) as connection:
            return connection.execute(sql, params).fetchall()

    return query


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves by hand (no sleeping for expiry)."""
    return FakeClock()


@pytest.fixture
def make_client(
    backend: str, database: str, db_path: Path, clock: FakeClock
) -> Iterator[Callable[..., Any]]:
    """Build ``webtest.TestApp(create_app(Settings(**overrides)))`` on the test's database.

    Cheap password hashing unless overridden; every store is closed at teardown. On
    PostgreSQL, where a generated key is refused, a key file is made where SQLite's would
    be (beside the database file), so clients of one test share it as they do on SQLite.
    """
    from jwtlite.service.settings import Settings
    from jwtlite.service.signing.keyfile import load_or_create_key_file
    from jwtlite.store import Store
    from jwtlite.web.app import create_app

    stores: list[Store] = []

    def build(**overrides: Any) -> Any:
        options = {"database": database, **FAST_HASH, **overrides}
        if backend == "postgres" and not {"secret_key", "private_key_file"} & set(overrides):
            key_file = db_path.with_suffix(".key")
            load_or_create_key_file(str(key_file), options.get("algorithm", "HS256"), create=True)
            options["private_key_file"] = str(key_file)
        settings = Settings(**options)
        store = settings.open_store(threads=4)
        stores.append(store)
        client = webtest.TestApp(create_app(settings, store=store, clock=clock))
        client.store = store
        client.settings = settings
        return client

    yield build
    for store in stores:
        store.close()


@pytest.fixture
def client(make_client: Callable[..., Any]) -> Any:
    """A test client with default settings (cheap hashing)."""
    return make_client()
