"""Raw HTTP/1.1 over a socket: requests with exactly the bytes a test means, for the hostile-request
and metrics tests that a client library would normalise away."""

from __future__ import annotations

import contextlib
import socket
import time


def exchange(port: int, data: bytes, *, close_write: bool = True, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes (or ``timeout``).

    Raises ``TimeoutError`` when the server neither answers nor closes in time.
    """
    deadline = time.monotonic() + timeout
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if close_write:
            # The server may already have answered and closed (a header section over its
            # limit is refused before the client has finished sending it).
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break  # waitress resets after answering when unread input remains
            if not chunk:
                return received
            received += chunk
        else:
            raise TimeoutError(f"no end of response within {timeout} s: {received[:200]!r}")
    return received


def parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-cased names, repeated ones joined) and body of a raw response."""
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return status, headers, body


def request(method: str, path: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """A raw HTTP/1.1 request with ``Connection: close`` and exactly the headers given."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
