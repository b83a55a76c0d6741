"""Falcon resources: read the request, make one service call, write JSON.

Resources know HTTP (bodies, media types, headers, client addresses) and nothing of SQL or
cryptography; the rules live in :mod:`jwtlite.service.auth`.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Collection, Mapping
from typing import Any

import falcon

from jwtlite.service import AuthService
from jwtlite.web.auth import CookieExchange, RequestAuth
from jwtlite.web.body import FORM_TYPE, read_body

__all__ = [
    "BodyEndpoint",
    "HealthResource",
    "JWKSResource",
    "MeResource",
    "Resource",
    "ThrottledEndpoint",
    "client_address",
]

NO_STORE = "no-store"
PARSES = [falcon.MEDIA_JSON, FORM_TYPE]


def client_address(req: falcon.Request, trusted_proxies: Collection[str]) -> str:
    """The client's IP address: the socket peer, or, when the peer is a trusted proxy, the
    right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy."""
    peer = req.remote_addr or "unknown"
    if not trusted_proxies or peer not in trusted_proxies:
        return peer
    forwarded = req.get_header("X-Forwarded-For") or ""
    for entry in reversed(forwarded.split(",")):
        candidate = entry.strip()
        try:
            candidate = str(ipaddress.ip_address(candidate))
        except ValueError:
            return peer  # a garbled chain is not trusted beyond the proxy itself
        if candidate not in trusted_proxies:
            return candidate
    return peer


class Resource:
    """Base of every resource: answers a plain ``OPTIONS`` (a CORS preflight never gets
    here: the middleware answers it first) with JSON, as DRF does, instead of Falcon's
    empty body."""

    def on_options(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        """Describe the allowed methods and the media types (``params``: the path's fields,
        as ``{session_id}``)."""
        allowed = sorted(
            name.removeprefix("on_").upper() for name in dir(self) if name.startswith("on_")
        )
        resp.set_header("Allow", ", ".join(allowed))
        resp.media = {"allow": allowed, "renders": [falcon.MEDIA_JSON], "parses": PARSES}


class BodyEndpoint(Resource):
    """POST a body to one service call and answer its result as JSON.

    Args:
        call: the service method taking the parsed body.
        max_body_size: larger bodies are refused with 413.
        status: the success status.
        carries_tokens: mark the response ``Cache-Control: no-store``.
        cookies: what the call does with token cookies (None: nothing, the body transport).
    """

    def __init__(
        self,
        call: Callable[[Mapping[str, Any]], dict[str, Any]],
        *,
        max_body_size: int,
        status: str = falcon.HTTP_200,
        carries_tokens: bool = False,
        cookies: CookieExchange | None = None,
    ) -> None:
        self._call = call
        self._max_body_size = max_body_size
        self._status = status
        self._carries_tokens = carries_tokens
        self._cookies = cookies

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Run the call on the request body."""
        data = read_body(req, self._max_body_size)
        if self._cookies is None:
            resp.media = self._call(data)
        else:
            resp.media = self._cookies.run(req, resp, data, self._call)
        resp.status = self._status
        if self._carries_tokens:
            resp.cache_control = [NO_STORE]


class ThrottledEndpoint(Resource):
    """POST a body to a service call that is throttled per client address.

    Args:
        call: the service method taking the parsed body and ``address=``.
        trusted_proxies: peers whose ``X-Forwarded-For`` names the client.
        max_body_size: larger bodies are refused with 413.
        status: the success status.
        carries_tokens: mark the response ``Cache-Control: no-store``.
        cookies: what the call does with token cookies (None: nothing, the body transport).
    """

    def __init__(
        self,
        call: Callable[..., dict[str, Any]],
        *,
        trusted_proxies: Collection[str],
        max_body_size: int,
        status: str = falcon.HTTP_200,
        carries_tokens: bool = False,
        names_user_agent: bool = False,
        cookies: CookieExchange | None = None,
    ) -> None:
        self._call = call
        self._trusted_proxies = frozenset(trusted_proxies)
        self._max_body_size = max_body_size
        self._status = status
        self._carries_tokens = carries_tokens
        self._names_user_agent = names_user_agent
        self._cookies = cookies

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Run the call on the request body, naming the client's address (and, for calls
        that record sessions, its user agent)."""
        data = read_body(req, self._max_body_size)
        address = client_address(req, self._trusted_proxies)
        call = functools.partial(self._call, address=address)
        if self._names_user_agent:
            call = functools.partial(call, user_agent=req.user_agent)
        if self._cookies is None:
            resp.media = call(data)
        else:
            resp.media = self._cookies.run(req, resp, data, call)
        resp.status = self._status
        if self._carries_tokens:
            resp.cache_control = [NO_STORE]


class MeResource(Resource):
    """``GET accounts/me/``: the user of an access token (Bearer header, or the access cookie
    under a cookie transport)."""

    def __init__(self, service: AuthService, auth: RequestAuth) -> None:
        self._service = service
        self._auth = auth

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Describe the authenticated user."""
        resp.media = self._service.authenticate(self._auth.access_token(req))
        resp.cache_control = [NO_STORE]

    on_head = on_get  # as Django answers HEAD wherever it answers GET


# Every instance answers from the key directory as it is on disk (one stat per answer), so
# a new key is published at once. A staged rotation (rotate-key --activate-after) signs
# with it only after this max-age plus the resource servers' refetch cooldown; without
# one, a resource server whose copy is older fetches again on the unknown kid.
JWKS_CACHE = "max-age=60"


class JWKSResource(Resource):
    """``GET /.well-known/jwks.json``: the public keys that verify our tokens."""

    def __init__(self, service: AuthService) -> None:
        self._service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Publish the JWKS (it follows the key ring: cached one minute at most)."""
        resp.media = self._service.jwks()
        resp.cache_control = [JWKS_CACHE]

    on_head = on_get


class HealthResource(Resource):
    """``GET /health``: 200 when the database answers."""

    def __init__(self, service: AuthService) -> None:
        self._service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Check the store."""
        resp.media = self._service.health()
        resp.cache_control = [NO_STORE]

    on_head = on_get
