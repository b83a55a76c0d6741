"""User enumeration by timing: an unknown username costs what a wrong password costs.

Uses the default Argon2id parameters (the real cost of a login, ~20 ms a verification), since
with cheap hashing the difference we look for would drown in noise or vanish. The machine is
shared, so the series are interleaved (each pair in alternating order) and compared by their
medians, which one slow outlier does not move.
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
    """Medians of unknown-user, wrong-password and inactive-user logins differ by < 10 %."""
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
    times: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    for i in range(TRIES):
        order = order[1:] + order[:1]  # each case goes first as often as the others
        for name in order:
            times[name].append(timed_failed_login(client, *cases[name](i)))
    medians = {name: statistics.median(series) for name, series in times.items()}
    report = ", ".join(f"{name} {median * 1000:.2f} ms" for name, median in medians.items())
    base = medians["wrong password"]
    for median in medians.values():
        assert relative_difference(median, base) < MAX_RELATIVE_DIFFERENCE, report
    # The hash really is the default, expensive one: the test measures what production does.
    assert base > 0.002, report
