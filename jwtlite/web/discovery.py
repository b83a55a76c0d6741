"""Authorization server metadata (RFC 8414), the document tools configure an issuer by.

Spring's ``issuer-uri``, .NET's ``Authority``, Auth0's ``issuerBaseURL`` and the gateways take
an issuer's URL alone: they fetch ``<issuer>/.well-known/openid-configuration`` (or RFC 8414's
``/.well-known/oauth-authorization-server``), check that its ``issuer`` is exactly the URL
they were given, and find the keys at its ``jwks_uri``. So with ``ISSUER`` set to the
service's public URL, both documents are served, alike:

* every URL in them is built from ``ISSUER``, never from the request's ``Host`` (a client
  cannot make the service name another origin as its own);
* they list only what jwtlite does: its token endpoint (simplejwt's JSON login, which RFC 6749
  calls the password grant, and refresh), no authorization endpoint, public clients;
* an issuer with a path (``https://example.com/auth``) is served at
  ``/.well-known/openid-configuration`` below the mount point (OpenID Connect Discovery
  appends) and at ``/.well-known/oauth-authorization-server/auth`` (RFC 8414 §3.1 inserts
  the path after the well-known prefix, so a proxy must route that to the service);
  ``/.well-known/oauth-authorization-server`` for another issuer's path is 404.

Without ``ISSUER``, or when it is no ``http(s)`` URL (any string works as an ``iss`` claim),
nothing is served: the paths are unknown. An ``ISSUER`` that starts as a URL but is not a
clean one stops start-up (:func:`issuer_url`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import falcon

from jwtlite.service.errors import ConfigurationError
from jwtlite.web.resources import Resource

__all__ = ["METADATA_CACHE", "OAUTH_METADATA", "OPENID_CONFIGURATION", "discovery_routes"]

OPENID_CONFIGURATION = "/.well-known/openid-configuration"
OAUTH_METADATA = "/.well-known/oauth-authorization-server"
#: Metadata changes only with the configuration (a restart), but a signing algorithm may
#: change with it: an hour, as the JWKS consumers re-read.
METADATA_CACHE = "public, max-age=3600"


# What an issuer URL may be here: http(s), a host name or an IP literal, an optional port, and
# path segments of unreserved and sub-delimiter characters only (RFC 3986): no userinfo, no
# percent-escapes (a client inserting the path would compare another spelling), no query or
# fragment (RFC 8414 §2), nothing a header or a JSON reader could trip over.
_ISSUER = re.compile(
    r"(?P<scheme>https?)://"
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
    r"(?P<path>(?:/[A-Za-z0-9._~!$&'()*+,;=:@-]+)*/?)"
)


def issuer_url(issuer: str | None) -> str | None:
    """``issuer`` when it is a URL a metadata document can name as its issuer, else None.

    RFC 8414 §2: ``https`` (``http`` is allowed here for development behind localhost), no
    query or fragment. Any other string is a valid ``iss`` claim and simply publishes no
    metadata; but one that starts as a URL and is not a clean one is a typo worth stopping
    for.

    Raises:
        ConfigurationError: ``issuer`` starts with ``http://`` or ``https://`` and is not such
            a URL (a port out of range, userinfo, spaces, percent-escapes, dot segments...).
    """
    if not issuer or not issuer.strip().lower().startswith(("http://", "https://")):
        return None
    match = _ISSUER.fullmatch(issuer)
    segments = match["path"].split("/") if match else []
    if (
        match is None
        or (match["port"] is not None and not 0 < int(match["port"]) <= 65535)
        or any(segment in (".", "..") for segment in segments)
    ):
        raise ConfigurationError(
            "ISSUER",
            f"{issuer[:200]!r} is not a URL the issuer's metadata can name: give "
            "http(s)://host[:port][/path] with a plain path (no userinfo, query, fragment, "
            "percent-escapes, spaces or dot segments)",
        )
    return issuer


def metadata(issuer: str, *, algorithms: Sequence[str], publishes_keys: bool) -> dict[str, Any]:
    """The metadata document of the service at ``issuer`` (an :func:`issuer_url`)."""
    base = issuer.rstrip("/")
    document: dict[str, Any] = {
        "issuer": issuer,
        "token_endpoint": f"{base}/accounts/token/",
        "token_endpoint_auth_methods_supported": ["none"],
        "grant_types_supported": ["password", "refresh_token"],
        "response_types_supported": [],
    }
    if publishes_keys:
        document["jwks_uri"] = f"{base}/.well-known/jwks.json"
    # The algorithms its tokens are signed with: what verifiers read this field for (it
    # names ID tokens in OpenID Connect; jwtlite issues none).
    document["id_token_signing_alg_values_supported"] = list(algorithms)
    return document


class MetadataResource(Resource):
    """``GET`` one of the metadata documents.

    Args:
        document: builds the document (the signing algorithms follow the key ring).
        suffix: for RFC 8414's path insertion, the issuer's path the request must name after
            the well-known prefix ("" for an issuer without a path).
    """

    def __init__(self, document: Callable[[], dict[str, Any]], suffix: str | None = None):
        self._document = document
        self._suffix = suffix

    def on_get(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        """Serve the document, or 404 when the path names another issuer."""
        if self._suffix is not None and params.get("suffix", "") != self._suffix:
            raise falcon.HTTPNotFound()
        resp.media = self._document()
        resp.cache_control = [METADATA_CACHE]

    on_head = on_get


def discovery_routes(
    issuer: str | None,
    *,
    algorithms: Callable[[], Sequence[str]],
    publishes_keys: Callable[[], bool],
) -> dict[str, Resource]:
    """The metadata routes for ``issuer``: none unless it is an :func:`issuer_url`.

    ``algorithms`` and ``publishes_keys`` are asked at every request: a rotation in a key
    directory may change both (an HMAC ring turned RS256 publishes keys from then on)."""
    url = issuer_url(issuer)
    if url is None:
        return {}

    def document() -> dict[str, Any]:
        return metadata(url, algorithms=algorithms(), publishes_keys=publishes_keys())

    path = (urlsplit(url).path or "").strip("/")
    inserted = f"{OAUTH_METADATA}/{{suffix:path}}" if path else OAUTH_METADATA
    return {
        OPENID_CONFIGURATION: MetadataResource(document),
        inserted: MetadataResource(document, suffix=path),
    }
