"""Settings for the jwtlite service: one frozen dataclass, validated when it is built.

Every refusal is a :class:`~jwtlite.service.errors.ConfigurationError` naming the setting as its
environment variable without the ``JWTLITE_`` prefix, so a bad deployment fails at start-up
with a message that says what to fix. The secret key and a database URL's password never
appear in a message or a repr.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from jwtlite.service.errors import ConfigurationError
from jwtlite.service.settings_checks import (
    check_algorithm,
    check_argon2,
    check_cookies,
    check_cors_combination,
    check_database,
    check_key,
    check_keys_dir,
    check_lifetimes,
    check_observability,
    check_regexes,
    check_token_format,
    normalize_origins,
    normalize_proxies,
)
from jwtlite.store import Store, masked_url, open_store

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
    access_token_format: str = "simplejwt"
    client_id: str = "jwtlite"
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
        check_algorithm(self.algorithm)
        if not self.database:
            raise ConfigurationError("DATABASE", "must not be empty")
        check_key(self.algorithm, self.secret_key, self.private_key_file)
        check_keys_dir(self.keys_dir, self.secret_key, self.private_key_file)
        check_database(self.database, self.secret_key, self.private_key_file or self.keys_dir)
        check_lifetimes(self.access_token_lifetime, self.refresh_token_lifetime)
        check_cors_combination(self.cors_allow_all_origins, self.cors_allow_credentials)
        check_regexes(self.cors_allowed_origin_regexes)
        check_argon2(self.password_hash_memory_kib, self.password_hash_lanes)
        # Store the normal forms so every later comparison is a plain equality.
        object.__setattr__(self, "cors_allowed_origins", normalize_origins(self))
        object.__setattr__(self, "trusted_proxies", normalize_proxies(self.trusted_proxies))
        check_cookies(self)
        check_observability(self)
        check_token_format(self)

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
