"""The checks of :class:`~jwtlite.service.settings.Settings`, one function per rule.

Each refuses with a :class:`~jwtlite.service.errors.ConfigurationError` naming the setting as
its environment variable without the ``JWTLITE_`` prefix; a few return the value in its
normal form. Kept apart from the dataclass so that the list of settings reads at a glance.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from typing import TYPE_CHECKING

from jwtlite.algorithms import ALGORITHMS, HMACAlgorithm
from jwtlite.service.errors import ConfigurationError
from jwtlite.service.origins import normalize_origin
from jwtlite.store import is_postgres_url
from jwtlite.store.url import url_scheme

__all__ = [
    "ACCESS_TOKEN_FORMATS",
    "check_algorithm",
    "check_argon2",
    "check_cookies",
    "check_cors_combination",
    "check_database",
    "check_key",
    "check_keys_dir",
    "check_lifetimes",
    "check_observability",
    "check_regexes",
    "check_token_format",
    "normalize_origins",
    "normalize_proxies",
]

if TYPE_CHECKING:
    from jwtlite.service.settings import Settings

# The algorithms the library registers, and each HMAC algorithm's minimum key length in bytes:
# the hash output size (RFC 7518 §3.2), as jwtlite.algorithms enforces it.
_ALGORITHMS = frozenset(ALGORITHMS)
_HMAC_MIN_KEY_BYTES = {
    name: algorithm.min_key_length
    for name, algorithm in ALGORITHMS.items()
    if isinstance(algorithm, HMACAlgorithm)
}


def check_algorithm(algorithm: str) -> None:
    """Refuse an algorithm the library does not register."""
    if algorithm not in _ALGORITHMS:
        allowed = ", ".join(sorted(_ALGORITHMS))
        raise ConfigurationError("ALGORITHM", f"must be one of {allowed}, got {algorithm!r}")


def check_key(algorithm: str, secret: str | None, key_file: str | None) -> None:
    """Refuse both keys at once, a secret unfit for ``algorithm``, an unreadable key file."""
    if secret is not None and key_file is not None:
        raise ConfigurationError("SECRET_KEY", "give SECRET_KEY or PRIVATE_KEY_FILE, not both")
    if secret is not None:
        _check_secret(algorithm, secret)
    if key_file is not None:
        _check_key_file(key_file)


def check_keys_dir(keys_dir: str | None, secret: str | None, key_file: str | None) -> None:
    """Refuse KEYS_DIR beside SECRET_KEY or PRIVATE_KEY_FILE."""
    if keys_dir is not None and (secret is not None or key_file is not None):
        raise ConfigurationError(
            "KEYS_DIR",
            "give KEYS_DIR or SECRET_KEY/PRIVATE_KEY_FILE, not both (to move a key file into "
            "a key directory, run: python -m jwtlite rotate-key --import FILE)",
        )


def _check_secret(algorithm: str, secret: str) -> None:
    minimum = _HMAC_MIN_KEY_BYTES.get(algorithm)
    if minimum is None:
        raise ConfigurationError(
            "SECRET_KEY", f"is only for HS* algorithms; use PRIVATE_KEY_FILE with {algorithm}"
        )
    try:
        length = len(secret.encode("utf-8"))
    except UnicodeEncodeError:
        raise ConfigurationError("SECRET_KEY", "must be valid UTF-8 text") from None
    if length < minimum:
        # The message states sizes only: the secret must never reach a log.
        raise ConfigurationError(
            "SECRET_KEY",
            f"is too short for {algorithm}: {length} bytes, at least {minimum} required",
        )


def _check_key_file(path: str) -> None:
    # Opened without blocking and read only when it is a regular file: a FIFO or a device
    # named here would otherwise hang (or feed) the start-up before any key is parsed.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ConfigurationError("PRIVATE_KEY_FILE", f"{path!r} is not a regular file")
            os.read(fd, 1)
        finally:
            os.close(fd)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigurationError("PRIVATE_KEY_FILE", f"cannot read {path!r}: {reason}") from None


def check_database(database: str, secret: str | None, key_file: str | None) -> None:
    """Refuse an unknown database URL, or PostgreSQL without a shared key."""
    scheme = url_scheme(database)
    if scheme not in (None, "file") and not is_postgres_url(database):
        raise ConfigurationError(
            "DATABASE",
            f"unsupported URL scheme {scheme!r}: give an SQLite file path, a file: URI "
            "or a postgresql:// URL",
        )
    if is_postgres_url(database) and secret is None and key_file is None:
        # Instances sharing a database must share the signing key, or a token issued by
        # one fails on the next; a key generated on first run would differ on every host.
        raise ConfigurationError(
            "DATABASE",
            "a PostgreSQL database is shared by every instance, so they must share one "
            "signing key: set SECRET_KEY or PRIVATE_KEY_FILE, or KEYS_DIR on a shared file "
            "system (a generated key would differ on every host)",
        )


def check_lifetimes(access: int, refresh: int) -> None:
    """Refuse a refresh token that would live shorter than an access token."""
    if refresh < access:
        raise ConfigurationError(
            "REFRESH_TOKEN_LIFETIME",
            f"must be at least ACCESS_TOKEN_LIFETIME ({access}), got {refresh}",
        )


def check_cors_combination(allow_all: bool, credentials: bool) -> None:
    """Refuse every origin allowed together with credentials."""
    # Browsers refuse "*" with credentials; echoing every origin instead would let any site
    # read authenticated responses, so the combination is refused outright.
    if allow_all and credentials:
        raise ConfigurationError(
            "CORS_ALLOW_ALL_ORIGINS", "cannot be combined with CORS_ALLOW_CREDENTIALS"
        )


def check_regexes(patterns: tuple[str, ...]) -> None:
    """Refuse an origin regex that does not compile."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ConfigurationError(
                "CORS_ALLOWED_ORIGIN_REGEXES", f"{pattern!r} is not a valid regex: {error}"
            ) from None


def check_argon2(memory_kib: int, lanes: int) -> None:
    """Refuse Argon2id memory below 8 KiB a lane."""
    # Argon2 needs at least 8 KiB of memory per lane (RFC 9106 §3.1).
    if memory_kib < 8 * lanes:
        raise ConfigurationError(
            "PASSWORD_HASH_MEMORY_KIB",
            f"must be at least 8 * PASSWORD_HASH_LANES ({8 * lanes}), got {memory_kib}",
        )


def normalize_origins(settings: Settings) -> tuple[str, ...]:
    """The allowed origins in their normal form, each once; refuse a bad one."""
    normalized: dict[str, None] = {}
    for origin in settings.cors_allowed_origins:
        value = normalize_origin(origin)
        if value is None:
            hint = "; use CORS_ALLOW_ALL_ORIGINS" if origin.strip() == "*" else ""
            raise ConfigurationError(
                "CORS_ALLOWED_ORIGINS",
                f"{origin!r} is not an origin (scheme://host[:port], no path){hint}",
            )
        normalized[value] = None
    return tuple(normalized)


def normalize_proxies(proxies: tuple[str, ...]) -> tuple[str, ...]:
    """Each proxy address in the one form client addresses are compared in.

    An IPv4-mapped IPv6 address becomes its IPv4 address (``::ffff:127.0.0.1`` is
    ``127.0.0.1``), since a peer is compared in that form too. A zone id (``fe80::1%eth0``)
    is refused: a peer's zone id is stripped before the comparison, so one here would never
    match."""
    normalized = []
    for proxy in proxies:
        if "%" in proxy:
            raise ConfigurationError(
                "TRUSTED_PROXIES",
                f"{proxy!r} has a zone id; give the address without it (client addresses "
                "are compared without their zone id)",
            )
        try:
            address = ipaddress.ip_address(proxy)
        except ValueError:
            raise ConfigurationError("TRUSTED_PROXIES", f"{proxy!r} is not an IP address") from None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        normalized.append(str(address))
    return tuple(normalized)


# -- browser token transport ---------------------------------------------------------------------

_TRANSPORTS = ("body", "cookie", "both")
_SAMESITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?").fullmatch


def check_cookies(settings: Settings) -> None:
    """Check the cookie settings and store their normal forms.

    Lower-case transport and domain, ``SameSite`` spelt as browsers document it."""
    transport = settings.token_transport.strip().lower()
    if transport not in _TRANSPORTS:
        raise ConfigurationError(
            "TOKEN_TRANSPORT",
            f"must be one of {', '.join(_TRANSPORTS)}, got {settings.token_transport!r}",
        )
    samesite = _SAMESITE.get(settings.cookie_samesite.strip().lower())
    if samesite is None:
        raise ConfigurationError(
            "COOKIE_SAMESITE", f"must be Lax, Strict or None, got {settings.cookie_samesite!r}"
        )
    if samesite == "None" and not settings.cookie_secure:
        # Browsers drop a SameSite=None cookie that is not Secure.
        raise ConfigurationError("COOKIE_SAMESITE", "None requires COOKIE_SECURE=true")
    object.__setattr__(settings, "token_transport", transport)
    object.__setattr__(settings, "cookie_samesite", samesite)
    if settings.cookie_domain is not None:
        object.__setattr__(settings, "cookie_domain", _normalize_domain(settings.cookie_domain))


def _normalize_domain(domain: str) -> str:
    # Written into every Set-Cookie: a host name and nothing else (no port, no path, no ";").
    name = domain.strip().lower().removeprefix(".")
    labels = name.split(".")
    if len(name) > 253 or not all(_DOMAIN_LABEL(label) for label in labels):
        raise ConfigurationError(
            "COOKIE_DOMAIN", f"must be a host name such as example.com, got {domain!r}"
        )
    return name


# -- observability -------------------------------------------------------------------------------

_LOG_FORMATS = ("json", "text")


def check_observability(settings: Settings) -> None:
    """Check ``LOG_FORMAT`` and ``METRICS_ALLOWED`` and store their normal forms.

    A lower-case format; each network as ``ipaddress`` writes it."""
    log_format = settings.log_format.strip().lower()
    if log_format not in _LOG_FORMATS:
        raise ConfigurationError(
            "LOG_FORMAT", f"must be one of {', '.join(_LOG_FORMATS)}, got {settings.log_format!r}"
        )
    object.__setattr__(settings, "log_format", log_format)
    networks = []
    for cidr in settings.metrics_allowed:
        try:
            # strict: "10.1.2.3/8" names a host, not a network, and is most likely a typo.
            networks.append(str(ipaddress.ip_network(cidr.strip(), strict=True)))
        except ValueError:
            raise ConfigurationError(
                "METRICS_ALLOWED",
                f"{cidr!r} is not an IP network such as 10.0.0.0/8 or an address",
            ) from None
    object.__setattr__(settings, "metrics_allowed", tuple(networks))


#: ``simplejwt``: the seed's claims, typ ``JWT``; ``rfc9068``: RFC 9068's profile on top.
ACCESS_TOKEN_FORMATS = ("simplejwt", "rfc9068")
_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,255}").fullmatch


def check_token_format(settings: Settings) -> None:
    """Check ACCESS_TOKEN_FORMAT and CLIENT_ID, and store the format's normal form.

    RFC 9068 makes ``iss`` and ``aud`` required claims, so ``rfc9068`` needs ISSUER and
    AUDIENCE."""
    form = settings.access_token_format.strip().lower()
    if form not in ACCESS_TOKEN_FORMATS:
        raise ConfigurationError(
            "ACCESS_TOKEN_FORMAT",
            f"must be one of {', '.join(ACCESS_TOKEN_FORMATS)}, "
            f"got {settings.access_token_format[:40]!r}",
        )
    if form == "rfc9068" and (settings.issuer is None or settings.audience is None):
        raise ConfigurationError(
            "ACCESS_TOKEN_FORMAT",
            "rfc9068 access tokens must name their issuer and audience: set ISSUER and AUDIENCE",
        )
    if not _CLIENT_ID(settings.client_id):
        raise ConfigurationError(
            "CLIENT_ID", "must be 1 to 255 printable ASCII characters without spaces"
        )
    object.__setattr__(settings, "access_token_format", form)
