"""Hostile tokens: one table, one row per attack, each refused with a specific JWTError.

Tokens the library would never produce are built by :func:`forge` and :func:`assemble`, which
sign with ``hmac``/``cryptography`` directly so that the attacks do not depend on the code
under test.
"""

from __future__ import annotations

import base64
import datetime
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

import jwtlite
from jwtlite import (
    AlgorithmNotAllowedError,
    ExpiredTokenError,
    ImmatureTokenError,
    InvalidAudienceError,
    InvalidClaimError,
    InvalidIssuerError,
    InvalidKeyError,
    InvalidSignatureError,
    JWTError,
    Key,
    KeySet,
    MalformedTokenError,
    MissingClaimError,
)

NOW = 1_700_000_000

# -- keys (generated once) --------------------------------------------------------------------

SECRET = b"hostile-tests-secret-0123456789ab"  # 33 bytes: long enough for HS256 only
SECRET64 = b"S" * 64
ATTACKER_SECRET = b"attacker-secret-0123456789abcdefgh"
RSA_PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC = RSA_PRIVATE.public_key()
ATTACKER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_PRIVATE = ec.generate_private_key(ec.SECP256R1())
EC_PUBLIC = EC_PRIVATE.public_key()
EC384_PRIVATE = ec.generate_private_key(ec.SECP384R1())
ATTACKER_EC = ec.generate_private_key(ec.SECP256R1())
ED_PRIVATE = ed25519.Ed25519PrivateKey.generate()
ATTACKER_ED = ed25519.Ed25519PrivateKey.generate()

RSA_PUBLIC_PEM = RSA_PUBLIC.public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
RSA_PUBLIC_DER = RSA_PUBLIC.public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
)
RSA_PUBLIC_SSH = RSA_PUBLIC.public_bytes(
    serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
)
EC_PUBLIC_PEM = EC_PUBLIC.public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)

HASHES = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
EC_SIZES = {"ES256": 32, "ES384": 48, "ES512": 66}

# -- token building ---------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def json_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value  # raw JSON text, for encodings json.dumps would never produce
    return json.dumps(value, separators=(",", ":")).encode()


def sign(algorithm: str, key: Any, data: bytes, *, der: bool = False) -> bytes:
    """Sign like RFC 7518 would, without going through jwtlite."""
    family, bits = algorithm[:2], algorithm[2:]
    if family == "HS":
        return hmac.digest(key, data, f"sha{bits}")
    if family == "RS":
        return bytes(key.sign(data, padding.PKCS1v15(), HASHES[bits]))
    if family == "PS":
        pss = padding.PSS(mgf=padding.MGF1(HASHES[bits]), salt_length=HASHES[bits].digest_size)
        return bytes(key.sign(data, pss, HASHES[bits]))
    if family == "ES":
        signature = key.sign(data, ec.ECDSA(HASHES[bits]))
        if der:
            return bytes(signature)
        r, s = decode_dss_signature(signature)
        size = EC_SIZES[algorithm]
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return bytes(key.sign(data))  # EdDSA


def assemble(header_segment: str, payload_segment: str, key: Any, algorithm: str) -> str:
    """Join raw segments and sign them as they are (whatever their encoding)."""
    signing_input = f"{header_segment}.{payload_segment}"
    signature = sign(algorithm, key, signing_input.encode("utf-8"))
    return f"{signing_input}.{b64(signature)}"


def forge(
    header: Mapping[str, Any] | bytes,
    payload: Mapping[str, Any] | bytes,
    key: Any,
    algorithm: str | None = None,
) -> str:
    """A token with exactly this header and payload JSON, signed by ``key`` (None: unsigned)."""
    if algorithm is None:
        algorithm = header["alg"] if isinstance(header, Mapping) else "HS256"
    header_segment, payload_segment = b64(json_bytes(header)), b64(json_bytes(payload))
    if key is None:
        return f"{header_segment}.{payload_segment}."
    return assemble(header_segment, payload_segment, key, algorithm)


def with_signature(token: str, signature: bytes) -> str:
    return f"{token.rsplit('.', 1)[0]}.{b64(signature)}"


def signature_bytes(token: str) -> bytes:
    segment = token.rsplit(".", 1)[1]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def non_canonical(segment: str) -> str:
    """The same bytes, with non-zero unused trailing bits in the last character."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(segment) % 4 in (2, 3), "segment has no unused bits"
    return segment[:-1] + alphabet[alphabet.index(segment[-1]) | 1]


def to_standard_alphabet(segment: str) -> str:
    translated = segment.translate(str.maketrans("-_", "+/"))
    assert translated != segment, "segment has no URL-safe-only characters"
    return translated


HEADER = {"alg": "HS256", "typ": "JWT"}
CLAIMS = {"sub": "42", "exp": NOW + 600}


def valid(**claims: Any) -> str:
    return forge(HEADER, {**CLAIMS, **claims}, SECRET)


def hs_token_with_url_safe_signature() -> str:
    """A valid HS256 token whose signature has a '-' or '_' (found deterministically)."""
    for nonce in range(1000):
        token = valid(n=nonce)
        if set(token.rsplit(".", 1)[1]) & {"-", "_"}:
            return token
    raise AssertionError("unreachable")  # pragma: no cover


def header_needing_padding() -> dict[str, Any]:
    """A header whose base64url form is not a multiple of four characters."""
    for extra in range(4):
        header = {**HEADER, "x": "y" * extra}
        if len(b64(json_bytes(header))) % 4 in (2, 3):
            return header
    raise AssertionError("unreachable")  # pragma: no cover


def self_signed_certificate_der(private_key: Any) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(private_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


def attacker_public_jwk() -> dict[str, str]:
    return Key(ATTACKER_EC, "ES256").public_key().public_jwk()


def nested_json(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


# -- the table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One call of ``jwtlite.decode(token, key, algorithms, now=NOW, **options)``."""

    token: Any
    key: Any = SECRET
    algorithms: Sequence[str] = ("HS256",)
    options: Mapping[str, Any] = field(default_factory=dict)

    def run(self) -> dict[str, Any]:
        return jwtlite.decode(
            self.token, self.key, list(self.algorithms), now=NOW, **dict(self.options)
        )


Build = Callable[[], Attempt]
ROWS: list[Any] = []


def row(name: str, expected: type[JWTError], build: Build) -> None:
    ROWS.append(pytest.param(build, expected, id=name))


def token_only(make: Callable[[], Any]) -> Build:
    return lambda: Attempt(make())


# Segments and token types.
row("segments-empty-string", MalformedTokenError, token_only(lambda: ""))
row("segments-one", MalformedTokenError, token_only(lambda: valid().split(".")[0]))
row("segments-two", MalformedTokenError, token_only(lambda: valid().rsplit(".", 1)[0]))
row("segments-four", MalformedTokenError, token_only(lambda: valid() + ".AAAA"))
row("segments-four-empty-last", MalformedTokenError, token_only(lambda: valid() + "."))
row("segments-all-empty", MalformedTokenError, token_only(lambda: ".."))
row("segments-dots-only", MalformedTokenError, token_only(lambda: "...."))
row("token-type-none", MalformedTokenError, token_only(lambda: None))
row("token-type-int", MalformedTokenError, token_only(lambda: 12345))
row("token-type-float", MalformedTokenError, token_only(lambda: 1.5))
row("token-type-dict", MalformedTokenError, token_only(lambda: {"token": valid()}))
row("token-type-list", MalformedTokenError, token_only(lambda: [valid()]))
row("token-type-bytearray", MalformedTokenError, token_only(lambda: bytearray(valid(), "ascii")))
row("token-type-memoryview", MalformedTokenError, token_only(lambda: memoryview(valid().encode())))
row("token-non-ascii-str", MalformedTokenError, token_only(lambda: valid().replace(".", ".é", 1)))
row(
    "token-non-ascii-bytes",
    MalformedTokenError,
    token_only(lambda: "é".encode() + valid().encode()),
)
row("token-fullwidth-dots", MalformedTokenError, token_only(lambda: valid().replace(".", "\uff0e")))
row("token-zero-width-space", MalformedTokenError, token_only(lambda: valid() + "\u200b"))
row("token-nul-byte", MalformedTokenError, token_only(lambda: valid() + "\x00"))
row("token-trailing-newline", MalformedTokenError, token_only(lambda: valid() + "\n"))
row("token-leading-space", MalformedTokenError, token_only(lambda: " " + valid()))
row("token-bearer-prefix", MalformedTokenError, token_only(lambda: "Bearer " + valid()))
row("token-surrogate", MalformedTokenError, token_only(lambda: valid() + "\udcff"))

# Size cap, before any decoding.
row(
    "size-over-default-cap-validly-signed",
    MalformedTokenError,
    token_only(lambda: valid(pad="x" * 8192)),
)
row(
    "size-over-custom-cap",
    MalformedTokenError,
    lambda: Attempt(valid(), options={"max_size": len(valid()) - 1}),
)
row("size-1-mib-str", MalformedTokenError, token_only(lambda: "A" * (1 << 20)))
row("size-1-mib-bytes", MalformedTokenError, token_only(lambda: b"A" * (1 << 20)))
row("size-1-mib-of-dots", MalformedTokenError, token_only(lambda: "." * (1 << 20)))
row(
    "size-1-mib-deep-json",
    MalformedTokenError,
    token_only(lambda: forge(HEADER, b"[" * (1 << 19) + b"]" * (1 << 19), SECRET)),
)

# alg: none and friends, allowlist, key/alg binding.
row("alg-none", AlgorithmNotAllowedError, token_only(lambda: forge({"alg": "none"}, CLAIMS, None)))
row("alg-None", AlgorithmNotAllowedError, token_only(lambda: forge({"alg": "None"}, CLAIMS, None)))
row("alg-NONE", AlgorithmNotAllowedError, token_only(lambda: forge({"alg": "NONE"}, CLAIMS, None)))
row("alg-nOnE", AlgorithmNotAllowedError, token_only(lambda: forge({"alg": "nOnE"}, CLAIMS, None)))
row(
    "alg-none-allowlisted",
    AlgorithmNotAllowedError,
    lambda: Attempt(forge({"alg": "none"}, CLAIMS, None), algorithms=["none", "HS256"]),
)
row(
    "alg-none-with-a-valid-hmac",
    AlgorithmNotAllowedError,
    token_only(lambda: forge({"alg": "none"}, CLAIMS, SECRET, "HS256")),
)
row("alg-null", MalformedTokenError, token_only(lambda: forge({"alg": None}, CLAIMS, None)))
row(
    "alg-missing",
    MalformedTokenError,
    token_only(lambda: forge({"typ": "JWT"}, CLAIMS, SECRET, "HS256")),
)
row(
    "alg-empty-string",
    AlgorithmNotAllowedError,
    token_only(lambda: forge({"alg": ""}, CLAIMS, SECRET, "HS256")),
)
row(
    "alg-list",
    MalformedTokenError,
    token_only(lambda: forge({"alg": ["HS256"]}, CLAIMS, SECRET, "HS256")),
)
row(
    "alg-lowercase",
    AlgorithmNotAllowedError,
    token_only(lambda: forge({"alg": "hs256"}, CLAIMS, SECRET, "HS256")),
)
row(
    "alg-not-in-allowlist",
    AlgorithmNotAllowedError,
    lambda: Attempt(valid(), key=SECRET64, algorithms=["HS512"]),
)
row(
    "alg-rs256-when-only-es256-allowed",
    AlgorithmNotAllowedError,
    lambda: Attempt(
        forge({"alg": "RS256"}, CLAIMS, RSA_PRIVATE), key=EC_PUBLIC, algorithms=["ES256"]
    ),
)
row(
    "alg-unknown-but-allowlisted",
    AlgorithmNotAllowedError,
    lambda: Attempt(
        forge({"alg": "HS1024"}, CLAIMS, SECRET, "HS512"), algorithms=["HS1024", "HS256"]
    ),
)
row(
    "alg-allowed-but-not-the-keys",
    AlgorithmNotAllowedError,
    lambda: Attempt(
        forge({"alg": "RS256"}, CLAIMS, RSA_PRIVATE),
        key=Key(EC_PUBLIC, "ES256"),
        algorithms=["RS256", "ES256"],
    ),
)

# Key-type confusion (RFC 8725 §2.1, §3.1).
for name, secret, verifying_key in [
    ("rsa-public-pem", RSA_PUBLIC_PEM, RSA_PUBLIC_PEM),
    ("rsa-public-pem-str", RSA_PUBLIC_PEM, RSA_PUBLIC_PEM.decode()),
    ("rsa-public-key-object", RSA_PUBLIC_PEM, RSA_PUBLIC),
    ("rsa-public-der", RSA_PUBLIC_DER, RSA_PUBLIC_DER),
    ("rsa-public-ssh", RSA_PUBLIC_SSH, RSA_PUBLIC_SSH),
    ("rsa-public-ssh-str", RSA_PUBLIC_SSH, RSA_PUBLIC_SSH.decode()),
    ("ec-public-pem", EC_PUBLIC_PEM, EC_PUBLIC_PEM),
    ("ec-public-key-object", EC_PUBLIC_PEM, EC_PUBLIC),
]:
    row(
        f"confusion-hs256-signed-with-{name}",
        InvalidKeyError,
        lambda secret=secret, verifying_key=verifying_key: Attempt(
            forge({"alg": "HS256"}, CLAIMS, secret),
            key=verifying_key,
            algorithms=["RS256", "ES256", "HS256"],
        ),
    )
row(
    "confusion-hs256-signed-with-jwk-json",
    InvalidKeyError,
    lambda: Attempt(
        forge({"alg": "HS256"}, CLAIMS, json.dumps(attacker_public_jwk()).encode()),
        key=json.dumps(attacker_public_jwk()),
        algorithms=["ES256", "HS256"],
    ),
)
row(
    "confusion-ec-key-for-rs256",
    InvalidKeyError,
    lambda: Attempt(
        forge({"alg": "RS256"}, CLAIMS, RSA_PRIVATE), key=EC_PUBLIC, algorithms=["RS256"]
    ),
)
row(
    "confusion-rsa-key-for-es256",
    InvalidKeyError,
    lambda: Attempt(
        forge({"alg": "ES256"}, CLAIMS, EC_PRIVATE), key=RSA_PUBLIC, algorithms=["ES256"]
    ),
)
row(
    "confusion-p384-key-for-es256",
    InvalidKeyError,
    lambda: Attempt(
        forge({"alg": "ES256"}, CLAIMS, EC_PRIVATE),
        key=EC384_PRIVATE.public_key(),
        algorithms=["ES256"],
    ),
)
row(
    "confusion-p256-key-for-es384",
    InvalidKeyError,
    lambda: Attempt(
        forge({"alg": "ES384"}, CLAIMS, EC384_PRIVATE), key=EC_PUBLIC, algorithms=["ES384"]
    ),
)
row(
    "confusion-ed25519-key-for-es256",
    InvalidKeyError,
    lambda: Attempt(
        forge({"alg": "ES256"}, CLAIMS, EC_PRIVATE),
        key=ED_PRIVATE.public_key(),
        algorithms=["ES256"],
    ),
)
row(
    "confusion-rs256-jwk-used-for-ps256",
    InvalidKeyError,
    lambda: Attempt(
        forge({"alg": "PS256"}, CLAIMS, RSA_PRIVATE),
        key=Key(RSA_PUBLIC, "RS256").public_jwk(),
        algorithms=["RS256", "PS256"],
    ),
)
# A JWK whose use or key_ops say it is not a verification key (Wycheproof rejectWrongUse,
# rejectWrongKeyOps), given as a dict or inside a JWK Set.
NOT_A_VERIFYING_JWK = {
    "use-enc": {"use": "enc"},
    "key-ops-encrypt": {"key_ops": ["encrypt"]},
    "key-ops-sign-only": {"key_ops": ["sign"]},
}
for name, members in NOT_A_VERIFYING_JWK.items():
    row(
        f"key-jwk-{name}",
        InvalidKeyError,
        lambda members=members: Attempt(
            forge({"alg": "ES256"}, CLAIMS, EC_PRIVATE),
            key={**Key(EC_PUBLIC, "ES256").public_jwk(), **members},
            algorithms=["ES256"],
        ),
    )
    row(
        f"key-jwk-set-{name}",
        InvalidKeyError,
        lambda members=members: Attempt(
            forge({"alg": "ES256", "kid": "k"}, CLAIMS, EC_PRIVATE),
            key=KeySet.from_jwks(
                {
                    "keys": [
                        {**Key(EC_PUBLIC, "ES256", kid="k").public_jwk(), **members},
                        Key(EC384_PRIVATE, "ES384", kid="other").public_jwk(),
                    ]
                }
            ),
            algorithms=["ES256"],
        ),
    )
for algorithm, size in [("HS256", 32), ("HS384", 48), ("HS512", 64)]:
    row(
        f"hmac-key-shorter-than-{algorithm}-output",
        InvalidKeyError,
        lambda algorithm=algorithm, size=size: Attempt(
            forge({"alg": algorithm}, CLAIMS, b"k" * (size - 1)),
            key=b"k" * (size - 1),
            algorithms=[algorithm],
        ),
    )
row(
    "hmac-hs256-secret-offered-for-hs512",
    InvalidKeyError,
    lambda: Attempt(forge({"alg": "HS512"}, CLAIMS, SECRET), algorithms=["HS512"]),
)

# Header rules: crit, b64, kid, typ.
for name, extra in [
    ("crit-exp", {"crit": ["exp"], "exp": NOW + 600}),
    ("crit-empty-list", {"crit": []}),
    ("crit-b64", {"crit": ["b64"], "b64": True}),
    ("crit-null", {"crit": None}),
    ("crit-string", {"crit": "exp"}),
    ("b64-false", {"b64": False}),
    ("b64-false-with-crit", {"b64": False, "crit": ["b64"]}),
    ("b64-string-false", {"b64": "false"}),
    ("b64-zero", {"b64": 0}),
    ("kid-int", {"kid": 1}),
    ("kid-null", {"kid": None}),
    ("kid-list", {"kid": ["k"]}),
    ("kid-object", {"kid": {"k": "v"}}),
    ("kid-bool", {"kid": True}),
    ("typ-int", {"typ": 1}),
    ("cty-object", {"cty": {}}),
]:
    row(
        f"header-{name}",
        MalformedTokenError,
        lambda extra=extra: Attempt(forge({**HEADER, **extra}, CLAIMS, SECRET)),
    )

# Embedded keys and key URLs are never used (RFC 8725 §3.10): signed by the attacker's key.
row(
    "embedded-jwk-attacker-ec-key",
    InvalidSignatureError,
    lambda: Attempt(
        forge({"alg": "ES256", "jwk": attacker_public_jwk()}, CLAIMS, ATTACKER_EC),
        key=EC_PUBLIC,
        algorithms=["ES256"],
    ),
)
row(
    "embedded-jwk-attacker-key-with-keyset",
    InvalidSignatureError,
    lambda: Attempt(
        forge({"alg": "ES256", "kid": "real", "jwk": attacker_public_jwk()}, CLAIMS, ATTACKER_EC),
        key=KeySet([Key(EC_PUBLIC, "ES256", kid="real")]),
        algorithms=["ES256"],
    ),
)
row(
    "embedded-jwk-attacker-oct-secret",
    InvalidSignatureError,
    lambda: Attempt(
        forge(
            {"alg": "HS256", "jwk": {"kty": "oct", "k": b64(ATTACKER_SECRET)}},
            CLAIMS,
            ATTACKER_SECRET,
        )
    ),
)
row(
    "embedded-jku",
    InvalidSignatureError,
    lambda: Attempt(
        forge({"alg": "ES256", "jku": "https://attacker.example/jwks.json"}, CLAIMS, ATTACKER_EC),
        key=EC_PUBLIC,
        algorithms=["ES256"],
    ),
)
row(
    "embedded-x5u",
    InvalidSignatureError,
    lambda: Attempt(
        forge({"alg": "ES256", "x5u": "https://attacker.example/cert.pem"}, CLAIMS, ATTACKER_EC),
        key=EC_PUBLIC,
        algorithms=["ES256"],
    ),
)
row(
    "embedded-x5c-attacker-certificate",
    InvalidSignatureError,
    lambda: Attempt(
        forge(
            {
                "alg": "ES256",
                "x5c": [base64.b64encode(self_signed_certificate_der(ATTACKER_EC)).decode()],
            },
            CLAIMS,
            ATTACKER_EC,
        ),
        key=EC_PUBLIC,
        algorithms=["ES256"],
    ),
)

# Base64url strictness (each token below is validly signed over its odd segments).
row(
    "b64-header-padded",
    MalformedTokenError,
    token_only(
        lambda: assemble(
            b64(json_bytes(header_needing_padding()))
            + "=" * (-len(b64(json_bytes(header_needing_padding()))) % 4),
            b64(json_bytes(CLAIMS)),
            SECRET,
            "HS256",
        )
    ),
)
row(
    "b64-payload-padded",
    MalformedTokenError,
    token_only(
        lambda: assemble(
            b64(json_bytes(HEADER)), b64(json_bytes({"sub": "4"})) + "==", SECRET, "HS256"
        )
    ),
)
row(
    "b64-signature-padded",
    MalformedTokenError,
    token_only(lambda: valid() + "="),
)
row(
    "b64-header-standard-alphabet",
    MalformedTokenError,
    token_only(
        lambda: assemble(
            to_standard_alphabet(b64(json_bytes({**HEADER, "x": "???>>>"}))),
            b64(json_bytes(CLAIMS)),
            SECRET,
            "HS256",
        )
    ),
)
row(
    "b64-payload-standard-alphabet",
    MalformedTokenError,
    token_only(
        lambda: assemble(
            b64(json_bytes(HEADER)),
            to_standard_alphabet(b64(json_bytes({**CLAIMS, "x": "???>>>"}))),
            SECRET,
            "HS256",
        )
    ),
)
row(
    "b64-signature-standard-alphabet",
    MalformedTokenError,
    token_only(
        lambda: (
            hs_token_with_url_safe_signature().rsplit(".", 1)[0]
            + "."
            + to_standard_alphabet(hs_token_with_url_safe_signature().rsplit(".", 1)[1])
        )
    ),
)
row(
    "b64-header-space",
    MalformedTokenError,
    token_only(
        lambda: assemble(
            b64(json_bytes(HEADER))[:8] + " " + b64(json_bytes(HEADER))[8:],
            b64(json_bytes(CLAIMS)),
            SECRET,
            "HS256",
        )
    ),
)
row(
    "b64-payload-newline",
    MalformedTokenError,
    token_only(
        lambda: assemble(
            b64(json_bytes(HEADER)),
            b64(json_bytes(CLAIMS))[:8] + "\n" + b64(json_bytes(CLAIMS))[8:],
            SECRET,
            "HS256",
        )
    ),
)
row(
    "b64-payload-tab",
    MalformedTokenError,
    token_only(
        lambda: assemble(b64(json_bytes(HEADER)), b64(json_bytes(CLAIMS)) + "\t", SECRET, "HS256")
    ),
)
row(
    "b64-signature-crlf",
    MalformedTokenError,
    token_only(lambda: valid()[:-4] + "\r\n" + valid()[-4:]),
)
row(
    "b64-header-non-canonical-bits",
    MalformedTokenError,
    token_only(
        lambda: assemble(
            non_canonical(b64(json_bytes(header_needing_padding()))),
            b64(json_bytes(CLAIMS)),
            SECRET,
            "HS256",
        )
    ),
)
row(
    "b64-payload-non-canonical-bits",
    MalformedTokenError,
    token_only(
        lambda: assemble(
            b64(json_bytes(HEADER)), non_canonical(b64(json_bytes({"s": "x1"}))), SECRET, "HS256"
        )
    ),
)
row(
    "b64-signature-non-canonical-bits",
    MalformedTokenError,
    token_only(lambda: valid().rsplit(".", 1)[0] + "." + non_canonical(valid().rsplit(".", 1)[1])),
)
row(
    "b64-signature-impossible-length",
    MalformedTokenError,
    token_only(lambda: valid()[:-2]),
)
row(
    "b64-header-foreign-character",
    MalformedTokenError,
    token_only(lambda: "*" + valid()),
)
row(
    "b64-payload-percent-encoded",
    MalformedTokenError,
    token_only(lambda: assemble(b64(json_bytes(HEADER)), "eyJ%3D", SECRET, "HS256")),
)

# JSON strictness: header.
for name, raw_header in [
    ("not-json", b"alg=HS256"),
    ("array", b'["HS256"]'),
    ("string", b'"HS256"'),
    ("number", b"256"),
    ("null", b"null"),
    ("empty", b""),
    ("bom", b'\xef\xbb\xbf{"alg":"HS256"}'),
    ("utf16-le", '{"alg":"HS256"}'.encode("utf-16-le")),
    ("utf16-with-bom", '{"alg":"HS256"}'.encode("utf-16")),
    ("invalid-utf8", b'{"alg":"HS256","x":"\xff"}'),
    ("duplicate-alg-none-last", b'{"alg":"HS256","alg":"none"}'),
    ("duplicate-alg-none-first", b'{"alg":"none","alg":"HS256"}'),
    ("duplicate-alg-same", b'{"alg":"HS256","alg":"HS256"}'),
    ("duplicate-kid", b'{"alg":"HS256","kid":"a","kid":"b"}'),
    ("duplicate-crit-hidden", b'{"alg":"HS256","crit":["x"],"crit":null}'),
    ("nan", b'{"alg":"HS256","x":NaN}'),
    ("infinity", b'{"alg":"HS256","x":-Infinity}'),
    ("overflowing-number", b'{"alg":"HS256","x":1e999}'),
    ("depth-33", b'{"alg":"HS256","x":' + nested_json(32) + b"}"),
    ("trailing-garbage", b'{"alg":"HS256"}garbage'),
    ("single-quotes", b"{'alg':'HS256'}"),
]:
    row(
        f"json-header-{name}",
        MalformedTokenError,
        lambda raw_header=raw_header: Attempt(forge(raw_header, CLAIMS, SECRET, "HS256")),
    )

# JSON strictness: payload (validly signed, so only the JSON is wrong).
for name, raw_payload in [
    ("not-json", b"sub=42"),
    ("array", b'[{"sub":"42"}]'),
    ("string", b'"sub"'),
    ("number", b"42"),
    ("null", b"null"),
    ("true", b"true"),
    ("empty", b""),
    ("bom", b'\xef\xbb\xbf{"sub":"42"}'),
    ("utf16-le", '{"sub":"42"}'.encode("utf-16-le")),
    ("utf16-with-bom", '{"sub":"42"}'.encode("utf-16")),
    ("utf32", '{"sub":"42"}'.encode("utf-32")),
    ("invalid-utf8", b'{"sub":"\xc3\x28"}'),
    ("latin1", '{"sub":"Zoë"}'.encode("latin-1")),
    ("duplicate-sub", b'{"sub":"42","sub":"admin"}'),
    ("duplicate-exp", b'{"exp":9999999999,"exp":1}'),
    ("duplicate-nested", b'{"sub":"42","o":{"role":"user","role":"admin"}}'),
    ("nan", b'{"sub":"42","x":NaN}'),
    ("infinity", b'{"exp":Infinity}'),
    ("overflowing-number", b'{"exp":1e999}'),
    ("huge-integer-literal", b'{"x":' + b"9" * 5000 + b"}"),
    ("depth-33", nested_json(33)),
    ("depth-3000", b'{"a":' + b"[" * 3000 + b"]" * 3000 + b"}"),
    ("trailing-comma", b'{"sub":"42",}'),
    ("comment", b'{"sub":"42"/*x*/}'),
]:
    row(
        f"json-payload-{name}",
        MalformedTokenError,
        lambda raw_payload=raw_payload: Attempt(forge(HEADER, raw_payload, SECRET)),
    )

# Tampering and wrong keys.
row(
    "tampered-header",
    InvalidSignatureError,
    token_only(lambda: b64(json_bytes({**HEADER, "kid": "x"})) + "." + valid().split(".", 1)[1]),
)
row(
    "tampered-header-alg-swapped",
    InvalidSignatureError,
    lambda: Attempt(
        b64(json_bytes({"alg": "HS384"}))
        + "."
        + forge({"alg": "HS256"}, CLAIMS, SECRET64).split(".", 1)[1],
        key=SECRET64,
        algorithms=["HS256", "HS384"],
    ),
)
row(
    "tampered-payload",
    InvalidSignatureError,
    token_only(
        lambda: (
            valid().split(".")[0]
            + "."
            + b64(json_bytes({**CLAIMS, "sub": "admin"}))
            + "."
            + valid().split(".")[2]
        )
    ),
)
row(
    "tampered-signature",
    InvalidSignatureError,
    token_only(
        lambda: with_signature(
            valid(), bytes([signature_bytes(valid())[0] ^ 1]) + signature_bytes(valid())[1:]
        )
    ),
)
row(
    "signature-from-another-token",
    InvalidSignatureError,
    token_only(lambda: with_signature(valid(), signature_bytes(valid(sub="other")))),
)
row(
    "wrong-key-hmac", InvalidSignatureError, lambda: Attempt(forge(HEADER, CLAIMS, ATTACKER_SECRET))
)
for algorithm, signer, attacker, verifier in [
    ("RS256", RSA_PRIVATE, ATTACKER_RSA, RSA_PUBLIC),
    ("PS256", RSA_PRIVATE, ATTACKER_RSA, RSA_PUBLIC),
    ("ES256", EC_PRIVATE, ATTACKER_EC, EC_PUBLIC),
    ("EdDSA", ED_PRIVATE, ATTACKER_ED, ED_PRIVATE.public_key()),
]:
    row(
        f"wrong-key-{algorithm}",
        InvalidSignatureError,
        lambda algorithm=algorithm, attacker=attacker, verifier=verifier: Attempt(
            forge({"alg": algorithm}, CLAIMS, attacker), key=verifier, algorithms=[algorithm]
        ),
    )
    for name, mangle in [
        ("stripped", lambda sig: b""),
        ("truncated", lambda sig: sig[:-1]),
        ("extended", lambda sig: sig + b"\x00"),
        ("doubled", lambda sig: sig + sig),
        ("zeroed", lambda sig: bytes(len(sig))),
    ]:
        row(
            f"signature-{name}-{algorithm}",
            InvalidSignatureError,
            lambda algorithm=algorithm, signer=signer, verifier=verifier, mangle=mangle: Attempt(
                with_signature(
                    forge({"alg": algorithm}, CLAIMS, signer),
                    mangle(signature_bytes(forge({"alg": algorithm}, CLAIMS, signer))),
                ),
                key=verifier,
                algorithms=[algorithm],
            ),
        )
for name, mangle in [
    ("stripped", lambda sig: b""),
    ("truncated", lambda sig: sig[:-1]),
    ("extended", lambda sig: sig + b"\x00"),
    ("zeroed", lambda sig: bytes(len(sig))),
]:
    row(
        f"signature-{name}-HS256",
        InvalidSignatureError,
        lambda mangle=mangle: Attempt(with_signature(valid(), mangle(signature_bytes(valid())))),
    )


# ECDSA signature encodings (RFC 7518 §3.4: exactly R||S, each the curve's length).
def es256(signature: Callable[[bytes], bytes]) -> Build:
    def build() -> Attempt:
        token = forge({"alg": "ES256"}, CLAIMS, EC_PRIVATE)
        signing_input = token.rsplit(".", 1)[0].encode()
        return Attempt(with_signature(token, signature(signing_input)), EC_PUBLIC, ["ES256"])

    return build


def es256_raw(signing_input: bytes, size: int) -> bytes:
    r, s = decode_dss_signature(EC_PRIVATE.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


row(
    "es256-der-signature",
    InvalidSignatureError,
    es256(lambda data: sign("ES256", EC_PRIVATE, data, der=True)),
)
row(
    "es256-r-s-zero-padded-to-33-bytes",
    InvalidSignatureError,
    es256(lambda data: es256_raw(data, 33)),
)
row(
    "es256-r-s-padded-to-p521-length",
    InvalidSignatureError,
    es256(lambda data: es256_raw(data, 66)),
)
row(
    "es256-r-s-63-bytes",
    InvalidSignatureError,
    es256(lambda data: es256_raw(data, 32)[1:]),
)
row(
    "es256-r-s-swapped",
    InvalidSignatureError,
    es256(lambda data: es256_raw(data, 32)[32:] + es256_raw(data, 32)[:32]),
)
row(
    "es256-r-s-all-ones-out-of-range",
    InvalidSignatureError,
    es256(lambda data: b"\xff" * 64),
)
row(
    "es256-r-equals-curve-order",
    InvalidSignatureError,
    es256(
        lambda data: (
            (0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551).to_bytes(32, "big")
            + (1).to_bytes(32, "big")
        )
    ),
)

# Claims (validly signed).
for name, claims, expected, options in [
    ("exp-expired", {"exp": NOW - 1}, ExpiredTokenError, {}),
    ("exp-equals-now", {"exp": NOW}, ExpiredTokenError, {}),
    ("exp-expired-beyond-leeway", {"exp": NOW - 11}, ExpiredTokenError, {"leeway": 10}),
    ("exp-string", {"exp": str(NOW + 600)}, InvalidClaimError, {}),
    ("exp-bool", {"exp": True}, InvalidClaimError, {}),
    ("exp-null", {"exp": None}, InvalidClaimError, {}),
    ("exp-list", {"exp": [NOW + 600]}, InvalidClaimError, {}),
    (
        "exp-huge-negative-int-with-timedelta-leeway",
        {"exp": -(10**400)},
        ExpiredTokenError,
        {"leeway": datetime.timedelta(seconds=10)},
    ),
    ("nbf-huge-int-with-float-leeway", {"nbf": 10**400}, ImmatureTokenError, {"leeway": 0.5}),
    ("nbf-future", {"nbf": NOW + 1}, ImmatureTokenError, {}),
    ("nbf-future-beyond-leeway", {"nbf": NOW + 11}, ImmatureTokenError, {"leeway": 10}),
    ("nbf-string", {"nbf": "0"}, InvalidClaimError, {}),
    ("nbf-bool", {"nbf": False}, InvalidClaimError, {}),
    ("iat-future", {"iat": NOW + 1}, ImmatureTokenError, {}),
    ("iat-bool", {"iat": True}, InvalidClaimError, {}),
    ("iat-string", {"iat": "now"}, InvalidClaimError, {}),
    (
        "iss-mismatch",
        {"iss": "https://evil.example"},
        InvalidIssuerError,
        {"issuer": "https://a.example"},
    ),
    (
        "iss-suffix",
        {"iss": "https://a.example.evil"},
        InvalidIssuerError,
        {"issuer": "https://a.example"},
    ),
    (
        "iss-prefix",
        {"iss": "https://a.exampl"},
        InvalidIssuerError,
        {"issuer": "https://a.example"},
    ),
    (
        "iss-list",
        {"iss": ["https://a.example"]},
        InvalidIssuerError,
        {"issuer": "https://a.example"},
    ),
    ("iss-missing", {}, MissingClaimError, {"issuer": "https://a.example"}),
    ("aud-mismatch", {"aud": "other"}, InvalidAudienceError, {"audience": "api"}),
    ("aud-substring", {"aud": "ap"}, InvalidAudienceError, {"audience": "api"}),
    ("aud-case", {"aud": "API"}, InvalidAudienceError, {"audience": "api"}),
    ("aud-unexpected", {"aud": "api"}, InvalidAudienceError, {}),
    ("aud-int", {"aud": 1}, InvalidAudienceError, {"audience": "api"}),
    ("aud-list-with-non-string", {"aud": ["api", 1]}, InvalidAudienceError, {"audience": "api"}),
    ("aud-object", {"aud": {"api": True}}, InvalidAudienceError, {"audience": "api"}),
    ("aud-missing", {}, MissingClaimError, {"audience": "api"}),
    ("require-missing", {}, MissingClaimError, {"options": {"require": ["jti"]}}),
]:
    row(
        f"claims-{name}",
        expected,
        lambda claims=claims, options=options: Attempt(
            forge(HEADER, {"sub": "42", **claims}, SECRET), options=options
        ),
    )

# Key sets (a set holds asymmetric keys or secrets, never both: see test_keys).
KEYSET = KeySet([Key(EC_PUBLIC, "ES256", kid="ec"), Key(RSA_PUBLIC, "RS256", kid="rsa")])
row(
    "keyset-unknown-kid",
    InvalidKeyError,
    lambda: Attempt(forge({**HEADER, "kid": "nope"}, CLAIMS, SECRET), key=KEYSET),
)
row("keyset-no-kid", InvalidKeyError, lambda: Attempt(valid(), key=KEYSET))
row(
    "keyset-kid-of-a-key-for-another-alg",
    AlgorithmNotAllowedError,
    lambda: Attempt(
        forge({**HEADER, "kid": "rsa"}, CLAIMS, RSA_PUBLIC_PEM),
        key=KEYSET,
        algorithms=["HS256", "RS256"],
    ),
)
row(
    "keyset-kid-int",
    MalformedTokenError,
    lambda: Attempt(forge({**HEADER, "kid": 0}, CLAIMS, SECRET), key=KEYSET),
)

ROW_IDS = [param.id for param in ROWS]


# -- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize(("build", "expected"), ROWS)
def test_hostile_token_is_refused(build: Build, expected: type[JWTError]) -> None:
    attempt = build()
    with pytest.raises(JWTError) as info:
        attempt.run()
    assert type(info.value) is expected, f"{type(info.value).__name__}: {info.value}"


def test_no_hostile_token_raises_anything_but_jwt_error() -> None:
    """Whatever a row's outcome, nothing but a JWTError may escape decode (acceptance of a
    row is reported by test_hostile_token_is_refused)."""
    escaped = []
    for param in ROWS:
        build, _ = param.values
        attempt = build()
        try:
            attempt.run()
        except JWTError:
            continue
        except Exception as exc:  # everything that is not a JWTError breaks the contract
            escaped.append(f"{param.id}: {type(exc).__name__}: {exc}")
    assert not escaped, "\n".join(escaped)


def test_row_ids_are_unique() -> None:
    assert len(ROW_IDS) == len(set(ROW_IDS))


def test_the_untampered_base_tokens_are_accepted() -> None:
    """Controls: the tokens the table mangles are valid before mangling."""
    assert Attempt(valid()).run() == CLAIMS
    assert Attempt(hs_token_with_url_safe_signature()).run()["sub"] == "42"
    for algorithm, signer, verifier in [
        ("RS256", RSA_PRIVATE, RSA_PUBLIC),
        ("PS256", RSA_PRIVATE, RSA_PUBLIC),
        ("ES256", EC_PRIVATE, EC_PUBLIC),
        ("EdDSA", ED_PRIVATE, ED_PRIVATE.public_key()),
    ]:
        token = forge({"alg": algorithm}, CLAIMS, signer)
        assert Attempt(token, verifier, [algorithm]).run() == CLAIMS
    es = es256(lambda data: es256_raw(data, 32))()
    assert es.run() == CLAIMS
    assert Attempt(forge(header_needing_padding(), CLAIMS, SECRET)).run() == CLAIMS
    assert Attempt(forge(HEADER, {"s": "x"}, SECRET), options={}).run() == {"s": "x"}
    in_keyset = forge({"alg": "ES256", "kid": "ec"}, CLAIMS, EC_PRIVATE)
    assert Attempt(in_keyset, KEYSET, ["ES256"]).run() == CLAIMS


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("A" * (1 << 20), id="str"),
        pytest.param(b"A" * (1 << 20), id="bytes"),
        pytest.param("." * (1 << 20), id="dots"),
        pytest.param(("eyJ" + "A" * (1 << 20)) + ".e30.", id="huge-header"),
    ],
)
def test_one_mib_token_is_refused_quickly(token: str | bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(MalformedTokenError):
        jwtlite.decode(token, SECRET, ["HS256"])
    elapsed = time.perf_counter() - started
    assert elapsed < 0.05, f"refusing a 1 MiB token took {elapsed * 1000:.1f} ms"


def test_get_unverified_header_is_size_capped_too() -> None:
    started = time.perf_counter()
    with pytest.raises(MalformedTokenError):
        jwtlite.get_unverified_header("eyJ" + "A" * (1 << 20) + ".e30.")
    assert time.perf_counter() - started < 0.05


def test_refusals_carry_data() -> None:
    with pytest.raises(AlgorithmNotAllowedError) as alg:
        Attempt(forge({"alg": "none"}, CLAIMS, None)).run()
    assert alg.value.algorithm == "none"
    with pytest.raises(ExpiredTokenError) as exp:
        Attempt(valid(exp=NOW - 5)).run()
    assert exp.value.claim == "exp"
    assert exp.value.expired_at == NOW - 5
    with pytest.raises(ImmatureTokenError) as iat:
        Attempt(valid(iat=NOW + 5)).run()
    assert iat.value.claim == "iat"
    with pytest.raises(InvalidIssuerError) as iss:
        Attempt(valid(iss="x"), options={"issuer": "y"}).run()
    assert (iss.value.claim, iss.value.expected) == ("iss", "y")
    with pytest.raises(MissingClaimError) as missing:
        Attempt(valid(), options={"options": {"require": ["jti"]}}).run()
    assert missing.value.claim == "jti"
    with pytest.raises(InvalidClaimError) as bad:
        Attempt(valid(nbf="soon")).run()
    assert bad.value.claim == "nbf"


def test_signature_cannot_be_switched_off() -> None:
    forged = forge(HEADER, CLAIMS, ATTACKER_SECRET)
    with pytest.raises((ValueError, JWTError)):
        jwtlite.decode(forged, SECRET, ["HS256"], options={"verify_signature": False}, now=NOW)
    with pytest.raises(ValueError, match="unknown decode options"):
        jwtlite.decode(valid(), SECRET, ["HS256"], options={"verify_signature": False}, now=NOW)


def test_hmac_verification_uses_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert Attempt(valid()).run() == CLAIMS
    assert (signature_bytes(valid()), signature_bytes(valid())) in calls
    forged = forge(HEADER, CLAIMS, ATTACKER_SECRET)
    with pytest.raises(InvalidSignatureError):
        Attempt(forged).run()
    assert any(signature_bytes(forged) in pair for pair in calls)
