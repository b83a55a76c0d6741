"""Token codec benchmark: jwtlite vs PyJWT vs the bare floor, in one process.

Run: ``python bench/tokens.py`` (needs PyJWT: ``pip install -e '.[test]'``).

For each algorithm it times encode and decode (signature + ``exp``/``iat`` checks) of a
typical access-token payload. Rounds are interleaved (jwtlite, PyJWT, floor, jwtlite, ...)
so that machine noise hits every row alike, and each figure is the median over rounds.
The floor is the least Python can do: for HS256 base64url + ``hmac.digest`` + ``json`` with
no checks; for the others the bare ``cryptography`` sign or verify call.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import json
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jwt as pyjwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

import jwtlite
from jwtlite import Key

TARGETS = {
    # (operation, algorithm): (max ratio to floor, max ratio to PyJWT or None)
    ("decode", "HS256"): (1.5, 0.25),
    ("encode", "HS256"): (1.2, None),
    ("decode", "RS256"): (1.3, None),
    ("decode", "ES256"): (1.3, None),
    ("decode", "EdDSA"): (1.3, None),
    ("encode", "RS256"): (1.1, None),
    ("encode", "ES256"): (1.1, None),
    ("encode", "EdDSA"): (1.1, None),
}


def payload() -> dict[str, Any]:
    now = int(time.time())
    return {
        "token_type": "access",
        "exp": now + 3600,
        "iat": now,
        "jti": "4f1c2a9e8b7d6c5e4f3a2b1c0d9e8f7a",
        "user_id": "42",
    }


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def hs256_floor(secret: bytes, claims: dict[str, Any], token: str) -> tuple[Callable[[], Any], ...]:
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())

    def encode() -> str:
        signing_input = header + b"." + b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = b64(hmac.digest(secret, signing_input, "sha256"))
        return (signing_input + b"." + signature).decode()

    def decode() -> Any:
        signing_input, _, signature = token.encode().rpartition(b".")
        mac = b64(hmac.digest(secret, signing_input, "sha256"))
        if not hmac.compare_digest(mac, signature):
            raise ValueError("bad signature")
        segment = signing_input.partition(b".")[2]
        return json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))

    return encode, decode


def bare_calls(key: Key, token: str) -> tuple[Callable[[], Any], ...]:
    """The bare cryptography sign and verify of this token's signing input."""
    private = key._signing  # the benchmark reaches in to call cryptography directly
    public = key._verifying
    signing_input, _, _ = token.encode().rpartition(b".")
    if key.algorithm == "RS256":
        pad, digest = padding.PKCS1v15(), hashes.SHA256()
        signature = private.sign(signing_input, pad, digest)
        return (
            lambda: private.sign(signing_input, pad, digest),
            lambda: public.verify(signature, signing_input, pad, digest),
        )
    if key.algorithm == "ES256":
        scheme = ec.ECDSA(hashes.SHA256())
        der = private.sign(signing_input, scheme)
        return (
            lambda: private.sign(signing_input, scheme),
            lambda: public.verify(der, signing_input, scheme),
        )
    signature = private.sign(signing_input)
    return (lambda: private.sign(signing_input), lambda: public.verify(signature, signing_input))


def measure(
    candidates: dict[str, Callable[[], Any]], rounds: int, budget: float
) -> dict[str, float]:
    """Median µs per call of each candidate, over interleaved rounds."""
    numbers = {}
    for name, fn in candidates.items():  # calibrate: each round should last ~budget/rounds
        fn()
        single = timeit.timeit(fn, number=20) / 20
        numbers[name] = max(1, int(budget / rounds / len(candidates) / single))
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            samples[name].append(timeit.timeit(fn, number=numbers[name]) / numbers[name] * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def rows(rounds: int, budget: float) -> list[tuple[str, str, dict[str, float]]]:
    claims = payload()
    results = []
    secret = b"s" * 32
    token = jwtlite.encode(claims, secret, "HS256")
    floor_encode, floor_decode = hs256_floor(secret, claims, token)
    results.append(
        (
            "encode",
            "HS256",
            measure(
                {
                    "jwtlite": lambda: jwtlite.encode(claims, secret, "HS256"),
                    "PyJWT": lambda: pyjwt.encode(claims, secret, "HS256"),
                    "floor": floor_encode,
                },
                rounds,
                budget,
            ),
        )
    )
    results.append(
        (
            "decode",
            "HS256",
            measure(
                {
                    "jwtlite": lambda: jwtlite.decode(token, secret, algorithms=["HS256"]),
                    "PyJWT": lambda: pyjwt.decode(token, secret, algorithms=["HS256"]),
                    "floor": floor_decode,
                },
                rounds,
                budget,
            ),
        )
    )
    for algorithm in ("RS256", "ES256", "EdDSA"):
        key = Key.generate(algorithm)
        private_obj, public_obj = key._signing, key._verifying
        token = jwtlite.encode(claims, key)
        bare_sign, bare_verify = bare_calls(key, token)
        results.append(
            (
                "encode",
                algorithm,
                measure(
                    {
                        "jwtlite": lambda key=key: jwtlite.encode(claims, key),
                        "PyJWT": lambda a=algorithm, k=private_obj: pyjwt.encode(claims, k, a),
                        "floor": bare_sign,
                    },
                    rounds,
                    budget,
                ),
            )
        )
        results.append(
            (
                "decode",
                algorithm,
                measure(
                    {
                        "jwtlite": lambda t=token, k=key, a=algorithm: jwtlite.decode(
                            t, k, algorithms=[a]
                        ),
                        "PyJWT": lambda t=token, k=public_obj, a=algorithm: pyjwt.decode(
                            t, k, algorithms=[a]
                        ),
                        "floor": bare_verify,
                    },
                    rounds,
                    budget,
                ),
            )
        )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (median)")
    parser.add_argument("--seconds", type=float, default=1.0, help="time per row and candidate")
    args = parser.parse_args()
    print(
        f"jwtlite {jwtlite.__version__}, PyJWT {pyjwt.__version__}, Python {sys.version.split()[0]}"
    )
    print(f"median of {args.rounds} interleaved rounds; µs per operation\n")
    header = (
        f"{'op':7}{'alg':7}{'jwtlite':>10}{'PyJWT':>10}{'floor':>10}"
        f"{'/floor':>9}{'/PyJWT':>9}  target"
    )
    print(header)
    print("-" * len(header))
    missed = 0
    for op, algorithm, figures in rows(args.rounds, args.seconds * 3):
        to_floor = figures["jwtlite"] / figures["floor"]
        to_pyjwt = figures["jwtlite"] / figures["PyJWT"]
        max_floor, max_pyjwt = TARGETS[(op, algorithm)]
        met = to_floor <= max_floor and (max_pyjwt is None or to_pyjwt <= max_pyjwt)
        missed += not met
        target = f"≤{max_floor}xfloor" + (f", ≤{max_pyjwt}xPyJWT" if max_pyjwt else "")
        print(
            f"{op:7}{algorithm:7}{figures['jwtlite']:10.2f}{figures['PyJWT']:10.2f}"
            f"{figures['floor']:10.2f}{to_floor:8.2f}x{to_pyjwt:8.2f}x  {target} "
            f"{'met' if met else 'MISSED'}"
        )
    print(f"\n{len(TARGETS) - missed}/{len(TARGETS)} targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
