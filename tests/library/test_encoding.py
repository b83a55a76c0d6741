"""Tests for jwtlite._encoding: strict base64url and strict JSON."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jwtlite._encoding import (
    MAX_JSON_DEPTH,
    EncodingError,
    b64url_decode,
    b64url_encode,
    json_dumps,
    json_loads,
)

URL_SAFE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def nested(depth: int, *, kind: str = "object") -> bytes:
    """JSON text whose outermost value is nested ``depth`` containers deep."""
    if kind == "object":
        return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)
    return b"[" * depth + b"]" * depth


# -- base64url ----------------------------------------------------------------------------------

# RFC 4648 §10 test vectors, without padding.
RFC4648_VECTORS = [
    (b"", b""),
    (b"f", b"Zg"),
    (b"fo", b"Zm8"),
    (b"foo", b"Zm9v"),
    (b"foob", b"Zm9vYg"),
    (b"fooba", b"Zm9vYmE"),
    (b"foobar", b"Zm9vYmFy"),
]


@pytest.mark.parametrize(
    ("raw", "encoded"), RFC4648_VECTORS, ids=[e.decode() or "empty" for _, e in RFC4648_VECTORS]
)
def test_b64url_matches_rfc4648_vectors(raw: bytes, encoded: bytes) -> None:
    assert b64url_encode(raw) == encoded
    assert b64url_decode(encoded) == raw


def test_b64url_encode_uses_url_safe_alphabet() -> None:
    assert b64url_encode(b"\xfb\xff\xbf") == b"-_-_"
    assert b64url_decode(b"-_-_") == b"\xfb\xff\xbf"


REFUSED_SEGMENTS = {
    "padding-two": b"Zg==",
    "padding-one": b"Zm8=",
    "padding-on-full-block": b"Zm9v====",
    "standard-plus": b"+_-_",
    "standard-slash": b"-/-_",
    "leading-space": b" Zm9v",
    "trailing-newline": b"Zm9v\n",
    "inner-space": b"Zm 9v",
    "tab": b"Zm9v\t",
    "crlf": b"Zm9v\r\n",
    "dot": b"Zm9.",
    "nul": b"Zm9\x00",
    "non-ascii": "Zm9é".encode(),
    "high-byte": b"Zm9\xff",
    "impossible-length-1": b"A",
    "impossible-length-5": b"Zm9vY",
    "non-canonical-2-chars": b"Zh",
    "non-canonical-3-chars": b"Zm9",
    "non-canonical-last-bits": b"Zm9vYh",
}


@pytest.mark.parametrize("segment", REFUSED_SEGMENTS.values(), ids=REFUSED_SEGMENTS.keys())
def test_b64url_decode_refuses(segment: bytes) -> None:
    with pytest.raises(EncodingError):
        b64url_decode(segment)


def test_encoding_error_is_a_value_error() -> None:
    assert issubclass(EncodingError, ValueError)


@given(st.binary(max_size=200))
def test_b64url_round_trips_any_bytes(data: bytes) -> None:
    encoded = b64url_encode(data)
    assert b"=" not in encoded
    assert set(encoded.decode()) <= set(URL_SAFE_ALPHABET)
    assert b64url_decode(encoded) == data
    assert encoded == base64.urlsafe_b64encode(data).rstrip(b"=")


@given(st.text(alphabet=URL_SAFE_ALPHABET, max_size=40))
def test_b64url_decode_accepts_only_canonical_text(text: str) -> None:
    """Either the segment is the one canonical encoding of its bytes, or it is refused."""
    segment = text.encode()
    try:
        decoded = b64url_decode(segment)
    except EncodingError:
        return
    assert b64url_encode(decoded) == segment


# -- JSON dumping -------------------------------------------------------------------------------


def test_json_dumps_is_compact_utf8_bytes() -> None:
    out = json_dumps({"alg": "HS256", "typ": "JWT", "list": [1, 2]})
    assert out == b'{"alg":"HS256","typ":"JWT","list":[1,2]}'


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"]
)
def test_json_dumps_refuses_non_finite_numbers(value: float) -> None:
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        json_dumps({"x": value})


def test_json_dumps_round_trips_unicode() -> None:
    value = {"名前": "Zoë 😀", "esc": '\u2028"\\'}
    assert json_loads(json_dumps(value)) == value


# -- JSON loading ------------------------------------------------------------------------------

ACCEPTED_JSON = {
    "object": (b'{"a":1}', {"a": 1}),
    "whitespace-and-crlf": (b'{"typ":"JWT",\r\n "alg":"HS256"}', {"typ": "JWT", "alg": "HS256"}),
    "raw-utf8": ('{"n":"Zoë 山田"}'.encode(), {"n": "Zoë 山田"}),
    "escaped-unicode": (b'{"n":"\\u00e9\\ud83d\\ude00"}', {"n": "é😀"}),
    "array-at-this-layer": (b"[1,2]", [1, 2]),
    "string-at-this-layer": (b'"x"', "x"),
    "float": (b'{"exp":1.5e9}', {"exp": 1.5e9}),
    "same-key-in-sibling-objects": (b'{"a":{"k":1},"b":{"k":2}}', {"a": {"k": 1}, "b": {"k": 2}}),
}


@pytest.mark.parametrize(
    ("data", "expected"), ACCEPTED_JSON.values(), ids=list(ACCEPTED_JSON.keys())
)
def test_json_loads_accepts(data: bytes, expected: object) -> None:
    assert json_loads(data) == expected


REFUSED_JSON = {
    "utf8-bom": b'\xef\xbb\xbf{"a":1}',
    "utf16-le-bom": '\ufeff{"a":1}'.encode("utf-16-le"),
    "utf16-be-bom": '\ufeff{"a":1}'.encode("utf-16-be"),
    "utf16-le-no-bom": '{"a":1}'.encode("utf-16-le"),
    "utf16-be-no-bom": '{"a":1}'.encode("utf-16-be"),
    "utf32": '{"a":1}'.encode("utf-32"),
    "latin1": '{"a":"é"}'.encode("latin-1"),
    "invalid-utf8-continuation": b'{"a":"\x80"}',
    "overlong-utf8": b'{"a":"\xc0\xaf"}',
    "utf8-encoded-surrogate": b'{"a":"\xed\xa0\x80"}',
    "duplicate-member": b'{"a":1,"a":2}',
    "duplicate-member-nested": b'{"o":{"a":1,"a":1}}',
    "duplicate-member-in-array": b'[{"a":1,"a":2}]',
    "nan": b'{"a":NaN}',
    "infinity": b'{"a":Infinity}',
    "negative-infinity": b'{"a":-Infinity}',
    "overflow-to-infinity": b'{"a":1e400}',
    "overflow-to-negative-infinity": b'{"a":-1e400}',
    "huge-integer-digits": b'{"a":' + b"9" * 5000 + b"}",
    "empty": b"",
    "whitespace-only": b"  ",
    "trailing-garbage": b'{"a":1}x',
    "two-values": b'{"a":1}{"b":2}',
    "single-quotes": b"{'a':1}",
    "trailing-comma": b'{"a":1,}',
    "comment": b'{"a":1 /* c */}',
    "unquoted-key": b"{a:1}",
    "control-char-in-string": b'{"a":"\x01"}',
    "depth-33-objects": nested(MAX_JSON_DEPTH + 1),
    "depth-33-arrays": nested(MAX_JSON_DEPTH + 1, kind="array"),
    "depth-100000": nested(100_000, kind="array"),
}


@pytest.mark.parametrize("data", REFUSED_JSON.values(), ids=REFUSED_JSON.keys())
def test_json_loads_refuses(data: bytes) -> None:
    with pytest.raises(EncodingError):
        json_loads(data)


@pytest.mark.parametrize("kind", ["object", "array"])
def test_json_loads_accepts_depth_limit_exactly(kind: str) -> None:
    assert MAX_JSON_DEPTH == 32
    json_loads(nested(MAX_JSON_DEPTH, kind=kind))


def test_json_loads_depth_counts_mixed_containers() -> None:
    data = b'{"a":[' * 16 + b"1" + b"]}" * 16
    json_loads(data)  # 32 levels
    with pytest.raises(EncodingError):
        json_loads(b"[" + data + b"]")


def test_json_loads_brackets_inside_strings_do_not_count_as_depth() -> None:
    data = json.dumps({"s": "{[" * 100}).encode()
    assert json_loads(data) == {"s": "{[" * 100}


_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@given(_json_values)
def test_json_round_trips_any_json_value(value: object) -> None:
    assert json_loads(json_dumps(value)) == value


@given(st.binary(max_size=64))
def test_json_loads_only_raises_encoding_error(data: bytes) -> None:
    with contextlib.suppress(EncodingError):
        json_loads(data)
