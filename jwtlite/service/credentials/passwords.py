"""Password hashing with Argon2id (RFC 9106) through ``cryptography``.

Hashes are PHC strings (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``) that name their own
method and cost, so the cost can rise later: :meth:`PasswordHasher.needs_rehash` tells the
caller when a stored hash was made with other parameters, and old rows keep verifying.
The work happens in OpenSSL/Rust code that releases the GIL, so logins on different threads
hash in parallel, on a small pool of hashing threads (one per core by default): more
concurrent hashes than cores only queue inside the CPU, and every thread that ever hashed
keeps its ~19 MiB Argon2 buffer in its malloc arena, so eight request threads hashing at once
left a process at ~200 MiB after a login burst. The pool bounds both.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

__all__ = ["PasswordHasher"]

_T = TypeVar("_T")
# The cores the process may use, read at import, before a launcher holds the Python threads
# to one of them (jwtlite.cli.placement): hashing threads take them all back.
_ALL_CPUS = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def _on_every_core() -> None:
    """A hashing thread's start: run on every core the process was given."""
    if _ALL_CPUS is not None:
        # OSError: the process was given fewer cores since; it keeps what it has.
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, _ALL_CPUS)


# Only what we write is accepted: version 19, the three parameters in this order, unpadded
# standard base64 for salt and hash. Anything else is "not ours" and never verifies.
_PHC = re.compile(
    r"\$argon2id\$v=19\$m=(?P<m>[0-9]{1,10}),t=(?P<t>[0-9]{1,10}),p=(?P<p>[0-9]{1,3})"
    r"\$(?P<salt>[A-Za-z0-9+/]{11,})\$(?P<hash>[A-Za-z0-9+/]{6,})"
)

# A stored string is data, not code: a corrupted or planted row must not make one login
# allocate gigabytes or spin for minutes. These bounds sit far above any sane setting.
_MAX_MEMORY_KIB = 4 * 1024 * 1024
_MAX_ITERATIONS = 1024
_MAX_LANES = 255


@dataclass(frozen=True, slots=True)
class _Parameters:
    memory_kib: int
    iterations: int
    lanes: int
    salt_length: int
    hash_length: int


def _b64_length(text: str) -> int:
    """Decoded length of unpadded base64 text."""
    return len(text) * 3 // 4


def _parse(encoded: str) -> _Parameters | None:
    match = _PHC.fullmatch(encoded)
    if match is None:
        return None
    return _Parameters(
        memory_kib=int(match["m"]),
        iterations=int(match["t"]),
        lanes=int(match["p"]),
        salt_length=_b64_length(match["salt"]),
        hash_length=_b64_length(match["hash"]),
    )


def _matches(secret: bytes, encoded: str) -> bool:
    try:
        Argon2id.verify_phc_encoded(secret, encoded)
    except (InvalidKey, ValueError):
        # InvalidKey: mismatch or undecodable parts; ValueError: parameters that
        # cryptography refuses (m < 8p, t = 0, salt too short).
        return False
    return True


def _encode(password: str) -> bytes:
    # "surrogatepass" because JSON can carry a lone surrogate ("\ud800"): hashing must not
    # crash on it, and the mapping stays injective (such code points never occur in UTF-8).
    return password.encode("utf-8", "surrogatepass")


class PasswordHasher:
    """Hash and verify passwords with Argon2id.

    The defaults (19 MiB, 2 passes, 1 lane) are OWASP's recommended minimum for Argon2id.

    Args:
        memory_kib: memory cost in KiB (at least ``8 * lanes``).
        iterations: number of passes (at least 1).
        lanes: degree of parallelism (at least 1).
        salt_length: bytes of fresh random salt per hash (at least 8).
        hash_length: bytes of output (at least 4).
        concurrency: how many hashes may run at once (the size of the hashing pool); None
            or 0 means one per core. Who gets to hash when is
            :class:`~jwtlite.service.admission.Admission`'s business.
        in_flight: called with 1 when a hash enters the pool (running or waiting for a
            thread) and with -1 when it leaves, for the "hashes in flight" gauge.

    Raises:
        ValueError: a parameter is out of range.
    """

    def __init__(
        self,
        *,
        memory_kib: int = 19456,
        iterations: int = 2,
        lanes: int = 1,
        salt_length: int = 16,
        hash_length: int = 32,
        concurrency: int | None = None,
        in_flight: Callable[[int], None] | None = None,
    ) -> None:
        if not 1 <= lanes <= _MAX_LANES:
            raise ValueError(f"lanes must be between 1 and {_MAX_LANES}")
        if not 8 * lanes <= memory_kib <= _MAX_MEMORY_KIB:
            raise ValueError(f"memory_kib must be between 8 * lanes and {_MAX_MEMORY_KIB}")
        if not 1 <= iterations <= _MAX_ITERATIONS:
            raise ValueError(f"iterations must be between 1 and {_MAX_ITERATIONS}")
        if salt_length < 8:
            raise ValueError("salt_length must be at least 8")
        if hash_length < 4:
            raise ValueError("hash_length must be at least 4")
        if concurrency is not None and concurrency < 0:
            raise ValueError("concurrency must be at least 0")
        self._parameters = _Parameters(memory_kib, iterations, lanes, salt_length, hash_length)
        self.concurrency = concurrency or os.cpu_count() or 1
        self._pool = ThreadPoolExecutor(
            self.concurrency, thread_name_prefix="jwtlite-hash", initializer=_on_every_core
        )
        # A hash of a random password with our own parameters: verifying against it costs
        # exactly what a real verification costs, so an unknown user is not told apart by time.
        self._in_flight: Callable[[int], None] | None = None
        self._dummy_hash = self.hash(os.urandom(16).hex())
        self._in_flight = in_flight  # after the dummy hash: that one is no caller's

    def _in_pool(self, work: Callable[[], _T]) -> _T:
        in_flight = self._in_flight
        if in_flight is None:
            return self._pool.submit(work).result()
        in_flight(1)
        try:
            return self._pool.submit(work).result()
        finally:
            in_flight(-1)

    def hash(self, password: str) -> str:
        """Hash ``password`` with a fresh random salt.

        Returns:
            The PHC string, e.g. ``$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>``.
        """
        params = self._parameters
        kdf = Argon2id(
            salt=os.urandom(params.salt_length),
            length=params.hash_length,
            iterations=params.iterations,
            lanes=params.lanes,
            memory_cost=params.memory_kib,
        )
        secret = _encode(password)
        return self._in_pool(lambda: kdf.derive_phc_encoded(secret))

    def verify(self, password: str, encoded: str) -> bool:
        """Tell whether ``password`` matches the stored hash ``encoded``.

        Never raises on a bad stored value: a malformed, foreign (bcrypt, argon2i, ...) or
        absurdly expensive string simply does not match. The comparison of the derived key is
        constant-time (done inside ``cryptography``).
        """
        params = _parse(encoded)
        if params is None or not self._affordable(params):
            return False
        secret = _encode(password)
        return self._in_pool(lambda: _matches(secret, encoded))

    def needs_rehash(self, encoded: str) -> bool:
        """Tell whether ``encoded`` should be replaced by a fresh :meth:`hash` after login.

        True when it is not an Argon2id PHC string of ours, or when any of its parameters
        (memory, passes, lanes, salt or hash length) is below this hasher's: a raised cost
        reaches every password at its next login, a lowered one waits for a password
        change. Never for a hash above ours in every respect: instances of different costs on
        one database (a cost change rolling out) would otherwise rewrite each other's hashes
        at every login, and each rewrite makes a password change racing it start over.
        """
        params = _parse(encoded)
        if params is None or not self._affordable(params):
            return True
        ours = self._parameters
        return (
            params.memory_kib < ours.memory_kib
            or params.iterations < ours.iterations
            or params.lanes < ours.lanes
            or params.salt_length < ours.salt_length
            or params.hash_length < ours.hash_length
        )

    def dummy_verify(self, password: str) -> None:
        """Spend the time of one verification, for a user who does not exist."""
        self.verify(password, self._dummy_hash)

    @staticmethod
    def _affordable(params: _Parameters) -> bool:
        return (
            params.memory_kib <= _MAX_MEMORY_KIB
            and params.iterations <= _MAX_ITERATIONS
            and params.lanes <= _MAX_LANES
        )
