"""What a ``DATABASE`` string names, and how to show it without its password.

A ``postgresql://`` or ``postgres://`` URL (libpq's two URI prefixes) selects the PostgreSQL
store; anything else is an SQLite path or ``file:`` URI. A URL may carry a password in its
user part or as a ``password=`` query parameter: :func:`masked_url` shows it as ``***`` and
:func:`scrub` removes it from any text (a driver message, a log line) before it goes out.
No driver is imported here.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

__all__ = [
    "POSTGRES_SCHEMES",
    "ScrubbingFilter",
    "is_postgres_url",
    "masked_url",
    "scrub",
    "secrets_in",
    "url_scheme",
]

POSTGRES_SCHEMES = ("postgresql", "postgres")
MASK = "***"

# scheme://[user[:password]@]hosts[/db][?query]: the user part ends at the last "@" before
# the path, so a password may hold "@" or ":".
_AUTHORITY = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://)(?P<authority>[^/?#]*)")
_QUERY_PASSWORD = re.compile(r"(?P<name>[?&]password=)(?P<value>[^&#]*)", re.IGNORECASE)


def url_scheme(database: str) -> str | None:
    """The scheme of ``database`` as written when it is a ``scheme://`` URL, else None."""
    match = _AUTHORITY.match(database)
    return match.group("head")[:-3] if match else None


def is_postgres_url(database: str) -> bool:
    """Whether ``database`` selects the PostgreSQL store.

    It does when it is a ``postgresql://`` or ``postgres://`` URL (lower case, as libpq reads
    them)."""
    return url_scheme(database) in POSTGRES_SCHEMES


def masked_url(database: str) -> str:
    """``database`` with any password replaced by ``***`` (unchanged when it has none)."""
    match = _AUTHORITY.match(database)
    if match is None:
        return database
    authority = match.group("authority")
    user, at, hosts = authority.rpartition("@")
    if at and ":" in user:
        authority = f"{user.split(':', 1)[0]}:{MASK}@{hosts}"
    masked = match.group("head") + authority + database[match.end() :]
    return _QUERY_PASSWORD.sub(lambda m: m.group("name") + MASK, masked)


def secrets_in(database: str) -> list[str]:
    """The password text ``database`` holds, as written and percent-decoded (longest first)."""
    found: list[str] = []
    match = _AUTHORITY.match(database)
    if match is not None:
        user, at, _ = match.group("authority").rpartition("@")
        if at and ":" in user:
            found.append(user.split(":", 1)[1])
    found += [m.group("value") for m in _QUERY_PASSWORD.finditer(database)]
    found += [unquote(secret) for secret in found]
    return sorted({secret for secret in found if secret}, key=len, reverse=True)


def scrub(text: str, database: str) -> str:
    """``text`` with ``database`` shown masked and every password it holds replaced."""
    if database:
        text = text.replace(database, masked_url(database))
    for secret in secrets_in(database):
        text = text.replace(secret, MASK)
    return text


class ScrubbingFilter(logging.Filter):
    """Removes the database URL's password from the log records it sees (a driver's)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the URL's password from ``record``'s message; always keep the record."""
        message = record.getMessage()
        cleaned = scrub(message, self._url)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
