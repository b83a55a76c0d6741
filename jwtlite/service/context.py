"""Who is asking: the request id and client address of the request being served, if any.

The web layer sets them once per request (``jwtlite.web.requestid``) in a
:class:`contextvars.ContextVar`, so the service's events can name them without every
service method growing two parameters it never uses for its rules. A call from the command
line, or from a thread that serves no request, sees :data:`NO_REQUEST`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import NamedTuple

__all__ = ["NO_REQUEST", "RequestContext", "current_request", "request_context"]


def _still_there() -> bool:
    return False


class RequestContext(NamedTuple):
    """The request being served (a tuple: made once per request, it must be cheap).

    Attributes:
        request_id: the ``X-Request-ID`` the client sent (when safe) or one generated for it.
        client: the client's address, as the throttle sees it (trusted proxies resolved).
        client_gone: tells whether the client has closed its connection, so that work
            nobody will read (a password hash for an abandoned login) can be skipped; never
            true where the server cannot tell.
    """

    request_id: str | None
    client: str | None
    client_gone: Callable[[], bool] = _still_there


NO_REQUEST = RequestContext(None, None)

#: The request this thread (or task) is serving; set and reset by the web middleware.
request_context: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "jwtlite_request", default=NO_REQUEST
)


def current_request() -> RequestContext:
    """The request being served, or :data:`NO_REQUEST`."""
    return request_context.get()
