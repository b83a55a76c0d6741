"""Admission to password hashing: a fair queue with a deadline, not a refusal at the door.

A password hash is the one expensive thing a request can ask for (tens of milliseconds of a
core, by design), so only ``slots`` of them run at once (one per core by default). Everyone
else who needs one *waits*, in a queue served round-robin across client addresses, so that a
burst of honest logins is served a moment later instead of refused, and one address -- or a
few -- looping logins cannot starve the others:

* A caller from an address that already holds ``per_address`` places (running or waiting)
  is refused at once: an office behind one NAT address gets that many at a time, a flood
  from one address gets no more.
* At most ``queue`` callers wait in all, because each holds a server thread: the queue is
  sized with the thread pool, so that verification, refresh and ``/health`` always find a
  thread. When it is full, a newcomer from an address with fewer waiters takes the place of
  the newest waiter of the address with the most (longest-queue drop), so that addresses
  flooding together still share the queue with everyone else; otherwise the newcomer is
  refused.
* A caller that has not reached a slot within ``wait`` seconds gives up.
* A caller whose client has closed its connection while it waited gives its slot on without
  hashing (:class:`~jwtlite.service.context.RequestContext`'s ``client_gone``): abandoned
  logins must not spend the hashes honest users wait for.

Every refusal is :class:`~jwtlite.service.errors.BusyError` (503 with ``Retry-After``); a
refused caller has hashed nothing. The queue is per process; the limits across processes and
instances are the store's throttles.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from jwtlite.service.context import current_request
from jwtlite.service.errors import BusyError

__all__ = ["Admission"]

#: The queue key of callers without an address (the command line): one address among many.
_LOCAL = ""


class _Waiter:
    __slots__ = ("address", "event", "granted")

    def __init__(self, address: str) -> None:
        self.address = address
        self.event = threading.Event()
        self.granted = False


class Admission:
    """The places in and in front of the hashing pool (see the module docstring).

    Args:
        slots: callers that may hash at once (the hashing pool's size, at least 1).
        queue: callers that may wait for a slot, in all (at least 0).
        per_address: places (running or waiting) one client address may hold (at least 1).
        wait: seconds a caller waits for a slot before it is refused.
        clock: a monotonic clock in seconds, for the deadline.
    """

    def __init__(
        self,
        slots: int,
        *,
        queue: int,
        per_address: int,
        wait: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if slots < 1 or queue < 0 or per_address < 1 or wait < 0:
            raise ValueError("slots and per_address must be at least 1, queue and wait at least 0")
        self.slots = slots
        self.queue = queue
        self.per_address = per_address
        self.wait = wait
        self._clock = clock
        self._lock = threading.Lock()
        self._running = 0
        self._held: collections.Counter[str] = collections.Counter()
        self._waiting: dict[str, collections.deque[_Waiter]] = {}
        self._turns: collections.deque[str] = collections.deque()  # addresses, round-robin
        self._queued = 0

    @property
    def waiting(self) -> int:
        """How many callers wait for a slot now."""
        return self._queued

    @property
    def running(self) -> int:
        """How many callers hold a slot now."""
        return self._running

    @contextlib.contextmanager
    def __call__(self, address: str | None) -> Iterator[None]:
        """Hold a hashing slot for the caller from ``address`` (None: a local caller).

        Raises:
            BusyError: this address holds its share, the queue is full, or no slot came
                free within ``wait`` seconds; nothing was hashed.
        """
        key = _LOCAL if address is None else address
        self._acquire(key)
        try:
            yield
        finally:
            self._release(key)

    def _acquire(self, key: str) -> None:
        with self._lock:
            if key != _LOCAL and self._held[key] >= self.per_address:
                raise BusyError("this client address holds its share of password hashes")
            if self._running < self.slots and not self._queued:
                self._running += 1
                self._held[key] += 1
                return
            if self._queued >= self.queue and not self._drop_for(key):
                raise BusyError("too many requests wait for a password hash")
            waiter = _Waiter(key)
            line = self._waiting.get(key)
            if line is None:
                line = self._waiting[key] = collections.deque()
                self._turns.append(key)
            line.append(waiter)
            self._queued += 1
            self._held[key] += 1
        deadline = self._clock() + self.wait
        while not waiter.event.is_set():
            left = deadline - self._clock()
            if left <= 0:
                break
            waiter.event.wait(left)
        with self._lock:
            granted = waiter.granted
            if not granted:
                if not waiter.event.is_set():  # timed out; still in line (a dropped one is not)
                    self._leave_line(waiter)
                self._forget(key)
        if not granted:
            raise BusyError("no password-hashing slot came free in time")
        if current_request().client_gone():
            self._release(key)  # to the next waiter, unspent
            raise BusyError("the client went away while it waited for a password hash")

    def _release(self, key: str) -> None:
        with self._lock:
            self._forget(key)
            if not self._turns:
                self._running -= 1
                return
            address = self._turns.popleft()
            line = self._waiting[address]
            waiter = line.popleft()
            if line:
                self._turns.append(address)  # its next waiter waits for the others' turns
            else:
                del self._waiting[address]
            self._queued -= 1
            waiter.granted = True  # the slot passes straight to it: running stays the same
            waiter.event.set()

    def _drop_for(self, key: str) -> bool:
        """Make room for a caller from ``key`` by dropping a waiter of a busier address.

        The newest waiter of the address with the most waiters is dropped, when that address has
        more than ``key`` would; else False."""
        if not self._waiting:
            return False
        heaviest = max(self._waiting, key=lambda address: len(self._waiting[address]))
        mine = len(self._waiting.get(key, ()))
        if len(self._waiting[heaviest]) <= mine + 1:
            return False
        waiter = self._waiting[heaviest][-1]
        self._leave_line(waiter)
        waiter.event.set()  # wakes to find itself not granted: refused
        return True

    def _leave_line(self, waiter: _Waiter) -> None:
        line = self._waiting[waiter.address]
        line.remove(waiter)
        if not line:
            del self._waiting[waiter.address]
            self._turns.remove(waiter.address)
        self._queued -= 1

    def _forget(self, key: str) -> None:
        self._held[key] -= 1
        if self._held[key] <= 0:
            del self._held[key]
