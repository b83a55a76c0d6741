"""Run the service under waitress: flags and environment in, one line out, clean shutdown.

Shared by ``serve.py`` and ``python -m jwtlite serve``. This is an entry point, so it is the
place that reads ``os.environ``.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from jwtlite.cli import http_channel, placement
from jwtlite.demo.server import DEFAULT_DEMO_PORT, DemoConfigurationError
from jwtlite.service.errors import ConfigurationError
from jwtlite.store.errors import StoreUnavailableError

if TYPE_CHECKING:
    from jwtlite.demo.server import DemoServer
    from jwtlite.service.settings import Settings

__all__ = [
    "add_arguments",
    "add_demo_arguments",
    "configure_logging",
    "demo_options",
    "main",
    "run",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# Enough for the hashing queue (PASSWORD_HASH_QUEUE, 40 by default) to wait in full while
# verification, refresh and /health keep finding a thread (docs/explanation/performance.md).
DEFAULT_THREADS = 48
# waitress refuses larger bodies itself, before our app sees them (in JSON: see
# jwtlite.cli.http_channel); our own 413 answers everything between the app's limit and this.
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
    parser.add_argument(
        "--cpu",
        default=placement.AUTO,
        help="the core for the server's Python threads: auto (default), none, or a number "
        "(password hashes run on every core either way)",
    )


def add_demo_arguments(parser: argparse.ArgumentParser, *, switch: bool = True) -> None:
    """Add the demo front-end's options: ``--demo``, ``--demo-port``, ``--api-url``.

    With ``switch=False`` there is no ``--demo`` flag (a ``demo`` sub-command is the switch).
    Read them back with :func:`demo_options`.
    """
    if switch:
        parser.add_argument(
            "--demo", action="store_true", help="also serve the demo page on a second origin"
        )
    else:
        parser.set_defaults(demo=True)
    parser.add_argument(
        "--demo-port",
        type=int,
        default=None,
        help=f"port for the demo page (default {DEFAULT_DEMO_PORT})",
    )
    parser.add_argument(
        "--api-url",
        default=None,
        help="the API's URL as the demo page should call it (default: where it is bound)",
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


def run(
    host: str,
    port: int,
    threads: int,
    environ: Mapping[str, str],
    *,
    demo_port: int | None = None,
    api_url: str | None = None,
) -> int:
    """Serve until SIGINT or SIGTERM; return the process exit code.

    With ``demo_port`` set, the demo page is also served on ``host:demo_port`` (a second
    origin), told to call the API at ``api_url`` (default: the address the API is bound to).
    """
    from jwtlite.service.signing.keyring import request_reload  # noqa: PLC0415

    # SIGHUP asks for a re-read of JWTLITE_KEYS_DIR at the next request (the handler does no
    # I/O). Installed first: a "rotate, then HUP every instance" script must not kill one that
    # is still starting (the default action of SIGHUP ends the process).
    signal.signal(signal.SIGHUP, lambda signum, frame: request_reload())

    import waitress  # noqa: PLC0415 - the library must not import the server

    from jwtlite.service.settings import Settings  # noqa: PLC0415
    from jwtlite.store import masked_url  # noqa: PLC0415
    from jwtlite.web.app import create_app  # noqa: PLC0415

    try:
        settings = Settings.from_env(environ)
        _check_cookie_host(settings, host)
    except ConfigurationError as exc:
        return _fail(str(exc))
    configure_logging(settings.log_format)
    database = masked_url(settings.database)  # a PostgreSQL URL's password never shows
    try:
        store = settings.open_store(threads=threads)
    except StoreUnavailableError as exc:
        # Name the setting to fix, as every other start-up refusal does.
        return _fail(f"DATABASE: {database}: {exc}")
    try:
        app = create_app(settings, store=store)
        sockets: dict[int, Any] = {}  # waitress's socket map: its listeners, once created
        server = waitress.create_server(
            app,
            map=sockets,
            host=host,
            port=port,
            threads=threads,
            ident="jwtlite",
            max_request_body_size=max(WAITRESS_BODY_LIMIT, settings.max_body_size),
            max_request_header_size=http_channel.MAX_HEADER_BYTES,
            connection_limit=http_channel.CONNECTION_LIMIT,
            channel_timeout=http_channel.CHANNEL_TIMEOUT_SECONDS,
            cleanup_interval=5,
            # poll(), not select(): select() cannot watch a file number past 1023, and
            # a thousand idle connections then made the server exit.
            asyncore_use_poll=True,
            # waitress 3 strips X-Forwarded-For unless told otherwise, which silently made
            # TRUSTED_PROXIES useless; the app believes it only from a trusted peer.
            clear_untrusted_proxy_headers=False,
        )
    except (ConfigurationError, StoreUnavailableError) as exc:
        store.close()
        return _fail(str(exc))
    except OSError as exc:
        store.close()
        return _fail(f"cannot listen on {host}:{port}: {exc.strerror}")
    # Before the loop runs, so every connection gets it (the listeners accept only in run()).
    channel = http_channel.hardened_channel(
        frozenset(settings.trusted_proxies), http_channel.MAX_CONNECTIONS_PER_CLIENT
    )
    for listener in sockets.values():
        if isinstance(listener, waitress.server.BaseWSGIServer):
            listener.channel_class = channel
    bound_host, bound_port = server.effective_host, server.effective_port
    demo = None
    if demo_port is not None:
        try:
            cookies = settings.token_transport != "body"
            url = api_url or _api_url(str(bound_host), bound_port, cookies=cookies)
            demo = _start_demo(host, demo_port, url, settings.token_transport)
        except (ConfigurationError, DemoConfigurationError) as exc:
            server.close()
            store.close()
            return _fail(str(exc))
    # Handlers before the banner: whoever reads the banner may signal at once.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    # Set explicitly: a process started in the background by a non-interactive shell
    # inherits SIGINT as ignored, and Python then never raises KeyboardInterrupt.
    signal.signal(signal.SIGINT, _exit_on_signal)
    try:
        print(
            f"jwtlite listening on http://{_url_host(str(bound_host))}:{bound_port} "
            f"(database {database}, {_keys_description(settings)})",
            flush=True,
        )
        if demo is not None:
            print(f"jwtlite demo on {_demo_url(demo)} (API at {demo.api_url})", flush=True)
        server.run()  # returns after SIGINT/SIGTERM, once waitress has shut its workers down
    finally:
        if demo is not None:
            demo.stop()
        store.close()
    return 0


def demo_options(args: argparse.Namespace) -> dict[str, Any]:
    """``run``'s keyword arguments for the options :func:`add_demo_arguments` added."""
    if not args.demo:
        return {}
    port = DEFAULT_DEMO_PORT if args.demo_port is None else int(args.demo_port)
    return {"demo_port": port, "api_url": args.api_url}


def _api_url(bound_host: str, bound_port: int, *, cookies: bool = False) -> str:
    # A wildcard bind is not an address a browser can call; the loopback name is. With
    # cookies the page (on http://localhost) must call the API by that same name too:
    # cookies belong to a host name, and 127.0.0.1 is another site than localhost.
    wildcard = bound_host in {"0.0.0.0", "::"}  # noqa: S104
    loopback = wildcard or (cookies and _is_loopback(bound_host))
    host = "localhost" if loopback else _url_host(bound_host)
    return f"http://{host}:{bound_port}"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_cookie_host(settings: Settings, host: str) -> None:
    # A cookie without Secure travels in clear over plain HTTP: fine on this machine only.
    if not settings.cookie_secure and not _is_loopback(host):
        raise ConfigurationError(
            "COOKIE_SECURE",
            f"false is only for development on a loopback address (localhost, 127.0.0.1, "
            f"::1), not with --host {host}",
        )


def _start_demo(host: str, demo_port: int, api_url: str, token_transport: str) -> DemoServer:
    from jwtlite.demo.server import start_demo_server  # noqa: PLC0415

    try:
        return start_demo_server(
            api_url, host=host, port=demo_port, token_transport=token_transport
        )
    except OSError as exc:
        raise ConfigurationError(
            "--demo-port", f"cannot listen on {host}:{demo_port}: {exc.strerror}"
        ) from None


def _demo_url(demo: DemoServer) -> str:
    # The default CORS allowlist names http://localhost:8001, so show the loopback name.
    loopback = demo.host.startswith("127.") or demo.host in {"::1", "0.0.0.0", "::"}  # noqa: S104
    return f"http://localhost:{demo.port}" if loopback else demo.url


def configure_logging(log_format: str) -> None:
    """Send every record, the audit log's included, to stderr.

    One JSON object a line (``LOG_FORMAT=json``, the default), for a log shipper or jq; ``text``
    for a person at a terminal."""
    from jwtlite.service.audit import formatter  # noqa: PLC0415

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # Under load waitress warns "Task queue depth is N" for every request that waits for a
    # thread: noise that costs about a tenth of the throughput. Saturation shows in latency.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)


def _keys_description(settings: Settings) -> str:
    # A key directory's current key may be of another algorithm than ALGORITHM (that only
    # names the first key's): name the directory, not a setting that may mislead.
    if settings.keys_dir is not None:
        return f"keys {settings.keys_dir}"
    return f"algorithm {settings.algorithm}"


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
    parser = argparse.ArgumentParser(description="Serve the jwtlite authentication API.")
    try:
        add_arguments(parser, environ)
    except ConfigurationError as exc:
        return _fail(str(exc))
    add_demo_arguments(parser)
    args = parser.parse_args(argv)
    if not args.demo and (args.demo_port is not None or args.api_url is not None):
        parser.error("--demo-port and --api-url need --demo")
    return serve(args, environ)


def serve(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Place the threads as ``--cpu`` says, then :func:`run` with the parsed flags.

    The calling thread gets its cores back when :func:`run` returns.
    """
    with contextlib.ExitStack() as stack:
        try:
            # Before any server thread exists, so that every one of them inherits the core.
            stack.enter_context(placement.python_threads_pinned(args.cpu))
        except ValueError as exc:
            return _fail(str(exc))
        return run(args.host, args.port, args.threads, environ, **demo_options(args))
