"""The launchers: ``python -m jwtlite``, the ``jwtlite`` console script and ``serve.py``.

:mod:`jwtlite.cli.commands` is the command line: its parser, ``main``, and the serve, user,
session and database commands; :mod:`jwtlite.cli.keys` the key and token commands
(``keygen``, ``jwks``, ``rotate-key``, ``decode``); :mod:`jwtlite.cli.serve` starts waitress
with the app; :mod:`jwtlite.cli.http_channel` hardens waitress's channel (slow clients, header
limits). This package holds the launchers and stands on every layer, but never talks to a
database driver itself (the store does); nothing below it ever imports it.
"""

from __future__ import annotations

from jwtlite.cli.commands import main

__all__ = ["main"]
