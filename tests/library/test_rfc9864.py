"""RFC 9864 fully-specified EdDSA names: ``Ed25519`` and ``Ed448`` beside the older ``EdDSA``.

Each name accepts only its curve; a key made for one of them signs with its own name and
still verifies the ``EdDSA`` tokens it made before, when the caller's allowlist says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519

import jwtlite
from jwtlite import AlgorithmNotAllowedError, InvalidKeyError, Key, KeySet
from jwtlite.service.errors import ConfigurationError
from jwtlite.service.settings import Settings
from jwtlite.service.signing import load_signing_keys
from jwtlite.service.signing.keyfile import load_or_create_key_file

from support.keys import private_pem, public_pem

CURVES: dict[str, Any] = {
    "Ed25519": ed25519.Ed25519PrivateKey,
    "Ed448": ed448.Ed448PrivateKey,
}
NAMES = sorted(CURVES)
CLAIMS = {"sub": "42", "exp": 4_102_444_800}


def other(name: str) -> str:
    return "Ed448" if name == "Ed25519" else "Ed25519"


# -- the library ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_a_generated_key_signs_with_its_fully_specified_name(name: str) -> None:
    key = Key.generate(name)
    assert key.public_jwk()["crv"] == name
    token = jwtlite.encode(CLAIMS, key)
    assert jwtlite.get_unverified_header(token)["alg"] == name
    assert jwtlite.decode(token, key.public_key(), [name]) == CLAIMS
    assert key.algorithms == {name, "EdDSA"}


@pytest.mark.parametrize("name", NAMES)
def test_a_key_verifies_the_eddsa_tokens_it_made_when_allowed(name: str) -> None:
    key = Key.generate(name)
    legacy = jwtlite.encode(CLAIMS, Key(key.private_pem(), "EdDSA"))
    assert jwtlite.get_unverified_header(legacy)["alg"] == "EdDSA"
    assert jwtlite.decode(legacy, key.public_key(), ["EdDSA"]) == CLAIMS
    assert jwtlite.decode(legacy, key.public_key(), [name, "EdDSA"]) == CLAIMS


@pytest.mark.parametrize("name", NAMES)
def test_the_allowlist_rules_both_ways(name: str) -> None:
    key = Key.generate(name)
    legacy = jwtlite.encode(CLAIMS, key, "EdDSA")
    current = jwtlite.encode(CLAIMS, key)
    with pytest.raises(AlgorithmNotAllowedError):
        jwtlite.decode(legacy, key.public_key(), [name])
    with pytest.raises(AlgorithmNotAllowedError):
        jwtlite.decode(current, key.public_key(), ["EdDSA"])


@pytest.mark.parametrize("name", NAMES)
def test_an_eddsa_key_verifies_its_curves_new_name_only(name: str) -> None:
    key = Key(CURVES[name].generate(), "EdDSA")
    assert key.algorithms == {name, "EdDSA"}
    token = jwtlite.encode(CLAIMS, key, name)
    assert jwtlite.get_unverified_header(token)["alg"] == name
    assert jwtlite.decode(token, key.public_key(), [name]) == CLAIMS
    with pytest.raises(AlgorithmNotAllowedError):
        jwtlite.encode(CLAIMS, key, other(name))


@pytest.mark.parametrize("name", NAMES)
def test_a_name_refuses_the_other_curve(name: str) -> None:
    wrong = CURVES[other(name)].generate()
    with pytest.raises(InvalidKeyError, match=name):
        Key(wrong, name)
    with pytest.raises(InvalidKeyError):
        Key(public_pem(wrong), name)
    with pytest.raises(AlgorithmNotAllowedError):
        Key.generate(other(name)).public_key().for_algorithm(name)


@pytest.mark.parametrize("name", NAMES)
def test_a_token_naming_the_other_curve_is_refused(name: str) -> None:
    key = Key.generate(name)
    forged = jwtlite.encode(CLAIMS, Key.generate(other(name)))  # alg is the other name
    with pytest.raises(AlgorithmNotAllowedError):
        jwtlite.decode(forged, key.public_key(), [*NAMES, "EdDSA"])


@pytest.mark.parametrize("name", NAMES)
def test_the_jwk_round_trip_keeps_the_name(name: str) -> None:
    key = Key.generate(name, kid="k1")
    jwk = key.public_jwk()
    assert jwk["alg"] == name
    assert jwk["crv"] == name
    loaded = Key.from_jwk(jwk)
    assert loaded.algorithm == name
    token = jwtlite.encode(CLAIMS, key)
    assert jwtlite.decode(token, loaded, [name]) == CLAIMS
    keyset = KeySet.from_jwks(KeySet([key]).jwks())
    assert jwtlite.decode(token, keyset, [name]) == CLAIMS
    assert jwtlite.decode(jwtlite.encode(CLAIMS, key, "EdDSA"), keyset, ["EdDSA"]) == CLAIMS


@pytest.mark.parametrize("name", NAMES)
def test_a_jwk_whose_alg_and_crv_disagree_is_refused(name: str) -> None:
    jwk = {**Key.generate(other(name)).public_jwk(), "alg": name}
    with pytest.raises(InvalidKeyError):
        Key.from_jwk(jwk)
    with pytest.raises(InvalidKeyError):
        KeySet.from_jwks({"keys": [jwk]})


def test_a_jwk_without_alg_stays_eddsa_and_verifies_the_new_name() -> None:
    key = Key.generate("Ed25519")
    jwk = {name: value for name, value in key.public_jwk().items() if name != "alg"}
    loaded = Key.from_jwk(jwk)
    assert loaded.algorithm == "EdDSA"
    assert jwtlite.decode(jwtlite.encode(CLAIMS, key), loaded, ["Ed25519"]) == CLAIMS


@pytest.mark.parametrize("name", NAMES)
def test_pem_round_trip(name: str) -> None:
    key = Key.generate(name)
    assert Key.from_pem(key.private_pem(), name).algorithm == name
    assert Key.from_pem(key.public_pem()).algorithm == "EdDSA"  # inferred, as before


def test_an_alias_keeps_the_keys_permitted_operations() -> None:
    jwk = {**Key.generate("Ed25519").public_jwk(), "key_ops": ["verify"]}
    verify_only = Key.from_jwk(jwk)
    alias = verify_only.for_algorithm("EdDSA")
    assert alias.kid == verify_only.kid
    assert not alias.can_sign
    assert verify_only.for_algorithm("EdDSA") is alias


# -- PyJWT ------------------------------------------------------------------------------------

# PyJWT 2.x does not know the RFC 9864 names (its registry has EdDSA only), so the
# interoperable path is ``EdDSA`` in both directions with keys made for ``Ed25519``/``Ed448``.


@pytest.mark.parametrize("name", NAMES)
def test_pyjwt_eddsa_tokens_verify_with_a_fully_specified_key(name: str) -> None:
    private = CURVES[name].generate()
    token = pyjwt.encode(CLAIMS, private, algorithm="EdDSA")
    key = Key(public_pem(private), name)
    assert jwtlite.decode(token, key, ["EdDSA"]) == CLAIMS
    with pytest.raises(AlgorithmNotAllowedError):
        jwtlite.decode(token, key, [name])


@pytest.mark.parametrize("name", NAMES)
def test_eddsa_tokens_of_a_fully_specified_key_verify_in_pyjwt(name: str) -> None:
    key = Key.generate(name)
    token = jwtlite.encode(CLAIMS, key, "EdDSA")
    assert pyjwt.decode(token, key.public_pem(), algorithms=["EdDSA"]) == CLAIMS
    if name not in pyjwt.algorithms.get_default_algorithms():
        with pytest.raises(pyjwt.InvalidAlgorithmError):
            pyjwt.decode(jwtlite.encode(CLAIMS, key), key.public_pem(), algorithms=[name])


# -- the service's settings and key files -------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_the_service_creates_its_key_on_first_run_and_reloads_it(name: str, tmp_path: Path) -> None:
    settings = Settings(algorithm=name, database=str(tmp_path / "jwtlite.sqlite3"))
    created = load_signing_keys(settings)
    assert isinstance(created, KeySet)
    assert created.current.algorithm == name
    assert Path(settings.key_path).stat().st_mode & 0o077 == 0
    reloaded = load_signing_keys(settings)
    assert isinstance(reloaded, KeySet)
    assert reloaded.current.kid == created.current.kid
    assert reloaded.jwks()["keys"][0]["alg"] == name
    with pytest.raises(ConfigurationError):
        load_signing_keys(Settings(algorithm=other(name), private_key_file=settings.key_path))


def test_an_eddsa_key_file_serves_ed25519_after_a_setting_change(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    path.write_bytes(private_pem(ed25519.Ed25519PrivateKey.generate()))
    path.chmod(0o600)
    old = load_or_create_key_file(str(path), "EdDSA", create=False)
    new = load_or_create_key_file(str(path), "Ed25519", create=False)
    token = jwtlite.encode(CLAIMS, old)
    assert jwtlite.decode(token, new, sorted(new.algorithms)) == CLAIMS
