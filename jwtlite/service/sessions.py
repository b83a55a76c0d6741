"""Session rules shared by log-in, refresh and the account endpoints.

A session is a login and every refresh token descended from it (a refresh-token family); its
row says who, since when, from where (user agent and address at login, updated at refresh)
and whether it still counts. This module builds session rows, decides when a refresh should
write the row, shapes the public session document, and holds the rotation grace rule.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jwtlite.service.tokens import new_session_id
from jwtlite.store import RefreshRecord, Session, User

__all__ = [
    "TOUCH_INTERVAL",
    "USER_AGENT_MAX_LENGTH",
    "clean_user_agent",
    "iso8601",
    "needs_touch",
    "new_session",
    "session_document",
    "within_grace",
]

#: A refresh writes the session row only when ``last_used_at`` is older than this (seconds),
#: or the client's user agent or address changed: ``last_used`` has minute precision, and a
#: non-rotating refresh stays a read.
TOUCH_INTERVAL = 60.0
#: Longer user agents are cut here (they are shown, never parsed).
USER_AGENT_MAX_LENGTH = 256


def clean_user_agent(user_agent: str | None) -> str:
    """A client's ``User-Agent`` as stored: control characters dropped, the rest cut short.

    At most :data:`USER_AGENT_MAX_LENGTH` characters are kept."""
    if not user_agent:
        return ""
    text = "".join(char for char in user_agent if char.isprintable())
    return text[:USER_AGENT_MAX_LENGTH]


def new_session(
    user: User, *, now: float, expires_at: int, user_agent: str, address: str
) -> Session:
    """The row of a session starting now, under a fresh random id."""
    return Session(
        id=new_session_id(),
        user_id=user.id,
        created_at=now,
        last_used_at=now,
        expires_at=expires_at,
        user_agent=user_agent,
        address=address,
        state="active",
    )


def needs_touch(session: Session, *, now: float, user_agent: str, address: str) -> bool:
    """Whether a refresh that does not rotate should update the session row."""
    return (
        now - session.last_used_at >= TOUCH_INTERVAL
        or session.user_agent != user_agent
        or session.address != address
    )


def within_grace(
    record: RefreshRecord, successor: RefreshRecord | None, *, now: float, grace: int
) -> bool:
    """Whether presenting the spent token ``record`` again is a benign replay.

    True only when the grace period is on, ``record`` was spent by rotation at most ``grace``
    seconds ago, and its successor is still active (neither spent in turn nor revoked).
    Anything else is reuse.
    """
    return (
        grace > 0
        and record.state == "spent"
        and record.spent_at is not None
        and now - record.spent_at <= grace
        and successor is not None
        and successor.jti == record.successor
        and successor.family == record.family
        and successor.state == "active"
    )


def session_document(session: Session, *, current: str | None) -> dict[str, Any]:
    """A session as ``GET /accounts/sessions/`` shows it."""
    return {
        "id": session.id,
        "created": iso8601(session.created_at),
        "last_used": iso8601(session.last_used_at),
        "expires": iso8601(session.expires_at),
        "user_agent": session.user_agent,
        "address": session.address,
        "current": session.id == current,
    }


def iso8601(timestamp: float) -> str:
    """A Unix time as ISO 8601 in UTC with a ``Z``, as the ``me`` document writes times."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")
