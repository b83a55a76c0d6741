"""The service layer: the authentication rules, framework-free.

Owns :class:`AuthService` (register, log in, verify, refresh, log out, throttle), the
:class:`Settings`, password hashing, registration rules, request-field checks, key files,
the CSRF values bound to tokens, the origin normaliser that settings and CORS share, and the
events it reports (``events``: one seam; ``audit``: the ``jwtlite.audit`` log; ``context``:
the request id and client the web layer sets).
It uses the token library and a :class:`~jwtlite.store.Store`; it must never import
falcon, waitress or SQL text.
"""

from __future__ import annotations

from jwtlite.service.auth import AuthService
from jwtlite.service.settings import Settings
from jwtlite.service.signing import load_signing_keys

__all__ = ["AuthService", "Settings", "load_signing_keys"]
