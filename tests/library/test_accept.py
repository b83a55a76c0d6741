"""Must-accept controls: strictness must not refuse legitimate tokens."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest

import jwtlite
from jwtlite import Key, KeySet, MalformedTokenError

NOW = 1_700_000_000
SECRET = b"accept-tests-secret-0123456789abc"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any] | bytes, payload: dict[str, Any] | bytes) -> str:
    """An HS256 token over exactly these header and payload bytes (or compact JSON)."""
    import hmac

    def raw(value: dict[str, Any] | bytes) -> bytes:
        if isinstance(value, bytes):
            return value
        return json.dumps(value, separators=(",", ":")).encode()

    signing_input = f"{b64(raw(header))}.{b64(raw(payload))}"
    signature = hmac.digest(SECRET, signing_input.encode(), "sha256")
    return f"{signing_input}.{b64(signature)}"


def accept(token: str | bytes, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("now", NOW)
    return jwtlite.decode(token, SECRET, ["HS256"], **kwargs)


def token(claims: dict[str, Any], **kwargs: Any) -> str:
    return jwtlite.encode(claims, SECRET, "HS256", **kwargs)


# -- leeway ----------------------------------------------------------------------------------

LEEWAYS = [
    pytest.param(30, id="int"),
    pytest.param(30.0, id="float"),
    pytest.param(timedelta(seconds=30), id="timedelta"),
    pytest.param(timedelta(minutes=1), id="timedelta-minute"),
]


@pytest.mark.parametrize("leeway", LEEWAYS)
def test_leeway_accepts_recently_expired(leeway: Any) -> None:
    assert accept(token({"exp": NOW - 29}), leeway=leeway) == {"exp": NOW - 29}


@pytest.mark.parametrize("leeway", LEEWAYS)
def test_leeway_accepts_nearly_valid_nbf_and_iat(leeway: Any) -> None:
    claims = {"nbf": NOW + 29, "iat": NOW + 29.5}
    assert accept(token(claims), leeway=leeway) == claims


def test_leeway_may_be_fractional() -> None:
    assert accept(token({"exp": NOW - 0.25}), leeway=0.5) == {"exp": NOW - 0.25}


# -- dates -----------------------------------------------------------------------------------


def test_float_dates_are_accepted() -> None:
    claims = {"exp": NOW + 0.001, "nbf": NOW - 1.5, "iat": NOW - 1e-3}
    assert accept(token(claims)) == claims


def test_float_now_is_accepted() -> None:
    assert accept(token({"exp": NOW + 1}), now=NOW + 0.999) == {"exp": NOW + 1}


def test_dates_in_exponent_notation_are_accepted() -> None:
    assert accept(forge({"alg": "HS256"}, b'{"exp":1.8e9,"iat":1.6E9}')) == {
        "exp": 1.8e9,
        "iat": 1.6e9,
    }


def test_negative_and_zero_dates_in_the_past_are_accepted() -> None:
    assert accept(token({"iat": 0, "nbf": -1})) == {"iat": 0, "nbf": -1}


def test_far_future_expiry_is_accepted() -> None:
    assert accept(token({"exp": 2**53})) == {"exp": 2**53}


# -- audiences and issuers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aud", "audience"),
    [
        pytest.param(["api"], "api", id="single-element-list"),
        pytest.param(["web", "api", "cli"], "cli", id="last-of-three"),
        pytest.param(["web", "api"], ["x", "api"], id="list-against-list"),
        pytest.param("api", ("api",), id="string-against-tuple"),
        pytest.param("https://api.example/v1", "https://api.example/v1", id="uri"),
        pytest.param("Zoë-API", "Zoë-API", id="unicode"),
    ],
)
def test_aud_forms_are_accepted(aud: Any, audience: Any) -> None:
    assert accept(token({"aud": aud}), audience=audience) == {"aud": aud}


def test_aud_is_ignored_when_aud_verification_is_off() -> None:
    assert accept(token({"aud": ["x"]}), options={"verify_aud": False}) == {"aud": ["x"]}


def test_unicode_issuer_is_accepted() -> None:
    assert accept(token({"iss": "émetteur"}), issuer="émetteur") == {"iss": "émetteur"}


# -- headers ---------------------------------------------------------------------------------

UNKNOWN_HEADERS = {
    "private-member": {"x-tenant": "acme"},
    "typ-at+jwt": {"typ": "at+jwt"},
    "no-typ": {},
    "cty": {"cty": "JWT"},
    "kid-with-plain-key": {"kid": "anything"},
    "nested-object": {"ext": {"a": [1, {"b": None}]}},
    "number-and-bool": {"ver": 2, "debug": False},
    "unicode": {"note": "naïve 東京"},
    "b64-true": {"b64": True},
    "x5t": {"x5t#S256": "abc"},
}


@pytest.mark.parametrize("extra", UNKNOWN_HEADERS.values(), ids=UNKNOWN_HEADERS.keys())
def test_unknown_non_critical_header_members_are_accepted(extra: dict[str, Any]) -> None:
    header = {"alg": "HS256", **extra}
    result = jwtlite.decode_complete(forge(header, {"sub": "1"}), SECRET, ["HS256"], now=NOW)
    assert result["header"] == header
    assert result["payload"] == {"sub": "1"}


def test_header_member_order_and_whitespace_do_not_matter() -> None:
    header = b'{ "typ" : "JWT" ,\r\n\t"alg":"HS256" }'
    assert accept(forge(header, {"sub": "1"})) == {"sub": "1"}


def test_header_written_by_encode_headers_is_accepted() -> None:
    assert accept(token({"sub": "1"}, headers={"kid": "k", "x-custom": [1, 2]})) == {"sub": "1"}


# -- sizes -----------------------------------------------------------------------------------

TEN_KIB_CLAIMS = {"sub": "1", "blob": "x" * 10 * 1024}


def test_ten_kib_of_claims_exceed_the_default_cap() -> None:
    with pytest.raises(MalformedTokenError):
        accept(token(TEN_KIB_CLAIMS))


def test_ten_kib_of_claims_are_accepted_with_a_raised_cap() -> None:
    assert accept(token(TEN_KIB_CLAIMS), max_size=64 * 1024) == TEN_KIB_CLAIMS


def test_many_claims_within_the_default_cap_are_accepted() -> None:
    claims = {f"claim_{index}": index for index in range(300)}
    encoded = token(claims)
    assert len(encoded) < 8192
    assert accept(encoded) == claims


def token_of_length(length: int) -> str:
    """A valid token exactly ``length`` characters long (padding claim and header member)."""
    for extra in range(4):
        for pad in range(length * 3 // 4 - 200, length * 3 // 4):
            candidate = token({"pad": "x" * pad}, headers={"x": "y" * extra})
            if len(candidate) == length:
                return candidate
    raise AssertionError("unreachable")  # pragma: no cover


def test_token_of_exactly_the_cap_is_accepted() -> None:
    exact = token_of_length(8192)
    assert accept(exact)["pad"]
    with pytest.raises(MalformedTokenError):
        accept(exact, max_size=8191)


# -- content ---------------------------------------------------------------------------------

UNICODE_CLAIMS = {
    "name": "Zoë Ångström",
    "cjk": "山田太郎",
    "emoji": "🔐🙂",
    "rtl": "שלום",
    "combining": "e\u0301",
    "line-separators": "a\u2028b\u2029c",
    "escapes": 'quote " backslash \\ newline \n tab \t nul \u0000',
    "名前": "key is unicode too",
}


def test_unicode_claims_round_trip() -> None:
    assert accept(token(UNICODE_CLAIMS)) == UNICODE_CLAIMS


def test_raw_utf8_claims_from_other_encoders_are_accepted() -> None:
    raw = json.dumps(UNICODE_CLAIMS, ensure_ascii=False, separators=(",", ":")).encode()
    assert accept(forge({"alg": "HS256"}, raw)) == UNICODE_CLAIMS


def test_escaped_surrogate_pairs_are_accepted() -> None:
    assert accept(forge({"alg": "HS256"}, b'{"e":"\\ud83d\\udd10"}')) == {"e": "🔐"}


NESTED = {
    "realm_access": {"roles": ["admin", "user"]},
    "resource_access": {"api": {"roles": ["read"], "scopes": {"a": {"b": {"c": [1, 2, 3]}}}}},
    "empty": {"o": {}, "l": []},
    "mixed": [{"k": None}, [True, False], 1.25, -0, "s"],
}


def test_nested_claim_objects_are_accepted() -> None:
    assert accept(token(NESTED)) == NESTED


def test_nesting_up_to_the_depth_limit_is_accepted() -> None:
    deep: dict[str, Any] = {}
    for _ in range(30):
        deep = {"d": deep}
    claims = {"deep": deep}  # 32 levels counting the claims object itself
    assert accept(token(claims)) == claims


def test_large_integers_and_precise_floats_round_trip() -> None:
    claims = {"big": 2**64 + 1, "neg": -(2**70), "pi": 3.141592653589793, "tiny": 5e-324}
    assert accept(token(claims)) == claims


def test_bytes_tokens_are_accepted() -> None:
    assert accept(token({"sub": "1"}).encode("ascii")) == {"sub": "1"}


def test_private_claims_of_any_type_are_left_alone() -> None:
    # sub and jti must be strings (tests/library/test_jwt.py); claims nobody registered are data.
    claims = {"jti": "5", "sub": "1", "scope": ["a"], "user": {"id": 1}, "token_type": "access"}
    assert accept(token(claims)) == claims


# -- keys ------------------------------------------------------------------------------------


def test_rotated_keyset_accepts_tokens_of_every_kept_key() -> None:
    first = Key(SECRET, "HS256", kid="2024")
    second = Key(b"second-secret-0123456789abcdefghij", "HS256", kid="2025")
    old_token = jwtlite.encode({"v": 1}, KeySet([first]))
    keyset = KeySet([first]).rotated(second)
    new_token = jwtlite.encode({"v": 2}, keyset)
    assert jwtlite.decode(old_token, keyset, ["HS256"]) == {"v": 1}
    assert jwtlite.decode(new_token, keyset, ["HS256"]) == {"v": 2}


def test_secret_given_as_str_verifies_bytes_signed_token() -> None:
    assert jwtlite.decode(token({"a": 1}), SECRET.decode(), ["HS256"], now=NOW) == {"a": 1}


def test_allowlist_of_several_algorithms_accepts_each() -> None:
    ec_key = Key.generate("ES256")
    for key in (ec_key, Key(SECRET, "HS256")):
        encoded = jwtlite.encode({"a": 1}, key)
        verifier = key.public_key()
        assert jwtlite.decode(encoded, verifier, ["ES256", "HS256", "EdDSA"]) == {"a": 1}
