"""Registration rules for usernames, e-mail addresses and passwords, in Django's wording.

Every function is pure; each ``*_problems`` function returns the list of messages for the
rules broken (empty when the value is acceptable), so a client sees every problem at once.
The only I/O is reading the shipped common-password list, once, on first use.
"""

from __future__ import annotations

import difflib
import functools
import gzip
import re
import threading
import unicodedata
from importlib import resources

__all__ = [
    "common_passwords",
    "email_problems",
    "normalize_email",
    "normalize_username",
    "password_problems",
    "username_key",
    "username_problems",
]

USERNAME_MAX_LENGTH = 150
# Past this, no NFKC can bring a value back under USERNAME_MAX_LENGTH that the other rules
# would accept (normalisation composes at most a few code points into one).
_RAW_USERNAME_MAX_LENGTH = 4 * USERNAME_MAX_LENGTH
EMAIL_MAX_LENGTH = 254
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_BYTES = 4096
# Django's UserAttributeSimilarityValidator default.
MAX_SIMILARITY = 0.7

_BLANK = "This field may not be blank."
_USERNAME_TOO_LONG = f"Ensure this field has no more than {USERNAME_MAX_LENGTH} characters."
_USERNAME_CHARACTERS = (
    "Enter a valid username. This value may contain only letters, numbers, "
    "and @/./+/-/_ characters."
)
_USERNAME_MIXED_SCRIPTS = (
    "Enter a valid username. Letters from more than one script are not allowed."
)
_EMAIL_INVALID = "Enter a valid email address."
_PASSWORD_TOO_SHORT = (
    f"This password is too short. It must contain at least {PASSWORD_MIN_LENGTH} characters."
)
_PASSWORD_TOO_LONG = (
    f"This password is too long. It must contain at most {PASSWORD_MAX_BYTES} bytes."
)
_PASSWORD_LIKE_USERNAME = "The password is too similar to the username."
_PASSWORD_LIKE_EMAIL = "The password is too similar to the email address."
_PASSWORD_COMMON = "This password is too common."
_PASSWORD_NUMERIC = "This password is entirely numeric."

# Django's UnicodeUsernameValidator: \w is Unicode-aware for str patterns (letters, digits,
# underscore), which already excludes whitespace, punctuation, control and format characters.
_USERNAME_CHARS = re.compile(r"[\w.@+-]+")

# Scripts that legitimately mix in one name (Unicode TR39 "highly restrictive", minus Latin:
# we do not let Latin letters mix with anything, since that is where look-alikes hide).
_COMPATIBLE_SCRIPTS = (
    frozenset({"CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"CJK", "BOPOMOFO"}),
    frozenset({"CJK", "HANGUL"}),
)
# First words of character names that denote a script other than their own first word.
_SCRIPT_ALIASES = {
    "IDEOGRAPHIC": "CJK",
    "KATAKANA-HIRAGANA": "KATAKANA",
}
# Letters (category Lm) shared by many scripts: they do not pick a script.
_SCRIPT_NEUTRAL = frozenset({"MODIFIER"})

# Django's dot-atom local part (quoted local parts are legal but not sane for an account).
_LOCAL_PART = re.compile(r"[-!#$%&'*+/=?^_`{}|~0-9A-Za-z]+(?:\.[-!#$%&'*+/=?^_`{}|~0-9A-Za-z]+)*")
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TOP_LEVEL_DOMAIN = re.compile(r"(?!-)[a-z0-9-]{2,63}(?<!-)")
_NON_WORD = re.compile(r"\W+")

_COMMON_PASSWORDS_FILE = "common-passwords.txt.gz"


def normalize_username(value: str) -> str:
    """Strip surrounding whitespace and apply NFKC (fullwidth ``admin`` becomes ``admin``).

    A value too long to be a username once normalised is returned stripped but otherwise as
    it is: NFKC can multiply a string's length by 18 (U+FDFA is 18 letters), so 63 KB of it
    cost two seconds of CPU per request before any length rule could refuse it.
    """
    value = value.strip()
    if len(value) > _RAW_USERNAME_MAX_LENGTH:
        return value
    return unicodedata.normalize("NFKC", value)


def username_key(normalised: str) -> str:
    """Return the case-insensitive uniqueness key of a normalised username."""
    return normalised.casefold()


def username_problems(username: str) -> list[str]:
    """Return the rules broken by a (normalised) username; empty when it is acceptable.

    Every broken rule is reported, as Django REST framework does, except that the per-letter
    script check (Python code) is skipped for a value too long to be a username at all: it
    is not to be run over an attacker's 64 KB.
    """
    if not username:
        return [_BLANK]
    problems = []
    if len(username) > USERNAME_MAX_LENGTH:
        problems.append(_USERNAME_TOO_LONG)
    if not _USERNAME_CHARS.fullmatch(username):
        problems.append(_USERNAME_CHARACTERS)
    if len(username) <= _RAW_USERNAME_MAX_LENGTH and not _scripts_compatible(
        _letter_scripts(username)
    ):
        problems.append(_USERNAME_MIXED_SCRIPTS)
    return problems


def _letter_scripts(text: str) -> set[str]:
    """Scripts of the letters in ``text``, named by the first word of each letter's name."""
    scripts = set()
    for char in text:
        if not char.isalpha():
            continue
        # Unicode names start with the script for letters ("LATIN SMALL LETTER A",
        # "CYRILLIC SMALL LETTER A", "CJK UNIFIED IDEOGRAPH-4E00"); the stdlib has no
        # Script property, and this is precise enough to catch look-alike mixes.
        word = unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]
        word = _SCRIPT_ALIASES.get(word, word)
        if word not in _SCRIPT_NEUTRAL:
            scripts.add(word)
    return scripts


def _scripts_compatible(scripts: set[str]) -> bool:
    return len(scripts) <= 1 or any(scripts <= allowed for allowed in _COMPATIBLE_SCRIPTS)


def normalize_email(value: str) -> str:
    """Strip surrounding whitespace and lower-case the domain part (the local part is kept)."""
    value = value.strip()
    local, at, domain = value.rpartition("@")
    if not at:
        return value
    return f"{local}@{domain.lower()}"


def email_problems(email: str) -> list[str]:
    """Return the rules broken by an e-mail address; the empty string is fine (optional)."""
    if not email:
        return []
    return [] if _is_valid_email(email) else [_EMAIL_INVALID]


def _is_valid_email(email: str) -> bool:
    if len(email) > EMAIL_MAX_LENGTH or email.count("@") != 1:
        return False
    local, domain = email.split("@")
    # The local part is ASCII by regex; the domain may be internationalised, but no
    # invisible, control or separator character may hide in it (IDNA would drop some).
    if any(unicodedata.category(char)[0] in "CZ" for char in domain):
        return False
    if len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        return False
    ascii_labels = _ascii_labels(domain)
    if ascii_labels is None:
        return False
    if len(local) + 1 + sum(len(label) + 1 for label in ascii_labels) - 1 > EMAIL_MAX_LENGTH:
        return False
    *names, top = ascii_labels
    return (
        bool(names)
        and all(_DOMAIN_LABEL.fullmatch(label) for label in names)
        and bool(_TOP_LEVEL_DOMAIN.fullmatch(top))
        and not top.isdigit()
    )


def _ascii_labels(domain: str) -> list[str] | None:
    """The domain's labels in IDNA (ASCII) form, lower-cased; None when one cannot be."""
    labels = domain.split(".")
    # A label is at most 63 octets once encoded; a longer one is refused before IDNA, whose
    # pure-Python mapping cost 30 ms on 248 characters that NFKC multiplies by 18.
    if any(len(label) > 63 for label in labels):
        return None
    try:
        # One label at a time, so ideographic full stops are not taken as dots.
        return [label.encode("idna").decode("ascii").lower() for label in labels]
    except UnicodeError:
        return None


def password_problems(password: str, *, username: str = "", email: str = "") -> list[str]:
    """Return every password rule broken, in a fixed order.

    The order is: too short, too long, too similar to the username, too similar to the
    e-mail address, too common, entirely numeric. A password over the byte limit skips the
    similarity and common-password checks (they cannot apply, and would cost time).
    """
    problems = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(_PASSWORD_TOO_SHORT)
    too_long = len(password.encode("utf-8", "surrogatepass")) > PASSWORD_MAX_BYTES
    if too_long:
        problems.append(_PASSWORD_TOO_LONG)
    else:
        if _too_similar(password, username):
            problems.append(_PASSWORD_LIKE_USERNAME)
        if _too_similar(password, email):
            problems.append(_PASSWORD_LIKE_EMAIL)
        if password.lower().strip() in common_passwords():
            problems.append(_PASSWORD_COMMON)
    if password.isdigit():
        problems.append(_PASSWORD_NUMERIC)
    return problems


def _too_similar(password: str, attribute: str) -> bool:
    """Django's UserAttributeSimilarityValidator test for one attribute.

    The caller passes only attributes that passed their own rules, so both are bounded in
    length."""
    if not attribute or len(attribute) > max(USERNAME_MAX_LENGTH, EMAIL_MAX_LENGTH):
        return False
    password = password.lower()
    value = attribute.lower()
    for part in [*_NON_WORD.split(value), value]:
        # As Django: a password ten times longer than the part, and long enough that even a
        # perfect match of the part could not reach the threshold, is not "similar".
        if len(password) >= 10 * len(part) and len(part) < MAX_SIMILARITY / 2 * len(password):
            continue
        if difflib.SequenceMatcher(a=password, b=part).quick_ratio() >= MAX_SIMILARITY:
            return True
    return False


_load_lock = threading.Lock()


def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (lower-case), loaded once on first use."""
    with _load_lock:
        return _load_common_passwords()


@functools.cache
def _load_common_passwords() -> frozenset[str]:
    data = (
        resources.files("jwtlite.service.credentials.data")
        .joinpath(_COMMON_PASSWORDS_FILE)
        .read_bytes()
    )
    lines = gzip.decompress(data).decode("utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip())
