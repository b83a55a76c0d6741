"""One bounded HTTP GET, for :class:`jwtlite.JWKSClient`.

A deadline for the whole exchange and a byte budget for everything read from the socket.

``http.client`` (and ``urllib`` above it) applies a timeout to each socket operation, so a
server that drips one header line, chunk extension or trailer line per second holds a fetch
for ever, and it reads and discards chunked trailers without limit. Here the socket http.client
reads from is wrapped: each ``recv`` gets the time left until the deadline as its timeout, and
every byte received (status line, headers, chunk framing, trailers, body) counts against
``max_body + HEADER_ALLOWANCE``. A watchdog timer shuts the socket down at the deadline,
which also bounds the TLS handshake (OpenSSL reads the raw socket itself). Each of the host's
addresses is tried with only the time left. Name resolution is the one step none of these
can interrupt.

HTTP/1.1 with chunked bodies stays allowed (refusing chunked would refuse ordinary servers):
the budget and the deadline bound chunk framing and trailers as they bound everything else.
No proxy is used, whatever the environment says (``urllib`` honours ``http_proxy``), and no
redirect is followed (http.client follows none).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from email.message import Message
from typing import Any

__all__ = ["HEADER_ALLOWANCE", "Answer", "FetchFailedError", "bounded_get"]

#: Bytes allowed beyond the body for the status line, headers, chunk framing and trailers.
HEADER_ALLOWANCE = 32 * 1024
_MAX_LINE = 65537  # http.client's own bound on a header line, plus one


class FetchFailedError(Exception):
    """The GET failed for a reason worth naming (deadline, size).

    Other failures surface as whatever ``http.client``, ``ssl`` or ``socket`` raised."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete answer: its status, headers and whole body."""

    status: int
    headers: Message
    body: bytes


def bounded_get(
    url: str,
    *,
    headers: dict[str, str],
    timeout: float,
    max_body: int,
    tls: ssl.SSLContext | None,
) -> Answer:
    """GET ``url`` within ``timeout`` seconds in all, reading at most ``max_body`` bytes of body.

    Of everything else, at most :data:`HEADER_ALLOWANCE` bytes more are read.

    A non-200 answer is returned without its body. ``tls`` is the context for ``https``.

    Raises:
        FetchFailedError: the deadline passed, or the answer was too large or shorter than
            its ``Content-Length``.
        Exception: whatever the connection raised (``OSError``, ``http.client.HTTPException``,
            ``ssl.SSLError``...); callers treat every exception as a failed fetch.
    """
    parts = urllib.parse.urlsplit(url)
    budget = _Budget(time.monotonic() + timeout, timeout, max_body + HEADER_ALLOWANCE)
    connection: _BoundedHTTPConnection | _BoundedHTTPSConnection
    # The port is always given: without one, http.client reads "::1" as host ":" port 1.
    host = parts.hostname or ""
    if parts.scheme == "https":
        port = parts.port or http.client.HTTPS_PORT
        connection = _BoundedHTTPSConnection(
            host, port, timeout=timeout, context=tls, budget=budget
        )
    else:
        port = parts.port or http.client.HTTP_PORT
        connection = _BoundedHTTPConnection(host, port, timeout=timeout, budget=budget)
    watchdog = threading.Timer(timeout, _shut_down, (connection, budget))
    watchdog.daemon = True
    watchdog.start()
    try:
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        connection.request("GET", target, headers={**headers, "Connection": "close"})
        response = connection.getresponse()
        if response.status != 200:
            return Answer(response.status, response.msg, b"")
        return Answer(200, response.msg, _read_body(response, max_body))
    except FetchFailedError:
        raise
    except Exception as exc:
        if budget.aborted or budget.expired():
            # Whatever the shut-down socket made http.client raise, the cause is the deadline.
            raise budget.too_late() from exc
        raise
    finally:
        watchdog.cancel()
        connection.close()
        if connection.raw_sock is not None:
            connection.raw_sock.close()


def _read_body(response: http.client.HTTPResponse, max_body: int) -> bytes:
    length = response.getheader("Content-Length")
    if length is not None and length.isascii() and length.isdigit() and int(length) > max_body:
        raise FetchFailedError(f"the body is larger than {max_body} bytes")
    try:
        body = response.read()  # IncompleteRead when shorter than its Content-Length
    except http.client.IncompleteRead:
        raise FetchFailedError("the body is shorter than its Content-Length") from None
    if len(body) > max_body:
        raise FetchFailedError(f"the body is larger than {max_body} bytes")
    return body


class _Budget:
    """The deadline and byte budget one fetch shares across its reads."""

    def __init__(self, deadline: float, timeout: float, max_bytes: int) -> None:
        self.deadline = deadline
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.used = 0
        self.aborted = False  # set by the watchdog when it shuts the socket down

    def time_left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.too_late()
        return left

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def too_late(self) -> FetchFailedError:
        return FetchFailedError(f"the answer took more than {self.timeout} s")

    def spend(self, count: int) -> None:
        self.used += count
        if self.used > self.max_bytes:
            raise FetchFailedError(
                f"the answer is larger than {self.max_bytes - HEADER_ALLOWANCE} bytes "
                f"(with {HEADER_ALLOWANCE} for headers and framing)"
            )


class _BoundedReader(io.RawIOBase):
    """The raw stream under http.client's buffered reader: every read is within budget."""

    def __init__(self, sock: socket.socket, budget: _Budget) -> None:
        self._sock = sock
        self._budget = budget

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.settimeout(self._budget.time_left())
        count = self._sock.recv_into(buffer)
        if count == 0 and (self._budget.aborted or self._budget.expired()):
            # Not the end of the answer: the watchdog shut the socket down at the deadline.
            raise self._budget.too_late()
        self._budget.spend(count)
        return count


class _BoundedSocket:
    """The connection's socket as http.client sees it.

    It sends within the deadline, and its ``makefile`` gives reads that are bounded."""

    def __init__(self, sock: socket.socket, budget: _Budget) -> None:
        self._sock = sock
        self._budget = budget

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(self._budget.time_left())
        self._sock.sendall(data)

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_BoundedReader(self._sock, self._budget))

    def close(self) -> None:
        # http.client closes the connection's socket as soon as it has the headers of a
        # "Connection: close" answer, before the body is read (a real socket's makefile
        # keeps the descriptor open; this one does not): bounded_get closes it at the end.
        pass

    def __getattr__(self, name: str) -> Any:  # shutdown, setsockopt...
        return getattr(self._sock, name)


class _BoundedMixin:
    """Wrap the connected (and, for https, TLS-wrapped) socket."""

    sock: Any
    timeout: Any
    raw_sock: socket.socket | None

    def __init__(self, *args: Any, budget: _Budget, **kwargs: Any) -> None:
        self._budget = budget
        self.raw_sock: socket.socket | None = None
        super().__init__(*args, **kwargs)
        # http.client connects through this attribute (socket.create_connection by default).
        self._create_connection = self._connect_by_deadline

    def connect(self) -> None:
        self.timeout = self._budget.time_left()
        super().connect()  # type: ignore[misc]
        self.raw_sock = self.sock
        self.sock = _BoundedSocket(self.sock, self._budget)

    def _connect_by_deadline(
        self, address: tuple[str, int], timeout: Any = None, source_address: Any = None
    ) -> socket.socket:
        # socket.create_connection gives each of the host's addresses the whole timeout in
        # turn (three black-holed addresses held a 2 s fetch for 6 s), and the watchdog has
        # no socket to shut while it connects: each address gets only the time left.
        host, port = address
        last_error: OSError | None = None
        for family, kind, proto, _, sockaddr in socket.getaddrinfo(
            host, port, 0, socket.SOCK_STREAM
        ):
            left = self._budget.time_left()  # FetchFailedError once the deadline has passed
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(left)
                if source_address is not None:
                    sock.bind(source_address)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                last_error = exc
                continue
            return sock
        if last_error is not None:
            raise last_error
        raise OSError(f"no address found for {host!r}")


class _InterimSkippingResponse(http.client.HTTPResponse):
    """A response skipping all interim answers, where http.client skips only ``100 Continue``.

    The others (RFC 9110 §15.2: ``103 Early Hints``...) made a fetch fail. Their lines are read
    through the bounded socket: the byte budget and the deadline bound them."""

    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not (100 < status < 200) or status == 101:  # 101 would switch protocols
                return version, status, reason
            while self.fp.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                pass  # the interim answer's header lines


class _BoundedHTTPConnection(_BoundedMixin, http.client.HTTPConnection):
    response_class = _InterimSkippingResponse


class _BoundedHTTPSConnection(_BoundedMixin, http.client.HTTPSConnection):
    response_class = _InterimSkippingResponse


def _shut_down(connection: _BoundedMixin, budget: _Budget) -> None:
    # At the deadline: a blocked recv (or TLS handshake) in the fetching thread returns.
    budget.aborted = True
    sock = connection.raw_sock or connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            # socket.socket's own shutdown, also for a TLS socket: only the descriptor is
            # shut, the TLS state stays for the reading thread.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
