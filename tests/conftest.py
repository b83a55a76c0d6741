"""Fixtures for the service tests: a fresh SQLite file, a fake clock and a WSGI test client
per test."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support import FAST_HASH, FakeClock

with warnings.catch_warnings():  # webob imports the deprecated cgi module on Python 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    import webtest


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh SQLite file path (not yet created)."""
    return tmp_path / "jwtlite.sqlite3"


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves by hand (no sleeping for expiry)."""
    return FakeClock()


@pytest.fixture
def make_client(db_path: Path, clock: FakeClock) -> Iterator[Callable[..., Any]]:
    """Build ``webtest.TestApp(create_app(Settings(**overrides)))`` on the test's database.

    Cheap password hashing unless overridden; every store is closed at teardown.
    """
    from jwtlite.service.settings import Settings
    from jwtlite.store.sqlite import SQLiteStore
    from jwtlite.web.app import create_app

    stores: list[SQLiteStore] = []

    def build(**overrides: Any) -> Any:
        options = {"database": str(db_path), **FAST_HASH, **overrides}
        settings = Settings(**options)
        store = SQLiteStore(settings.database)
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
