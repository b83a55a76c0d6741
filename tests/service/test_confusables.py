"""Confusable skeletons (UTS #39) and the username look-alike key.

Non-ASCII test strings are written as escapes on purpose: a look-alike must be visible as
what it is in review. Expectations come from the shipped ``confusables.txt`` (Unicode
18.0.0); where the table pairs nothing, the test says that they do not collide.
"""

from __future__ import annotations

import gzip
import hashlib
import sys
import threading
import unicodedata
from functools import cache
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jwtlite.service.credentials import confusables
from jwtlite.service.credentials.confusables import data_version, skeleton, username_skeleton
from jwtlite.service.credentials.validators import normalize_username, username_key

# Of the decompressed file, as downloaded from
# https://www.unicode.org/Public/18.0.0/security/confusables.txt (data README).
UPSTREAM_SHA256 = "6ed3ee967c9dfdf6677d563c9985182fbc50a2efb7d6059cd57b2e2ce18f5b92"
UPSTREAM_BYTES = 763_128
UPSTREAM_ENTRIES = 6_712


@cache
def shipped_text() -> str:
    data = (
        resources.files("jwtlite.service.credentials.data")
        .joinpath("confusables.txt.gz")
        .read_bytes()
    )
    return gzip.decompress(data).decode("utf-8")


def shipped_line(source: str) -> list[str]:
    """The three data fields of the shipped line whose source is ``source`` (hex)."""
    [line] = [line for line in shipped_text().splitlines() if line.startswith(f"{source} ;")]
    return [field.strip() for field in line.split("#", 1)[0].split(";")]


@cache
def shipped_sources() -> tuple[str, ...]:
    lines = shipped_text().splitlines()
    data = [line for line in lines if line and not line.startswith("#")]
    return tuple(chr(int(line.split(";", 1)[0], 16)) for line in data)


def username_look_alike_key(raw: str) -> str:
    """The key as registration computes it: normalise, then ``username_skeleton``."""
    return username_skeleton(normalize_username(raw))


@cache
def code_points_that_can_change() -> tuple[str, ...]:
    """Every character a skeleton or a fold can touch; any other is its own key."""
    sources = set(shipped_sources())
    return tuple(
        char
        for char in map(chr, range(sys.maxunicode + 1))
        if char in sources
        or unicodedata.normalize("NFD", char) != char
        or username_key(char) != char
    )


def any_text() -> st.SearchStrategy[str]:
    """Any str at all (lone surrogates included), often with characters the table maps."""
    anything = st.characters(exclude_categories=())
    return st.text(st.one_of(anything, st.sampled_from(shipped_sources())))


# -- the data file ---------------------------------------------------------------------------


def test_data_file_is_unicodes_unchanged() -> None:
    raw = shipped_text().encode("utf-8")
    assert len(raw) == UPSTREAM_BYTES
    assert hashlib.sha256(raw).hexdigest() == UPSTREAM_SHA256


def test_data_header_names_its_unicode_version() -> None:
    header = shipped_text().splitlines()[:11]
    assert header[0] == "# confusables.txt"
    assert "# Unicode Security Mechanisms for UTS #39" in header
    assert "# Version: 18.0.0" in header
    assert data_version() == "18.0.0"
    assert shipped_text().rstrip().endswith(f"# total: {UPSTREAM_ENTRIES}")
    assert len(shipped_sources()) == UPSTREAM_ENTRIES


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("0430", "0061"),
        ("0440", "0070"),
        ("0391", "0041"),
        ("0399", "006C"),
        ("04CF", "006C"),
        ("0049", "006C"),
        ("0031", "006C"),
        ("0030", "004F"),
        ("006D", "0072 006E"),
        ("FF41", "0061"),
        ("1D41A", "0061"),
    ],
    ids=[
        "cyrillic-a-is-a",
        "cyrillic-er-is-p",
        "greek-capital-alpha-is-A",
        "greek-capital-iota-is-l",
        "cyrillic-palochka-is-l",
        "capital-I-is-l",
        "digit-one-is-l",
        "digit-zero-is-capital-O",
        "m-is-rn",
        "fullwidth-a-is-a",
        "math-bold-a-is-a",
    ],
)
def test_skeleton_follows_the_shipped_line(source: str, target: str) -> None:
    assert shipped_line(source) == [source, target, "MA"]
    prototype = "".join(chr(int(point, 16)) for point in target.split())
    assert skeleton(chr(int(source, 16))) == unicodedata.normalize("NFD", prototype)


@pytest.mark.parametrize(
    "text",
    [
        "# Version: 18.0.0\n0430 ;\t0061 ;\n",
        "# Version: 18.0.0\n0430 ;\t0061 ;\tSL\t# old single-script table\n",
        "# Version: 18.0.0\n0430 ;\t0061 ;\tMA\n0430 ;\t006F ;\tMA\n",
        "# Version: 18.0.0\nzz ;\t0061 ;\tMA\n",
        "0430 ;\t0061 ;\tMA\n",
        "# Version: 18.0.0\n# total: 0\n",
    ],
    ids=[
        "two-fields",
        "not-the-MA-table",
        "source-mapped-twice",
        "not-hex",
        "no-version-header",
        "no-mapping",
    ],
)
def test_broken_data_file_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="confusables"):
        confusables._parse(text)


def test_table_loads_once_across_threads() -> None:
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(confusables._confusables()))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(result) for result in results}) == 1


# -- skeleton --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("\u0430\u0441\u0435", "ace"),
        ("\u0440\u0430\u0443\u0440\u0430l", "paypal"),
        ("\u0391\u0392\u0395", "ABE"),
        ("\u03a4\u039f\u039a\u03a5\u039f", "TOKYO"),
        ("\uff41\uff4c\uff49\uff43\uff45", "alice"),
        ("\U0001d41a\U0001d41d\U0001d426\U0001d422\U0001d427", "admin"),
        ("\U0001d5ba\U0001d5bd\U0001d5c6\U0001d5c2\U0001d5c7", "admin"),
        ("rnary", "mary"),
        ("Iron", "lron"),
        ("1ron", "lron"),
        ("\u04cfron", "lron"),
        ("B0B", "BOB"),
        ("\u0261reg", "greg"),
        ("\u00e9mile", "e\u0301mile"),
    ],
    ids=[
        "cyrillic-ace",
        "cyrillic-paypal",
        "greek-capitals-ABE",
        "greek-capitals-TOKYO",
        "fullwidth-alice",
        "math-bold-admin",
        "math-sans-serif-admin",
        "rn-m",
        "capital-I-l",
        "digit-one-l",
        "cyrillic-palochka-l",
        "digit-zero-capital-O",
        "script-g",
        "precomposed-vs-combining-accent",
    ],
)
def test_skeleton_collides(a: str, b: str) -> None:
    assert a != b
    assert skeleton(a) == skeleton(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("alice", "alicia"),
        ("bob", "b0b"),
        ("iron", "lron"),
        ("Alice", "alice"),
        ("william", "vvilliam"),
        ("dan", "clan"),
        ("\u03b1\u03b2\u03b5", "abe"),
    ],
    ids=[
        "different-names",
        "zero-is-capital-O-not-small-o",
        "dotted-i-is-not-l",
        "skeleton-is-case-sensitive",
        "w-is-not-vv-in-the-table",
        "d-is-not-cl-in-the-table",
        "greek-small-beta-epsilon-are-not-b-e",
    ],
)
def test_skeleton_keeps_apart(a: str, b: str) -> None:
    assert skeleton(a) != skeleton(b)


@given(any_text())
def test_skeleton_is_idempotent_and_total(text: str) -> None:
    once = skeleton(text)
    assert isinstance(once, str)
    assert skeleton(once) == once


def test_skeleton_is_idempotent_for_every_code_point() -> None:
    unstable = []
    for char in code_points_that_can_change():
        once = skeleton(char)
        if skeleton(once) != once:
            unstable.append(f"U+{ord(char):04X}")
    assert unstable == []


# -- username_skeleton -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("aIice", "alice"),
        ("Iron", "1ron"),
        ("b0b", "bob"),
        ("B0B", "bob"),
        ("MARY", "rnary"),
        ("\u0410\u0421\u0415", "ace"),
        ("\u0430\u0441\u0435", "ACE"),
        ("\u0391\u0392\u0395", "abe"),
        ("Alice", "alice"),
        ("STRASSE", "stra\u00dfe"),
        ("\uff21\uff2c\uff29\uff23\uff25", "AL1CE"),
        ("\U0001d41a\U0001d41d\U0001d426\U0001d422\U0001d427", "admin"),
    ],
    ids=[
        "capital-I-inside-a-lower-case-name",
        "capital-I-digit-one",
        "digit-zero-small-o",
        "digit-zero-any-case",
        "M-rn",
        "cyrillic-capitals-ACE",
        "cyrillic-small-ace-latin-capitals",
        "greek-capitals-abe",
        "case-variants",
        "german-sharp-s",
        "fullwidth-capitals-digit-one",
        "math-bold",
    ],
)
def test_username_skeleton_collides(a: str, b: str) -> None:
    assert username_look_alike_key(a) == username_look_alike_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("alice", "alicia"),
        ("iron", "lron"),
        ("william", "vvilliam"),
        ("dan", "clan"),
        ("ALICE", "alice"),
    ],
    ids=[
        "different-names",
        "dotted-i-is-not-l",
        "w-is-not-vv",
        "d-is-not-cl",
        "case-variant-left-to-username-key",
    ],
)
def test_username_skeleton_keeps_apart(a: str, b: str) -> None:
    assert username_look_alike_key(a) != username_look_alike_key(b)


def test_folding_before_the_skeleton_would_miss_capital_look_alikes() -> None:
    # The regression the key's order prevents: "aIice" (capital I) reads as "alice".
    def fold_first(name: str) -> str:
        return skeleton(username_key(name))

    assert fold_first("aIice") != fold_first("alice")
    assert fold_first("\u0391\u0392\u0395") != fold_first("ABE")
    assert username_skeleton("aIice") == username_skeleton("alice")
    assert username_skeleton("\u0391\u0392\u0395") == username_skeleton("ABE")


def test_username_skeleton_is_one_call_beside_username_key() -> None:
    # The wiring: both keys of one normalised username (the store keeps both, unique).
    username = normalize_username("\uff21lice")
    assert (username_key(username), username_skeleton(username)) == ("alice", "alice")


@given(any_text())
def test_username_skeleton_is_idempotent_and_total(text: str) -> None:
    key = username_skeleton(text)
    assert isinstance(key, str)
    assert username_skeleton(key) == key


def test_username_skeleton_is_idempotent_for_every_code_point() -> None:
    # Idempotent means the fold-and-skeleton loop reached its fixed point, for every
    # character, within the rounds it allows.
    unstable = []
    for char in code_points_that_can_change():
        key = username_skeleton(char)
        if username_skeleton(key) != key:
            unstable.append(f"U+{ord(char):04X}")
    assert unstable == []
