"""The audit log: one record per security event on the ``jwtlite.audit`` logger.

:class:`AuditLog` subscribes to the service's :class:`~jwtlite.service.events.Events` and
writes each audited event as a plain :mod:`logging` record at INFO: its message is the event
name, and its ``audit`` attribute (passed as ``extra``) is the document::

    {"time": "2026-11-27T03:04:05.678Z", "event": "login.failed", "user_id": 7,
     "client": "203.0.113.9", "session_id": null, "request_id": "4f2c...", "reason": "bad_password"}

An embedding host routes the ``jwtlite.audit`` logger wherever it likes and reads
``record.audit``; ``serve.py`` prints it to stderr with :class:`JSONFormatter` (one line,
``ensure_ascii``, so no value can break a line or forge another) or :class:`TextFormatter`
(``LOG_FORMAT=text``). A logger whose level filters INFO out costs one check an event.

Nothing secret reaches a record: events carry ids, counts and fixed reason codes only (see
:mod:`jwtlite.service.events`).
"""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime
from typing import Any

from jwtlite.service.events import AUDITED, Event, Events

__all__ = [
    "AUDIT_LOGGER",
    "LOG_FORMATS",
    "AuditLog",
    "JSONFormatter",
    "TextFormatter",
    "audit_document",
    "formatter",
    "key_rotated",
    "rfc3339",
]

AUDIT_LOGGER = "jwtlite.audit"
#: The values of the ``LOG_FORMAT`` setting.
LOG_FORMATS = ("json", "text")


def rfc3339(timestamp: float) -> str:
    """``timestamp`` as RFC 3339 UTC with milliseconds: ``2026-11-27T03:04:05.678Z``."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def audit_document(event: Event) -> dict[str, Any]:
    """The audit log's JSON document of ``event`` (the common fields first)."""
    document: dict[str, Any] = {
        "time": rfc3339(event.time),
        "event": str(event.name),
        "user_id": event.user_id,
        "client": event.client,
        "session_id": event.session_id,
        "request_id": event.request_id,
    }
    for name, value in event.details.items():
        document.setdefault(name, value)  # a detail never overrides a common field
    return document


class AuditLog:
    """The subscriber that writes audited events to a logger.

    Args:
        logger: where records go; the ``jwtlite.audit`` logger by default.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger(AUDIT_LOGGER)

    def notify(self, event: Event) -> None:
        """Write ``event`` if it is a security event and the logger wants INFO."""
        if event.name not in AUDITED or not self._logger.isEnabledFor(logging.INFO):
            return
        self._logger.info(str(event.name), extra={"audit": audit_document(event)})

    def __repr__(self) -> str:
        return f"AuditLog({self._logger.name!r})"


def key_rotated(
    *,
    kid: str,
    previous_kid: str | None = None,
    activates: int | None = None,
    events: Events | None = None,
) -> None:
    """Record that signing key ``kid`` took over from ``previous_kid``.

    For code that rotates keys outside a running service (the ``rotate-key`` command): with
    ``events`` the event goes to its subscribers (metrics included), else straight to the
    audit log.
    """
    (events or Events([AuditLog()])).key_rotated(
        kid=kid, previous_kid=previous_kid, activates=activates
    )


class JSONFormatter(logging.Formatter):
    """Every record as one JSON line.

    An audit record as its document, any other as ``{"time", "level", "logger", "message"}``
    (plus ``"exception"`` with its traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        """One line of JSON, ASCII only (control characters are escaped, never written)."""
        document = getattr(record, "audit", None)
        if not isinstance(document, dict):
            document = {
                "time": rfc3339(record.created),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
            if record.exc_info:
                document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=True, separators=(",", ":"), default=str)


class TextFormatter(logging.Formatter):
    r"""Human-readable lines: ``time LEVEL logger: message``.

    An audit record is followed by its fields as ``name=value`` (strings JSON-quoted, so a value
    cannot break the line), and a message with a control or non-printable character escaped
    (``\n``), so it cannot forge a line either. A traceback keeps its lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The plain line, with an audit record's fields appended."""
        message = record.getMessage()
        if not message.isprintable():
            record = copy.copy(record)  # other handlers still see the record as it was
            record.msg, record.args = message.encode("unicode_escape").decode("ascii"), None
        line = super().format(record)
        document = getattr(record, "audit", None)
        if isinstance(document, dict):
            fields = " ".join(
                f"{name}={json.dumps(value, ensure_ascii=True, default=str)}"
                for name, value in document.items()
                if name not in {"time", "event"} and value is not None
            )
            line = f"{line} {fields}" if fields else line
        return line


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for ``LOG_FORMAT`` (``json`` or ``text``)."""
    return JSONFormatter() if log_format == "json" else TextFormatter()
