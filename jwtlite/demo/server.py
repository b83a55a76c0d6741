"""Serve the demo front-end (``jwtlite/demo/``) on a second origin, from a background thread.

The demo is plain HTML, CSS and JavaScript shipped as package data; this module serves those
files as they are, plus one generated file, ``config.js``, that tells the page where the API
is. It knows nothing of tokens, users or the API itself: the page talks to the API directly
with ``fetch``, across origins, so the API's CORS policy decides whether it may.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit


class DemoConfigurationError(ValueError):
    """A demo option is invalid; ``setting`` names it.

    The demo speaks only HTTP to the API and never imports the service, so it has its own
    start-up error."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


__all__ = ["DEFAULT_DEMO_PORT", "DemoServer", "create_demo_app", "start_demo_server"]

log = logging.getLogger("jwtlite.demo")

DEFAULT_DEMO_PORT = 8001
_STATIC = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
_ROUTES = {"/": "index.html", **{f"/{name}": name for name in _STATIC}}
_CONFIG_PATH = "/config.js"
# How often the serving thread looks at its stop flag when nothing wakes it sooner.
_POLL_SECONDS = 0.2

_StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_Environ = dict[str, Any]


def _api_origin(api_url: str) -> str:
    """``scheme://host[:port]`` of ``api_url``; refuses anything but an absolute http(s) URL."""
    try:
        parts = urlsplit(api_url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise DemoConfigurationError("API_URL", f"{api_url!r} is not a URL: {exc}") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise DemoConfigurationError("API_URL", f"{api_url!r} is not an absolute http(s) URL")
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def create_demo_app(
    api_url: str,
    *,
    token_transport: str = "body",  # noqa: S107 - a transport's name, not a secret
) -> Callable[[_Environ, _StartResponse], Iterable[bytes]]:
    """Build the WSGI application serving the demo page for the API at ``api_url``.

    ``token_transport`` is the API's (``body``, ``cookie`` or ``both``): under a cookie
    transport the page sends its requests with credentials (the cookies), never sees a
    token, and sends the CSRF value back in ``X-CSRF-TOKEN``.

    The files are read once, here. Every answer carries ``Cache-Control: no-store`` (the
    page is a demo: a stale ``config.js`` after a restart on another port would confuse) and
    a Content-Security-Policy that allows scripts and styles from this origin only and
    ``fetch`` to this origin and the API's.

    Raises:
        DemoConfigurationError: ``api_url`` is not an absolute http(s) URL.
    """
    api_url = api_url.rstrip("/")
    api_origin = _api_origin(api_url)
    package = resources.files("jwtlite.demo")
    bodies = {name: package.joinpath(name).read_bytes() for name in _STATIC}
    options = {"apiUrl": api_url}
    if token_transport != "body":
        options["tokenTransport"] = token_transport
    config = f"window.JWTLITE_DEMO_CONFIG = {json.dumps(options)};\n".encode()
    common = [
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        (
            "Content-Security-Policy",
            f"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' {api_origin}; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'",
        ),
    ]

    def app(environ: _Environ, start_response: _StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        if path == _CONFIG_PATH:
            body, content_type = config, "text/javascript; charset=utf-8"
        elif path in _ROUTES:
            name = _ROUTES[path]
            body, content_type = bodies[name], _STATIC[name]
        else:
            return _plain(start_response, "404 Not Found", b"Not found.\n", common)
        if method not in {"GET", "HEAD"}:
            return _plain(
                start_response,
                "405 Method Not Allowed",
                b"Method not allowed.\n",
                [*common, ("Allow", "GET, HEAD")],
            )
        headers = [*common, ("Content-Type", content_type), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [b""] if method == "HEAD" else [body]

    return app


def _plain(
    start_response: _StartResponse, status: str, body: bytes, headers: list[tuple[str, str]]
) -> list[bytes]:
    start_response(
        status,
        [
            *headers,
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


class DemoServer:
    """A waitress server for the demo page, running in a daemon thread until :meth:`stop`.

    Build it with :func:`start_demo_server`.
    """

    def __init__(self, server: Any, socket_map: dict[int, Any], api_url: str) -> None:
        self._server = server
        self._map = socket_map
        self._stopping = threading.Event()
        # The loop thread closes the sockets (the trigger too) under this lock, and stop()
        # pulls the trigger under it only while they are open: a closed trigger's descriptor
        # may already belong to another file.
        self._closing = threading.Lock()
        self._closed = False
        self.api_url = api_url
        self.host: str = str(server.effective_host)
        self.port: int = int(server.effective_port)
        self._thread = threading.Thread(target=self._serve, name="jwtlite-demo", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The URL the server listens on, by address (``http://127.0.0.1:8001``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _serve(self) -> None:
        from waitress import wasyncore  # noqa: PLC0415 - only the launcher loads waitress

        try:
            while not self._stopping.is_set() and self._map:
                wasyncore.loop(timeout=_POLL_SECONDS, map=self._map, count=1)
        finally:
            with self._closing:
                self._closed = True
                wasyncore.close_all(self._map)
            self._server.task_dispatcher.shutdown()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and wait (up to ``timeout`` seconds) for the thread to end."""
        self._stopping.set()
        with self._closing:
            if not self._closed:
                self._server.pull_trigger()  # wakes the poll() at once
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("demo server thread did not stop within %.1f s", timeout)


def start_demo_server(
    api_url: str,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_DEMO_PORT,
    threads: int = 2,
    token_transport: str = "body",  # noqa: S107 - a transport's name, not a secret
) -> DemoServer:
    """Serve the demo page for the API at ``api_url`` on ``host:port`` (0 picks a free port).

    The page is for the API's ``token_transport`` (see :func:`create_demo_app`).

    Raises:
        DemoConfigurationError: ``api_url`` is not an absolute http(s) URL.
        OSError: the address cannot be bound.
    """
    import waitress  # noqa: PLC0415 - the library must not import the server

    app = create_demo_app(api_url, token_transport=token_transport)
    socket_map: dict[int, Any] = {}
    server = waitress.create_server(
        app, map=socket_map, host=host, port=port, threads=threads, ident="jwtlite-demo"
    )
    if not hasattr(server, "effective_port"):  # several sockets (e.g. "localhost" → v4 + v6)
        server.close()
        raise DemoConfigurationError("HOST", f"{host!r} resolves to several addresses; give one")
    return DemoServer(server, socket_map, api_url.rstrip("/"))
