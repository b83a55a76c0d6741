"""The Bearer guard for ASGI apps, ``jwtlite.asgi.BearerAuth``: WSGI's sibling.

It lives with the other resource-server tools, in :mod:`jwtlite.resource.asgi`; this name is
where ASGI users look for it, as ``jwtlite.BearerAuth`` is the WSGI one's.
"""

from __future__ import annotations

from jwtlite.resource.asgi import CLAIMS_SCOPE_KEY, BearerAuth

__all__ = ["CLAIMS_SCOPE_KEY", "BearerAuth"]
