"""Settings for the jwtlite service: one frozen dataclass, validated when it is built.

Every refusal is a :class:`~jwtlite.service.errors.ConfigurationError` naming the setting as its
environment variable without the ``JWTLITE_`` prefix, so a bad deployment fails at start-up
with a message that says what to fix. The secret key and a database URL's password never
appear in a message or a repr.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from jwtlite.algorithms import ALGORITHMS, HMACAlgorithm
from jwtlite.service.errors import ConfigurationError
from jwtlite.service.origins import normalize_origin
from jwtlite.store import Store, is_postgres_url, masked_url, open_store
from jwtlite.store.url import url_scheme

__all__ = ["DEFAULT_POOL_SIZE", "ENV_PREFIX", "LAUNCHER_VARIABLES", "Settings"]

ENV_PREFIX = "JWTLITE_"
#: Read by ``serve.py`` rather than by :class:`Settings`; ``from_env`` lets them pass.
LAUNCHER_VARIABLES = frozenset({"JWTLITE_HOST", "JWTLITE_PORT", "JWTLITE_THREADS"})
#: Connections a PostgreSQL store may hold when neither DATABASE_POOL_SIZE nor the server's
#: thread count says (an embedding host whose threads jwtlite cannot see).
DEFAULT_POOL_SIZE = 8
#: The most connections a pool sized from the thread count holds: most of serve.py's threads
#: exist to wait for a password hash, holding no connection, and several instances must stay
#: well under the server's max_connections (100 by default).
MAX_THREAD_POOL_SIZE = 16

# The algorithms the library registers, and each HMAC algorithm's minimum key length in bytes:
# the hash output size (RFC 7518 §3.2), as jwtlite.algorithms enforces it.
_ALGORITHMS = frozenset(ALGORITHMS)
_HMAC_MIN_KEY_BYTES = {
    name: algorithm.min_key_length
    for name, algorithm in ALGORITHMS.items()
    if isinstance(algorithm, HMACAlgorithm)
}

# Every integer setting: its minimum, and its unit for error messages.
_INTEGERS = {
    "access_token_lifetime": (1, " of seconds"),
    "refresh_token_lifetime": (1, " of seconds"),
    "leeway": (0, " of seconds"),
    "keys_reload_interval": (1, " of seconds"),
    "cors_preflight_max_age": (0, " of seconds"),
    "login_max_failures": (1, ""),
    "login_max_failures_per_address": (1, ""),
    "login_max_failures_per_username": (1, ""),
    "login_failure_window": (1, " of seconds"),
    "registration_max_per_address": (1, ""),
    "registration_window": (1, " of seconds"),
    "user_state_cache_seconds": (0, " of seconds"),
    "rotation_grace_period": (0, " of seconds"),
    "password_hash_concurrency": (0, ""),
    "password_hash_queue": (0, ""),
    "password_hash_per_client": (1, ""),
    "password_hash_wait": (0, " of seconds"),
    "max_body_size": (1024, " of bytes"),
    "password_hash_iterations": (1, ""),
    "password_hash_lanes": (1, ""),
    "password_hash_memory_kib": (8, " of KiB"),
    "database_pool_size": (0, ""),
    "database_connect_timeout": (1, " of seconds"),
    "database_statement_timeout": (1, " of seconds"),
}
_INTEGER = re.compile(r"-?[0-9]{1,18}").fullmatch
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True, slots=True)
class Settings:
    """The service's configuration; every field is checked in ``__post_init__``.

    Build it in code (``Settings(access_token_lifetime=60)``) or from the environment with
    :meth:`from_env`. Raises :class:`~jwtlite.service.errors.ConfigurationError` for any invalid or
    unsafe value.
    """

    database: str = "jwtlite.sqlite3"
    database_pool_size: int = 0
    database_connect_timeout: int = 5
    database_statement_timeout: int = 5
    algorithm: str = "HS256"
    secret_key: str | None = None
    private_key_file: str | None = None
    # -- signing-key rotation (docs/guides/key-rotation.md): a key directory instead
    keys_dir: str | None = None
    keys_reload_interval: int = 5
    access_token_lifetime: int = 10
    refresh_token_lifetime: int = 30
    rotate_refresh_tokens: bool = False
    rotation_grace_period: int = 0
    allow_account_deletion: bool = False
    issuer: str | None = None
    audience: str | None = None
    leeway: int = 0
    cors_allowed_origins: tuple[str, ...] = ("http://localhost:8001",)
    cors_allowed_origin_regexes: tuple[str, ...] = ()
    cors_allow_all_origins: bool = False
    cors_allow_credentials: bool = False
    cors_preflight_max_age: int = 86400
    login_max_failures: int = 5
    login_max_failures_per_address: int = 100
    login_max_failures_per_username: int = 100
    login_failure_window: int = 300
    registration_max_per_address: int = 50
    registration_window: int = 3600
    user_state_cache_seconds: int = 1
    trusted_proxies: tuple[str, ...] = ()
    max_body_size: int = 65536
    password_hash_memory_kib: int = 19456
    password_hash_iterations: int = 2
    password_hash_lanes: int = 1
    password_hash_concurrency: int = 0
    # -- admission to hashing (jwtlite.service.admission): waiting places, share, deadline
    password_hash_queue: int = 40
    password_hash_per_client: int = 8
    password_hash_wait: int = 5
    # -- browser token transport (docs/guides/cookies.md): where tokens travel, cookie attributes
    token_transport: str = "body"
    cookie_secure: bool = True
    cookie_samesite: str = "Lax"
    cookie_domain: str | None = None
    # -- observability (docs/guides/observability.md): metrics and the log format
    metrics: bool = False
    metrics_allowed: tuple[str, ...] = ("127.0.0.0/8", "::1")
    log_format: str = "json"

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            _check_type(field.name, field.type, value)
            if isinstance(value, list):  # keep the instance hashable and immutable
                object.__setattr__(self, field.name, tuple(value))
        for field_name in _INTEGERS:
            _check_minimum(field_name, getattr(self, field_name))
        _check_algorithm(self.algorithm)
        if not self.database:
            raise ConfigurationError("DATABASE", "must not be empty")
        _check_key(self.algorithm, self.secret_key, self.private_key_file)
        _check_keys_dir(self.keys_dir, self.secret_key, self.private_key_file)
        _check_database(self.database, self.secret_key, self.private_key_file or self.keys_dir)
        _check_lifetimes(self.access_token_lifetime, self.refresh_token_lifetime)
        _check_cors_combination(self.cors_allow_all_origins, self.cors_allow_credentials)
        _check_regexes(self.cors_allowed_origin_regexes)
        _check_argon2(self.password_hash_memory_kib, self.password_hash_lanes)
        # Store the normal forms so every later comparison is a plain equality.
        object.__setattr__(self, "cors_allowed_origins", _normalize_origins(self))
        object.__setattr__(self, "trusted_proxies", _normalize_proxies(self.trusted_proxies))
        _check_cookies(self)
        _check_observability(self)

    @property
    def key_path(self) -> str:
        """Where the signing key lives: ``private_key_file``, else beside the database."""
        if self.private_key_file is not None:
            return self.private_key_file
        database = self.database
        if database.startswith("file:"):
            # An SQLite URI ("file:/srv/db.sqlite3?mode=rwc"): beside the file it names.
            database = unquote(urlsplit(database).path)
        return os.path.splitext(database)[0] + ".key"

    def open_store(self, *, threads: int | None = None) -> Store:
        """Open the store ``database`` names, with these settings' pool and timeouts.

        A PostgreSQL pool holds ``DATABASE_POOL_SIZE`` connections, or when that is 0 one
        per server thread (``threads``, at most :data:`MAX_THREAD_POOL_SIZE`; else
        :data:`DEFAULT_POOL_SIZE`).

        Raises:
            StoreUnavailableError: the database cannot be opened, reached or migrated.
        """
        return open_store(
            self.database,
            pool_size=self.database_pool_size
            or min(threads or DEFAULT_POOL_SIZE, MAX_THREAD_POOL_SIZE),
            connect_timeout=self.database_connect_timeout,
            statement_timeout=self.database_statement_timeout,
        )

    def __repr__(self) -> str:
        parts = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "secret_key" and value is not None:
                value = "***"
            elif field.name == "database":
                value = masked_url(value)
            parts.append(f"{field.name}={value!r}")
        return f"Settings({', '.join(parts)})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from ``JWTLITE_*`` variables in ``environ``; other keys are ignored.

        Integers must be plain decimal, booleans one of true/false/1/0/yes/no/on/off, tuples
        comma-separated (blanks dropped, so an empty value means none). An unknown
        ``JWTLITE_*`` name is refused so typos do not silently fall back to defaults.
        """
        types = {f.name.upper(): (f.name, f.type) for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in environ.items():
            if not key.startswith(ENV_PREFIX) or key in LAUNCHER_VARIABLES:
                continue
            name = key[len(ENV_PREFIX) :]
            if name not in types:
                raise ConfigurationError(name, _unknown_message(key, types))
            field_name, field_type = types[name]
            values[field_name] = _PARSERS[str(field_type)](field_name, raw)
        return cls(**values)


def _unknown_message(key: str, known: Mapping[str, object]) -> str:
    message = f"unknown setting {key}"
    close = difflib.get_close_matches(key[len(ENV_PREFIX) :], list(known), n=1)
    return f"{message}; did you mean {ENV_PREFIX}{close[0]}?" if close else message


def _parse_str(field: str, raw: str) -> str:
    if not raw:
        raise ConfigurationError(field.upper(), "must not be empty")
    return raw


def _parse_optional_str(field: str, raw: str) -> str | None:
    # An empty variable is how a shell unsets an optional value.
    return raw or None


def _parse_int(field: str, raw: str) -> int:
    if _INTEGER(raw) is None:
        unit = _INTEGERS[field][1]
        raise ConfigurationError(field.upper(), f"must be a whole number{unit}, got {raw!r}")
    return int(raw)


def _parse_bool(field: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ConfigurationError(field.upper(), f"must be true or false, got {raw!r}")


def _parse_tuple(field: str, raw: str) -> tuple[str, ...]:
    return tuple(item for item in (part.strip() for part in raw.split(",")) if item)


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "str": _parse_str,
    "str | None": _parse_optional_str,
    "int": _parse_int,
    "bool": _parse_bool,
    "tuple[str, ...]": _parse_tuple,
}


def _check_type(field: str, annotation: object, value: object) -> None:
    annotation = str(annotation)
    if annotation == "bool":
        ok = isinstance(value, bool)
    elif annotation == "int":
        # bool is a subclass of int; True seconds is a mistake, not a lifetime.
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation == "tuple[str, ...]":
        ok = isinstance(value, (tuple, list)) and all(isinstance(item, str) for item in value)
    elif annotation == "str | None":
        ok = value is None or isinstance(value, str)
    else:
        ok = isinstance(value, str)
    if not ok:
        shown = "<hidden>" if field == "secret_key" else repr(value)
        raise ConfigurationError(field.upper(), f"must be of type {annotation}, got {shown}")


def _check_minimum(field: str, value: int) -> None:
    minimum = _INTEGERS[field][0]
    if value < minimum:
        raise ConfigurationError(field.upper(), f"must be at least {minimum}, got {value}")


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in _ALGORITHMS:
        allowed = ", ".join(sorted(_ALGORITHMS))
        raise ConfigurationError("ALGORITHM", f"must be one of {allowed}, got {algorithm!r}")


def _check_key(algorithm: str, secret: str | None, key_file: str | None) -> None:
    if secret is not None and key_file is not None:
        raise ConfigurationError("SECRET_KEY", "give SECRET_KEY or PRIVATE_KEY_FILE, not both")
    if secret is not None:
        _check_secret(algorithm, secret)
    if key_file is not None:
        _check_key_file(key_file)


def _check_keys_dir(keys_dir: str | None, secret: str | None, key_file: str | None) -> None:
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


def _check_database(database: str, secret: str | None, key_file: str | None) -> None:
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


def _check_lifetimes(access: int, refresh: int) -> None:
    if refresh < access:
        raise ConfigurationError(
            "REFRESH_TOKEN_LIFETIME",
            f"must be at least ACCESS_TOKEN_LIFETIME ({access}), got {refresh}",
        )


def _check_cors_combination(allow_all: bool, credentials: bool) -> None:
    # Browsers refuse "*" with credentials; echoing every origin instead would let any site
    # read authenticated responses, so the combination is refused outright.
    if allow_all and credentials:
        raise ConfigurationError(
            "CORS_ALLOW_ALL_ORIGINS", "cannot be combined with CORS_ALLOW_CREDENTIALS"
        )


def _check_regexes(patterns: tuple[str, ...]) -> None:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ConfigurationError(
                "CORS_ALLOWED_ORIGIN_REGEXES", f"{pattern!r} is not a valid regex: {error}"
            ) from None


def _check_argon2(memory_kib: int, lanes: int) -> None:
    # Argon2 needs at least 8 KiB of memory per lane (RFC 9106 §3.1).
    if memory_kib < 8 * lanes:
        raise ConfigurationError(
            "PASSWORD_HASH_MEMORY_KIB",
            f"must be at least 8 * PASSWORD_HASH_LANES ({8 * lanes}), got {memory_kib}",
        )


def _normalize_origins(settings: Settings) -> tuple[str, ...]:
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


def _normalize_proxies(proxies: tuple[str, ...]) -> tuple[str, ...]:
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


def _check_cookies(settings: Settings) -> None:
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


def _check_observability(settings: Settings) -> None:
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
