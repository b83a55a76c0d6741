"""jwtlite: a strict, fast JWS/JWT library on ``cryptography``, and a small auth service.

The library needs only ``cryptography`` and never loads falcon, waitress or a database
driver. The service is a layer above it: ``from jwtlite.web import create_app``.
"""

from __future__ import annotations

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
    "decode",
    "decode_complete",
    "encode",
    "get_unverified_header",
]
