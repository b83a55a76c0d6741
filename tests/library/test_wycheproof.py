"""Project Wycheproof vectors (tests/library/vectors/wycheproof/) through the public API.

Every vector of every copied file runs, named by its ``tcId``. The expected answer is the
upstream label (``valid`` accepted, ``invalid`` refused) unless ``DEVIATIONS`` lists the vector
with our answer and the reason: a label that is wrong upstream, or a case we refuse on
purpose. ``test_every_deviation_differs_from_its_label`` keeps that table honest.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from jwtlite import JWTError, Key, KeySet, jws

VECTORS = Path(__file__).parent / "vectors" / "wycheproof"


class Deviation(NamedTuple):
    """Our answer to a vector (``valid`` or ``invalid``) where it differs from the label."""

    answer: str
    reason: str


def _each(ids: Iterable[int], answer: str, reason: str) -> dict[int, Deviation]:
    return dict.fromkeys(ids, Deviation(answer, reason))


# RFC 7518 §3.2: an HMAC key as long as the hash output, and the full output as the tag.
_HMAC_TRUNCATED = "truncated tag: JWS HS* carries the whole HMAC output (RFC 7518 §3.2)"
_HMAC_SHORT_KEY = "key shorter than the hash output: refused (RFC 7518 §3.2)"
_HMAC_DEVIATIONS = {
    **_each(range(82, 109), "invalid", _HMAC_TRUNCATED),
    **_each(range(163, 166), "invalid", _HMAC_SHORT_KEY),
    **_each(range(166, 169), "invalid", f"{_HMAC_SHORT_KEY}; {_HMAC_TRUNCATED}"),
    **_each(range(172, 175), "invalid", _HMAC_TRUNCATED),
}

DEVIATIONS: dict[str, dict[int, Deviation]] = {
    "json_web_signature_test.json": {
        # The group's JWK says "alg": "PS256" but the token (RFC 7520 §4.2, Figure 20) is
        # PS384: upstream's key is wrong, and a key serves only the alg its JWK names.
        **_each((346, 350), "invalid", 'JWK "alg" is PS256, the token is PS384'),
        # "ES521" is no JWA algorithm (RFC 7518 §3.1 names ES512 for P-521): upstream typo in
        # the JWK; we refuse a JWK whose alg is unknown rather than guess.
        **_each((347, 351), "invalid", 'JWK "alg" is "ES521", not a JWA algorithm'),
        # Labelled "invalidBase64Padding" / "...InPayload" and invalid, but the token is byte
        # for byte the valid tcId 357: the padding was lost upstream, the label is wrong.
        **_each((367, 370), "valid", "identical to the valid tcId 357: label wrong upstream"),
        # A "?" inserted into the header or payload segment, labelled valid: "?" is not in
        # the base64url alphabet (RFC 7515 §2) and our decoder refuses foreign characters
        # instead of skipping them.
        **_each((372, 373), "invalid", '"?" is not base64url (RFC 7515 §2)'),
    },
    "rsa_signature_2048_sha256_test.json": {
        8: Deviation("invalid", "acceptable upstream (MissingNull); refused, as OpenSSL does"),
    },
    "hmac_sha256_test.json": _HMAC_DEVIATIONS,
    "hmac_sha384_test.json": _HMAC_DEVIATIONS,
    "hmac_sha512_test.json": _HMAC_DEVIATIONS,
}


@functools.cache
def _load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def _cases(name: str) -> list[Any]:
    return [
        pytest.param(index, test, id=f"tc{test['tcId']}")
        for index, group in enumerate(_load(name)["testGroups"])
        for test in group["tests"]
    ]


def _expected(name: str, test: dict[str, Any]) -> str:
    deviation = DEVIATIONS.get(name, {}).get(test["tcId"])
    return deviation.answer if deviation else test["result"]


def _answer(check: Callable[[], bool]) -> str:
    """``valid`` when ``check`` accepts; ``invalid`` when it returns False or raises a
    JWTError. Anything else escaping is a bug and fails the test."""
    try:
        return "valid" if check() else "invalid"
    except JWTError:
        return "invalid"


def _group(name: str, index: int) -> dict[str, Any]:
    return _load(name)["testGroups"][index]


# -- JWS and JWK Sets ------------------------------------------------------------------------


def _decodes(token: str, key: Key | KeySet) -> bool:
    algorithms = sorted({k.algorithm for k in key}) if isinstance(key, KeySet) else [key.algorithm]
    jws.decode(token, key, algorithms)
    return True


JWS_FILE = "json_web_signature_test.json"
JWK_FILE = "json_web_key_test.json"


@pytest.mark.parametrize(("group", "test"), _cases(JWS_FILE))
def test_json_web_signature(group: int, test: dict[str, Any]) -> None:
    members = _group(JWS_FILE, group)
    jwk = members.get("public") or members["private"]  # HMAC groups have only "private"
    answer = _answer(lambda: _decodes(test["jws"], Key.from_jwk(jwk)))
    assert answer == _expected(JWS_FILE, test), test["comment"]


@pytest.mark.parametrize(("group", "test"), _cases(JWK_FILE))
def test_json_web_key(group: int, test: dict[str, Any]) -> None:
    members = _group(JWK_FILE, group)
    jwks = members.get("public") or members["private"]
    answer = _answer(lambda: _decodes(test["jws"], KeySet.from_jwks(jwks)))
    assert answer == _expected(JWK_FILE, test), test["comment"]


# -- raw signatures through Key.verify -------------------------------------------------------

SIGNATURE_FILES = {
    "ecdsa_secp256r1_sha256_p1363_test.json": "ES256",
    "ecdsa_secp384r1_sha384_p1363_test.json": "ES384",
    "ecdsa_secp521r1_sha512_p1363_test.json": "ES512",
    "ed25519_test.json": "EdDSA",
    "rsa_signature_2048_sha256_test.json": "RS256",
    "rsa_pss_2048_sha256_mgf1_32_test.json": "PS256",
}
HMAC_FILES = {
    "hmac_sha256_test.json": "HS256",
    "hmac_sha384_test.json": "HS384",
    "hmac_sha512_test.json": "HS512",
}


@functools.cache
def _group_key(name: str, index: int) -> Key:
    group = _group(name, index)
    jwk = group.get("publicKeyJwk") or group.get("keyJwk")
    if jwk is None:  # a few ECDSA edge-case groups publish only PEM and DER
        return Key.from_pem(group["publicKeyPem"])
    return Key.from_jwk(jwk)


def _signature_cases() -> list[Any]:
    return [
        pytest.param(name, *case.values, id=f"{SIGNATURE_FILES[name]}-{case.id}")
        for name in SIGNATURE_FILES
        for case in _cases(name)
    ]


def _hmac_cases() -> list[Any]:
    return [
        pytest.param(name, *case.values, id=f"{HMAC_FILES[name]}-{case.id}")
        for name in HMAC_FILES
        for case in _cases(name)
    ]


@pytest.mark.parametrize(("name", "group", "test"), _signature_cases())
def test_signature(name: str, group: int, test: dict[str, Any]) -> None:
    def check() -> bool:
        key = _group_key(name, group)
        assert key.algorithm == SIGNATURE_FILES[name]
        return key.verify(bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"]))

    assert _answer(check) == _expected(name, test), test["comment"]


@pytest.mark.parametrize(("name", "group", "test"), _hmac_cases())
def test_hmac(name: str, group: int, test: dict[str, Any]) -> None:
    def check() -> bool:
        key = Key(bytes.fromhex(test["key"]), HMAC_FILES[name])
        return key.verify(bytes.fromhex(test["msg"]), bytes.fromhex(test["tag"]))

    assert _answer(check) == _expected(name, test), test["comment"]


# -- the table and the files themselves ------------------------------------------------------

ALL_FILES = [JWS_FILE, JWK_FILE, *SIGNATURE_FILES, *HMAC_FILES]


def test_every_deviation_differs_from_its_label() -> None:
    """Each listed vector exists and the answer we give is not already its label."""
    stale = []
    for name, deviations in DEVIATIONS.items():
        labels = {t["tcId"]: t["result"] for g in _load(name)["testGroups"] for t in g["tests"]}
        for tc_id, deviation in deviations.items():
            if labels.get(tc_id, deviation.answer) == deviation.answer:
                stale.append(f"{name} tc{tc_id}: {labels.get(tc_id, 'no such vector')}")
    assert not stale


def test_every_copied_file_is_run() -> None:
    copied = {path.name for path in VECTORS.glob("*.json")}
    assert copied == set(ALL_FILES)


def test_vector_files_match_their_checksums() -> None:
    listed = {}
    for line in (VECTORS / "SHA256SUMS").read_text(encoding="ascii").splitlines():
        digest, name = line.split()
        listed[name] = digest
    assert set(listed) == set(ALL_FILES)
    for name, digest in listed.items():
        assert hashlib.sha256((VECTORS / name).read_bytes()).hexdigest() == digest, name
