"""Throttling of logins and registrations, counted in the store.

The model (docs/explanation/security.md says the same):

* **Logins** are counted *before* the password is checked and forgotten when it was right,
  so parallel guesses see each other at once. An attempt is refused (429) when, within
  ``LOGIN_FAILURE_WINDOW`` seconds, there were already

  - ``LOGIN_MAX_FAILURES`` attempts at this username from this client address: a guesser
    is stopped, but cannot lock the owner out from elsewhere;
  - ``LOGIN_MAX_FAILURES_PER_USERNAME`` attempts at this username from anywhere: guessing
    spread over many addresses is stopped too, at a much higher bar — except from an address
    where this username logged in successfully within the last 30 days, so strangers who
    reach that bar cannot lock the owner out of the places they use;
  - ``LOGIN_MAX_FAILURES_PER_ADDRESS`` attempts from this address at any username.

* **Registrations** are counted per client address, ``REGISTRATION_MAX_PER_ADDRESS`` per
  ``REGISTRATION_WINDOW`` seconds, before the password is hashed: a refused registration
  costs no hash, and "that username exists" stops being an unlimited oracle.

Check and count are one atomic store operation, so the limits are exact under any
concurrency, across threads and processes. A login refused only because attempts this process
is still checking fill the limit waits for them (up to ``PASSWORD_HASH_WAIT`` seconds, at most
``PASSWORD_HASH_PER_CLIENT`` waiters per address) and is counted again: eight colleagues
logging in at once behind one address must not get 429 with a ``Retry-After`` of minutes
because five right passwords were still being checked.

Usernames reach the store only as a keyed hash (a password typed into the username field
must not sit on disk), and IPv6 clients are counted by their /64, the block one subscriber
usually holds (an address that embeds an IPv4 client — IPv4-mapped, or NAT64's
64:ff9b::/96 — counts as that IPv4 address).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import hmac
import ipaddress
import math
import threading
import time
from collections.abc import Callable, Iterator

from jwtlite.service.errors import BusyError, ThrottledError
from jwtlite.service.settings import Settings
from jwtlite.store import AttemptLimits, Store
from jwtlite.store.base import LOGIN_ATTEMPT, LOGIN_SUCCESS, REGISTRATION

__all__ = [
    "IN_FLIGHT_WAITERS",
    "LOGIN",
    "REGISTER",
    "TRUSTED",
    "TRUSTED_ADDRESS_SECONDS",
    "Throttle",
    "address_group",
]

LOGIN = LOGIN_ATTEMPT
REGISTER = REGISTRATION
TRUSTED = LOGIN_SUCCESS
#: Logins that may wait, all addresses together, for attempts in flight to end (each holds a
#: server thread: ``THREADS`` 48 = the hashing queue's 40 + the hashing threads + these few
#: + the ones verification, refresh and ``/health`` need).
IN_FLIGHT_WAITERS = 4
#: How long a successful login keeps its address open to its owner past the per-username bar.
TRUSTED_ADDRESS_SECONDS = 30 * 24 * 3600
_IPV6_GROUP_PREFIX = 64
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def address_group(address: str) -> str:
    """The bucket an address is counted in: itself for IPv4, its /64 network for IPv6.

    An IPv4-mapped IPv6 address counts as its IPv4 address; anything unparsable (a Unix
    socket peer, say) counts as itself.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        if ip in _NAT64:
            return str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return str(ipaddress.IPv6Network((ip, _IPV6_GROUP_PREFIX), strict=False))
    return str(ip)


class _InFlight:
    """Login attempts this process counted and has not resolved, by address group and subject.

    Also the place to wait for one of them to end."""

    def __init__(self, *, wait: float, max_waiters: int, max_total: int) -> None:
        self._changed = threading.Condition()
        self._counts: collections.Counter[str] = collections.Counter()
        self._waiters: collections.Counter[str] = collections.Counter()
        self._ended = 0  # attempts resolved so far: a waiter tells whether one ended
        self._wait = wait
        self._max_waiters = max_waiters
        # Each waiter holds a server thread outside the hashing queue, which THREADS is sized
        # with: all addresses together get a few, not PASSWORD_HASH_PER_CLIENT each.
        self._max_total = max_total

    @contextlib.contextmanager
    def held(self, *keys: str) -> Iterator[None]:
        """Count an attempt as in flight under ``keys`` for the body of the ``with``."""
        with self._changed:
            self._counts.update(keys)
        try:
            yield
        finally:
            with self._changed:
                self._counts.subtract(keys)
                for key in keys:
                    if self._counts[key] <= 0:
                        del self._counts[key]
                self._ended += 1
                self._changed.notify_all()

    def take(self, take: Callable[[], None], keys: tuple[str, str]) -> None:
        """Call ``take``; while it refuses with attempts under ``keys`` in flight, retry.

        Each retry waits for one of those attempts to end.

        Raises:
            ThrottledError: refused with nothing of ours in flight, past the deadline, or
                with the address's waiters all in place.
        """
        deadline = time.monotonic() + self._wait
        address = keys[0]
        while True:
            with self._changed:
                seen = self._ended
            try:
                take()
                return
            except ThrottledError:
                with self._changed:
                    if self._ended != seen:
                        continue  # one ended while we asked: ask again
                    remaining = deadline - time.monotonic()
                    if (
                        remaining <= 0
                        or not any(self._counts[key] for key in keys)
                        or self._waiters[address] >= self._max_waiters
                        or self._waiters.total() >= self._max_total
                    ):
                        raise
                    self._waiters[address] += 1
                    try:
                        self._changed.wait(remaining)
                    finally:
                        self._waiters[address] -= 1
                        if self._waiters[address] <= 0:
                            del self._waiters[address]


class Throttle:
    """Counts attempts in the store and refuses the ones over a limit.

    Args:
        settings: the limits and windows.
        store: where attempts are counted (shared by every thread and process).
        pepper: the key of the hash that stands for a username in the store.
    """

    def __init__(self, settings: Settings, store: Store, *, pepper: bytes) -> None:
        self._store = store
        self._pepper = hmac.new(pepper, b"jwtlite throttle subject", hashlib.sha256).digest()
        self._login_window = settings.login_failure_window
        self._login_limits = AttemptLimits(
            per_pair=settings.login_max_failures,
            per_subject=settings.login_max_failures_per_username,
            per_address=settings.login_max_failures_per_address,
        )
        self._registration_window = settings.registration_window
        self._registration_limits = AttemptLimits(per_address=settings.registration_max_per_address)
        self._in_flight = _InFlight(
            wait=settings.password_hash_wait,
            max_waiters=settings.password_hash_per_client,
            max_total=IN_FLIGHT_WAITERS,
        )

    def subject(self, username_key: str) -> str:
        """The store's name for a username: a keyed hash, never the name itself."""
        mac = hmac.new(self._pepper, username_key.encode("utf-8", "surrogatepass"), "sha256")
        return mac.hexdigest()

    def take_login(self, subject: str, address: str, now: float) -> None:
        """Count a login attempt at ``subject`` from ``address`` (grouped), or refuse it.

        Raises:
            ThrottledError: a limit is reached; nothing was counted.
        """
        limits = dataclasses.replace(
            self._login_limits, trusted_since=now - TRUSTED_ADDRESS_SECONDS
        )
        self._take(LOGIN, subject, address, now=now, window=self._login_window, limits=limits)

    @contextlib.contextmanager
    def login_attempt(self, subject: str, address: str, now: float) -> Iterator[None]:
        """Count a login attempt (:meth:`take_login`) for the body of the ``with``.

        It is taken back when the body is shed (:class:`BusyError`): a request that never got to
        check its password was no attempt, and must not bring its user nearer a lock-out.
        The body must end with the attempt resolved (forgotten in the store after a right
        password): other logins from the address may be waiting for it.

        Raises:
            ThrottledError: a limit is reached, and no attempt of this process that could
                free it is in flight (or none did in time); nothing was counted.
        """
        keys = ("a" + address_group(address), "s" + subject)
        self._in_flight.take(lambda: self.take_login(subject, address, now), keys)
        with self._in_flight.held(*keys), self._returned_if_shed(LOGIN, subject, address, now):
            yield

    @contextlib.contextmanager
    def registration_attempt(self, address: str, now: float) -> Iterator[None]:
        """Count a registration (:meth:`take_registration`) for the body of the ``with``.

        It is taken back when the body is shed (:class:`BusyError`)."""
        self.take_registration(address, now)
        with self._returned_if_shed(REGISTER, "", address, now):
            yield

    @contextlib.contextmanager
    def _returned_if_shed(self, kind: str, subject: str, address: str, at: float) -> Iterator[None]:
        try:
            yield
        except BusyError:
            group = address_group(address)
            self._store.return_attempt(kind=kind, subject=subject, address=group, at=at)
            raise

    def take_registration(self, address: str, now: float) -> None:
        """Count a registration from ``address`` (grouped), or refuse it.

        Raises:
            ThrottledError: the address's limit is reached; nothing was counted.
        """
        self._take(
            REGISTER,
            "",
            address,
            now=now,
            window=self._registration_window,
            limits=self._registration_limits,
        )

    def _take(
        self,
        kind: str,
        subject: str,
        address: str,
        *,
        now: float,
        window: int,
        limits: AttemptLimits,
    ) -> None:
        oldest = self._store.take_attempt(
            kind=kind,
            subject=subject,
            address=address_group(address),
            now=now,
            since=now - window,
            limits=limits,
        )
        if oldest is not None:
            raise ThrottledError(max(1, math.ceil(oldest + window - now)))
