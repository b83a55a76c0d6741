"""jwtlite: a strict, fast JWS/JWT library on ``cryptography``, and a small auth service.

The library needs only ``cryptography`` and never loads falcon, waitress or a database
driver. Resource servers verify the service's tokens with :class:`JWKSClient` and the WSGI
middleware :class:`BearerAuth`. The service is a layer above it:
``from jwtlite.web import create_app``.
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
    JWKSFetchError,
    JWTError,
    MalformedTokenError,
    MissingClaimError,
)
from jwtlite.jws import get_unverified_header
from jwtlite.jwt import decode, decode_complete, encode
from jwtlite.keys import Key, KeySet, KeySource
from jwtlite.resource import CLAIMS_ENVIRON_KEY, BearerAuth, JWKSClient

__version__ = "0.1.0"

__all__ = [
    "CLAIMS_ENVIRON_KEY",
    "AlgorithmNotAllowedError",
    "BearerAuth",
    "ExpiredTokenError",
    "ImmatureTokenError",
    "InvalidAudienceError",
    "InvalidClaimError",
    "InvalidIssuerError",
    "InvalidKeyError",
    "InvalidSignatureError",
    "JWKSClient",
    "JWKSFetchError",
    "JWTError",
    "Key",
    "KeySet",
    "KeySource",
    "MalformedTokenError",
    "MissingClaimError",
    "decode",
    "decode_complete",
    "encode",
    "get_unverified_header",
]
