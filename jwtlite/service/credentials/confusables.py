"""Unicode confusable skeletons (UTS #39 section 4), so look-alike usernames can be refused.

Two strings are confusable when their skeletons are equal: Cyrillic "ace" (U+0430 U+0441
U+0435) has the skeleton ``ace``, that of the Latin word. A skeleton is a comparison key and
nothing more: it mixes scripts and must never be shown, nor used as a normalisation of what
a user typed.

The mapping is Unicode's ``confusables.txt`` (the UTS #39 "MA" table, version 18.0.0),
shipped unchanged but gzip-compressed in ``jwtlite.service.credentials.data`` (see its README) and
read once, on first use. NFD and case folding come from the running Python's
``unicodedata`` (Unicode 14.0.0 on Python 3.11). Characters newer than that are
unassigned for this Python, so the username rules refuse them before a skeleton is needed.

A skeleton depends on both versions: a store that keeps skeletons must recompute them when
the data file or Python's Unicode version changes (:func:`data_version` names the data's).
"""

from __future__ import annotations

import functools
import gzip
import threading
import unicodedata
from dataclasses import dataclass
from importlib import resources

from jwtlite.service.credentials.validators import username_key

__all__ = ["data_version", "skeleton", "username_skeleton"]

_CONFUSABLES_FILE = "confusables.txt.gz"
_VERSION_PREFIX = "# Version:"
# The type field of every line: "MA" (mixed-script, any-case), the one table UTS #39 keeps.
_TABLE_TYPE = "MA"
# username_skeleton reaches its fixed point within three rounds for every code point with
# the shipped data (a test checks it); the bound only stops pathological input.
_MAX_FOLD_ROUNDS = 8


@dataclass(frozen=True)
class _Confusables:
    version: str
    # Keyed by code point, for str.translate: one dict lookup per character, in C.
    prototypes: dict[int, str]


def skeleton(text: str) -> str:
    """Return the UTS #39 skeleton of ``text``.

    NFD, each character replaced by its prototype from ``confusables.txt``, NFD again.

    Args:
        text: any string; nothing is refused (unassigned code points and lone
            surrogates map to themselves).

    Returns:
        The skeleton; ``skeleton(skeleton(x)) == skeleton(x)``. It is case-sensitive, as
        UTS #39 defines it: ``I`` and ``1`` become ``l``, ``0`` becomes ``O``, ``m`` becomes
        ``rn``, Greek capital alpha becomes Latin ``A``.
    """
    prototypes = _confusables().prototypes
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", text).translate(prototypes))


def username_skeleton(username: str) -> str:
    """Return the look-alike key of a username: equal keys mean the names look alike.

    The key is the skeleton of the username as displayed, case-folded as
    :func:`~jwtlite.service.credentials.validators.username_key` folds, then the skeleton again,
    repeated until nothing changes (so the key is its own key). Like ``username_key``, it
    takes the username after :func:`~jwtlite.service.credentials.validators.normalize_username`
    (NFKC: fullwidth and mathematical letters are plain letters by then); the wiring is
    ``username_skeleton(username)`` beside ``username_key(username)``.

    The skeleton comes before the case folding, not after it (``skeleton(username_key(u))``),
    because folding first erases the capitals the table knows: capital ``I`` maps to ``l``
    but its folded ``i`` does not, so ``aIice`` (capital I) would not collide with
    ``alice``; and Greek capitals are look-alikes of Latin capitals while most of their
    lower cases are not of Latin ones, so Greek capitals alpha, beta, epsilon would not
    collide with ``ABE`` (folded, their skeleton is a, sharp s, c with bar). Folding after
    the skeleton still lets a look-alike in one case collide with a name in another
    (Cyrillic capitals "ACE" with ``ace``).

    With the shipped data, these now collide, on purpose (the check exists to refuse
    look-alikes; an honest user whose name collides picks another):

    - ``I``, ``l``, ``1``, Greek capital iota and Cyrillic palochka (all ``l``): ``Iron``,
      ``lron`` and ``1ron``. Lower-case ``i`` keeps its dot: ``iron`` is not ``lron``.
    - ``O``, ``o``, ``0`` (all ``o``): ``bob``, ``b0b``, ``BOB`` and ``B0B``.
    - ``m``, ``M`` and ``rn`` (all ``rn``): ``mary``, ``MARY`` and ``rnary``.
    - Whole-script look-alikes in any case: Cyrillic "ace" and "ACE" with ``ace``, Greek
      "ABE" (capitals) with ``abe``.

    The table does not pair ``vv`` with ``w`` nor ``cl`` with ``d``, so neither do we.

    Case variants of one name can have different keys (``ALICE`` gives ``allce``,
    ``alice`` gives ``alice``): the key compares names as they are displayed, *in addition
    to* the case-insensitive uniqueness of ``username_key``, never instead of it.

    Args:
        username: the username as the service stores it (``normalize_username``'s
            output). Any string is accepted and none raises; a raw one still gets a
            key, and the table itself maps fullwidth and mathematical letters.

    Returns:
        The key to store and compare; it is not for display.
    """
    key = skeleton(username)
    for _ in range(_MAX_FOLD_ROUNDS):
        folded = skeleton(username_key(key))
        if folded == key:
            break
        key = folded
    return key


def data_version() -> str:
    """The Unicode version named in the shipped ``confusables.txt`` header, e.g. ``18.0.0``."""
    return _confusables().version


_load_lock = threading.Lock()


def _confusables() -> _Confusables:
    with _load_lock:
        return _load_confusables()


@functools.cache
def _load_confusables() -> _Confusables:
    data = (
        resources.files("jwtlite.service.credentials.data").joinpath(_CONFUSABLES_FILE).read_bytes()
    )
    return _parse(gzip.decompress(data).decode("utf-8-sig"))


def _parse(text: str) -> _Confusables:
    """Parse ``confusables.txt``: ``source ; prototype ; MA # comment`` lines, hex code points.

    Raise ValueError on anything else: the file ships with the package, so a broken copy is a
    packaging bug to surface, not input to skip."""
    version = ""
    prototypes: dict[int, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(_VERSION_PREFIX):
            version = line.removeprefix(_VERSION_PREFIX).strip()
        data = line.split("#", 1)[0].strip()
        if not data:
            continue
        fields = [field.strip() for field in data.split(";")]
        if len(fields) != 3 or fields[2] != _TABLE_TYPE:
            raise ValueError(f"{_CONFUSABLES_FILE} line {number}: not 'source ; target ; MA'")
        try:
            source = int(fields[0], 16)
            prototype = "".join(chr(int(point, 16)) for point in fields[1].split())
        except ValueError as error:
            raise ValueError(f"{_CONFUSABLES_FILE} line {number}: {error}") from error
        if source in prototypes:
            raise ValueError(f"{_CONFUSABLES_FILE} line {number}: U+{source:04X} mapped twice")
        prototypes[source] = prototype
    if not version or not prototypes:
        raise ValueError(f"{_CONFUSABLES_FILE}: no '{_VERSION_PREFIX}' header or no mapping")
    return _Confusables(version=version, prototypes=prototypes)
