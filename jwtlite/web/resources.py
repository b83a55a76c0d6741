"""Falcon resources: read the request, make one service call, write JSON.

Resources know HTTP (bodies, media types, headers, client addresses) and nothing of SQL or
cryptography; the rules live in :mod:`jwtlite.service.auth`.
"""

from __future__ import annotations

import codecs
import ipaddress
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import parse_qsl

import falcon

from jwtlite._encoding import EncodingError, json_loads
from jwtlite.errors import NotAuthenticatedError, ValidationError
from jwtlite.service.auth import AuthService

__all__ = [
    "BodyEndpoint",
    "HealthResource",
    "JWKSResource",
    "LoginResource",
    "MeResource",
    "Resource",
    "client_address",
    "read_body",
]

JSON_TYPES = frozenset({"application/json"})
FORM_TYPE = "application/x-www-form-urlencoded"
NO_STORE = "no-store"
PARSES = [falcon.MEDIA_JSON, FORM_TYPE]


def read_body(req: falcon.Request, max_size: int) -> Mapping[str, Any]:
    """The request body as a mapping, parsed by its media type, as DRF's parsers would.

    An empty body (or one without a ``Content-Type``) is ``{}``, so that the service reports
    each missing field. The size is checked against ``Content-Length`` before reading, and
    a body without one (chunked) is read only up to ``max_size + 1`` bytes.

    Raises:
        falcon.HTTPContentTooLarge: the body is larger than ``max_size``.
        falcon.HTTPUnsupportedMediaType: neither JSON nor a form.
        falcon.HTTPBadRequest: malformed JSON or form data.
        ValidationError: the body is JSON but not an object.
    """
    length = req.content_length
    if length is not None and length > max_size:
        raise _too_large(max_size)
    raw = req.bounded_stream.read(max_size + 1)
    if len(raw) > max_size:
        raise _too_large(max_size)
    content_type = req.content_type
    if not raw or not content_type:
        return {}
    if content_type == "application/json":  # the common case, without parsing parameters
        return _parse_json(raw, "utf-8")
    media_type, _, parameters = content_type.partition(";")
    media_type = media_type.strip().lower()
    charset = _charset(parameters)
    if media_type in JSON_TYPES:
        return _parse_json(raw, charset)
    if media_type == FORM_TYPE:
        return _parse_form(raw, charset)
    raise falcon.HTTPUnsupportedMediaType(
        description=f'Unsupported media type "{content_type}" in request.'
    )


def _too_large(max_size: int) -> falcon.HTTPError:
    return falcon.HTTPContentTooLarge(
        description=f"Request body is larger than the limit of {max_size} bytes."
    )


def _charset(parameters: str) -> str:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower() or "utf-8"
    return "utf-8"


def _text(raw: bytes, charset: str, what: str) -> str:
    try:
        codecs.lookup(charset)
        return raw.decode(charset)
    except (LookupError, UnicodeDecodeError) as exc:
        raise falcon.HTTPBadRequest(
            description=f"{what} parse error - body is not valid {charset}"
        ) from exc


def _parse_json(raw: bytes, charset: str) -> Mapping[str, Any]:
    data = raw if charset in ("utf-8", "utf8") else _text(raw, charset, "JSON").encode()
    try:
        value = json_loads(data)
    except EncodingError as exc:
        raise falcon.HTTPBadRequest(description=f"JSON parse error - {exc}") from exc
    if not isinstance(value, dict):
        kind = {list: "list", str: "str", int: "int", float: "float", bool: "bool"}.get(
            type(value), "NoneType"
        )
        raise ValidationError(
            {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}
        )
    return value


def _parse_form(raw: bytes, charset: str) -> Mapping[str, Any]:
    text = _text(raw, charset, "Form")
    try:
        # Like Django's QueryDict.get: the last value of a repeated name wins.
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=False))
    except ValueError as exc:  # e.g. too many fields
        raise falcon.HTTPBadRequest(description="Form parse error - invalid form data") from exc


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


def bearer_token(req: falcon.Request) -> str:
    """The token of an ``Authorization: Bearer <token>`` header.

    Raises:
        NotAuthenticatedError: no header, another scheme, or not exactly two values.
    """
    header = req.get_header("Authorization")
    parts = header.split() if header else []
    if not parts or parts[0].lower() != "bearer":
        raise NotAuthenticatedError("Authentication credentials were not provided.")
    if len(parts) != 2:
        raise NotAuthenticatedError(
            "Authorization header must contain two space-delimited values",
            code="bad_authorization_header",
        )
    return parts[1]


class Resource:
    """Base of every resource: answers a plain ``OPTIONS`` (a CORS preflight never gets
    here: the middleware answers it first) with JSON, as DRF does, instead of Falcon's
    empty body."""

    def on_options(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Describe the allowed methods and the media types."""
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
    """

    def __init__(
        self,
        call: Callable[[Mapping[str, Any]], dict[str, Any]],
        *,
        max_body_size: int,
        status: str = falcon.HTTP_200,
        carries_tokens: bool = False,
    ) -> None:
        self._call = call
        self._max_body_size = max_body_size
        self._status = status
        self._carries_tokens = carries_tokens

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Run the call on the request body."""
        resp.media = self._call(read_body(req, self._max_body_size))
        resp.status = self._status
        if self._carries_tokens:
            resp.cache_control = [NO_STORE]


class LoginResource(Resource):
    """``POST accounts/token/``: credentials in, a token pair out (throttled per address)."""

    def __init__(self, service: AuthService, *, max_body_size: int) -> None:
        self._service = service
        self._max_body_size = max_body_size
        self._trusted_proxies = frozenset(service.settings.trusted_proxies)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Log in."""
        data = read_body(req, self._max_body_size)
        address = client_address(req, self._trusted_proxies)
        resp.media = self._service.login(data, address=address)
        resp.cache_control = [NO_STORE]


class MeResource(Resource):
    """``GET accounts/me/``: the user of a Bearer access token."""

    def __init__(self, service: AuthService) -> None:
        self._service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Describe the authenticated user."""
        resp.media = self._service.authenticate(bearer_token(req))
        resp.cache_control = [NO_STORE]

    on_head = on_get  # as Django answers HEAD wherever it answers GET


class JWKSResource(Resource):
    """``GET /.well-known/jwks.json``: the public keys that verify our tokens."""

    def __init__(self, service: AuthService) -> None:
        self._service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Publish the JWKS."""
        resp.media = self._service.jwks()

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
