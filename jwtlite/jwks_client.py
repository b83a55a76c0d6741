"""A JWK Set client for services that verify someone else's tokens (RFC 7517 §5).

:class:`JWKSClient` fetches a JWKS over HTTPS with the standard library, caches its keys and
finds them by ``kid``. It is built to keep verifying through an outage of the issuer:

- one fetch at a time: concurrent callers wait for it (or, when they already hold a usable
  cached key, do not wait at all) instead of each fetching;
- an unknown ``kid`` causes at most one fetch per ``refetch_cooldown``, so random ``kid``s
  sent by an attacker cannot make it fetch more;
- a failed fetch keeps the cached keys (PyJWT's client empties its cache, pyjwt#1162), logs
  a warning, and is not retried before the cooldown has passed; until a fetch succeeds
  again, a ``kid`` the cache lacks is a :class:`JWKSFetchError` (it may be a key published
  since), not an unknown key;
- the connection and every read have a timeout, the body a size cap enforced while reading,
  redirects are refused, and ``http`` is allowed only to loopback hosts or hosts named in
  ``allow_http_hosts``;
- the body is parsed as strict JSON; members this library cannot use (another ``use``, an
  unknown ``alg``, ``kty`` or curve, weak RSA, no ``kid``) are skipped with one warning per
  fetch, while what shows a hostile or broken set refuses it whole: an HMAC (``oct``) key
  (a published secret is not a secret), private key members, a repeated ``kid``, or no
  usable key (see :func:`published_keys`).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from typing import Any

from jwtlite._encoding import EncodingError, json_loads
from jwtlite._jwk import is_signature_key, jwk_set_members
from jwtlite.errors import InvalidKeyError, JWKSFetchError
from jwtlite.keys import Key, KeySet, KeySource

__all__ = ["JWKSClient"]

_log = logging.getLogger("jwtlite.jwks")

_CHUNK = 16 * 1024
_LOOPBACK_NAMES = frozenset({"localhost"})
# RFC 7518 §6.2.2, §6.3.2, §6.4.1 and RFC 8037 §2: members only a private key or secret has.
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


@dataclass(frozen=True, slots=True)
class _Cache:
    """What the client knows: the keys (None before the first good fetch), until when they
    are fresh, and when the last fetch was attempted (monotonic seconds)."""

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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect could lead to a host or scheme the URL rules refuse: follow none.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class JWKSClient(KeySource):
    """Fetch, cache and serve the keys of a JWKS document by ``kid``.

    Use it wherever the library takes a verifying key: ``jwtlite.decode(token, client,
    algorithms=["RS256"])``, or :class:`jwtlite.BearerAuth`. It is thread-safe.

    Cache lifetime: the response's ``Cache-Control: max-age`` when present, bounded to
    ``[refetch_cooldown, max_lifetime]`` (``no-cache``/``no-store`` count as the lower
    bound), else ``lifetime``. Keys past their lifetime keep serving while a refetch fails.

    Args:
        url: the JWKS address, ``https://``; ``http://`` only for a loopback host
            (``localhost``, 127.0.0.0/8, ``::1``) or one named in ``allow_http_hosts``.
        timeout: seconds for connecting, for each read, and for reading the whole body (a
            server that drips its answer is cut off).
        max_size: the largest body accepted, in bytes.
        lifetime: seconds the keys stay fresh when the answer has no ``max-age``.
        max_lifetime: the most seconds a ``max-age`` can keep keys fresh.
        refetch_cooldown: the fewest seconds between two fetches, whatever causes them
            (an unknown ``kid``, stale keys, a failure): a token signed by a key published
            less than this after the last fetch may be refused until the cooldown ends.
        algorithm: the ``alg`` of JWKs that have none (RSA keys need one to be usable);
            a JWK's own ``alg`` is never overridden.
        allow_http_hosts: host names allowed over plain ``http`` besides loopback.
        clock: monotonic seconds; injectable for tests.

    Raises:
        ValueError: the URL or a limit is unusable.
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
        algorithm: str | None = None,
        allow_http_hosts: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout <= 0 or max_size <= 0:
            raise ValueError("timeout and max_size must be positive")
        if not 0 <= refetch_cooldown <= lifetime <= max_lifetime:
            raise ValueError("need 0 <= refetch_cooldown <= lifetime <= max_lifetime")
        self._url = url
        self._where = _check_url(url, {host.lower() for host in allow_http_hosts})
        self._timeout = timeout
        self._max_size = max_size
        self._lifetime = lifetime
        self._max_lifetime = max_lifetime
        self._cooldown = refetch_cooldown
        self._algorithm = algorithm
        self._clock = clock
        self._opener = urllib.request.build_opener(_NoRedirect())
        self._lock = threading.Lock()
        self._cache = _Cache()

    def key_for(self, kid: str) -> Key:
        """The key called ``kid``, fetching the JWKS when needed (see the class docstring).

        Raises:
            InvalidKeyError: no key has this ``kid`` (even after a permitted refetch).
            JWKSFetchError: no cached key has this ``kid`` and the last fetch failed.
        """
        cache = self._cache
        key = cache.get(kid)
        if key is not None:
            if self._clock() < cache.fresh_until:
                return key
            # Stale but usable: refresh unless another caller is already doing it.
            if self._lock.acquire(blocking=False):
                try:
                    cache = self._refresh_if_allowed()
                finally:
                    self._lock.release()
            return cache.get(kid) or key
        with self._lock:
            cache = self._cache  # another caller may have fetched while this one waited
            if cache.get(kid) is None or self._clock() >= cache.fresh_until:
                cache = self._refresh_if_allowed()
        key = cache.get(kid)
        if key is not None:
            return key
        if cache.error is not None:
            # The issuer cannot be asked: the kid may be a key published since the last good
            # fetch. "Try later" (503 in BearerAuth), not "your token is bad".
            raise self._unavailable(cache)
        raise InvalidKeyError("no key matches the token's kid")

    def key_set(self) -> KeySet:
        """The cached keys, fetching them first if there are none or they are stale.

        Raises:
            JWKSFetchError: there are no cached keys and fetching fails.
        """
        with self._lock:
            cache = self._cache
            if cache.keys is None or self._clock() >= cache.fresh_until:
                cache = self._refresh_if_allowed()
        if cache.keys is None:
            raise self._unavailable(cache)
        return cache.keys

    def wait_for_refresh(self, timeout: float) -> bool:
        """Wait until no fetch is in flight; return False when ``timeout`` seconds passed
        first (for tests, and for a clean shutdown)."""
        if not self._lock.acquire(timeout=timeout):
            return False
        self._lock.release()
        return True

    def __repr__(self) -> str:
        return f"JWKSClient({self._where!r})"

    # -- fetching (under self._lock) -------------------------------------------------------

    def _refresh_if_allowed(self) -> _Cache:
        cache = self._cache
        now = self._clock()
        if now - cache.attempted_at < self._cooldown:
            return cache
        try:
            keys, lifetime = self._fetch()
        except Exception as exc:
            # Whatever fails while fetching or loading counts as a failed attempt: the cached
            # keys stay and the cooldown applies (an escaping exception would skip both).
            if not isinstance(exc, JWKSFetchError):
                exc = self._error(type(exc).__name__)
            # The message names the host and path and the failure, never a token or a key.
            _log.warning("%s; %s", exc, "keeping the cached keys" if cache.keys else "no keys")
            self._cache = _Cache(cache.keys, cache.fresh_until, now, str(exc))
        else:
            self._cache = _Cache(keys, now + lifetime, now)
        return self._cache

    def _fetch(self) -> tuple[KeySet, float]:
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked in __init__)
            self._url, headers={"Accept": "application/jwk-set+json, application/json"}
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                if response.status != 200:
                    raise self._error(f"HTTP {response.status}")
                body = self._read(response)
                headers: Message = response.headers
        except JWKSFetchError:
            raise
        except urllib.error.HTTPError as exc:
            exc.close()
            raise self._error(f"HTTP {exc.code}") from None
        except Exception as exc:  # any failure to fetch is a failed attempt
            # URLError, timeouts, resets, and every http.client.HTTPException (too many
            # headers, a bad status line, a line too long, an incomplete read...).
            raise self._error(type(getattr(exc, "reason", exc)).__name__) from None
        return self._load(body), self._lifetime_from(headers)

    def _read(self, response: Any) -> bytes:
        length = response.headers.get("Content-Length")
        if (
            length is not None
            and length.isascii()
            and length.isdigit()
            and int(length) > self._max_size
        ):
            raise self._error(f"the body is larger than {self._max_size} bytes")
        chunks: list[bytes] = []
        total = 0
        deadline = time.monotonic() + self._timeout
        while chunk := response.read1(_CHUNK):
            total += len(chunk)
            if total > self._max_size:
                raise self._error(f"the body is larger than {self._max_size} bytes")
            if time.monotonic() > deadline:
                raise self._error(f"the body took more than {self._timeout} s")
            chunks.append(chunk)
        return b"".join(chunks)

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
            # One line per fetch, naming each skipped key by kid and why; never key material.
            _log.warning(
                "the JWKS at %s: skipped %d key(s) it cannot use: %s",
                self._where,
                len(skipped),
                "; ".join(skipped),
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


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def published_keys(document: Any, algorithm: str | None) -> tuple[KeySet, list[str]]:
    """The usable signature keys of a published JWK Set, and why each other member was
    skipped.

    An issuer may publish keys this library cannot use beside the ones it signs with (an
    encryption key without ``use``, an algorithm or curve not supported here, a weak RSA
    key, a key without ``kid``); they are skipped, so that adding one does not stop every
    verifier. What shows a hostile or broken document refuses the whole set: an entry that is
    not an object, an HMAC (``oct``) key (a published secret is not a secret), private key
    members (``d``, ``p``...: the issuer is leaking its keys), a ``kid`` used twice, or no
    usable key at all. ``algorithm`` is the ``alg`` of JWKs that have none.

    Raises:
        InvalidKeyError: the whole set is refused.
    """
    members = jwk_set_members(document)
    if any(jwk.get("kty") == "oct" for jwk in members):
        raise InvalidKeyError("it publishes an HMAC (oct) key; refusing the whole set")
    if any(name in jwk for jwk in members for name in _PRIVATE_MEMBERS):
        raise InvalidKeyError("it publishes private key members; refusing the whole set")
    kids = Counter(jwk["kid"] for jwk in members if isinstance(jwk.get("kid"), str))
    repeated = sorted(kid for kid, count in kids.items() if count > 1)
    if repeated:
        raise InvalidKeyError(f"kid {_shown(repeated[0])} names more than one key")
    keys: list[Key] = []
    skipped: list[str] = []
    for index, jwk in enumerate(members):
        reason = _unusable(jwk)
        if reason is None:
            try:
                keys.append(Key.from_jwk(jwk, None if "alg" in jwk else algorithm))
                continue
            except Exception as exc:  # any key this library cannot load is skipped
                reason = _shown(str(exc) or type(exc).__name__, 120)
        name = f"kid {_shown(jwk['kid'])}" if isinstance(jwk.get("kid"), str) else f"#{index}"
        skipped.append(f"{name}: {reason}")
    if not keys:
        raise InvalidKeyError("no usable signature key: " + ("; ".join(skipped) or "none"))
    return KeySet(keys), skipped


def _unusable(jwk: dict[str, Any]) -> str | None:
    if not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
        return "no kid (a token could not name it)"
    if not is_signature_key(jwk):
        return "not a signature key (use or key_ops)"
    return None


def _shown(text: str, limit: int = 40) -> str:
    """``text`` quoted for a log line, cut to ``limit`` characters (it is the issuer's)."""
    return repr(text[:limit] + ("..." if len(text) > limit else ""))
