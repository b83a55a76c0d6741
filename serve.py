"""Serve the jwtlite API: ``python serve.py [--host H] [--port P] [--threads N]``.

Settings come from ``JWTLITE_*`` environment variables (see README.md). On first run it
creates ``jwtlite.sqlite3`` and a signing key beside it.
"""

from __future__ import annotations

import sys

from jwtlite.server import main

if __name__ == "__main__":
    sys.exit(main())
