"""The web layer: the service's HTTP face on Falcon.

Owns :func:`create_app` (routes and the one place errors become responses), the
resources, our CORS middleware, the token cookies and where a request's token comes from
(header, body or cookie, with the CSRF check: ``cookies`` and ``auth``), the OpenAPI
document, the request ids (``requestid``), the Prometheus metrics (``metrics``, imported
only when ``METRICS`` is on) and the WSGI entry point
(``gunicorn 'jwtlite.web.wsgi:application'``). It uses
the service and the token library; it must never speak SQL or reach into password hashing.
"""

from __future__ import annotations

from jwtlite.web.app import create_app

__all__ = ["create_app"]
