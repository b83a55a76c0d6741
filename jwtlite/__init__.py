"""jwtlite: a strict, fast JWS/JWT library on ``cryptography``, and a small auth service.

The library needs only ``cryptography``. ``create_app`` (the Falcon service) is imported
lazily, so ``import jwtlite`` never loads falcon, waitress or sqlite3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jwtlite.errors import (
    AlgorithmNotAllowedError,
    ExpiredTokenError,
    ImmatureTokenError,
    InvalidAudienceError,
    InvalidClaimError,
    InvalidIssuerError,
    InvalidKeyError,
    InvalidSignatureError,
    JWTError,
    MalformedTokenError,
    MissingClaimError,
)
from jwtlite.jws import get_unverified_header
from jwtlite.jwt import decode, decode_complete, encode
from jwtlite.keys import Key, KeySet

if TYPE_CHECKING:
    from jwtlite.app import create_app as create_app

__version__ = "0.1.0"

__all__ = [
    "AlgorithmNotAllowedError",
    "ExpiredTokenError",
    "ImmatureTokenError",
    "InvalidAudienceError",
    "InvalidClaimError",
    "InvalidIssuerError",
    "InvalidKeyError",
    "InvalidSignatureError",
    "JWTError",
    "Key",
    "KeySet",
    "MalformedTokenError",
    "MissingClaimError",
    "create_app",
    "decode",
    "decode_complete",
    "encode",
    "get_unverified_header",
]


def __getattr__(name: str) -> Any:
    # The service pulls in falcon and sqlite3; library users should not pay for them.
    if name == "create_app":
        from jwtlite.app import create_app  # noqa: PLC0415

        return create_app
    raise AttributeError(f"module 'jwtlite' has no attribute {name!r}")
