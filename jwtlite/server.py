"""Run the service under waitress: flags and environment in, one line out, clean shutdown.

Shared by ``serve.py`` and ``python -m jwtlite serve``. This is an entry point, so it is the
place that reads ``os.environ``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from types import FrameType

from jwtlite.errors import ConfigurationError, StoreUnavailableError

__all__ = ["add_arguments", "main", "run"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_THREADS = 8
# waitress refuses larger bodies itself, before our app sees them; our own JSON 413 answers
# everything between the app's limit and this.
WAITRESS_BODY_LIMIT = 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Add ``--host``, ``--port`` and ``--threads`` (defaults from ``JWTLITE_*``)."""
    parser.add_argument(
        "--host", default=environ.get("JWTLITE_HOST", DEFAULT_HOST), help="address to bind"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=_int(environ, "JWTLITE_PORT", DEFAULT_PORT),
        help="port to bind (0 picks a free one)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=_int(environ, "JWTLITE_THREADS", DEFAULT_THREADS),
        help="worker threads",
    )


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(
            name.removeprefix("JWTLITE_"), f"not a number: {value!r}"
        ) from None


def run(host: str, port: int, threads: int, environ: Mapping[str, str]) -> int:
    """Serve until SIGINT or SIGTERM; return the process exit code."""
    import waitress  # noqa: PLC0415 - the library must not import the server

    from jwtlite.app import create_app  # noqa: PLC0415
    from jwtlite.settings import Settings  # noqa: PLC0415
    from jwtlite.store import Store  # noqa: PLC0415

    try:
        settings = Settings.from_env(environ)
        store = Store(settings.database)
    except (ConfigurationError, StoreUnavailableError) as exc:
        return _fail(str(exc))
    try:
        app = create_app(settings, store=store)
        server = waitress.create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="jwtlite",
            max_request_body_size=max(WAITRESS_BODY_LIMIT, settings.max_body_size),
        )
    except (ConfigurationError, StoreUnavailableError) as exc:
        store.close()
        return _fail(str(exc))
    except OSError as exc:
        store.close()
        return _fail(f"cannot listen on {host}:{port}: {exc.strerror}")
    bound_host, bound_port = server.effective_host, server.effective_port
    print(
        f"jwtlite listening on http://{_url_host(str(bound_host))}:{bound_port} "
        f"(database {settings.database}, algorithm {settings.algorithm})",
        flush=True,
    )
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        server.run()  # returns after SIGINT/SIGTERM, once waitress has shut its workers down
    finally:
        store.close()
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # waitress's run loop shuts down cleanly on SystemExit


def _fail(message: str) -> int:
    print(f"jwtlite: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """``serve.py``: parse flags, then serve."""
    environ = os.environ if environ is None else environ
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    parser = argparse.ArgumentParser(description="Serve the jwtlite authentication API.")
    try:
        add_arguments(parser, environ)
    except ConfigurationError as exc:
        return _fail(str(exc))
    args = parser.parse_args(argv)
    return run(args.host, args.port, args.threads, environ)
