"""``python -m jwtlite sessions | end-sessions | set-password USER`` (issue 11)."""

# ruff: noqa: F811 - the ``cli`` fixture is test_cli's, imported and requested by name

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli import _run_in_pty, assert_error, base_env, cli, create_user  # noqa: F401

from jwtlite.service.settings import Settings
from jwtlite.store.sqlite import SQLiteStore
from jwtlite.web.app import create_app

from support import FAST_HASH, PASSWORD
from support.contract import bearer
from support.sessions import NEW_PASSWORD, login_as, session_id


@pytest.fixture
def api(db_path: Path) -> Iterator[Any]:
    """The API on the same database as the commands (and the same generated key)."""
    import webtest

    settings = Settings(database=str(db_path), **FAST_HASH)
    store = SQLiteStore(str(db_path))  # creates the database the commands then find
    yield webtest.TestApp(create_app(settings, store=store))
    store.close()


def test_sessions_lists_live_sessions(cli: Callable[..., Any], api: Any) -> None:
    create_user(cli)
    first = login_as(api, user_agent="Firefox", remote_addr="10.0.0.1")
    second = login_as(api, user_agent="Chromium", remote_addr="10.0.0.2")
    result = cli("sessions", "alice", "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["id"] for row in rows] == [
        session_id(second["access"]),
        session_id(first["access"]),
    ]
    assert rows[0]["user_agent"] == "Chromium"
    assert "current" not in rows[0]
    table = cli("sessions", "ALICE")
    assert table.returncode == 0
    assert session_id(first["access"]) in table.stdout
    assert "10.0.0.1" in table.stdout


def test_end_sessions_logs_the_user_out_everywhere(cli: Callable[..., Any], api: Any) -> None:
    create_user(cli)
    pairs = [login_as(api) for _ in range(2)]
    result = cli("end-sessions", "alice")
    assert (result.returncode, result.stdout.strip()) == (0, "alice: 2 sessions ended")
    for pair in pairs:
        api.post_json("/accounts/token/refresh/", {"refresh": pair["refresh"]}, status=401)
    assert cli("sessions", "alice", "--json").stdout == ""


def test_set_password_from_stdin_ends_sessions(cli: Callable[..., Any], api: Any) -> None:
    create_user(cli)
    pair = login_as(api)
    result = cli("set-password", "alice", stdin=NEW_PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "alice: password set, 1 session ended"
    assert NEW_PASSWORD not in result.stdout + result.stderr
    api.post_json("/accounts/token/refresh/", {"refresh": pair["refresh"]}, status=401)
    login_as(api, password=NEW_PASSWORD)


def test_set_password_applies_the_rules(cli: Callable[..., Any]) -> None:
    create_user(cli)
    assert_error(cli("set-password", "alice", stdin="alice\n"), 1, "password")


def test_set_password_prompts_twice_without_echo(cli: Callable[..., Any], db_path: Path) -> None:
    create_user(cli)
    output, status = _run_in_pty(
        ["set-password", "alice"], base_env(db_path), answers=[NEW_PASSWORD, NEW_PASSWORD]
    )
    assert status == 0, output
    assert output.count("Password") == 2
    assert NEW_PASSWORD not in output


def test_set_password_refuses_different_passwords(cli: Callable[..., Any], db_path: Path) -> None:
    create_user(cli)
    output, status = _run_in_pty(
        ["set-password", "alice"], base_env(db_path), answers=[NEW_PASSWORD, PASSWORD]
    )
    assert status == 1
    assert "jwtlite: error: the passwords do not match" in output


@pytest.mark.parametrize("command", ["sessions", "end-sessions", "set-password"])
def test_unknown_user_is_exit_1(cli: Callable[..., Any], command: str) -> None:
    create_user(cli)
    assert_error(cli(command, "nobody", stdin=NEW_PASSWORD + "\n"), 1, "nobody")


@pytest.mark.parametrize("command", ["sessions", "end-sessions", "set-password"])
def test_missing_database_is_exit_1(cli: Callable[..., Any], command: str) -> None:
    assert_error(cli(command, "alice"), 1, "does not exist")


def test_the_api_token_of_an_ended_session_is_refused_at_me(
    cli: Callable[..., Any], api: Any
) -> None:
    create_user(cli)
    pair = login_as(api)
    assert cli("end-sessions", "alice").returncode == 0
    # The API's process learns of the change within USER_STATE_CACHE_SECONDS; it has not
    # cached this session yet, so it reads the store now.
    api.get("/accounts/me/", headers=bearer(pair["access"]), status=401)
