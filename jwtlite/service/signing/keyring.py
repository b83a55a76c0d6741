"""The signing-key ring the service signs and verifies with, and how it follows rotations.

A :class:`~jwtlite.service.signing.ring.Ring` is an immutable snapshot: the key that signs, every
key that verifies (by ``kid``, each bound to its one algorithm), the JWKS to publish. A
:class:`KeyRing` holds the current snapshot and replaces it with one reference assignment
when the key directory changes; a token operation reads ``keyring.current()`` once and uses
that snapshot for all it does. Readers take no lock: the hot path is two integer
comparisons (the reload signal counter and a monotonic deadline).

A ring over a key directory reloads (the one place: :meth:`KeyRing.reload`):

- every ``KEYS_RELOAD_INTERVAL`` seconds, at the first request after the deadline (one
  ``stat`` of ``ring.json``; the keys are read again only when it changed);
- after SIGHUP, at the next request (the handler only calls :func:`request_reload`);
- when a token names a ``kid`` the ring does not know: one ``stat``, and the keys read again
  only if ``ring.json`` changed (a failed read is retried at most once a second), so another
  instance that already signs with a new key is followed at once, and random ``kid`` values cost
  a ``stat`` each, never a read of the directory (such a token waits at most
  :data:`UNKNOWN_KID_WAIT_SECONDS` for a reload another thread is doing);
- at each JWKS answer (:meth:`KeyRing.published`): one ``stat``, never waiting, so every
  instance publishes a new key as soon as it is on disk.

A snapshot knows when its current key starts signing (a staged rotation, ``rotate-key
--activate-after``): until then the key it takes over from signs (:meth:`Ring.signing_key_at`),
so instances switch by the clock, not by a reload. It also knows when each retired key was
retired, which :mod:`jwtlite.service.tokens` uses to refuse tokens a retired key "signed"
later. The exact header segments the service writes are precomputed per snapshot, so its own
tokens skip the header parse; nothing a request sends is kept.

A reload that fails (garbage in the directory, a truncated key, files this user cannot read)
logs an error and keeps the ring that was working; it is tried again at the next deadline.

HMAC and asymmetric keys may share a ring (an ``--algorithm`` change at rotation): a token's
``kid`` picks one key and the key's own algorithm is the only one accepted for it, so a
``kid`` can never make an HMAC key check a token signed "with" a public key; a token without
a ``kid`` is checked only by the ``kidless`` HMAC key (the one that signed simplejwt's
header). Only public keys are published.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from jwtlite.errors import InvalidKeyError
from jwtlite.keys import Key, KeySet
from jwtlite.service.settings import Settings
from jwtlite.service.signing.directory import KeyDirectory, Stamp, key_pepper
from jwtlite.service.signing.ring import Ring
from jwtlite.service.signing.ringfile import Manifest

__all__ = [
    "RETIREMENT_GRACE_FLOOR",
    "UNKNOWN_KID_RELOAD_SECONDS",
    "UNKNOWN_KID_WAIT_SECONDS",
    "KeyRing",
    "Ring",
    "keep_window",
    "request_reload",
    "retirement_grace",
]

log = logging.getLogger("jwtlite")

#: After a failed reload, tokens naming an unknown ``kid`` (and JWKS requests) retry it at
#: most once a second.
UNKNOWN_KID_RELOAD_SECONDS = 1.0
#: How long a token naming an unknown ``kid`` waits for a reload another thread is doing
#: (one that may bring that very kid) before it is answered from the current snapshot.
UNKNOWN_KID_WAIT_SECONDS = 0.5


#: The least time after a key's retirement during which tokens it signed are still believed
#: (plus ``LEEWAY``), whatever this instance's own ``KEYS_RELOAD_INTERVAL``: another instance
#: on the directory may reload less often and go on signing with the key that long.
RETIREMENT_GRACE_FLOOR = 60


def retirement_grace(settings: Settings) -> int:
    """How long after its retirement a key may still have signed a token this instance accepts.

    It is ``max(KEYS_RELOAD_INTERVAL, RETIREMENT_GRACE_FLOOR) + LEEWAY``.

    Not this instance's interval alone: an instance reloading every 2 s would refuse the
    tokens another one, reloading every 30 s, still signs with the old key after an
    unsignalled rotation. Instances on one directory whose interval exceeds the floor must
    all be given the largest one (and all the same ``LEEWAY``).
    """
    return max(settings.keys_reload_interval, RETIREMENT_GRACE_FLOOR) + settings.leeway


def keep_window(settings: Settings) -> int:
    """How long after its retirement a key must keep verifying for an instance with ``settings``.

    A refresh token it signed lives ``REFRESH_TOKEN_LIFETIME`` (+ ``LEEWAY``), and an instance
    may go on signing with it for ``KEYS_RELOAD_INTERVAL`` until it notices the rotation."""
    return settings.refresh_token_lifetime + settings.leeway + settings.keys_reload_interval


class _ReloadSignal:
    """How many reloads were asked for (SIGHUP): an int a signal handler may bump."""

    generation = 0


def request_reload() -> None:
    """Ask every key ring of this process to re-read its directory at its next use.

    Safe in a signal handler: it only increments a counter (no I/O, no lock).
    """
    _ReloadSignal.generation += 1


class KeyRing:
    """The live ring: the current :class:`Ring` snapshot and how it is kept up to date.

    Args:
        ring: the first snapshot.
        pepper: the throttle and CSRF secret; stable across rotations.
        directory: the key directory to follow, or None for a fixed ring.
        stamp: the stamp of ``ring.json`` the first snapshot was read from.
        reload_interval: seconds between checks of the directory.
        keep_seconds: the keep window this instance needs (:func:`keep_window`): a ring
            that records a shorter one is warned about at start and at each reload.
        clock: a monotonic clock (injected for tests).
    """

    def __init__(
        self,
        ring: Ring,
        *,
        pepper: bytes,
        directory: KeyDirectory | None = None,
        stamp: Stamp | None = None,
        reload_interval: float = 5.0,
        keep_seconds: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ring = ring
        self.pepper = pepper
        self.directory = directory
        self._stamp = stamp
        self._interval = reload_interval
        self._keep_needed = keep_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._next_check = clock() + reload_interval if directory is not None else float("inf")
        self._next_unknown_kid = 0.0
        self._failed = False
        self._generation = _ReloadSignal.generation
        #: Called as ``on_change(previous, ring)`` after a reload replaced the snapshot (the
        #: service reports a new signing key from it); an exception it raises is logged.
        self.on_change: Callable[[Ring, Ring], None] | None = None

    @classmethod
    def fixed(cls, keys: Key | KeySet) -> KeyRing:
        """A ring that never changes: today's single key or secret (or a given KeySet).

        Its pepper is derived from the signing key, as it always was."""
        ring = Ring.of(keys)
        return cls(ring, pepper=key_pepper(ring.signing_key))

    @classmethod
    def open(
        cls,
        directory: KeyDirectory,
        algorithm: str,
        *,
        reload_interval: float,
        now: int,
        keep_seconds: int,
    ) -> KeyRing:
        """The ring of ``directory``, giving an empty one its first ``algorithm`` key.

        An empty directory also gets ``keep_seconds`` (this instance's :func:`keep_window`) as
        its keep window.

        Raises:
            InvalidKeyError: the directory cannot be used (the message says why).
        """
        directory.ensure(algorithm, now=now, keep_seconds=keep_seconds)
        files = directory.read()
        keyring = cls(
            Ring.from_files(files),
            pepper=files.pepper,
            directory=directory,
            stamp=files.stamp,
            reload_interval=reload_interval,
            keep_seconds=keep_seconds,
        )
        keyring._check_keep_window(files.manifest)
        return keyring

    def current(self) -> Ring:
        """The snapshot to use now (reloaded first when a check is due)."""
        if self.directory is not None and (
            self._generation != _ReloadSignal.generation or self._clock() >= self._next_check
        ):
            self._check()
        return self.ring

    def after_unknown_kid(self, seen: Ring) -> Ring:
        """The snapshot to try again with after ``seen`` knew no key for a token.

        A newer snapshot if another thread reloaded meanwhile, or if ``ring.json`` changed
        (one ``stat``, no more than the header parse the token already cost): another
        instance may sign with a key this one has not loaded yet. The keys are read again
        only when ``ring.json`` changed, which only ``rotate-key`` does; a read that failed
        is not tried again for :data:`UNKNOWN_KID_RELOAD_SECONDS`, so tokens with random
        ``kid`` values never make the service read the directory over and over.
        """
        if self.directory is None:
            return self.ring
        # A reload in progress is waited for a little (it may bring this kid), never for
        # long: a stalled directory must not hold every such request.
        if not self._lock.acquire(timeout=UNKNOWN_KID_WAIT_SECONDS):
            return self.ring
        try:
            if self.ring is not seen:
                return self.ring
            self._reload_unless_failing("unknown kid")
        finally:
            self._lock.release()
        return self.ring

    def published(self) -> Ring:
        """The snapshot whose JWKS to publish, after one ``stat`` of ``ring.json``.

        The keys are read again if it changed, so every instance publishes a new key as soon as
        it is on disk. Never waits: while another thread reloads, the current snapshot."""
        if self.directory is not None and self._lock.acquire(blocking=False):
            try:
                self._reload_unless_failing("jwks")
            finally:
                self._lock.release()
        return self.current()

    def _reload_unless_failing(self, reason: str) -> None:
        # A directory whose last read failed is read again at most once a second here.
        if self._clock() < self._next_unknown_kid:
            return
        if not self._reload_locked(reason) and self._failed:
            self._next_unknown_kid = self._clock() + UNKNOWN_KID_RELOAD_SECONDS

    def reload(self, reason: str = "requested") -> bool:
        """Re-read the directory now if ``ring.json`` changed; return whether the ring changed.

        A failure is logged and keeps the current ring."""
        with self._lock:
            return self._reload_locked(reason)

    def _check(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # another thread is reloading: use the current snapshot meanwhile
        try:
            generation = _ReloadSignal.generation
            reason = "signal" if generation != self._generation else "interval"
            self._generation = generation
            self._next_check = self._clock() + self._interval
            self._reload_locked(reason)
        finally:
            self._lock.release()

    def _reload_locked(self, reason: str) -> bool:
        """The one place a reloaded ring is applied (hook audit events and metrics here)."""
        directory = self.directory
        if directory is None:
            return False
        self._failed = False
        try:
            if directory.stamp() == self._stamp:
                return False
            files = directory.read()
            ring = Ring.from_files(files)
        except (InvalidKeyError, OSError) as exc:
            self._failed = True
            # An error, not a warning: this instance may go on signing with a key the others
            # have retired (and, after the retirement window, refuse).
            log.error("signing keys not reloaded (%s), keeping the current ring: %s", reason, exc)
            return False
        previous = self.ring
        self.ring = ring  # one reference assignment: readers see the old ring or the new one
        self._stamp = files.stamp
        self._check_keep_window(files.manifest)
        log.info(
            "signing keys reloaded (%s): current %s, was %s, %d keys",
            reason,
            files.manifest.current,
            previous.current_kid or "(no kid)",
            len(ring.kids),
        )
        if self.on_change is not None:
            try:
                self.on_change(previous, ring)
            except Exception:
                log.exception("reporting reloaded signing keys failed")
        return True

    def _check_keep_window(self, manifest: Manifest) -> None:
        # An instance cannot fix the ring (its directory may be read-only): it says so.
        if manifest.keep_seconds < self._keep_needed:
            log.warning(
                "key directory %s keeps retired keys %d s, but this instance's tokens need "
                "%d s (REFRESH_TOKEN_LIFETIME + LEEWAY + KEYS_RELOAD_INTERVAL): a rotation may "
                "prune a key that still signs live tokens; run 'python -m jwtlite rotate-key "
                "--keep %d' as the directory's owner",
                self.directory.path if self.directory is not None else "?",
                manifest.keep_seconds,
                self._keep_needed,
                self._keep_needed,
            )
