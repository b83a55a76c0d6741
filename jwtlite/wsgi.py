"""WSGI entry point for other servers: ``gunicorn 'jwtlite.wsgi:application'``.

This is an entry point, so it reads ``JWTLITE_*`` from ``os.environ`` (see ``Settings``) when
imported; a bad setting raises :class:`~jwtlite.errors.ConfigurationError` at import, so the
server refuses to start instead of serving with defaults.
"""

from __future__ import annotations

import os

import falcon

from jwtlite.app import create_app
from jwtlite.settings import Settings

__all__ = ["application"]

application: falcon.App[falcon.Request, falcon.Response] = create_app(Settings.from_env(os.environ))
