"""What the SQLite and PostgreSQL stores share: the rules both apply the same way.

Each backend keeps what differs for good reasons -- its driver, its SQL dialect (in
``_sqlite_sql`` and ``_postgres_sql``) and how it makes a change atomic (``BEGIN IMMEDIATE``
on SQLite; row locks and single statements on PostgreSQL) -- and takes from here the error
translation, the session states an ending may leave, the row mappings and the steps of a
password change, so the two cannot drift apart.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import astuple
from types import ModuleType
from typing import Any, Concatenate, ParamSpec, TypeVar

from jwtlite.store.base import LOGIN_ATTEMPT, RefreshRecord, Session, User
from jwtlite.store.errors import StoreUnavailableError

__all__ = ["ENDABLE", "apply_password_change", "translating", "user_from_row"]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_S = TypeVar("_S")

#: Which states each ending may leave: logging out ends only an active session; a
#: revocation also reaches an ended one, whose access tokens were still live.
ENDABLE: dict[str, tuple[str, ...]] = {"ended": ("active",), "revoked": ("active", "ended")}


def translating(
    driver_error: type[BaseException], describe: Callable[[Any, BaseException], str]
) -> Callable[[Callable[Concatenate[_S, _P], _R]], Callable[Concatenate[_S, _P], _R]]:
    """A decorator turning any ``driver_error`` escaping a store method into a store error.

    The error raised is :class:`~jwtlite.store.errors.StoreUnavailableError` with the message
    ``describe(store, error)``, chained with ``from``."""

    def decorate(method: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
        @functools.wraps(method)
        def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return method(self, *args, **kwargs)
            except driver_error as error:
                raise StoreUnavailableError(describe(self, error)) from error

        return wrapper

    return decorate


def user_from_row(row: tuple[Any, ...]) -> User:
    """The :class:`~jwtlite.store.base.User` of a row in ``USER_COLUMNS`` order."""
    id_, username, email, password_hash, is_active, date_joined, last_login = row
    return User(id_, username, email, password_hash, bool(is_active), date_joined, last_login)


def apply_password_change(
    connection: Any,
    sql: ModuleType,
    end_user_sessions: Callable[[Any, int, str], int],
    user_id: int,
    *,
    password_hash: str,
    session: Session | None,
    refresh: RefreshRecord | None,
    subject: str | None,
    address: str | None,
    verified_hash: str | None = None,
) -> int | None:
    """Inside the caller's transaction: the steps of ``Store.change_password``.

    Sets the hash, revokes every session of the user (``end_user_sessions``), forgets the
    login failures of ``subject`` from ``address``, adds the caller's new session and its
    first refresh token; returns the number of sessions revoked, or None for an unknown
    user or one whose hash is no longer ``verified_hash`` (nothing changed). ``sql`` is the
    backend's statement module.
    """
    if verified_hash is None:
        changed = connection.execute(sql.SET_PASSWORD, (password_hash, user_id))
    else:
        changed = connection.execute(
            sql.SET_PASSWORD_IF_VERIFIED, (password_hash, user_id, verified_hash)
        )
    if changed.rowcount != 1:
        return None
    count = end_user_sessions(connection, user_id, "revoked")
    if subject is not None and address is not None:
        connection.execute(sql.FORGET_LOGIN_FAILURES, (LOGIN_ATTEMPT, subject, address))
    if session is not None:
        connection.execute(sql.SESSION_INSERT, astuple(session))
    if refresh is not None:
        connection.execute(sql.TOKEN_INSERT, astuple(refresh))
    return count
