"""The throttle's waits for attempts in flight: who may wait, and how many at once."""

from __future__ import annotations

import threading
import time

from jwtlite.service.errors import ThrottledError
from jwtlite.service.throttle import IN_FLIGHT_WAITERS, _InFlight


def _refuse() -> None:
    raise ThrottledError(300)


def test_waiters_of_all_addresses_together_are_bounded() -> None:
    """The fourth outside attack: each of 24 addresses parked 8 logins in this wait, outside
    the hashing queue, and verification, refresh and /health slowed to seconds for want of
    threads."""
    flights = _InFlight(wait=2.0, max_waiters=8, max_total=IN_FLIGHT_WAITERS)
    addresses = [f"10.0.0.{n}" for n in range(24)]
    outcomes: dict[str, list[float]] = {"waited": [], "refused": []}
    lock = threading.Lock()
    release = threading.Event()

    def attempt(address: str) -> None:
        began = time.monotonic()
        try:
            flights.take(_refuse, (address, "victim"))
        except ThrottledError:
            with lock:
                kind = "waited" if time.monotonic() - began > 0.5 else "refused"
                outcomes[kind].append(time.monotonic() - began)

    def hold(address: str) -> None:
        with flights.held(address, "victim"):
            release.wait(5)

    holders = [threading.Thread(target=hold, args=(a,)) for a in addresses]
    for thread in holders:
        thread.start()
    time.sleep(0.1)  # every address has an attempt in flight
    callers = [threading.Thread(target=attempt, args=(a,)) for a in addresses for _ in range(8)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join(10)
    release.set()
    for thread in holders:
        thread.join(10)
    assert len(outcomes["waited"]) == IN_FLIGHT_WAITERS
    assert len(outcomes["refused"]) == 24 * 8 - IN_FLIGHT_WAITERS


def test_one_address_still_gets_its_waiters_when_nobody_else_waits() -> None:
    """Eight devices of one person behind one address: five are checked, three wait."""
    flights = _InFlight(wait=2.0, max_waiters=8, max_total=IN_FLIGHT_WAITERS)
    waiters = 3
    served: list[bool] = []
    state = {"free": False}

    def take() -> None:
        if not state["free"]:
            raise ThrottledError(300)

    def attempt() -> None:
        flights.take(take, ("10.0.0.1", "alice"))
        served.append(True)

    with flights.held("10.0.0.1", "alice"):
        callers = [threading.Thread(target=attempt) for _ in range(waiters)]
        for thread in callers:
            thread.start()
        time.sleep(0.2)
        state["free"] = True
    for thread in callers:
        thread.join(5)
    assert served == [True] * waiters
