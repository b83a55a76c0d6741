"""jwtlite: a strict, fast JWS/JWT library on ``cryptography``, and a small auth service.

Start here::

    import jwtlite

    secret = b"a random secret of 32 bytes or more"
    token = jwtlite.encode({"sub": "42", "exp": 1_900_000_000}, secret, "HS256")
    claims = jwtlite.decode(token, secret, algorithms=["HS256"])  # or a JWTError subclass

    key = jwtlite.Key.generate("ES256")           # a key knows its one algorithm
    token = jwtlite.encode({"sub": "42"}, key)    # header {"alg", "typ", "kid"}
    jwtlite.decode(token, key.public_key(), algorithms=["ES256"])

The names to know: :func:`encode`, :func:`decode` (:func:`decode_complete` also returns the
header), :class:`Key` and :class:`KeySet` (JWK, PEM, JWKS), :func:`get_unverified_header`
(the one reader that does not verify, and says so), and :class:`JWTError`, the base of every
refusal. Resource servers verify the service's tokens with :class:`JWKSClient` and the WSGI
middleware :class:`BearerAuth`.

The library needs only ``cryptography`` and never loads falcon, waitress or a database
driver. The service is a layer above it: ``from jwtlite.web import create_app``. The manual
is the docs site built from ``docs/`` (tutorials, guides, reference).
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
