"""Request fields, checked the way Django REST framework's ``CharField`` checks them.

Clients written for a DRF backend read these exact messages and shapes, so the service uses
them for every request body: one list of messages per field, every field reported at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jwtlite.service.errors import ValidationError

__all__ = ["Fields"]

REQUIRED = "This field is required."
NULL = "This field may not be null."
BLANK = "This field may not be blank."
NOT_A_STRING = "Not a valid string."
NULL_CHARACTERS = "Null characters are not allowed."
SURROGATE_CHARACTERS = "Surrogate characters are not allowed: U+{:X}."


class Fields:
    """Collects field values and problems from one request body.

    Use :meth:`text` for each field, then :meth:`check`, which raises
    :class:`ValidationError` with every problem found.
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data
        self.errors: dict[str, list[str]] = {}

    def text(
        self,
        name: str,
        *,
        required: bool = True,
        trim: bool = True,
        allow_blank: bool = False,
        max_length: int | None = None,
    ) -> str:
        """The field as a string ('' when it is absent and optional, or invalid)."""
        if name not in self._data:
            if required:
                self.add(name, REQUIRED)
            return ""
        value = self._data[name]
        if value is None:
            self.add(name, NULL)
            return ""
        # DRF accepts numbers for a CharField and refuses booleans, lists and objects.
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.add(name, NOT_A_STRING)
            return ""
        text = str(value).strip() if trim else str(value)
        if not text and not allow_blank:
            self.add(name, BLANK)
            return ""
        problem = _text_problem(text, max_length)
        if problem is not None:
            self.add(name, problem)
            return ""
        return text

    def add(self, name: str, message: str) -> None:
        """Record a problem with field ``name``."""
        self.errors.setdefault(name, []).append(message)

    def extend(self, name: str, messages: list[str]) -> None:
        """Record several problems with field ``name``."""
        for message in messages:
            self.add(name, message)

    def check(self) -> None:
        """Raise :class:`ValidationError` if any problem was recorded."""
        if self.errors:
            raise ValidationError(self.errors)


def _text_problem(text: str, max_length: int | None) -> str | None:
    if max_length is not None and len(text) > max_length:
        return f"Ensure this field has no more than {max_length} characters."
    # DRF's ProhibitNullCharactersValidator and ProhibitSurrogateCharactersValidator: a
    # lone surrogate (a "\ud800" escape in JSON) cannot even be encoded for the database.
    if "\x00" in text:
        return NULL_CHARACTERS
    if not text.isascii():
        for char in text:
            if "\ud800" <= char <= "\udfff":
                return SURROGATE_CHARACTERS.format(ord(char))
    return None
