"""Password hashing: Argon2id PHC hashes, verification, rehash, dummy verify."""

from __future__ import annotations

import base64
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from jwtlite.service.credentials import passwords
from jwtlite.service.credentials.passwords import PasswordHasher

CHEAP = {"memory_kib": 1024, "iterations": 1}


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(**CHEAP)


# Made once with CHEAP for "correct horse battery staple"; a fixed, valid PHC string.
STORED = (
    "$argon2id$v=19$m=1024,t=1,p=1$qCjhjYc+1+XmxhPyEVAa5g"
    "$97a1TgvYfj7ElSctMfIyJbikQeh2DdiQl45oA1yfscs"
)
_SALT_AND_HASH = STORED.split("$", 4)[4]
_SALT = "MDEyMzQ1Njc4OWFiY2RlZg"  # 16 bytes
_DIGEST = "A" * 43  # 32 zero bytes


@pytest.fixture
def stored() -> str:
    return STORED


def test_default_parameters_appear_in_the_phc_string() -> None:
    encoded = PasswordHasher().hash("pw")
    match = re.fullmatch(
        r"\$argon2id\$v=19\$m=19456,t=2,p=1\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)", encoded
    )
    assert match is not None
    assert len(base64.b64decode(match[1] + "==")) == 16
    assert len(base64.b64decode(match[2] + "=")) == 32


def test_hash_verifies_and_salts_freshly(hasher: PasswordHasher, stored: str) -> None:
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert hasher.verify("correct horse battery staple", stored)
    assert hasher.hash("correct horse battery staple") != stored


@pytest.mark.parametrize(
    "attempt",
    [
        "correct horse battery stapl",
        "Correct horse battery staple",
        " correct horse battery staple",
        "correct horse battery staple ",
        "",
    ],
    ids=["truncated", "case-changed", "leading-space", "trailing-space", "empty"],
)
def test_wrong_password_is_refused(hasher: PasswordHasher, stored: str, attempt: str) -> None:
    assert not hasher.verify(attempt, stored)


@pytest.mark.parametrize(
    "password",
    ["pässwörd ✓", "\u0000nul inside", "\ud800 lone surrogate", "x" * 5000],
    ids=["non-ascii", "nul-byte", "lone-surrogate", "very-long"],
)
def test_unusual_passwords_round_trip(hasher: PasswordHasher, password: str) -> None:
    encoded = hasher.hash(password)
    assert hasher.verify(password, encoded)
    assert not hasher.verify(password + "x", encoded)


def test_unicode_is_not_normalised(hasher: PasswordHasher) -> None:
    # "é" precomposed vs "e" + combining acute: different bytes, different passwords.
    encoded = hasher.hash("caf\u00e9-secret")
    assert not hasher.verify("cafe\u0301-secret", encoded)


MALFORMED = {
    "empty": "",
    "garbage": "not a hash",
    "plaintext-password": "correct horse battery staple",
    "bcrypt": "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
    "argon2i": "$argon2i$v=19$m=1024,t=1,p=1$" + _SALT_AND_HASH,
    "argon2d": "$argon2d$v=19$m=1024,t=1,p=1$" + _SALT_AND_HASH,
    "old-version": "$argon2id$v=16$m=1024,t=1,p=1$" + _SALT_AND_HASH,
    "no-version": "$argon2id$m=1024,t=1,p=1$" + _SALT_AND_HASH,
    "reordered-parameters": "$argon2id$v=19$t=1,m=1024,p=1$" + _SALT_AND_HASH,
    "truncated": STORED[:-5],
    "padded-base64": STORED + "=",
    "trailing-newline": STORED + "\n",
    "bad-base64": STORED[:-3] + "!!!",
    "memory-below-minimum": f"$argon2id$v=19$m=1,t=1,p=1${_SALT}${_DIGEST}",
    "zero-iterations": f"$argon2id$v=19$m=1024,t=0,p=1${_SALT}${_DIGEST}",
    "zero-lanes": f"$argon2id$v=19$m=1024,t=1,p=0${_SALT}${_DIGEST}",
    "huge-memory": f"$argon2id$v=19$m=4294967295,t=1,p=1${_SALT}${_DIGEST}",
    "huge-iterations": f"$argon2id$v=19$m=1024,t=99999999,p=1${_SALT}${_DIGEST}",
    "short-salt": f"$argon2id$v=19$m=1024,t=1,p=1$YWJj${_DIGEST}",
}


@pytest.mark.parametrize("encoded", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_stored_hash_never_verifies_nor_raises(
    hasher: PasswordHasher, encoded: str
) -> None:
    assert hasher.verify("correct horse battery staple", encoded) is False
    assert hasher.needs_rehash(encoded)


def test_the_valid_original_of_the_malformed_cases_verifies(hasher: PasswordHasher) -> None:
    assert hasher.verify("correct horse battery staple", STORED)


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        (CHEAP, False),
        ({**CHEAP, "memory_kib": 2048}, True),
        ({**CHEAP, "iterations": 2}, True),
        ({**CHEAP, "lanes": 2}, True),
        ({**CHEAP, "salt_length": 32}, True),
        ({**CHEAP, "hash_length": 64}, True),
    ],
    ids=["same", "memory-raised", "iterations-raised", "lanes", "salt-length", "hash-length"],
)
def test_needs_rehash_detects_changed_parameters(
    stored: str, parameters: dict[str, int], expected: bool
) -> None:
    assert PasswordHasher(**parameters).needs_rehash(stored) is expected


@pytest.mark.parametrize(
    "lowered", [{"memory_kib": 512}, {"lanes": 1, "memory_kib": 2048}, {"salt_length": 8}]
)
def test_a_hash_above_our_cost_is_not_rewritten(lowered: dict[str, int]) -> None:
    """The fourth outside attack: two instances of different costs on one database rewrote
    each other's hashes at every login, and each rewrite defeated a racing password change
    (401, nothing changed, the old password still working)."""
    strong = PasswordHasher(memory_kib=2048, iterations=2, lanes=2, salt_length=16)
    stored = strong.hash("correct horse battery staple")
    weaker = PasswordHasher(**{"memory_kib": 2048, "iterations": 2, "lanes": 2, **lowered})
    assert not weaker.needs_rehash(stored)
    assert weaker.verify("correct horse battery staple", stored)
    # ...while the stronger instance does upgrade what the weaker one wrote.
    assert strong.needs_rehash(weaker.hash("correct horse battery staple"))


def test_old_hash_still_verifies_under_new_parameters(stored: str) -> None:
    stronger = PasswordHasher(memory_kib=2048, iterations=2)
    assert stronger.needs_rehash(stored)
    assert stronger.verify("correct horse battery staple", stored)
    fresh = stronger.hash("correct horse battery staple")
    assert not stronger.needs_rehash(fresh)


def test_dummy_verify_runs_a_real_verification_with_our_parameters(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, bool]] = []
    real = PasswordHasher.verify

    def spy(self: PasswordHasher, password: str, encoded: str) -> bool:
        result = real(self, password, encoded)
        seen.append((encoded, result))
        return result

    monkeypatch.setattr(PasswordHasher, "verify", spy)
    hasher.dummy_verify("anything")
    hasher.dummy_verify("something else")
    # One stored hash (made once), with our parameters, fully verified: an unknown user
    # costs what a wrong password costs.
    assert len(seen) == 2
    (first, first_result), (second, second_result) = seen
    assert first == second
    assert first.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert not hasher.needs_rehash(first)
    assert first_result is second_result is False


@pytest.mark.parametrize(
    "parameters",
    [
        {"memory_kib": 7},
        {"iterations": 0},
        {"lanes": 0},
        {"memory_kib": 8, "lanes": 2},
        {"salt_length": 4},
        {"hash_length": 3},
    ],
    ids=[
        "memory-too-small",
        "no-iterations",
        "no-lanes",
        "memory-below-8x-lanes",
        "short-salt",
        "short-hash",
    ],
)
def test_bad_parameters_are_refused_at_construction(parameters: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be"):
        PasswordHasher(**parameters)


def test_parameters_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        PasswordHasher(1024)  # type: ignore[call-arg]


# -- the hashing pool ------------------------------------------------------------------------


def test_hashes_run_on_a_pool_of_the_configured_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight request threads verifying at once use two hashing threads, never more: the
    bound on concurrent Argon2 buffers (~19 MiB each at the default cost)."""
    lock = threading.Lock()
    active = 0
    peak = 0
    threads: set[str] = set()
    original = passwords._matches

    def spy(secret: bytes, encoded: str) -> bool:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
            threads.add(threading.current_thread().name)
        try:
            return original(secret, encoded)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(passwords, "_matches", spy)
    hasher = PasswordHasher(memory_kib=4096, iterations=1, concurrency=2)
    encoded = hasher.hash("password")
    barrier = threading.Barrier(8)

    def login(_: int) -> list[bool]:
        barrier.wait(10)
        return [hasher.verify("password", encoded) for _ in range(3)]

    with ThreadPoolExecutor(8) as pool:
        results = [ok for batch in pool.map(login, range(8)) for ok in batch]
    assert results == [True] * 24
    assert peak == 2
    assert len(threads) == 2
    assert all(name.startswith("jwtlite-hash") for name in threads)


def test_default_pool_is_one_thread_per_core() -> None:
    assert PasswordHasher(memory_kib=1024, iterations=1).concurrency == (os.cpu_count() or 1)


def test_negative_concurrency_is_refused() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        PasswordHasher(concurrency=-1)
