"""Strict base64url and JSON for compact JWS (RFC 7515 §2, RFC 8259, RFC 7493 spirit).

Stricter than most peers on purpose: foreign characters, ``=`` padding, whitespace and
non-canonical trailing bits are rejected rather than repaired, JSON must be UTF-8 without a
BOM, objects may not repeat a member name, and ``NaN``/``Infinity`` are not numbers.
"""

from __future__ import annotations

import binascii
import json
import math
from collections.abc import Mapping
from datetime import datetime
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from types import MappingProxyType
from typing import Any

__all__ = [
    "MAX_JSON_DEPTH",
    "EncodingError",
    "b64url_decode",
    "b64url_encode",
    "json_dumps",
    "json_frozen",
    "json_loads",
    "json_text",
    "json_thawed",
]

MAX_JSON_DEPTH = 32

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_FROM_STANDARD = bytes.maketrans(b"+/", b"-_")
# For a segment whose length is 2 or 3 mod 4 the last character carries 4 or 2 unused bits,
# which must be zero in the canonical encoding (RFC 4648 §3.5). These are the characters
# whose unused low bits are zero.
_CANONICAL_LAST = {
    2: frozenset(b"AQgw"),
    3: frozenset(b"AEIMQUYcgkosw048"),
}
_PADDING = {0: b"", 2: b"==", 3: b"="}


class EncodingError(ValueError):
    """Input is not strict base64url or strict JSON."""


def b64url_encode(data: bytes) -> bytes:
    """Encode ``data`` as base64url without padding."""
    return binascii.b2a_base64(data, newline=False).translate(_FROM_STANDARD).rstrip(b"=")


def b64url_decode(segment: bytes) -> bytes:
    """Decode one unpadded base64url segment, refusing anything non-canonical.

    Raises:
        EncodingError: foreign characters (including ``=`` and whitespace), an impossible
            length, or non-zero trailing bits.
    """
    # Deleting every alphabet character leaves nothing unless a foreign one was there
    # (a C loop, faster than a regex).
    if segment.translate(None, _ALPHABET):
        raise EncodingError("base64url segment has characters outside the URL-safe alphabet")
    remainder = len(segment) % 4
    if remainder == 1:
        raise EncodingError("base64url segment has an impossible length")
    if remainder and segment[-1] not in _CANONICAL_LAST[remainder]:
        raise EncodingError("base64url segment is not canonically encoded")
    try:
        return binascii.a2b_base64(segment.translate(_TO_STANDARD) + _PADDING[remainder])
    except binascii.Error as exc:  # pragma: no cover - excluded by the checks above
        raise EncodingError("base64url segment does not decode") from exc


def _numeric_date(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp())
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# The ``default`` hook runs only for values JSON cannot carry, so datetimes cost nothing
# unless present. The C encoder is built once (``json.dumps`` builds one per call); without
# a circular-reference memo, a circular payload ends in RecursionError, turned into
# ValueError below.
_encode_chunks = c_make_encoder(
    None, _numeric_date, encode_basestring_ascii, None, ":", ",", False, False, False
)


def json_dumps(value: Any) -> bytes:
    """Serialise ``value`` as compact JSON (UTF-8), refusing NaN and infinities.

    ``datetime`` values become whole-second Unix timestamps (JWT NumericDates).

    Raises:
        TypeError: a value JSON cannot carry.
        ValueError: NaN, an infinity, or a circular reference.
    """
    return json_text(value).encode()


def json_text(value: Any) -> str:
    """Like :func:`json_dumps`, as ``str`` (for HTTP response bodies)."""
    try:
        return "".join(_encode_chunks(value, 0))
    except RecursionError as exc:
        raise ValueError("the value is circular or nested too deeply") from exc


def _refuse_constant(name: str) -> Any:
    raise EncodingError(f"JSON constant {name} is not allowed")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise EncodingError("JSON object repeats a member name")
    return obj


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to infinity
        raise EncodingError("JSON number is out of range")
    return value


_decoder = json.JSONDecoder(
    object_pairs_hook=_unique_members, parse_constant=_refuse_constant, parse_float=_finite_float
)
_loads = _decoder.decode
_scan = _decoder.scan_once  # type: ignore[attr-defined]


def json_loads(data: bytes) -> Any:
    """Parse strict JSON from UTF-8 bytes.

    Raises:
        EncodingError: not UTF-8, a BOM, invalid JSON, a repeated member name, a
            non-finite constant, or nesting deeper than ``MAX_JSON_DEPTH``.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        raise EncodingError("JSON must not start with a byte order mark")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EncodingError("JSON is not valid UTF-8") from exc
    try:
        value = _parse(text)
    except EncodingError:
        raise
    except RecursionError as exc:
        raise EncodingError("JSON is nested too deeply") from exc
    except json.JSONDecodeError as exc:
        raise EncodingError(f"JSON is invalid: {exc.msg}") from exc
    except ValueError as exc:  # e.g. an integer longer than int_max_str_digits
        raise EncodingError("JSON has an out-of-range number") from exc
    # Counting brackets is a cheap upper bound on depth; walk only when it could be exceeded.
    if data.count(b"{") + data.count(b"[") > MAX_JSON_DEPTH and _depth(value) > MAX_JSON_DEPTH:
        raise EncodingError("JSON is nested too deeply")
    return value


def _parse(text: str) -> Any:
    # scan_once is the C scanner without decode()'s whitespace handling; when the text has
    # surrounding whitespace or is invalid, the full decode() gives the right answer.
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return _loads(text)
    if end != len(text):
        return _loads(text)
    return value


def _depth(value: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def json_frozen(value: Any) -> Any:
    """A read-only copy of a parsed JSON value, safe to share between callers.

    Objects become ``MappingProxyType`` views of private dicts, arrays become tuples."""
    if isinstance(value, dict):
        return MappingProxyType({name: json_frozen(item) for name, item in value.items()})
    if isinstance(value, list):
        return tuple(json_frozen(item) for item in value)
    return value


def json_thawed(value: Any) -> Any:
    """A fresh mutable copy of a :func:`json_frozen` value (dicts and lists again)."""
    if isinstance(value, Mapping):
        return {name: json_thawed(item) for name, item in value.items()}
    if isinstance(value, tuple):
        return [json_thawed(item) for item in value]
    return value
