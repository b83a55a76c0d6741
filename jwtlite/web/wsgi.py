"""WSGI entry point for other servers: ``gunicorn 'jwtlite.web.wsgi:application'``.

This is an entry point, so it reads ``JWTLITE_*`` from ``os.environ`` (see ``Settings``) when
imported; a bad setting raises :class:`~jwtlite.service.errors.ConfigurationError` at import, so the
server refuses to start instead of serving with defaults.
"""

from __future__ import annotations

import os

import falcon

from jwtlite.service.settings import Settings
from jwtlite.web.app import create_app

__all__ = ["application"]

application: falcon.App[falcon.Request, falcon.Response] = create_app(Settings.from_env(os.environ))
