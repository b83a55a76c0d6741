"""A JWK Set client for services that verify someone else's tokens (RFC 7517 §5).

:class:`JWKSClient` fetches a JWKS over HTTPS with the standard library, caches its keys and
finds them by ``kid``. It is built to keep verifying through an outage of the issuer:

- one fetch at a time, in a background thread: a caller whose key is cached never waits
  (stale keys serve while they are refreshed); a caller that needs the fetch waits for the
  one in flight rather than starting another;
- at most one fetch per ``refetch_cooldown``, counted from the end of the last attempt, so
  random ``kid`` values sent by an attacker or a slow issuer cannot make it fetch more;
- a failed fetch keeps the cached keys (PyJWT's client empties its cache, pyjwt#1162), logs
  a warning, and is not retried before the cooldown has passed; until a fetch succeeds
  again, a ``kid`` the cache lacks is a :class:`JWKSFetchError` (it may be a key published
  since), not an unknown key; any exception while fetching or loading is such a failure;
- ``timeout`` bounds the whole fetch and ``max_size`` every byte read (headers, chunk framing
  and trailers included, see :mod:`jwtlite.resource._http_get`), redirects are refused, no proxy is
  used, and ``http`` is allowed only to loopback hosts or hosts named in
  ``allow_http_hosts``;
- the body is parsed as strict JSON; members this library cannot use (another ``use``, an
  unknown ``alg``, ``kty`` or curve, weak RSA, no ``kid``) are skipped with one warning per
  fetch, while what shows a hostile or broken set refuses it whole: an HMAC (``oct``) key
  (a published secret is not a secret), private key members, a repeated ``kid``, or no
  usable key (see :func:`jwtlite.resource._jwks_set.published_keys`).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message

from jwtlite._encoding import EncodingError, json_loads
from jwtlite.algorithms import ALGORITHMS
from jwtlite.errors import (
    InvalidKeyError,
    JWKSFetchError,
)
from jwtlite.keys import Key, KeySet, KeySource
from jwtlite.resource._http_get import FetchFailedError, bounded_get
from jwtlite.resource._jwks_set import published_keys, summarised

__all__ = ["JWKSClient"]

_log = logging.getLogger("jwtlite.jwks")

_LOOPBACK_NAMES = frozenset({"localhost"})
#: The shortest refetch cooldown accepted: below it, random kids could make a fetch per request.
MIN_REFETCH_COOLDOWN = 1.0
# How much longer than ``timeout`` a caller waits for a fetch before answering "try later":
# the fetch itself is cut off at ``timeout`` (name resolution aside).
_WAIT_MARGIN = 1.0
_MAX_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class _Cache:
    """What the client knows: the keys, until when they are fresh, and when the last fetch ENDED.

    The keys are None before the first good fetch; the last fetch is the last attempt, failed
    or not. The times are monotonic seconds."""

    keys: KeySet | None = None
    fresh_until: float = float("-inf")
    attempted_at: float = float("-inf")
    error: str | None = None  # why the last fetch failed

    def get(self, kid: str) -> Key | None:
        if self.keys is None:
            return None
        try:
            return self.keys.get(kid)
        except InvalidKeyError:
            return None


class _Fetch:
    """The one fetch in flight; callers that need its result wait for ``done``."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class JWKSClient(KeySource):
    """Fetch, cache and serve the keys of a JWKS document by ``kid``.

    Use it wherever the library takes a verifying key: ``jwtlite.decode(token, client,
    algorithms=["RS256"])``, or :class:`jwtlite.BearerAuth`. It is thread-safe.

    Cache lifetime: the response's ``Cache-Control: max-age`` when present, bounded to
    ``[refetch_cooldown, max_lifetime]`` (``no-cache``/``no-store`` count as the lower
    bound), else ``lifetime``. Keys past their lifetime keep serving while a refetch fails.

    Fetches run in a background thread, one at a time. A caller whose key is cached never
    waits for one, even when the keys are stale (it starts the refresh and goes on with the
    cached key); a caller whose ``kid`` is not cached waits for the fetch in flight, or
    starts one when the cooldown allows, for at most ``timeout`` plus a second. At most
    ``max_waiters`` callers wait at once; any more are told "try later"
    (:class:`~jwtlite.errors.JWKSFetchError`, 503 in :class:`~jwtlite.BearerAuth`) at once,
    so tokens with made-up kids cannot park every server thread on a slow issuer while
    tokens whose key is cached queue behind them. Once a fetch succeeds, only its keys
    answer: a key the issuer removed is refused from then on.

    Args:
        url: the JWKS address, ``https://``; ``http://`` only for a loopback host
            (``localhost``, 127.0.0.0/8, ``::1``) or one named in ``allow_http_hosts``.
            ASCII without spaces or control characters.
        timeout: seconds for the whole fetch: connecting, the TLS handshake, the headers
            and the body (a server that drips its answer is cut off at this deadline).
        max_size: the largest body accepted, in bytes; everything else read from the socket
            (status line, headers, chunk framing, trailers) may add 32 KiB.
        lifetime: seconds the keys stay fresh when the answer has no ``max-age``.
        max_lifetime: the most seconds a ``max-age`` can keep keys fresh.
        max_waiters: the most callers that wait for a fetch at the same time (at least 1);
            keep it below the server's thread count.
        refetch_cooldown: the fewest seconds between the end of one fetch and the start of
            the next, whatever causes them (an unknown ``kid``, stale keys, a failure); at
            least 1. A token signed by a key published less than this after the last fetch
            may be refused until the cooldown ends.
        algorithm: the ``alg`` of JWKs that have none (RSA keys need one to be usable);
            a JWK's own ``alg`` is never overridden.
        allow_http_hosts: host names allowed over plain ``http`` besides loopback.
        ssl_context: the TLS settings for ``https`` (default: the system's trusted CAs,
            certificates and host names verified), e.g. to trust a private CA.
        clock: monotonic seconds; injectable for tests.

    No proxy is used, whatever ``http_proxy``/``https_proxy`` say, and no redirect is
    followed.

    Raises:
        ValueError: the URL or a limit is unusable.
        TypeError: an argument has the wrong type (a str for ``allow_http_hosts``...).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        max_size: int = 256 * 1024,
        lifetime: float = 300.0,
        max_lifetime: float = 86400.0,
        refetch_cooldown: float = 10.0,
        max_waiters: int = 2,
        algorithm: str | None = None,
        allow_http_hosts: Iterable[str] = (),
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_limits(timeout, max_size, lifetime, max_lifetime, refetch_cooldown)
        _check_algorithm(algorithm)
        if isinstance(max_waiters, bool) or not isinstance(max_waiters, int) or max_waiters < 1:
            raise ValueError("max_waiters must be a whole number of at least 1")
        self._waiters = threading.BoundedSemaphore(max_waiters)
        self.max_waiters = max_waiters
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise TypeError("ssl_context must be an ssl.SSLContext")
        hosts = _http_hosts(allow_http_hosts)
        self._url = url
        self._where = _check_url(url, hosts)
        self._timeout = float(timeout)
        self._max_size = max_size
        self._lifetime = float(lifetime)
        self._max_lifetime = float(max_lifetime)
        self._cooldown = float(refetch_cooldown)
        self._algorithm = algorithm
        self._clock = clock
        self._tls = ssl_context
        if self._tls is None and url.lower().startswith("https:"):
            self._tls = ssl.create_default_context()
        self._lock = threading.Lock()  # guards _cache and _inflight; never held during I/O
        self._cache = _Cache()
        self._inflight: _Fetch | None = None

    def key_for(self, kid: str) -> Key:
        """The key called ``kid``, fetching the JWKS when needed (see the class docstring).

        Raises:
            InvalidKeyError: no key has this ``kid`` (even after a permitted refetch).
            JWKSFetchError: no cached key has this ``kid`` and the last fetch failed, or the
                fetch in flight did not end in time.
        """
        cache = self._cache
        key = cache.get(kid)
        if key is not None:
            if self._clock() >= cache.fresh_until:
                self._start_fetch()  # stale: refresh in the background, serve the cached key
            return key
        cache = self._after_fetch()
        key = cache.get(kid)
        if key is not None:
            return key
        if cache.error is not None or cache.keys is None:
            # The issuer cannot be asked: the kid may be a key published since the last good
            # fetch. "Try later" (503 in BearerAuth), not "your token is bad".
            raise self._unavailable(cache)
        raise InvalidKeyError("no key matches the token's kid")

    def cached_key(self, kid: str) -> Key | None:
        """The key called ``kid`` if it is cached, without ever waiting; else None.

        A stale key is returned and refreshed in the background, as by :meth:`key_for`. For
        callers that must not block (an event loop): on None, call :meth:`key_for` where
        waiting is allowed."""
        cache = self._cache
        key = cache.get(kid)
        if key is not None and self._clock() >= cache.fresh_until:
            self._start_fetch(background_only=True)
        return key

    def key_set(self) -> KeySet:
        """The cached keys, fetching them first if there are none.

        Stale keys are returned and refreshed in the background.

        Raises:
            JWKSFetchError: there are no cached keys and fetching fails.
        """
        cache = self._cache
        if cache.keys is not None:
            if self._clock() >= cache.fresh_until:
                self._start_fetch()
            return cache.keys
        cache = self._after_fetch()
        if cache.keys is None:
            raise self._unavailable(cache)
        return cache.keys

    def wait_for_refresh(self, timeout: float) -> bool:
        """Wait until no fetch is in flight; return False when ``timeout`` seconds passed first.

        For tests, and for a clean shutdown."""
        fetch = self._inflight
        return fetch is None or fetch.done.wait(timeout)

    def __repr__(self) -> str:
        return f"JWKSClient({self._where!r})"

    # -- fetching --------------------------------------------------------------------------

    def _after_fetch(self) -> _Cache:
        """The cache after the fetch in flight, or after one started now if the cooldown allows.

        Else the cache as it is. Waits at most ``timeout`` plus a margin, as one of at most
        ``max_waiters``.

        Raises:
            JWKSFetchError: the fetch did not end in time, or enough callers wait already.
        """
        fetch = self._start_fetch()
        if fetch is None or fetch.done.is_set():
            return self._cache
        if not self._waiters.acquire(blocking=False):
            raise JWKSFetchError(
                f"the JWKS at {self._where} is being fetched; try later", url=self._where
            )
        try:
            arrived = fetch.done.wait(self._timeout + _WAIT_MARGIN)
        finally:
            self._waiters.release()
        if not arrived:
            raise JWKSFetchError(
                f"the JWKS at {self._where} did not arrive in time", url=self._where
            )
        return self._cache

    def _start_fetch(self, *, background_only: bool = False) -> _Fetch | None:
        """The fetch in flight, or a new one if the cooldown since the last attempt ended.

        None when a fetch is not allowed now. When no thread can be started the fetch runs
        in this one, unless ``background_only`` (a caller that must not block: it is given
        up, and the next caller tries again)."""
        with self._lock:
            if self._inflight is not None:
                return self._inflight
            if self._clock() - self._cache.attempted_at < self._cooldown:
                return None
            fetch = self._inflight = _Fetch()
        thread = threading.Thread(
            target=self._run, args=(fetch,), name="jwtlite-jwks-fetch", daemon=True
        )
        try:
            thread.start()
        except RuntimeError:  # no thread can be started
            if background_only:
                self._run_nowhere(fetch)
                return None
            self._run(fetch)  # fetch in this one
        return fetch

    def _run_nowhere(self, fetch: _Fetch) -> None:
        """End ``fetch`` unstarted: nothing fetched, the cooldown untouched."""
        with self._lock:
            if self._inflight is fetch:
                self._inflight = None
        fetch.done.set()

    def _run(self, fetch: _Fetch) -> None:
        cache: _Cache | None = None
        try:
            cache = self._attempt()
        finally:
            with self._lock:
                if cache is not None:
                    self._cache = cache
                self._inflight = None
            fetch.done.set()

    def _attempt(self) -> _Cache:
        cache = self._cache
        try:
            keys, lifetime = self._fetch()
        except Exception as exc:
            # Whatever fails while fetching or loading counts as a failed attempt: the cached
            # keys stay and the cooldown applies (an escaping exception would skip both).
            if not isinstance(exc, JWKSFetchError):
                exc = self._error(type(exc).__name__)
            # The message names the host and path and the failure, never a token or a key.
            _log.warning("%s; %s", exc, "keeping the cached keys" if cache.keys else "no keys")
            return _Cache(cache.keys, cache.fresh_until, self._clock(), str(exc))
        now = self._clock()  # the cooldown counts from the END of the attempt
        return _Cache(keys, now + lifetime, now)

    def _fetch(self) -> tuple[KeySet, float]:
        try:
            answer = bounded_get(
                self._url,
                headers={"Accept": "application/jwk-set+json, application/json"},
                timeout=self._timeout,
                max_body=self._max_size,
                tls=self._tls,
            )
        except FetchFailedError as exc:
            raise self._error(str(exc)) from None
        except Exception as exc:  # any failure to fetch is a failed attempt
            # Timeouts, resets, TLS errors, and every http.client.HTTPException (too many
            # headers, a bad status line, a line too long, an incomplete read...).
            raise self._error(type(exc).__name__) from None
        if answer.status != 200:
            raise self._error(f"HTTP {answer.status}")
        return self._load(answer.body), self._lifetime_from(answer.headers)

    def _load(self, body: bytes) -> KeySet:
        try:
            document = json_loads(body)
        except EncodingError as exc:
            raise self._error(f"the body is not strict JSON ({exc})") from None
        try:
            keys, skipped = published_keys(document, self._algorithm)
        except InvalidKeyError as exc:
            raise self._error(f"its keys are refused ({exc})") from None
        if skipped:
            # One line per fetch, naming the first few skipped keys by kid and why (never key
            # material, never all of thousands).
            _log.warning(
                "the JWKS at %s: skipped %d key(s) it cannot use: %s",
                self._where,
                len(skipped),
                summarised(skipped),
            )
        return keys

    def _lifetime_from(self, headers: Message) -> float:
        directives: dict[str, str] = {}
        for part in ",".join(headers.get_all("Cache-Control") or []).split(","):
            name, _, value = part.strip().partition("=")
            directives[name.lower()] = value.strip('"')
        if "no-store" in directives or "no-cache" in directives:
            return self._cooldown
        max_age = directives.get("max-age", "")
        if not (max_age.isascii() and max_age.isdigit()):
            return self._lifetime
        return min(max(float(max_age), self._cooldown), self._max_lifetime)

    def _unavailable(self, cache: _Cache) -> JWKSFetchError:
        message = cache.error or f"the JWKS at {self._where} has not been fetched"
        return JWKSFetchError(message, url=self._where)

    def _error(self, reason: str) -> JWKSFetchError:
        message = f"the JWKS at {self._where} was not usable: {reason}"
        return JWKSFetchError(message, url=self._where)


def _check_url(url: str, allowed_http: set[str]) -> str:
    """Check the URL's scheme and host; return it without query or fragment (for messages)."""
    if not isinstance(url, str):
        raise ValueError("the JWKS URL must be a string")
    if not url.isascii() or any(char <= " " or char == "\x7f" for char in url):
        raise ValueError("the JWKS URL must be ASCII without spaces or control characters")
    parts = urllib.parse.urlsplit(url)
    try:
        parts.port  # noqa: B018 (raises for a port that is not a number in range)
    except ValueError:
        raise ValueError("the JWKS URL has an unusable port") from None
    host = (parts.hostname or "").lower()
    if not host or parts.username is not None or parts.password is not None:
        raise ValueError("the JWKS URL needs a host and no user name or password")
    if parts.scheme == "http":
        if not (_is_loopback(host) or host in allowed_http):
            raise ValueError(
                f"the JWKS URL must be https (http only for loopback or allow_http_hosts): {host}"
            )
    elif parts.scheme != "https":
        raise ValueError("the JWKS URL must be https")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _check_limits(
    timeout: float, max_size: int, lifetime: float, max_lifetime: float, cooldown: float
) -> None:
    for name, value in (
        ("timeout", timeout),
        ("lifetime", lifetime),
        ("max_lifetime", max_lifetime),
        ("refetch_cooldown", cooldown),
    ):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{name} must be a number of seconds")
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be positive and finite")
    if isinstance(max_size, bool) or not isinstance(max_size, int):
        raise TypeError("max_size must be an int")
    if max_size <= 0:
        raise ValueError("max_size must be positive")
    if timeout > _MAX_TIMEOUT:
        raise ValueError(f"timeout must be at most {_MAX_TIMEOUT} seconds")
    if not MIN_REFETCH_COOLDOWN <= cooldown <= lifetime <= max_lifetime:
        raise ValueError(
            f"need {MIN_REFETCH_COOLDOWN} <= refetch_cooldown <= lifetime <= max_lifetime"
        )


def _check_algorithm(algorithm: object) -> None:
    if algorithm is None:
        return
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported algorithm {algorithm!r}")
    if ALGORITHMS[algorithm].symmetric:
        raise ValueError("a JWKS publishes no HMAC keys: algorithm cannot be HS*")


def _http_hosts(allow_http_hosts: Iterable[str]) -> set[str]:
    if isinstance(allow_http_hosts, str | bytes):
        raise TypeError("allow_http_hosts must be a list of host names, not a string")
    hosts = list(allow_http_hosts)
    if not all(isinstance(host, str) and host for host in hosts):
        raise TypeError("allow_http_hosts must hold non-empty host name strings")
    return {host.lower() for host in hosts}


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
