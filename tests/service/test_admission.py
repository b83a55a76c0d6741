"""Admission to hashing: callers wait their turn, round-robin across addresses, within limits.

Each test drives real threads through one :class:`Admission` and observes the order in which
they get a slot; a slot is held until the test lets its holder go.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from jwtlite.service.admission import Admission
from jwtlite.service.context import RequestContext, request_context
from jwtlite.service.errors import BusyError


class Caller:
    """A thread that takes a slot for ``address`` and holds it until :meth:`leave`."""

    def __init__(self, admission: Admission, address: str | None, served: list[str]) -> None:
        self.address = address
        self.refused: BusyError | None = None
        self.inside = threading.Event()
        self._go = threading.Event()
        self._served = served
        self._admission = admission
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._admission(self.address):
                self._served.append(str(self.address))
                self.inside.set()
                self._go.wait(10)
        except BusyError as exc:
            self.refused = exc

    def let_go(self) -> None:
        self._go.set()

    def leave(self) -> None:
        self.let_go()
        self._thread.join(10)

    def join(self) -> None:
        self._thread.join(10)


@contextmanager
def admission(**options: float) -> Iterator[tuple[Admission, list[str], list[Caller]]]:
    limits: dict[str, float] = {"slots": 1, "queue": 10, "per_address": 8, "wait": 10, **options}
    gate = Admission(
        int(limits["slots"]),
        queue=int(limits["queue"]),
        per_address=int(limits["per_address"]),
        wait=limits["wait"],
    )
    served: list[str] = []
    callers: list[Caller] = []
    try:
        yield gate, served, callers
    finally:
        for caller in callers:
            caller.let_go()
        for caller in callers:
            caller.join()


def arrive(
    gate: Admission,
    served: list[str],
    callers: list[Caller],
    address: str | None,
    *,
    settled: Callable[[], bool] | None = None,
) -> Caller:
    """A new caller, once it holds a slot or waits in line (or was refused), or once
    ``settled`` says what it changed has happened."""
    before = gate.waiting + gate.running
    caller = Caller(gate, address, served)
    callers.append(caller)
    deadline = time.monotonic() + 5
    if settled is None:
        settled = lambda: gate.waiting + gate.running != before  # noqa: E731
    while not settled() and caller.refused is None:
        if time.monotonic() > deadline:  # pragma: no cover - a hang is the failure
            raise AssertionError("the caller neither entered nor queued")
        time.sleep(0.001)
    return caller


def serve_all(callers: list[Caller]) -> None:
    """Let every admitted caller through, each as soon as it holds a slot, in slot order."""
    left = [caller for caller in callers if caller.refused is None]
    deadline = time.monotonic() + 10
    while left:
        assert time.monotonic() < deadline, "a caller never got its slot"
        for caller in [caller for caller in left if caller.inside.is_set()]:
            caller.leave()
            left.remove(caller)
        time.sleep(0.001)


def test_a_free_slot_is_taken_at_once() -> None:
    with admission(slots=2) as (gate, served, callers):
        arrive(gate, served, callers, "a")
        arrive(gate, served, callers, "b")
        assert gate.running == 2
        assert gate.waiting == 0
        assert served == ["a", "b"]


def test_callers_beyond_the_slots_wait_instead_of_being_refused() -> None:
    with admission(slots=1) as (gate, served, callers):
        first = arrive(gate, served, callers, "a")
        later = [arrive(gate, served, callers, f"10.0.0.{n}") for n in range(5)]
        assert gate.waiting == 5
        first.leave()
        serve_all(later)
        assert served == ["a", *(f"10.0.0.{n}" for n in range(5))]
        assert all(caller.refused is None for caller in later)
        assert (gate.running, gate.waiting) == (0, 0)


def test_addresses_take_turns_so_a_busy_one_cannot_starve_the_others() -> None:
    with admission(slots=1) as (gate, served, callers):
        holder = arrive(gate, served, callers, "busy")
        flood = [arrive(gate, served, callers, "busy") for _ in range(4)]
        honest = [arrive(gate, served, callers, name) for name in ("x", "y")]
        holder.leave()
        serve_all(flood + honest)
        # The holder, then one of busy's waiters, then x and y in their turns, then the rest.
        assert served == ["busy", "busy", "x", "y", "busy", "busy", "busy"]


def test_an_address_holding_its_share_is_refused_at_once() -> None:
    with admission(slots=1, per_address=3) as (gate, served, callers):
        for _ in range(3):
            arrive(gate, served, callers, "office")
        started = time.perf_counter()
        extra = arrive(gate, served, callers, "office")
        extra.join()
        assert isinstance(extra.refused, BusyError)
        assert time.perf_counter() - started < 1
        assert arrive(gate, served, callers, "neighbour").refused is None


def test_a_full_queue_drops_the_newest_waiter_of_the_heaviest_address() -> None:
    with admission(slots=1, queue=3) as (gate, served, callers):
        arrive(gate, served, callers, "holder")
        flood = [arrive(gate, served, callers, "flood") for _ in range(3)]
        newcomer = arrive(gate, served, callers, "honest", settled=lambda: bool(flood[-1].refused))
        flood[-1].join()
        assert isinstance(flood[-1].refused, BusyError)
        assert newcomer.refused is None
        assert gate.waiting == 3


def test_a_full_queue_refuses_a_newcomer_from_the_heaviest_address() -> None:
    with admission(slots=1, queue=2) as (gate, served, callers):
        arrive(gate, served, callers, "holder")
        arrive(gate, served, callers, "a")
        arrive(gate, served, callers, "b")
        late = arrive(gate, served, callers, "a")
        late.join()
        assert isinstance(late.refused, BusyError)
        assert gate.waiting == 2


def test_a_caller_gives_up_at_the_deadline_and_leaves_no_trace() -> None:
    with admission(slots=1, wait=0.05, per_address=1) as (gate, served, callers):
        holder = arrive(gate, served, callers, "holder")
        waiter = arrive(gate, served, callers, "late")
        waiter.join()
        assert isinstance(waiter.refused, BusyError)
        assert gate.waiting == 0
        holder.leave()
        assert gate.running == 0
        again = arrive(gate, served, callers, "late")  # its share was given back
        assert again.inside.wait(5)


def test_a_caller_whose_client_left_while_it_waited_passes_its_turn_on() -> None:
    with admission(slots=1) as (gate, served, callers):
        first = arrive(gate, served, callers, "a")
        left = threading.Event()
        outcome: list[str] = []

        def abandoned() -> None:
            request_context.set(RequestContext("r-1", "b", left.is_set))
            try:
                with gate("b"):
                    outcome.append("hashed")
            except BusyError as exc:
                outcome.append(str(exc))

        thread = threading.Thread(target=abandoned, daemon=True)
        thread.start()
        while gate.waiting != 1:
            time.sleep(0.001)
        later = arrive(gate, served, callers, "c")
        left.set()  # its client closes the connection while it waits
        first.leave()
        thread.join(5)
        assert outcome == ["the client went away while it waited for a password hash"]
        serve_all([later])
        assert served == ["a", "c"]
        assert (gate.running, gate.waiting) == (0, 0)


def test_a_local_caller_has_no_share_limit() -> None:
    with admission(slots=1, per_address=1) as (gate, served, callers):
        arrive(gate, served, callers, None)
        second = arrive(gate, served, callers, None)
        assert second.refused is None
        assert gate.waiting == 1


def test_many_threads_never_exceed_the_slots() -> None:
    gate = Admission(2, queue=200, per_address=200, wait=30)
    lock = threading.Lock()
    inside = peak = 0

    def work(index: int) -> None:
        nonlocal inside, peak
        with gate(f"10.0.{index % 7}.1"):
            with lock:
                inside += 1
                peak = max(peak, inside)
            time.sleep(0.001)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert peak == 2
    assert (gate.running, gate.waiting) == (0, 0)


@pytest.mark.parametrize(
    "options",
    [{"slots": 0}, {"queue": -1}, {"per_address": 0}, {"wait": -1}],
    ids=["no-slot", "negative-queue", "no-share", "negative-wait"],
)
def test_impossible_limits_are_refused(options: dict[str, float]) -> None:
    limits: dict[str, float] = {"slots": 1, "queue": 1, "per_address": 1, "wait": 1, **options}
    with pytest.raises(ValueError, match="at least"):
        Admission(
            int(limits["slots"]),
            queue=int(limits["queue"]),
            per_address=int(limits["per_address"]),
            wait=limits["wait"],
        )
