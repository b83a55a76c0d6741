"""Falcon resources: read the request, make one service call, write JSON.

Resources know HTTP (bodies, media types, headers, client addresses) and nothing of SQL or
cryptography; the rules live in :mod:`jwtlite.service.auth`.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

import falcon

from jwtlite.service import AuthService
from jwtlite.web.auth import CookieExchange, RequestAuth
from jwtlite.web.body import FORM_TYPE, read_body

__all__ = [
    "UNKNOWN_CLIENT",
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


#: The client of a request that cannot be named: a trusted proxy's ``X-Forwarded-For`` entry
#: is malformed, or the peer is no IP address. It is no IP address, so it never passes the
#: metrics allowlist; every such request shares one throttle bucket.
UNKNOWN_CLIENT = "unknown"
# Longer than any form below can be ("[" + 39 characters of IPv6 + "]:65535"): not parsed.
_MAX_ENTRY_LENGTH = 48
_OWS = " \t"  # RFC 9110 optional whitespace around list elements
_PORT = re.compile(r"[0-9]{1,5}").fullmatch
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_address(req: falcon.Request, trusted_proxies: Collection[str]) -> str:
    """The client's IP address, as canonical ``ipaddress`` text, at most 39 characters.

    An IPv4-mapped IPv6 address is given as the IPv4 address; never with a zone id.

    It is the socket peer; or, when the peer is a trusted proxy, the right-most
    ``X-Forwarded-For`` entry that is not itself a trusted proxy (the proxy host itself when
    the header is absent or lists trusted proxies only). An entry may be ``ip``,
    ``ip:port``, ``[v6]`` or ``[v6]:port``, the forms proxies write. Fail closed: an entry
    the walk from the right must read that is none of those (``unknown``, empty, garbage, an
    IPv6 zone id) makes the client :data:`UNKNOWN_CLIENT`, never the peer (often loopback);
    so does a peer that is no IP address (a Unix socket).
    """
    peer_text = _peer_address(req.remote_addr)
    if peer_text is None:
        return UNKNOWN_CLIENT
    # Settings store TRUSTED_PROXIES in the canonical form (IPv4-mapped as IPv4, no zone id).
    if peer_text not in trusted_proxies:
        return peer_text
    forwarded = req.get_header("X-Forwarded-For")
    if forwarded is None:
        return peer_text
    for entry in reversed(forwarded.split(",")):
        candidate = _forwarded_address(entry.strip(_OWS))
        if candidate is None:
            return UNKNOWN_CLIENT
        if not _is_trusted(candidate, trusted_proxies):
            return _canonical(candidate)
    return peer_text


@functools.lru_cache(maxsize=4096)
def _canonical(address: _IPAddress) -> str:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _is_trusted(address: _IPAddress, trusted_proxies: Collection[str]) -> bool:
    # Settings store TRUSTED_PROXIES in the canonical form (IPv4-mapped as IPv4, no zone id).
    return _canonical(address) in trusted_proxies


@functools.lru_cache(maxsize=4096)  # every request names its peer: parse each one once
def _peer_address(peer: str) -> str | None:
    """The socket peer's canonical text, without the zone id an OS may add.

    None when it is no IP address."""
    try:
        address = ipaddress.ip_address(peer[:_MAX_ENTRY_LENGTH].partition("%")[0])
    except ValueError:
        return None
    return _canonical(address)


def _forwarded_address(entry: str) -> _IPAddress | None:
    """The address of one ``X-Forwarded-For`` entry, or None for an entry of another form.

    The forms are ``ip``, ``ip:port``, ``[v6]`` and ``[v6]:port``; a zone id is refused (it is
    free text)."""
    if len(entry) > _MAX_ENTRY_LENGTH or "%" in entry:
        return None
    host, port = entry, None
    bracketed = entry.startswith("[")
    if bracketed:
        host, bracket, rest = entry[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] if rest else None
    elif entry.count(":") == 1:  # IPv4 with a port: an IPv6 address has two colons or more
        host, _, port = entry.partition(":")
    if port is not None and (_PORT(port) is None or int(port) > 65535):
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if bracketed and address.version != 6:
        return None
    return address


class Resource:
    """Base of every resource: answers a plain ``OPTIONS`` with JSON, as DRF does.

    This replaces Falcon's empty body. A CORS preflight never gets here: the middleware answers
    it first."""

    def on_options(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        """Describe the allowed methods and the media types.

        ``params`` are the path's fields, as ``{session_id}``."""
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
        """Run the call on the request body, naming the client's address.

        Calls that record sessions are also given its user agent."""
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
    """``GET accounts/me/``: the user of an access token.

    The token comes from the Bearer header, or the access cookie under a cookie transport."""

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
