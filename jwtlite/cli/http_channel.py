"""waitress's connection handling, hardened for ``serve.py`` (a launcher module, like it).

waitress answers some requests itself and reads every request at the client's pace. Its
``HTTPChannel`` is replaced by one that:

* answers like the app: its own errors (400 malformed request, 413 body of
  ``max_request_body_size`` or more, 431 header section too large, 501 unsupported transfer
  coding, 500 its own failure) are ``{"detail": ...}`` JSON with ``Cache-Control:
  no-store`` instead of text/plain; the status and ``Connection: close`` stay waitress's;
* refuses ambiguous framing: a request with both ``Content-Length`` and
  ``Transfer-Encoding`` (or, in HTTP/1.0, any ``Transfer-Encoding``) gets 400 and its
  connection closed, as RFC 9112 section 6.1 allows — waitress 3.0.2 follows the chunks and
  keeps the connection open, so a front end that believed ``Content-Length`` would see
  another request boundary (request smuggling);
* refuses what an auth API never needs and an attacker uses: chunked request bodies (411
  Length Required: waitress parses chunk framing in Python on its one I/O thread, and a
  megabyte of one-byte chunks or of chunk extensions held it for half a second) and
  obsolete line folding (400: a folded ``Transfer-Encoding`` escaped the framing check);
* tells the app when a client has gone (``waitress.client_disconnected``, which waitress
  answers only with read-ahead on): a peek at the socket, so that a login abandoned while it
  waited for a password hash is not hashed;
* bounds slow clients: a request must arrive whole within :data:`REQUEST_READ_SECONDS` of
  its first byte (waitress resets its idle timer on every byte, so a client sending one
  byte every 20 s held a connection for ever), and one client address (an IPv6 /64) may
  hold at most ``max_per_peer`` connections (trusted proxies excepted), so a hundred slow
  connections from one place no longer use up every connection the server accepts;
* keeps room for newcomers: past :data:`FAIR_SHARE_AT` open connections, each new one
  closes the waiting connection (idle before still receiving) that has been quiet longest,
  so silent connections, from however many addresses, cannot fill
  :data:`CONNECTION_LIMIT` and leave everyone else in the listen backlog, while clients
  that use their connections keep them.

Its own errors carry a fresh ``X-Request-ID`` too, as every answer of the app does (the
request never reached the app, so there is no client id to keep: a garbled request's header
is not trusted).

Nothing here imports waitress at module level: ``jwtlite.cli`` imports the launcher, and its
other commands work without the server extra.
"""

from __future__ import annotations

import collections
import functools
import logging
import random
import re
import socket
import threading
import time
import uuid
from typing import Any

from jwtlite._encoding import json_text
from jwtlite.service.throttle import address_group

__all__ = [
    "CHANNEL_TIMEOUT_SECONDS",
    "CONNECTION_LIMIT",
    "FAIR_SHARE_AT",
    "MAX_CONNECTIONS_PER_CLIENT",
    "MAX_HEADER_BYTES",
    "REQUEST_READ_SECONDS",
    "SERVER_ERROR",
    "hardened_channel",
]

#: The app's answer to its own failures, which waitress's 500 repeats.
SERVER_ERROR = "A server error occurred."
#: A request (headers and body) must arrive within this long of its first byte.
REQUEST_READ_SECONDS = 10.0
#: An idle keep-alive connection (or a silent one) is closed after this long.
CHANNEL_TIMEOUT_SECONDS = 30
#: Connections one client address may hold at once (trusted proxies excepted).
MAX_CONNECTIONS_PER_CLIENT = 64
#: Connections the server holds at once, all clients together (waitress's default is 100).
CONNECTION_LIMIT = 1000
#: Past this many connections, a newcomer takes the place of the quietest waiting one: the
#: limit is never reached.
FAIR_SHARE_AT = CONNECTION_LIMIT - MAX_CONNECTIONS_PER_CLIENT
# The channels looked at for the quietest (all of them, up to this many): bounded work per
# accepted connection, and silent connections, if they are most, are nearly always in it.
_EVICTION_SAMPLE = 64
_sampler = random.Random()  # noqa: S311 - which connections to look at, not a secret
#: The largest header section accepted (431 past it). jwtlite's requests carry a token or
#: two; waitress's default of 256 KiB let a client make its single I/O thread parse 50,000
#: header lines (a quarter of a second) per request.
MAX_HEADER_BYTES = 32 * 1024
_TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding:", re.IGNORECASE)
_FOLDED_LINE = re.compile(rb"\r\n[ \t]")
#: At most one "too many connections" line per client address this often (seconds).
_CAP_LOG_INTERVAL = 60.0
log = logging.getLogger("jwtlite")


@functools.cache
def hardened_channel(trusted_proxies: frozenset[str], max_per_peer: int) -> type[Any]:
    """The channel class for a waitress listener (see the module's docstring).

    Args:
        trusted_proxies: peers exempt from ``max_per_peer`` (a reverse proxy multiplexes
            every client over its own connections).
        max_per_peer: connections one client address (IPv6: its /64) may hold at once.
    """
    from waitress.channel import HTTPChannel  # noqa: PLC0415
    from waitress.parser import HTTPRequestParser, ParsingError  # noqa: PLC0415
    from waitress.task import ErrorTask  # noqa: PLC0415
    from waitress.utilities import Error  # noqa: PLC0415

    class LengthRequired(Error):  # type: ignore[misc]
        code = 411
        reason = "Length Required"

    class FramingCheckedParser(HTTPRequestParser):  # type: ignore[misc]
        def parse_header(self, header_plus: bytes) -> None:
            if _FOLDED_LINE.search(header_plus):
                raise ParsingError("obsolete line folding")
            super().parse_header(header_plus)
            # Both framings are still known here: Content-Length in the headers, and the raw
            # header block (waitress has already removed Transfer-Encoding from the headers
            # of an HTTP/1.1 request, and ignores it in HTTP/1.0, where it frames by length).
            if _TRANSFER_ENCODING.search(header_plus):
                if "CONTENT_LENGTH" in self.headers:
                    raise ParsingError("Content-Length and Transfer-Encoding together")
                if self.version != "1.1":
                    raise ParsingError("Transfer-Encoding in an HTTP/1.0 request")
            if self.chunked:
                # Answered like a parse error (the connection then closes), with 411.
                self.error = LengthRequired("send Content-Length; chunked bodies are refused")
                self.headers_finished = True
                self.completed = True
                self.body_rcv = None

    class JSONErrorTask(ErrorTask):  # type: ignore[misc]
        def execute(self) -> None:
            error = self.request.error
            # A 500's text may be a traceback (waitress's expose_tracebacks): never sent.
            detail = SERVER_ERROR if error.code == 500 else f"{error.reason}: {error.body}"
            body = json_text({"detail": detail}).encode()
            self.status = f"{error.code} {error.reason}"
            self.response_headers.extend(
                [
                    ("Content-Type", "application/json"),
                    ("Cache-Control", "no-store"),
                    ("X-Content-Type-Options", "nosniff"),
                    ("X-Request-ID", uuid.uuid4().hex),
                ]
            )
            self.set_close_on_finish()  # adds Connection: close, as waitress's own does
            # ...and only that: waitress would also announce Keep-Alive to an HTTP/1.0 client
            # that asked for it, on a connection it is about to close.
            self.request.headers.pop("CONNECTION", None)
            self.content_length = len(body)
            self.write(body)

    peers: collections.Counter[str] = collections.Counter()
    # Every open channel, a trusted proxy's too, oldest first; the values are unused.
    channels: dict[Any, None] = {}
    logged: dict[str, float] = {}
    evictions_logged = [-_CAP_LOG_INTERVAL]
    peers_lock = threading.Lock()

    def waiting(channel: Any) -> bool:
        # Nothing handed to a worker and nothing left to send: idle, or still receiving.
        return not channel.requests and not channel.total_outbufs_len

    def make_room(newcomer: Any) -> Any:
        """The channel to close for ``newcomer`` past the fair share, or None.

        The waiting channel that has been quiet longest, among a sample: an idle one
        before one still receiving its request, by its last activity. Not the address
        holding the most: an attacker spread over many addresses, each below an honest
        office's count, made the office the one to evict. None under the share, or when
        every sampled channel is being served. Called under the lock."""
        if len(channels) <= FAIR_SHARE_AT:
            return None
        pool = list(channels)
        if len(pool) > _EVICTION_SAMPLE:
            pool = _sampler.sample(pool, _EVICTION_SAMPLE)
        candidates = [c for c in pool if c is not newcomer and waiting(c)]
        if not candidates:
            return None
        return min(candidates, key=lambda c: (c.request is not None, c.last_activity))

    class HardenedChannel(HTTPChannel):  # type: ignore[misc]
        parser_class = FramingCheckedParser
        error_task_class = JSONErrorTask

        def __init__(self, server: Any, sock: Any, addr: Any, adj: Any, map: Any = None) -> None:
            super().__init__(server, sock, addr, adj, map)
            self._peer: str | None = None
            self._request_began = 0.0
            host = str(addr[0]) if isinstance(addr, tuple) and addr else ""
            now = time.monotonic()
            over = False
            quiet = True
            with peers_lock:
                # Every channel counts toward the share, a trusted proxy's too: waitress's
                # limit counts them all.
                channels[self] = None
                if host not in trusted_proxies:
                    self._peer = address_group(host)
                    peers[self._peer] += 1
                    over = peers[self._peer] > max_per_peer
                    quiet = now - logged.get(self._peer, -_CAP_LOG_INTERVAL) < _CAP_LOG_INTERVAL
                    if over and not quiet:
                        logged[self._peer] = now
                        if len(logged) > 4096:  # attacker-chosen keys: keep it bounded
                            logged.clear()
                evicted = None if over else make_room(self)
            if over:
                if not quiet:
                    log.warning(
                        "client %s holds %d connections; closing the ones past it "
                        "(logged once a minute)",
                        self._peer,
                        max_per_peer,
                    )
                self.handle_close()
            elif evicted is not None:
                if now - evictions_logged[0] >= _CAP_LOG_INTERVAL:
                    evictions_logged[0] = now
                    log.warning(
                        "%d connections open: closing the quietest waiting ones for newcomers, "
                        "of %s first (logged once a minute)",
                        FAIR_SHARE_AT,
                        evicted._peer or "a trusted proxy",
                    )
                evicted.handle_close()

        def check_client_disconnected(self) -> bool:
            # Called from the worker thread while the I/O thread leaves this socket alone
            # (without read-ahead it reads no more until the answer is sent). A peek reads
            # nothing: EOF (b"") is a client that closed; no data yet raises BlockingIOError.
            if not self.connected:
                return True
            try:
                peeked: bytes = self.socket.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                return peeked == b""
            except BlockingIOError:
                return False
            except OSError:  # reset, or closed under us
                return True

        def handle_read(self) -> None:
            now = time.time()
            if self.request is not None and now - self._request_began > REQUEST_READ_SECONDS:
                # Too slow, even if this read would complete it: close without reading.
                self.will_close = True
                return
            began = self._request_began if self.request is not None else now
            super().handle_read()
            if self.request is None:
                return  # nothing half-read: the next request starts its own clock
            self._request_began = began
            # A partial request does not count as activity, so waitress's idle sweep closes
            # a silent one; one that keeps dribbling is closed here, at its next byte.
            self.last_activity = began
            if time.time() - began > REQUEST_READ_SECONDS:
                self.will_close = True

        def del_channel(self, map: Any = None) -> None:
            super().del_channel(map)
            peer, self._peer = getattr(self, "_peer", None), None
            with peers_lock:
                channels.pop(self, None)
                if peer is not None:
                    peers[peer] -= 1
                    if peers[peer] <= 0:
                        del peers[peer]

    return HardenedChannel
