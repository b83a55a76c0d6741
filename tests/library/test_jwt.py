"""Tests for jwtlite.jwt: claims (exp, nbf, iat, aud, iss, require), options and leeway."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest

import jwtlite
from jwtlite import (
    AlgorithmNotAllowedError,
    ExpiredTokenError,
    ImmatureTokenError,
    InvalidAudienceError,
    InvalidClaimError,
    InvalidIssuerError,
    JWTError,
    MalformedTokenError,
    MissingClaimError,
    jws,
)
from jwtlite.jwt import Options, decode_unverified_claims

SECRET = b"s" * 32
NOW = 1_700_000_000


def make(claims: dict[str, Any]) -> str:
    return jwtlite.encode(claims, SECRET, "HS256")


def make_raw(payload: bytes) -> str:
    """A correctly signed token whose payload is exactly ``payload``."""
    return jws.encode(payload, SECRET, "HS256")


def check(claims: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return check_token(make(claims), **kwargs)


def check_token(token: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("now", NOW)
    return jwtlite.decode(token, SECRET, ["HS256"], **kwargs)


# -- encode ----------------------------------------------------------------------------------


def test_claims_round_trip() -> None:
    claims = {"sub": "42", "n": 1, "f": 1.5, "b": True, "z": None, "l": [1, "a"], "o": {"k": "v"}}
    assert check(claims) == claims


def test_datetimes_become_numeric_dates() -> None:
    exp = datetime(2030, 1, 1, tzinfo=UTC)
    iat = datetime(2020, 1, 1, 12, 0, 0, 900_000, tzinfo=UTC)
    token = jwtlite.encode({"exp": exp, "iat": iat, "nbf": iat, "sub": "x"}, SECRET)
    claims = jwtlite.decode(token, SECRET, ["HS256"], now=NOW)
    assert claims == {
        "exp": int(exp.timestamp()),
        "iat": int(iat.timestamp()),
        "nbf": int(iat.timestamp()),
        "sub": "x",
    }
    assert all(type(claims[name]) is int for name in ("exp", "iat", "nbf"))


@pytest.mark.parametrize(
    "payload", [["a"], "claims", b"{}", 1, None], ids=["list", "str", "bytes", "int", "none"]
)
def test_encode_refuses_non_mapping_payloads(payload: Any) -> None:
    with pytest.raises(TypeError):
        jwtlite.encode(payload, SECRET)


def test_encode_accepts_any_mapping() -> None:
    claims = MappingProxyType({"sub": "1", "n": 2})
    assert check_token(jwtlite.encode(claims, SECRET)) == {"sub": "1", "n": 2}


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), object(), {1, 2}, b"bytes"],
    ids=["nan", "inf", "object", "set", "bytes"],  # stable ids: repr(object()) is an address
)
def test_encode_refuses_values_that_are_not_json(value: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        jwtlite.encode({"v": value}, SECRET)


def test_encode_defaults_to_hs256() -> None:
    assert jwtlite.get_unverified_header(jwtlite.encode({}, SECRET)) == {
        "alg": "HS256",
        "typ": "JWT",
    }


def test_decode_complete_returns_all_parts() -> None:
    token = jwtlite.encode({"sub": "1"}, SECRET, headers={"kid": "k"})
    result = jwtlite.decode_complete(token, SECRET, ["HS256"], now=NOW)
    assert set(result) == {"header", "payload", "signature"}
    assert result["header"] == {"alg": "HS256", "typ": "JWT", "kid": "k"}
    assert result["payload"] == {"sub": "1"}
    assert isinstance(result["signature"], bytes)
    assert len(result["signature"]) == 32


def test_decode_complete_defaults_to_no_leeway() -> None:
    token = make({"exp": NOW})
    with pytest.raises(ExpiredTokenError):
        jwtlite.decode_complete(token, SECRET, ["HS256"], now=NOW)
    assert jwtlite.decode_complete(token, SECRET, ["HS256"], now=NOW, leeway=1)["payload"]


def test_decode_complete_now_defaults_to_the_wall_clock() -> None:
    fresh = make({"exp": time.time() + 3600})
    assert jwtlite.decode_complete(fresh, SECRET, ["HS256"])["payload"]["exp"] > NOW
    with pytest.raises(ExpiredTokenError):
        jwtlite.decode_complete(make({"exp": time.time() - 3600}), SECRET, ["HS256"])


def test_decode_complete_honours_max_size() -> None:
    token = make({"pad": "x" * 100})
    assert jwtlite.decode_complete(token, SECRET, ["HS256"], max_size=len(token), now=NOW)
    with pytest.raises(MalformedTokenError):
        jwtlite.decode_complete(token, SECRET, ["HS256"], max_size=len(token) - 1, now=NOW)
    with pytest.raises(MalformedTokenError):
        jwtlite.decode_complete(make({"pad": "x" * 7000}), SECRET, ["HS256"], now=NOW)


def test_decode_complete_checks_the_claims() -> None:
    token = make({"iss": "a", "aud": "x"})
    with pytest.raises(InvalidIssuerError):
        jwtlite.decode_complete(token, SECRET, ["HS256"], issuer="b", audience="x", now=NOW)
    with pytest.raises(InvalidAudienceError):
        jwtlite.decode_complete(token, SECRET, ["HS256"], issuer="a", now=NOW)
    with pytest.raises(MissingClaimError):
        jwtlite.decode_complete(
            token, SECRET, ["HS256"], audience="x", options={"require": ["exp"]}, now=NOW
        )


# -- decode_unverified_claims ------------------------------------------------------------------


def test_decode_unverified_claims_skips_every_check() -> None:
    token = jwtlite.encode({"exp": NOW - 100, "aud": "x"}, b"other-secret" * 3)
    assert decode_unverified_claims(token) == {"exp": NOW - 100, "aud": "x"}
    assert decode_unverified_claims(token.encode("ascii")) == {"exp": NOW - 100, "aud": "x"}


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("not-a-token", id="one-segment"),
        pytest.param("e30.e30", id="two-segments"),
        pytest.param("e30.e30.", id="header-without-alg"),
        pytest.param(make_raw(b"[]"), id="payload-not-an-object"),
        pytest.param(make({}).split(".")[0] + ".e30=.AAAA", id="payload-padded"),
        pytest.param(make({}).replace(".", ".!", 1), id="payload-foreign-character"),
    ],
)
def test_decode_unverified_claims_still_refuses_malformed_tokens(token: str) -> None:
    with pytest.raises(MalformedTokenError):
        decode_unverified_claims(token)


def test_decode_unverified_claims_is_size_capped() -> None:
    token = make({"pad": "x" * 100})
    assert decode_unverified_claims(token, max_size=len(token))["pad"] == "x" * 100
    with pytest.raises(MalformedTokenError):
        decode_unverified_claims(token, max_size=len(token) - 1)


# -- payload must be a JSON object ------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [b"[]", b'"s"', b"1", b"null", b"true", b"", b"{", b'{"a":1,"a":2}', b'{"a":NaN}'],
    ids=[
        "array",
        "string",
        "number",
        "null",
        "true",
        "empty",
        "truncated",
        "duplicate",
        "nan",
    ],
)
def test_payload_must_be_a_strict_json_object(payload: bytes) -> None:
    with pytest.raises(MalformedTokenError):
        jwtlite.decode(make_raw(payload), SECRET, ["HS256"], now=NOW)


# -- exp -------------------------------------------------------------------------------------


def test_exp_in_the_future_is_accepted() -> None:
    assert check({"exp": NOW + 1}) == {"exp": NOW + 1}


@pytest.mark.parametrize(
    "offset", [0, -1, -0.001, -86400], ids=["equal", "1s-ago", "1ms-ago", "1d-ago"]
)
def test_exp_reached_is_expired(offset: float) -> None:
    with pytest.raises(ExpiredTokenError) as info:
        check({"exp": NOW + offset})
    assert info.value.claim == "exp"
    assert info.value.expired_at == NOW + offset
    assert isinstance(info.value, InvalidClaimError)


def test_exp_leeway_boundary() -> None:
    assert check({"exp": NOW - 9}, leeway=10) == {"exp": NOW - 9}
    with pytest.raises(ExpiredTokenError):
        check({"exp": NOW - 10}, leeway=10)
    assert check({"exp": NOW - 9}, leeway=timedelta(seconds=10)) == {"exp": NOW - 9}
    with pytest.raises(ExpiredTokenError):
        check({"exp": NOW - 10}, leeway=timedelta(seconds=10))


def test_exp_check_can_be_switched_off() -> None:
    assert check({"exp": NOW - 100}, options={"verify_exp": False}) == {"exp": NOW - 100}


def test_now_defaults_to_the_wall_clock() -> None:
    assert jwtlite.decode(make({"exp": time.time() + 3600}), SECRET, ["HS256"])
    with pytest.raises(ExpiredTokenError):
        jwtlite.decode(make({"exp": time.time() - 3600}), SECRET, ["HS256"])


# -- nbf and iat -----------------------------------------------------------------------------


def test_nbf_now_or_past_is_accepted() -> None:
    assert check({"nbf": NOW}) == {"nbf": NOW}
    assert check({"nbf": NOW - 1000}) == {"nbf": NOW - 1000}


def test_nbf_in_the_future_is_immature() -> None:
    with pytest.raises(ImmatureTokenError) as info:
        check({"nbf": NOW + 1})
    assert info.value.claim == "nbf"
    assert info.value.valid_from == NOW + 1


def test_nbf_leeway() -> None:
    assert check({"nbf": NOW + 10}, leeway=10) == {"nbf": NOW + 10}
    with pytest.raises(ImmatureTokenError):
        check({"nbf": NOW + 10.5}, leeway=10)
    assert check({"nbf": NOW + 10}, leeway=timedelta(seconds=10))


def test_nbf_check_can_be_switched_off() -> None:
    assert check({"nbf": NOW + 100}, options={"verify_nbf": False})


def test_iat_in_the_future_is_immature() -> None:
    assert check({"iat": NOW}) == {"iat": NOW}
    assert check({"iat": NOW - 5}) == {"iat": NOW - 5}
    with pytest.raises(ImmatureTokenError) as info:
        check({"iat": NOW + 1})
    assert info.value.claim == "iat"
    assert info.value.valid_from == NOW + 1


def test_iat_leeway_and_switch() -> None:
    assert check({"iat": NOW + 5}, leeway=5)
    with pytest.raises(ImmatureTokenError):
        check({"iat": NOW + 6}, leeway=5)
    assert check({"iat": NOW + 100}, options={"verify_iat": False})


# -- NumericDate types -----------------------------------------------------------------------

NOT_NUMERIC_DATES = {
    "string": "1700000100",
    "true": True,
    "false": False,
    "null": None,
    "list": [NOW + 100],
    "object": {"t": NOW + 100},
    "empty-string": "",
}


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", NOT_NUMERIC_DATES.values(), ids=NOT_NUMERIC_DATES.keys())
def test_numeric_dates_must_be_json_numbers(claim: str, value: Any) -> None:
    with pytest.raises(InvalidClaimError) as info:
        check({claim: value})
    assert info.value.claim == claim
    assert info.value.expected == "number"
    assert type(info.value) is InvalidClaimError


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("literal", [b"1e400", b"-1e400", b"1e999"], ids=bytes.decode)
def test_numeric_dates_must_be_finite(claim: str, literal: bytes) -> None:
    token = make_raw(b'{"' + claim.encode() + b'":' + literal + b"}")
    with pytest.raises(JWTError):
        jwtlite.decode(token, SECRET, ["HS256"], now=NOW)


def test_huge_integer_dates_are_compared_without_overflow() -> None:
    huge = 10**400
    assert check({"exp": huge}) == {"exp": huge}
    with pytest.raises(ExpiredTokenError):
        check({"exp": -huge})
    with pytest.raises(ImmatureTokenError):
        check({"nbf": huge})
    with pytest.raises(ImmatureTokenError):
        check({"iat": huge}, leeway=timedelta(days=1))


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("leeway", [0.5, timedelta(seconds=10)], ids=["float", "timedelta"])
def test_huge_integer_dates_with_a_float_leeway_raise_only_jwt_errors(
    claim: str, leeway: Any
) -> None:
    # int + float converts the int to float, which overflows above ~1.8e308.
    for value in (10**400, -(10**400)):
        with contextlib.suppress(JWTError):
            check({claim: value}, leeway=leeway)


def test_numeric_dates_may_be_floats() -> None:
    claims = {"exp": NOW + 0.5, "nbf": NOW - 0.5, "iat": NOW - 0.25}
    assert check(claims) == claims


# -- aud -------------------------------------------------------------------------------------

ACCEPTED_AUDIENCES = [
    ("api", "api"),
    (["api"], "api"),
    (["other", "api"], "api"),
    ("api", ["x", "api"]),
    (["a", "b"], ("b", "c")),
    ("api", {"api"}),
]


@pytest.mark.parametrize(
    ("aud", "audience"),
    ACCEPTED_AUDIENCES,
    ids=["str-str", "list-str", "list-member", "str-expected-list", "list-tuple", "str-set"],
)
def test_aud_matches(aud: Any, audience: Any) -> None:
    assert check({"aud": aud}, audience=audience) == {"aud": aud}


REFUSED_AUDIENCES = {
    "different": ("other", "api"),
    "case": ("API", "api"),
    "prefix": ("api", "api-internal"),
    "suffix": ("api.evil", "api"),
    "substring-of-expected": ("ap", "api"),
    "list-without-match": (["x", "y"], "api"),
    "empty-list": ([], "api"),
    "empty-string": ("", "api"),
    "trailing-space": ("api ", "api"),
}


@pytest.mark.parametrize(
    ("aud", "audience"), REFUSED_AUDIENCES.values(), ids=list(REFUSED_AUDIENCES.keys())
)
def test_aud_mismatch_is_refused(aud: Any, audience: Any) -> None:
    with pytest.raises(InvalidAudienceError) as info:
        check({"aud": aud}, audience=audience)
    assert info.value.claim == "aud"


@pytest.mark.parametrize(
    "aud",
    [1, True, None, {"api": 1}, ["api", 1], [["api"]], [None]],
    ids=["int", "bool", "null", "object", "list-with-int", "nested-list", "list-null"],
)
def test_aud_must_be_string_or_list_of_strings(aud: Any) -> None:
    with pytest.raises(InvalidAudienceError) as info:
        check({"aud": aud}, audience="api")
    assert info.value.expected == {"api"}


def test_unexpected_aud_is_refused() -> None:
    with pytest.raises(InvalidAudienceError) as info:
        check({"aud": "api"})
    assert info.value.claim == "aud"


def test_expected_aud_must_be_present() -> None:
    with pytest.raises(MissingClaimError) as info:
        check({"sub": "x"}, audience="api")
    assert info.value.claim == "aud"


def test_invalid_audience_error_carries_the_expected_audiences() -> None:
    with pytest.raises(InvalidAudienceError) as info:
        check({"aud": "x"}, audience=["a", "b"])
    assert set(info.value.expected) == {"a", "b"}


def test_aud_check_can_be_switched_off() -> None:
    assert check({"aud": "anything"}, options={"verify_aud": False}) == {"aud": "anything"}


# -- iss -------------------------------------------------------------------------------------


def test_iss_matches_exactly() -> None:
    assert check({"iss": "https://issuer.example"}, issuer="https://issuer.example")


@pytest.mark.parametrize(
    "iss",
    [
        "https://issuer.example.evil",
        "https://issuer.exampl",
        "HTTPS://ISSUER.EXAMPLE",
        "https://issuer.example/",
        "",
        "issuer",
    ],
    ids=["suffix", "prefix", "case", "trailing-slash", "empty", "substring"],
)
def test_iss_mismatch_is_refused(iss: str) -> None:
    with pytest.raises(InvalidIssuerError) as info:
        check({"iss": iss}, issuer="https://issuer.example")
    assert info.value.claim == "iss"
    assert info.value.expected == "https://issuer.example"


@pytest.mark.parametrize(
    "iss",
    [["https://issuer.example"], 1, None, {"iss": "https://issuer.example"}, True],
    ids=["list", "int", "null", "object", "bool"],
)
def test_iss_must_be_a_string(iss: Any) -> None:
    with pytest.raises(InvalidIssuerError):
        check({"iss": iss}, issuer="https://issuer.example")


def test_expected_iss_must_be_present() -> None:
    with pytest.raises(MissingClaimError) as info:
        check({"sub": "x"}, issuer="https://issuer.example")
    assert info.value.claim == "iss"


def test_iss_is_not_checked_when_no_issuer_is_expected() -> None:
    assert check({"iss": "whoever"}) == {"iss": "whoever"}


def test_iss_may_be_one_of_several() -> None:
    assert check({"iss": "b"}, issuer=["a", "b"]) == {"iss": "b"}
    with pytest.raises(InvalidIssuerError):
        check({"iss": "ab"}, issuer=["a", "b"])


def test_iss_check_can_be_switched_off() -> None:
    assert check({"iss": "x"}, issuer="y", options={"verify_iss": False})


# -- sub and jti -----------------------------------------------------------------------------

NOT_STRINGS = [
    pytest.param(1, id="int"),
    pytest.param(1.5, id="float"),
    pytest.param(True, id="bool"),
    pytest.param(None, id="null"),
    pytest.param(["1"], id="list"),
    pytest.param({"id": "1"}, id="object"),
]


@pytest.mark.parametrize("claim", ["sub", "jti"])
@pytest.mark.parametrize("value", NOT_STRINGS)
def test_sub_and_jti_must_be_strings(claim: str, value: Any) -> None:
    """PyJWT refuses a non-string sub or jti; jwtlite accepted them."""
    with pytest.raises(InvalidClaimError) as info:
        check({claim: value})
    assert info.value.claim == claim
    assert info.value.expected == "string"
    with pytest.raises(InvalidClaimError):
        jwtlite.decode_complete(make({claim: value}), SECRET, ["HS256"], now=NOW)


def test_string_sub_and_jti_are_accepted() -> None:
    claims = {"sub": "", "jti": "4f1c2a9e8b7d6c5e4f3a2b1c0d9e8f7a"}
    assert check(claims) == claims
    assert check({"sub": "42"}, options={"require": ["sub"]}) == {"sub": "42"}


# -- require ---------------------------------------------------------------------------------


def test_required_claims_must_be_present() -> None:
    assert check({"exp": NOW + 1, "sub": "x"}, options={"require": ["exp", "sub"]})
    with pytest.raises(MissingClaimError) as info:
        check({"sub": "x"}, options={"require": ["sub", "exp"]})
    assert info.value.claim == "exp"
    assert isinstance(info.value, InvalidClaimError)


def test_required_claim_with_null_value_is_present() -> None:
    assert check({"nonce": None}, options={"require": ["nonce"]}) == {"nonce": None}


# -- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"verify_signature": False},
        {"verify_signature": True},
        {"verify_exp": False, "verify_signature": False},
        {"verify_jti": True},
        {"leeway": 10},
    ],
    ids=["verify_signature-false", "verify_signature-true", "mixed", "unknown", "leeway"],
)
def test_unknown_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="unknown decode options"):
        check({"sub": "x"}, options=options)


def test_unknown_options_never_switch_off_the_signature() -> None:
    token = make({"sub": "x"})
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BA")
    with pytest.raises((ValueError, JWTError)):
        jwtlite.decode(forged, SECRET, ["HS256"], options={"verify_signature": False})


def test_options_are_frozen() -> None:
    """A mutable Options would let one caller switch a check off for every later caller of
    the shared default."""
    shared = Options.from_mapping(None)
    assert Options.from_mapping({}) is shared
    for options in (shared, Options(), Options.from_mapping({"verify_exp": True})):
        with pytest.raises(AttributeError):
            options.verify_exp = False  # type: ignore[misc]
    assert shared.verify_exp
    with pytest.raises(ExpiredTokenError):
        check({"exp": NOW - 1})


def test_an_options_instance_is_used_as_given() -> None:
    options = Options(verify_exp=False, require=("sub",))
    assert Options.from_mapping(options) is options
    assert check({"exp": NOW - 100, "sub": "x"}, options=options) == {"exp": NOW - 100, "sub": "x"}
    with pytest.raises(MissingClaimError):
        check({"exp": NOW - 100}, options=options)
    token = make({"exp": NOW - 100, "sub": "x"})
    decoded = jwtlite.decode_complete(token, SECRET, ["HS256"], options=options, now=NOW)
    assert decoded["payload"]["sub"] == "x"


def test_options_require_accepts_any_iterable_of_names() -> None:
    options = Options.from_mapping({"require": ["exp", "sub"]})
    assert options.require == ("exp", "sub")
    assert options.verify_iat


def test_empty_options_mean_defaults() -> None:
    with pytest.raises(ExpiredTokenError):
        check({"exp": NOW - 1}, options={})


def test_all_checks_run_together() -> None:
    claims = {
        "iss": "https://issuer.example",
        "aud": ["api", "web"],
        "exp": NOW + 60,
        "nbf": NOW - 60,
        "iat": NOW - 60,
        "sub": "42",
    }
    decoded = check(
        claims,
        issuer="https://issuer.example",
        audience="web",
        options={"require": ["exp", "iat", "sub"]},
    )
    assert decoded == claims


def test_decode_refuses_an_algorithm_outside_the_allowlist() -> None:
    with pytest.raises(AlgorithmNotAllowedError):
        jwtlite.decode_complete(make({}), SECRET, ["HS512"], now=NOW)


def test_claims_are_checked_only_after_the_signature() -> None:
    token = jwtlite.encode({"exp": NOW - 100}, b"t" * 32)
    with pytest.raises(jwtlite.InvalidSignatureError):
        jwtlite.decode(token, SECRET, ["HS256"], now=NOW)
