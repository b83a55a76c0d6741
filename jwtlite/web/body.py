"""Request bodies: size, media type, charset and syntax, checked before any field is read.

Bodies are JSON or HTML forms, as Django REST framework's default parsers take them. The
text must be UTF-8: a request may name it (or one of its plain aliases, or US-ASCII, its
subset) in a ``charset`` parameter, and any other charset is refused *before* a byte is
decoded, with 400 and the parse-error shape Django REST framework gives an unknown charset.
Decoding with whatever codec a client names is a denial of service and a 500:
``punycode`` spends seconds of CPU under the GIL on 64 KiB, ``utf-7`` and
``unicode_escape`` produce lone surrogates that no layer below can store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import falcon

from jwtlite._encoding import EncodingError, json_loads
from jwtlite.service.errors import ValidationError

__all__ = ["FORM_TYPE", "JSON_TYPE", "read_body"]

JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
# The WHATWG Encoding Standard's labels for UTF-8, which is what browsers and HTTP clients
# send; US-ASCII is accepted as UTF-8's subset and checked as ASCII.
_UTF8_LABELS = frozenset(
    {"utf-8", "utf8", "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "x-unicode20utf8"}
)
_ASCII_LABELS = frozenset({"us-ascii", "ascii"})
_TYPE_NAMES = {list: "list", str: "str", int: "int", float: "float", bool: "bool"}
# No endpoint reads more than a handful of fields; 21,600 empty ones cost 30 ms to parse.
_MAX_FORM_FIELDS = 64


def read_body(req: falcon.Request, max_size: int) -> Mapping[str, Any]:
    """The request body as a mapping, parsed by its media type, as DRF's parsers would.

    An empty body (or one without a ``Content-Type``) is ``{}``, so that the service reports
    each missing field. The size is checked against ``Content-Length`` before reading, and
    a body without one (chunked) is read only up to ``max_size + 1`` bytes.

    Raises:
        falcon.HTTPContentTooLarge: the body is larger than ``max_size``.
        falcon.HTTPUnsupportedMediaType: neither JSON nor a form.
        falcon.HTTPBadRequest: a charset other than UTF-8, malformed JSON or form data, or
            text that is not UTF-8.
        ValidationError: the body is JSON but not an object.
    """
    length = req.content_length
    if length is not None and length > max_size:
        raise _too_large(max_size)
    raw = req.bounded_stream.read(max_size + 1)
    if len(raw) > max_size:
        raise _too_large(max_size)
    content_type = req.content_type
    if not raw or not content_type:
        return {}
    if content_type == JSON_TYPE:  # the common case, without parsing parameters
        return _parse_json(raw)
    media_type, _, parameters = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type not in (JSON_TYPE, FORM_TYPE):
        raise falcon.HTTPUnsupportedMediaType(
            description=f'Unsupported media type "{content_type}" in request.'
        )
    what = "JSON" if media_type == JSON_TYPE else "Form"
    if _charset_is_ascii(parameters, what) and not raw.isascii():
        raise falcon.HTTPBadRequest(description=f"{what} parse error - body is not US-ASCII")
    if media_type == JSON_TYPE:
        return _parse_json(raw)
    return _parse_form(raw)


def _too_large(max_size: int) -> falcon.HTTPError:
    return falcon.HTTPContentTooLarge(
        description=f"Request body is larger than the limit of {max_size} bytes."
    )


def _charset_is_ascii(parameters: str, what: str) -> bool:
    """Whether the body is declared US-ASCII (else UTF-8, named or by default).

    Raises:
        falcon.HTTPBadRequest: a charset other than UTF-8 or US-ASCII, or more than one
            ``charset`` parameter.
    """
    charsets = []
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charsets.append(value.strip().strip('"').strip().lower())
    if not charsets:
        return False
    if len(charsets) == 1 and charsets[0] in _UTF8_LABELS:
        return False
    if len(charsets) == 1 and charsets[0] in _ASCII_LABELS:
        return True
    # Named back JSON-encoded (as every message is), cut short: it is the client's text.
    named = ", ".join(charsets)[:40]
    raise falcon.HTTPBadRequest(
        description=f'{what} parse error - unsupported charset "{named}": send UTF-8'
    )


def _parse_json(raw: bytes) -> Mapping[str, Any]:
    try:
        value = json_loads(raw)
    except EncodingError as exc:
        raise falcon.HTTPBadRequest(description=f"JSON parse error - {exc}") from exc
    if not isinstance(value, dict):
        kind = _TYPE_NAMES.get(type(value), "NoneType")
        raise ValidationError(
            {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}
        )
    return value


def _parse_form(raw: bytes) -> Mapping[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise falcon.HTTPBadRequest(description="Form parse error - body is not UTF-8") from exc
    try:
        # Like Django's QueryDict.get: the last value of a repeated name wins. Percent-escapes
        # decode as UTF-8 with replacement, never to a lone surrogate.
        return dict(
            parse_qsl(
                text,
                keep_blank_values=True,
                strict_parsing=False,
                max_num_fields=_MAX_FORM_FIELDS,
            )
        )
    except ValueError as exc:  # too many fields
        raise falcon.HTTPBadRequest(description="Form parse error - invalid form data") from exc
