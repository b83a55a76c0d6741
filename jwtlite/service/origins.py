"""Parse and normalise serialized web origins (RFC 6454 §6.2), strictly.

A leaf module: it imports nothing from jwtlite, so both ``settings`` (at start-up) and ``cors``
(per request) can share one definition of "the same origin". Browsers always send an
``Origin`` that is already in normal form; anything else on the wire is a non-browser client or
an attack, so the parser refuses rather than repairs.
"""

from __future__ import annotations

import functools
import ipaddress
import re

__all__ = ["MAX_ORIGIN_LENGTH", "normalize_origin"]

MAX_ORIGIN_LENGTH = 2048

_DEFAULT_PORTS = {"http": "80", "https": "443"}

# Explicit ASCII ranges and no IGNORECASE: with Unicode case folding ``[a-z]`` would match
# the Kelvin sign and the long s, which lower-case to ASCII letters.
_ORIGIN = re.compile(
    r"(?P<scheme>[A-Za-z]+)://"
    r"(?:(?P<host>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)|\[(?P<ipv6>[0-9A-Fa-f:.]+)\])"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?"
).fullmatch


def normalize_origin(value: str) -> str | None:
    """Return ``value`` as a normalised serialized origin, or ``None`` if it is not exactly one.

    The normal form is ``scheme://host[:port]`` with scheme and host lower-cased, the default
    port (80 for http, 443 for https) dropped and IPv6 hosts in compressed form (``[::1]``).
    Anything else gives ``None``: paths (even ``/``), queries, fragments, userinfo, other
    schemes, ``null``, whitespace or control characters, non-ASCII text, ports that are not
    1-65535 written without leading zeros, and input longer than ``MAX_ORIGIN_LENGTH``.

    Never raises, whatever string it is given.
    """
    # Checked before the cache so hostile long values are neither parsed nor kept.
    if not isinstance(value, str) or len(value) > MAX_ORIGIN_LENGTH or not value.isascii():
        return None
    return _normalize_cached(value)


# Bounded: Origin headers are attacker-chosen, so the cache must not grow with them.
@functools.lru_cache(maxsize=1024)
def _normalize_cached(value: str) -> str | None:
    match = _ORIGIN(value)
    if match is None:
        return None
    scheme = match["scheme"].lower()
    default_port = _DEFAULT_PORTS.get(scheme)
    if default_port is None:
        return None
    host = _normalize_host(match["host"], match["ipv6"])
    if host is None:
        return None
    port = match["port"]
    if port is None or port == default_port:
        return f"{scheme}://{host}"
    if int(port) > 65535:
        return None
    return f"{scheme}://{host}:{port}"


def _normalize_host(name: str | None, ipv6: str | None) -> str | None:
    if name is not None:
        return name.lower()
    try:
        address = ipaddress.IPv6Address(ipv6 or "")
    except ValueError:
        return None
    return f"[{address.compressed}]"
