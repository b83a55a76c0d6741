"""User enumeration by timing: an unknown username costs what a wrong password costs.

Uses the default Argon2id parameters (the real cost of a login, ~20 ms a verification), since
with cheap hashing the difference we look for would drown in noise or vanish. The machine is
shared, so each case is timed beside a wrong password in the same round and the ratios are
compared by their medians, which neither one slow outlier nor a slow spell moves.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest

from support import PASSWORD, register

TOKEN = "/accounts/token/"
TRIES = 40
MAX_RELATIVE_DIFFERENCE = 0.10
BAD_CREDENTIALS = {"detail": "No active account found with the given credentials"}


def default_hash_settings() -> dict[str, Any]:
    """The Argon2 fields of ``Settings`` at their defaults (overriding the tests' FAST_HASH)."""
    from jwtlite.service.settings import Settings

    return {
        field.name: field.default
        for field in dataclasses.fields(Settings)
        if field.name.startswith("password_hash_")
    }


def timed_failed_login(client: Any, username: str, password: str) -> float:
    """Seconds for one login that must fail with the one credentials message."""
    began = time.perf_counter()
    response = client.post_json(
        TOKEN, {"username": username, "password": password}, expect_errors=True
    )
    elapsed = time.perf_counter() - began
    assert response.status_int == 401, response.body
    assert response.json == BAD_CREDENTIALS
    return elapsed


def relative_difference(a: float, b: float) -> float:
    """``|a - b| / max(a, b)``."""
    return abs(a - b) / max(a, b)


@pytest.mark.slow
def test_unknown_user_and_wrong_password_take_the_same_time(
    make_client: Callable[..., Any],
) -> None:
    """Unknown-user and inactive-user logins take the wrong password's time, within 10 %."""
    client = make_client(
        login_max_failures=1_000_000,
        login_max_failures_per_address=1_000_000,
        **default_hash_settings(),
    )
    register(client, "alice")
    register(client, "carol")
    assert client.store.set_active("carol", False)
    cases: dict[str, Callable[[int], tuple[str, str]]] = {
        "unknown user": lambda i: (f"nobody{i}", "wrong-password-1"),
        "wrong password": lambda i: ("alice", f"wrong-password-{i}"),
        "inactive user": lambda i: ("carol", PASSWORD),
    }
    for username, password in (case(0) for case in cases.values()):  # warm up every path
        timed_failed_login(client, username, password)
    # A leak is systematic and shows in every measurement; load from other tests is not, so
    # one series that looks unequal is measured once more before the test says so.
    ratios = measure_ratios(client, cases)
    if not all_alike(ratios):
        ratios = measure_ratios(client, cases)
    report = ", ".join(f"{name} {ratio:.3f} of wrong password" for name, ratio in ratios.items())
    assert all_alike(ratios), report


def measure_ratios(
    client: Any, cases: dict[str, Callable[[int], tuple[str, str]]]
) -> dict[str, float]:
    """Each case's median time over the wrong password's, taken in adjacent pairs.

    Every round times each case once, in an order that rotates, and divides by the wrong
    password's time of that same round: a slow spell of the shared machine slows both halves
    of a ratio, so it does not move the median.
    """
    ratios: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    for i in range(TRIES):
        order = order[1:] + order[:1]  # each case goes first as often as the others
        took = {name: timed_failed_login(client, *cases[name](i)) for name in order}
        # The hash really is the default, expensive one: the test measures what production does.
        assert took["wrong password"] > 0.002, took
        for name in cases:
            ratios[name].append(took[name] / took["wrong password"])
    return {name: statistics.median(series) for name, series in ratios.items()}


def all_alike(ratios: dict[str, float]) -> bool:
    """Whether every median ratio is within ``MAX_RELATIVE_DIFFERENCE`` of 1."""
    return all(
        relative_difference(ratio, 1.0) < MAX_RELATIVE_DIFFERENCE for ratio in ratios.values()
    )
