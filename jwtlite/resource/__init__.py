"""Tools for resource servers: verify the tokens an issuer signs, with its published keys.

:class:`JWKSClient` fetches and caches an issuer's JWKS (stdlib HTTP, bounded in time and
bytes); :class:`BearerAuth` is WSGI middleware that checks ``Authorization: Bearer`` with
it and answers as RFC 6750 says, and :class:`jwtlite.resource.asgi.BearerAuth` (also
``jwtlite.asgi.BearerAuth``) its ASGI sibling, which never blocks the event loop. This
package holds them; they stand on the token library alone and never import falcon,
waitress, a database driver or the service.
"""

from __future__ import annotations

from jwtlite.resource.bearer import CLAIMS_ENVIRON_KEY, BearerAuth
from jwtlite.resource.jwks_client import JWKSClient

__all__ = ["CLAIMS_ENVIRON_KEY", "BearerAuth", "JWKSClient"]
