"""``X-Request-ID``: accepted or generated, returned on every response, seen by the events.

:class:`RequestIdMiddleware` runs first and answers last, so every response carries the id:
successes, the 4xx/5xx of the error handlers, CORS preflights and 404s of unknown paths. While
the request is served, its id and client address sit in
:data:`jwtlite.service.context.request_context`, where the service's events read them.

A client's id is kept only if it is 1 to 128 characters of ``[A-Za-z0-9._:-]``: it is
echoed in a header and written to the audit log, so anything else (a CR/LF that would split a
header or forge a log line, a 10 KB value, a quote) is replaced by a fresh id, never reflected.

A fresh id is 32 hex digits, as a ``uuid4`` hex: 64 random bits drawn when the process starts
(or forks)
and a 64-bit counter, unique without a call that releases the GIL per request
(``os.urandom`` does, and a server thread that lets go of it mid-request waits to get it back).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Collection

import falcon

from jwtlite.service.context import RequestContext, request_context
from jwtlite.web.resources import client_address

__all__ = ["CLIENT_DISCONNECTED", "REQUEST_ID_HEADER", "RequestIdMiddleware", "request_id"]

REQUEST_ID_HEADER = "X-Request-ID"
#: The WSGI environ key of waitress's "has the client gone?" callable.
CLIENT_DISCONNECTED = "waitress.client_disconnected"
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}").fullmatch
_PROCESS = os.urandom(8).hex()
_SERIAL = itertools.count(1)  # next() on it is atomic: one C call under the GIL


def _new_process() -> None:
    # A forked worker (gunicorn --preload, say) must not repeat its parent's ids.
    global _PROCESS  # noqa: PLW0603 - the process's own prefix, drawn once per process
    _PROCESS = os.urandom(8).hex()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_process)


def request_id(presented: str | None) -> str:
    """``presented`` when it is a safe id, else a new one (32 hex digits, unique)."""
    if presented is not None and _SAFE_ID(presented) is not None:
        return presented
    return f"{_PROCESS}{next(_SERIAL):016x}"


class RequestIdMiddleware:
    """Falcon middleware giving each request an id and its context.

    It comes first in the list: its ``process_request`` runs before CORS may answer a preflight,
    its ``process_response`` last.

    Args:
        trusted_proxies: peers whose ``X-Forwarded-For`` names the client (the address the
            throttle uses, so the audit log names the same client).
    """

    def __init__(self, trusted_proxies: Collection[str]) -> None:
        self._trusted_proxies = frozenset(trusted_proxies)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Choose the id, put it on the response now, and set the request context.

        The id goes on now because the error handlers add headers, never clear them, so every
        answer keeps it."""
        rid = request_id(req.get_header(REQUEST_ID_HEADER))
        resp.set_header(REQUEST_ID_HEADER, rid)
        client = client_address(req, self._trusted_proxies)
        # waitress's hook (jwtlite.cli.http_channel makes it work without read-ahead).
        gone = req.env.get(CLIENT_DISCONNECTED)
        context = RequestContext(rid, client) if gone is None else RequestContext(rid, client, gone)
        req.context.request_token = request_context.set(context)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Leave the thread's context as it was before the request."""
        token = req.context.get("request_token")
        if token is not None:
            request_context.reset(token)
