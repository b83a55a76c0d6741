"""An ASGI middleware that lets only requests with a valid Bearer token reach an app (RFC 6750).

The sibling of :class:`jwtlite.BearerAuth` for ASGI servers and frameworks (uvicorn,
Starlette, FastAPI...): the same arguments and the same answers, because it asks the WSGI
guard's own rules; only the plumbing differs. Pure ASGI, no framework needed. The claims of
a verified token are put in the scope under :data:`CLAIMS_SCOPE_KEY` (the WSGI guard's
environ key), ``None`` for an anonymous request let through by ``allow_anonymous=True``.

Verifying never blocks the event loop. A token whose key the :class:`~jwtlite.JWKSClient`
has cached (fresh or stale) is checked inline, in microseconds. One that needs a fetch (a
``kid`` not cached yet, a cold start) is checked in one of the guard's own threads (the
client's ``max_waiters`` plus one, never the loop's shared default pool), where the
client's rules hold as in WSGI: one fetch at a time, at most ``max_waiters`` callers
waiting for it and the others told to try later (503, also when the guard's threads are
all taken), stale keys served while a fetch fails, a cooldown between fetches. Any other
:class:`~jwtlite.KeySource` is asked in those threads too. Meanwhile every other request
is answered at once.

``websocket`` connections are guarded too: a refused one is closed (code 1008, policy
violation) before it is accepted, which servers such as uvicorn answer as an HTTP 403 to the
handshake. Only the handshake is checked: the connection outlives the token's ``exp``.
``lifespan`` and other scopes pass through.

FastAPI::

    app = FastAPI()
    app.add_middleware(BearerAuth, keys=JWKSClient(url), algorithms=["ES256"])

    def claims(request: Request) -> dict:
        return request.scope[CLAIMS_SCOPE_KEY]

    @app.get("/orders")
    def orders(claims: dict = Depends(claims)): ...
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jwtlite.keys import Key, KeySource
from jwtlite.resource.bearer import CLAIMS_ENVIRON_KEY, Refusal
from jwtlite.resource.bearer import BearerAuth as _WSGIGuard
from jwtlite.resource.jwks_client import JWKSClient

__all__ = ["CLAIMS_SCOPE_KEY", "BearerAuth"]

#: The scope key of a verified token's claims: the WSGI guard's environ key.
CLAIMS_SCOPE_KEY = CLAIMS_ENVIRON_KEY
#: The close code of a refused websocket (RFC 6455 §7.4.1: policy violation).
WEBSOCKET_REFUSED = 1008

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _NeedsFetch(Exception):
    """The token's key is not cached: checking it may wait for a fetch."""


class _CachedOnly(KeySource):
    """A JWKS client's cached keys, never waiting: a missing one raises :class:`_NeedsFetch`."""

    __slots__ = ("_client",)

    def __init__(self, client: JWKSClient) -> None:
        self._client = client

    def key_for(self, kid: str) -> Key:
        key = self._client.cached_key(kid)
        if key is None:
            raise _NeedsFetch
        return key


class _NoLookup(KeySource):
    """No key without a lookup: every one raises :class:`_NeedsFetch`."""

    __slots__ = ()

    def key_for(self, kid: str) -> Key:
        raise _NeedsFetch


class BearerAuth:
    """Guard an ASGI app with Bearer tokens (see the module docstring).

    Args:
        app: the ASGI application to protect.
        keys: a :class:`~jwtlite.JWKSClient`, a :class:`~jwtlite.KeySet`, a
            :class:`~jwtlite.Key` or key material, as for :class:`jwtlite.BearerAuth`.
        **options: the keyword arguments of :class:`jwtlite.BearerAuth` (``algorithms`` is
            required), with the same meaning and checks.

    Raises:
        TypeError, ValueError: as :class:`jwtlite.BearerAuth`.
    """

    def __init__(self, app: ASGIApp, keys: Any, **options: Any) -> None:
        self.app = app
        self._guard = _WSGIGuard(_no_wsgi_app, keys, **options)  # its rules, not its plumbing
        # What can be checked without waiting is checked inline: everything, with keys in
        # memory; with a JWKS client, a token whose key is cached; with another key source
        # (a lookup of the caller's own, which may block), a request that needs no key.
        self._inline: KeySource | None = None
        if isinstance(keys, JWKSClient):
            self._inline = _CachedOnly(keys)
        elif isinstance(keys, KeySource):
            self._inline = _NoLookup()
        # Threads of this guard's own, as many as may wait for a fetch plus one: the loop's
        # default pool, shared with name resolution and every other guard, is not parked
        # by a slow issuer; past them the answer is 503 at once, as the client's own.
        self._threads = (keys.max_waiters if isinstance(keys, JWKSClient) else 2) + 1
        self._busy = 0
        self._pool: ThreadPoolExecutor | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse the request, or pass it on with its claims in the scope."""
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        outcome = await self._authenticate(_authorization(scope))
        if isinstance(outcome, Refusal):
            if kind == "http":
                await _answer(send, outcome)
            else:
                await send({"type": "websocket.close", "code": WEBSOCKET_REFUSED})
            return
        scope[CLAIMS_SCOPE_KEY] = outcome
        await self.app(scope, receive, send)

    async def _authenticate(self, header: str | None) -> dict[str, Any] | Refusal | None:
        if self._inline is None:
            return self._guard.authenticate(header)  # keys in memory: nothing to wait for
        try:
            return self._guard.authenticate(header, self._inline)
        except _NeedsFetch:
            pass
        if self._busy >= self._threads:
            return self._guard.unavailable
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="jwtlite-asgi")
        self._busy += 1  # only the event loop's thread counts, so no lock
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._pool, functools.partial(self._guard.authenticate, header)
            )
        finally:
            self._busy -= 1


def _no_wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    raise AssertionError("the ASGI guard never calls a WSGI app")  # pragma: no cover


def _authorization(scope: Scope) -> str | None:
    """The ``Authorization`` header as WSGI would give it: repeated ones joined by ``, ``."""
    values = [
        value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name.lower() == b"authorization"
    ]
    return ", ".join(values) if values else None


async def _answer(send: Send, refusal: Refusal) -> None:
    body = refusal.body()
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in refusal.headers(body)
    ]
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
