"""A JWKS document server on a loopback port whose answers a test controls.

Test modules import this as ``support.jwks``. ``JWKSServer`` answers every GET with the
current ``status``, ``body`` and ``headers``, after ``delay`` seconds, and counts requests;
``endless`` streams a body that never ends, ``drip`` sends it a byte at a time.
``black_holed_port`` is a loopback port whose new connections never complete.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class JWKSServer:
    """``http.server`` in a thread; change its attributes to change what it answers."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
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
        self._scheme = "http"
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        port = self._httpd.server_address[1]
        return f"{self._scheme}://127.0.0.1:{port}/.well-known/jwks.json"

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


class RawServer:
    """A loopback TCP server that answers each connection with ``respond(conn)``: raw
    bytes, for answers ``http.server`` cannot send (broken status lines, 101 headers, a
    trailer that never ends, dripped header lines).

    ``respond`` is bytes to send, or a callable taking the socket; ``stop`` is set at
    teardown so that slow callables end.
    """

    def __init__(self, respond: Any = b"") -> None:
        self.respond = respond
        self.requests = 0
        self.received = 0  # bytes of the last request
        self.stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/jwks"

    def close(self) -> None:
        self.stop.set()
        self._thread.join(5)
        self._sock.close()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                data = conn.recv(4096)
                if not data:
                    return
                request += data
            self.requests += 1
            self.received = len(request)
            if callable(self.respond):
                self.respond(conn)
            else:
                conn.sendall(self.respond)


def raw_answer(body: bytes, *head: bytes, status: bytes = b"200 OK") -> bytes:
    """An HTTP/1.1 answer with ``body``, its length and the extra header lines ``head``."""
    lines = [b"HTTP/1.1 " + status, b"Content-Length: %d" % len(body), *head]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def self_signed_tls(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for 127.0.0.1, and a client context
    that trusts it."""
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


@contextlib.contextmanager
def black_holed_port() -> Iterator[int]:
    """A loopback port whose listen queue is full: the kernel drops further SYNs, so a new
    connection hangs until its timeout (as to a host that drops packets)."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(64):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for sock in (*fillers, listener):
            sock.close()
