"""Serve the jwtlite API: ``python serve.py [--host H] [--port P] [--threads N]``.

Settings come from ``JWTLITE_*`` environment variables (docs/reference/settings.md lists
them). On first run it creates ``jwtlite.sqlite3`` and a signing key beside it.
"""

from __future__ import annotations

import signal
import sys

# Until the server installs its own handler (a key reload), an early SIGHUP is ignored rather
# than ending a process that is still importing: a rotation script may signal every instance.
signal.signal(signal.SIGHUP, signal.SIG_IGN)

from jwtlite.cli.serve import main  # noqa: E402 - after the signal disposition, on purpose

if __name__ == "__main__":
    sys.exit(main())
