"""A JWKS document server on a loopback port whose answers a test controls.

Test modules import this as ``support_jwks``. ``JWKSServer`` answers every GET with the
current ``status``, ``body`` and ``headers``, after ``delay`` seconds, and counts requests;
``endless`` streams a body that never ends, ``drip`` sends it a byte at a time.
"""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class JWKSServer:
    """``http.server`` in a thread; change its attributes to change what it answers."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b'{"keys": []}'
        self.headers: dict[str, str] = {"Content-Type": "application/json"}
        self.delay = 0.0
        self.send_length = True
        self.endless = False  # after the body, spaces until the client hangs up (or 256 MiB)
        self.drip = 0.0  # seconds between single bytes of an endless body
        self.sent = 0  # bytes of the last answer that reached the socket
        self.requests = 0
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._released = threading.Event()  # ends every delay at teardown
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"

    def serve_jwks(self, jwks: Any, **headers: str) -> None:
        """Answer 200 with ``jwks`` as JSON (and extra headers)."""
        self.status = 200
        self.body = json.dumps(jwks).encode()
        self.headers = {"Content-Type": "application/json", **headers}

    def close(self) -> None:
        self._released.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server.requests += 1
                    server.paths.append(self.path)
                if server.delay:
                    server._released.wait(server.delay)
                self.send_response(server.status)
                for name, value in server.headers.items():
                    self.send_header(name, value)
                if server.send_length:
                    self.send_header("Content-Length", str(len(server.body)))
                else:
                    self.close_connection = True
                self.end_headers()
                with contextlib.suppress(OSError):  # the client stopped reading (size cap)
                    server.sent = 0
                    self.wfile.write(server.body)
                    server.sent = len(server.body)
                    if server.endless:
                        self._stream_forever()

            def _stream_forever(self) -> None:
                chunk = b" " if server.drip else b" " * 65536
                while server.sent < 256 * 1024 * 1024 and not server._released.is_set():
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    server.sent += len(chunk)
                    if server.drip:
                        server._released.wait(server.drip)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
