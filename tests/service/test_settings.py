"""Tests for jwtlite.service.settings: defaults, environment parsing and refused configurations."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from jwtlite.service.errors import ConfigurationError
from jwtlite.service.settings import LAUNCHER_VARIABLES, Settings

STRONG = "s" * 32


# -- defaults -----------------------------------------------------------------------------


def refused(setting: str) -> Any:
    """Expect a ConfigurationError naming ``setting``."""
    return pytest.raises(ConfigurationError, match=f"^{setting}: ")


def test_defaults_match_design() -> None:
    settings = Settings()
    assert settings.database == "jwtlite.sqlite3"
    assert settings.algorithm == "HS256"
    assert settings.secret_key is None
    assert settings.private_key_file is None
    assert settings.access_token_lifetime == 10
    assert settings.refresh_token_lifetime == 30
    assert settings.rotate_refresh_tokens is False
    assert (settings.issuer, settings.audience, settings.leeway) == (None, None, 0)
    assert settings.cors_allowed_origins == ("http://localhost:8001",)
    assert settings.cors_allowed_origin_regexes == ()
    assert settings.cors_allow_all_origins is False
    assert settings.cors_allow_credentials is False
    assert settings.cors_preflight_max_age == 86400
    assert settings.login_max_failures == 5
    assert settings.login_max_failures_per_address == 100
    assert settings.login_failure_window == 300
    assert settings.trusted_proxies == ()
    assert settings.max_body_size == 65536
    assert settings.password_hash_memory_kib == 19456
    assert settings.password_hash_iterations == 2
    assert settings.password_hash_lanes == 1
    assert settings.database_pool_size == 0  # one connection per server thread
    assert settings.database_connect_timeout == 5
    assert settings.database_statement_timeout == 5


def test_is_frozen_and_slotted() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.leeway = 5  # type: ignore[misc]
    assert not hasattr(settings, "__dict__")
    assert hash(settings) == hash(Settings())


@pytest.mark.parametrize(
    ("database", "key_path"),
    [
        ("/x/jwtlite.sqlite3", "/x/jwtlite.key"),
        ("jwtlite.sqlite3", "jwtlite.key"),
        ("/x/y.db", "/x/y.key"),
        ("/x.d/noext", "/x.d/noext.key"),
    ],
    ids=["absolute", "relative", "other-extension", "dotted-directory"],
)
def test_key_path_beside_database(database: str, key_path: str) -> None:
    assert Settings(database=database).key_path == key_path


def test_key_path_is_private_key_file(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    key.write_bytes(b"x" * 64)
    assert Settings(private_key_file=str(key)).key_path == str(key)


# -- from_env -----------------------------------------------------------------------------


def test_from_env_reads_every_type(tmp_path: Path) -> None:
    env = {
        "JWTLITE_DATABASE": str(tmp_path / "db.sqlite3"),
        "JWTLITE_ALGORITHM": "HS512",
        "JWTLITE_SECRET_KEY": "k" * 64,
        "JWTLITE_ACCESS_TOKEN_LIFETIME": "60",
        "JWTLITE_REFRESH_TOKEN_LIFETIME": "3600",
        "JWTLITE_ROTATE_REFRESH_TOKENS": "yes",
        "JWTLITE_ISSUER": "https://issuer.example",
        "JWTLITE_AUDIENCE": "",
        "JWTLITE_CORS_ALLOWED_ORIGINS": " HTTPS://App.Example.com:443 ,,http://localhost:3000,",
        "JWTLITE_CORS_ALLOWED_ORIGIN_REGEXES": r"https://[a-z]+\.example\.com",
        "JWTLITE_CORS_ALLOW_CREDENTIALS": "On",
        "JWTLITE_TRUSTED_PROXIES": "10.0.0.1, ::1",
        "PATH": "/usr/bin",
        "JWTLITE_HOST": "127.0.0.1",
        "JWTLITE_PORT": "8000",
        "JWTLITE_THREADS": "8",
    }
    settings = Settings.from_env(env)
    assert settings.database == str(tmp_path / "db.sqlite3")
    assert settings.algorithm == "HS512"
    assert settings.secret_key == "k" * 64
    assert settings.access_token_lifetime == 60
    assert settings.refresh_token_lifetime == 3600
    assert settings.rotate_refresh_tokens is True
    assert settings.issuer == "https://issuer.example"
    assert settings.audience is None
    assert settings.cors_allowed_origins == ("https://app.example.com", "http://localhost:3000")
    assert settings.cors_allowed_origin_regexes == (r"https://[a-z]+\.example\.com",)
    assert settings.cors_allow_credentials is True
    assert settings.trusted_proxies == ("10.0.0.1", "::1")


def test_from_env_empty_mapping_gives_defaults() -> None:
    assert Settings.from_env({}) == Settings()


def test_from_env_empty_origins_means_none() -> None:
    assert Settings.from_env({"JWTLITE_CORS_ALLOWED_ORIGINS": ""}).cors_allowed_origins == ()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("On", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("OFF", False),
    ],
    ids=repr,
)
def test_from_env_booleans(raw: str, expected: bool) -> None:
    assert Settings.from_env({"JWTLITE_ROTATE_REFRESH_TOKENS": raw}).rotate_refresh_tokens is (
        expected
    )


@pytest.mark.parametrize(
    "raw", ["", "maybe", "2", "tru", "y e s"], ids=["empty", "maybe", "two", "tru", "spaced"]
)
def test_from_env_refuses_bad_booleans(raw: str) -> None:
    with refused("CORS_ALLOW_CREDENTIALS"):
        Settings.from_env({"JWTLITE_CORS_ALLOW_CREDENTIALS": raw})


BAD_INTEGERS = {
    "word": "ten",
    "decimal": "1.5",
    "empty": "",
    "spaces": " 10 ",
    "underscore": "1_0",
    "plus": "+10",
    "exponent": "1e3",
    "arabic-indic-digits": "\u0661\u0660",
    "hex": "0x10",
    "huge": "9" * 5000,
}


@pytest.mark.parametrize("raw", list(BAD_INTEGERS.values()), ids=list(BAD_INTEGERS))
def test_from_env_refuses_non_numeric_lifetime(raw: str) -> None:
    with refused("ACCESS_TOKEN_LIFETIME") as info:
        Settings.from_env({"JWTLITE_ACCESS_TOKEN_LIFETIME": raw})
    assert "whole number of seconds" in str(info.value)
    assert info.value.setting == "ACCESS_TOKEN_LIFETIME"


def test_from_env_error_message_quotes_value() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({"JWTLITE_ACCESS_TOKEN_LIFETIME": "ten"})
    assert str(info.value) == "ACCESS_TOKEN_LIFETIME: must be a whole number of seconds, got 'ten'"


def test_from_env_non_seconds_integer() -> None:
    with refused("MAX_BODY_SIZE") as info:
        Settings.from_env({"JWTLITE_MAX_BODY_SIZE": "big"})
    assert "seconds" not in str(info.value)


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("JWTLITE_ACCESS_TOKEN_LIFETIM", "JWTLITE_ACCESS_TOKEN_LIFETIME"),
        ("JWTLITE_CORS_ALLOWED_ORIGIN", "JWTLITE_CORS_ALLOWED_ORIGINS"),
        ("JWTLITE_NOPE", None),
    ],
    ids=["missing-letter", "singular", "unrelated"],
)
def test_from_env_refuses_unknown_variable(key: str, hint: str | None) -> None:
    with pytest.raises(ConfigurationError, match=f"unknown setting {key}") as info:
        Settings.from_env({key: "value"})
    if hint is not None:
        assert hint in str(info.value)


def test_launcher_variables_are_documented() -> None:
    assert {"JWTLITE_HOST", "JWTLITE_PORT", "JWTLITE_THREADS"} == LAUNCHER_VARIABLES


def test_from_env_ignores_other_prefixes() -> None:
    assert Settings.from_env({"jwtlite_nope": "x", "XJWTLITE_NOPE": "x"}) == Settings()


# -- refused configurations ---------------------------------------------------------------


def test_weak_secret_refused_without_echo() -> None:
    secret = "hunter2-is-a-weak-key"
    with refused("SECRET_KEY") as info:
        Settings(secret_key=secret)
    assert "too short" in str(info.value)
    assert secret not in str(info.value)
    assert secret not in repr(info.value)


@pytest.mark.parametrize(
    ("algorithm", "length"),
    [("HS256", 32), ("HS384", 48), ("HS512", 64)],
    ids=["HS256", "HS384", "HS512"],
)
def test_secret_length_is_hash_size(algorithm: str, length: int) -> None:
    assert Settings(algorithm=algorithm, secret_key="k" * length).secret_key == "k" * length
    with refused("SECRET_KEY"):
        Settings(algorithm=algorithm, secret_key="k" * (length - 1))


def test_secret_length_counts_utf8_bytes() -> None:
    assert Settings(secret_key="\u00e9" * 16).secret_key  # 32 bytes, 16 characters
    with refused("SECRET_KEY"):
        Settings(secret_key="\u00e9" * 15 + "x")


def test_undecodable_secret_refused() -> None:
    with refused("SECRET_KEY") as info:
        Settings(secret_key="\udcff" * 40)
    assert "\udcff" not in str(info.value)


def test_secret_with_asymmetric_algorithm_refused() -> None:
    with refused(
        "SECRET_KEY",
    ) as info:
        Settings(algorithm="ES256", secret_key=STRONG)
    assert "PRIVATE_KEY_FILE" in str(info.value)


def test_secret_and_key_file_together_refused(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_bytes(b"x")
    with refused("SECRET_KEY"):
        Settings(secret_key=STRONG, private_key_file=str(key))


def test_missing_key_file_refused(tmp_path: Path) -> None:
    with refused("PRIVATE_KEY_FILE") as info:
        Settings(algorithm="RS256", private_key_file=str(tmp_path / "absent.pem"))
    assert "absent.pem" in str(info.value)


def test_unreadable_key_file_refused(tmp_path: Path) -> None:
    # A directory cannot be read as a file, even by root (chmod 0 would not stop root).
    key = tmp_path / "k.pem"
    key.mkdir()
    with refused("PRIVATE_KEY_FILE"):
        Settings(algorithm="ES256", private_key_file=str(key))


def test_permission_denied_key_file_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runs even as root, which the chmod test above cannot.
    key = tmp_path / "k.pem"
    key.write_bytes(b"x")
    real_open = os.open

    def deny(path: Any, *args: Any, **kwargs: Any) -> Any:
        if str(path) == str(key):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    with refused("PRIVATE_KEY_FILE") as info:
        Settings(private_key_file=str(key))
    assert "Permission denied" in str(info.value)


def test_a_fifo_as_key_file_is_refused_without_waiting(tmp_path: Path) -> None:
    # Opened for reading, a FIFO with no writer blocks for ever; the check must not wait.
    fifo = tmp_path / "k.pem"
    os.mkfifo(fifo)
    with refused("PRIVATE_KEY_FILE") as info:
        Settings(algorithm="ES256", private_key_file=str(fifo))
    assert "not a regular file" in str(info.value)


def test_directory_as_key_file_refused(tmp_path: Path) -> None:
    with refused("PRIVATE_KEY_FILE"):
        Settings(private_key_file=str(tmp_path))


@pytest.mark.parametrize("algorithm", ["none", "hs256", "HS1", "RS1", "ed25519", "Ed", ""])
def test_unknown_algorithm_refused(algorithm: str) -> None:
    with refused("ALGORITHM"):
        Settings(algorithm=algorithm)


@pytest.mark.parametrize(
    "algorithm",
    [
        *("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"),
        *("EdDSA", "Ed25519", "Ed448"),
    ],
)
def test_asymmetric_algorithms_accepted(algorithm: str) -> None:
    assert Settings(algorithm=algorithm).algorithm == algorithm


def test_allow_all_with_credentials_refused() -> None:
    with refused("CORS_ALLOW_ALL_ORIGINS") as info:
        Settings(cors_allow_all_origins=True, cors_allow_credentials=True)
    assert "CORS_ALLOW_CREDENTIALS" in str(info.value)
    with refused("CORS_ALLOW_ALL_ORIGINS"):
        Settings.from_env(
            {"JWTLITE_CORS_ALLOW_ALL_ORIGINS": "true", "JWTLITE_CORS_ALLOW_CREDENTIALS": "1"}
        )


BAD_ORIGINS = {
    "path": "http://a.com/x",
    "trailing-slash": "http://a.com/",
    "null": "null",
    "star": "*",
    "bad-scheme": "ftp://a.com",
    "no-scheme": "a.com",
    "query": "http://a.com?x",
}


@pytest.mark.parametrize("origin", list(BAD_ORIGINS.values()), ids=list(BAD_ORIGINS))
def test_bad_origin_refused_and_named(origin: str) -> None:
    with refused("CORS_ALLOWED_ORIGINS") as info:
        Settings(cors_allowed_origins=("http://ok.example", origin))
    assert repr(origin) in str(info.value)


def test_origins_stored_normalised_and_deduplicated() -> None:
    settings = Settings(
        cors_allowed_origins=("HTTP://Example.com:80", "http://example.com", "http://[::1]:80")
    )
    assert settings.cors_allowed_origins == ("http://example.com", "http://[::1]")


def test_bad_regex_refused() -> None:
    with refused("CORS_ALLOWED_ORIGIN_REGEXES") as info:
        Settings(cors_allowed_origin_regexes=("https://(",))
    assert "'https://('" in str(info.value)


@pytest.mark.parametrize(
    ("field", "value", "setting"),
    [
        ("access_token_lifetime", 0, "ACCESS_TOKEN_LIFETIME"),
        ("refresh_token_lifetime", -1, "REFRESH_TOKEN_LIFETIME"),
        ("refresh_token_lifetime", 5, "REFRESH_TOKEN_LIFETIME"),  # shorter than access (10)
        ("leeway", -1, "LEEWAY"),
        ("cors_preflight_max_age", -1, "CORS_PREFLIGHT_MAX_AGE"),
        ("login_max_failures", 0, "LOGIN_MAX_FAILURES"),
        ("login_max_failures_per_address", 0, "LOGIN_MAX_FAILURES_PER_ADDRESS"),
        ("login_failure_window", 0, "LOGIN_FAILURE_WINDOW"),
        ("max_body_size", 1023, "MAX_BODY_SIZE"),
        ("password_hash_memory_kib", 7, "PASSWORD_HASH_MEMORY_KIB"),
        ("password_hash_iterations", 0, "PASSWORD_HASH_ITERATIONS"),
        ("password_hash_lanes", 0, "PASSWORD_HASH_LANES"),
        ("database", "", "DATABASE"),
        ("database_pool_size", -1, "DATABASE_POOL_SIZE"),
        ("database_connect_timeout", 0, "DATABASE_CONNECT_TIMEOUT"),
        ("database_statement_timeout", 0, "DATABASE_STATEMENT_TIMEOUT"),
    ],
    ids=str,
)
def test_out_of_range_refused(field: str, value: Any, setting: str) -> None:
    with refused(setting):
        Settings(**{field: value})


def test_argon2_memory_scales_with_lanes() -> None:
    assert Settings(password_hash_lanes=4, password_hash_memory_kib=32).password_hash_lanes == 4
    with refused("PASSWORD_HASH_MEMORY_KIB"):
        Settings(password_hash_lanes=4, password_hash_memory_kib=31)


def test_boundaries_accepted() -> None:
    settings = Settings(
        access_token_lifetime=1,
        refresh_token_lifetime=1,
        leeway=0,
        cors_preflight_max_age=0,
        max_body_size=1024,
    )
    assert settings.refresh_token_lifetime == settings.access_token_lifetime


@pytest.mark.parametrize(
    ("field", "value", "setting"),
    [
        ("rotate_refresh_tokens", 1, "ROTATE_REFRESH_TOKENS"),
        ("cors_allow_all_origins", "false", "CORS_ALLOW_ALL_ORIGINS"),
        ("access_token_lifetime", True, "ACCESS_TOKEN_LIFETIME"),
        ("access_token_lifetime", 10.0, "ACCESS_TOKEN_LIFETIME"),
        ("leeway", "0", "LEEWAY"),
        ("cors_allowed_origins", "http://a.com", "CORS_ALLOWED_ORIGINS"),
        ("trusted_proxies", ("10.0.0.1", 1), "TRUSTED_PROXIES"),
        ("database", None, "DATABASE"),
        ("issuer", 5, "ISSUER"),
    ],
    ids=repr,
)
def test_wrong_types_in_code_refused(field: str, value: Any, setting: str) -> None:
    with refused(setting):
        Settings(**{field: value})


def test_wrongly_typed_secret_not_echoed() -> None:
    with refused("SECRET_KEY") as info:
        Settings(secret_key=b"a-bytes-secret-that-is-long-enough!!")  # type: ignore[arg-type]
    assert "a-bytes-secret" not in str(info.value)


def test_lists_become_tuples() -> None:
    settings = Settings(cors_allowed_origin_regexes=["x"])  # type: ignore[arg-type]
    assert settings.cors_allowed_origin_regexes == ("x",)


@pytest.mark.parametrize(
    "proxy", ["10.0.0", "example.com", "10.0.0.0/8", ""], ids=["short", "name", "cidr", "empty"]
)
def test_bad_trusted_proxy_refused(proxy: str) -> None:
    with refused("TRUSTED_PROXIES"):
        Settings(trusted_proxies=(proxy,))


def test_trusted_proxies_normalised() -> None:
    assert Settings(trusted_proxies=("0:0::1",)).trusted_proxies == ("::1",)


def test_ipv4_mapped_trusted_proxy_stored_as_ipv4() -> None:
    # Re-audit N4: "::ffff:127.0.0.1" was kept as "::ffff:7f00:1", which no IPv4 peer matched.
    settings = Settings(trusted_proxies=("::ffff:127.0.0.1", "::FFFF:10.0.0.1"))
    assert settings.trusted_proxies == ("127.0.0.1", "10.0.0.1")


@pytest.mark.parametrize("proxy", ["fe80::1%eth0", "fe80::1%1"], ids=["name", "index"])
def test_trusted_proxy_zone_id_refused(proxy: str) -> None:
    # Re-audit N5: a zone id was accepted but never matched (peers lose theirs).
    with refused("TRUSTED_PROXIES") as info:
        Settings(trusted_proxies=(proxy,))
    assert "zone id" in str(info.value)


# -- repr ---------------------------------------------------------------------------------


def test_repr_hides_secret() -> None:
    secret = "correct-horse-battery-staple-0123456789"
    text = repr(Settings(secret_key=secret))
    assert secret not in text
    assert "secret_key='***'" in text
    assert "access_token_lifetime=10" in text
    assert "secret_key=None" in repr(Settings())


def test_str_hides_secret() -> None:
    secret = "correct-horse-battery-staple-0123456789"
    assert secret not in str(Settings(secret_key=secret))
    assert secret not in f"{Settings(secret_key=secret)}"


# -- the database: SQLite path or PostgreSQL URL -------------------------------------------

PG_URL = "postgresql://jwt:Sup3r-secret@db.example.com:5432/jwtlite?sslmode=require"


@pytest.mark.parametrize(
    "database",
    [
        "jwtlite.sqlite3",
        "/srv/jwtlite.sqlite3",
        "file:/srv/db.sqlite3?mode=rwc",
        "file:///srv/db.sqlite3",
        PG_URL,
        "postgres://db.example.com/jwtlite",
    ],
    ids=["relative", "absolute", "file-uri", "file-uri-authority", "postgresql", "postgres"],
)
def test_database_forms_accepted(database: str) -> None:
    assert Settings(database=database, secret_key=STRONG).database == database


@pytest.mark.parametrize(
    "database",
    ["mysql://db/x", "sqlite:///x.db", "POSTGRESQL://db/x", "http://db/x"],
    ids=["mysql", "sqlalchemy-sqlite", "upper-case", "http"],
)
def test_other_url_schemes_refused(database: str) -> None:
    with refused("DATABASE") as info:
        Settings(database=database, secret_key=STRONG)
    assert "unsupported URL scheme" in str(info.value)


def test_postgresql_without_a_shared_key_refused() -> None:
    """Several instances on one database would each generate a key of their own."""
    with refused("DATABASE") as info:
        Settings(database=PG_URL)
    message = str(info.value)
    assert "SECRET_KEY or PRIVATE_KEY_FILE" in message
    assert "Sup3r-secret" not in message
    assert "\n" not in message


def test_postgresql_with_a_key_file_accepted(tmp_path: Path) -> None:
    key = tmp_path / "signing.pem"
    key.write_text("not checked here, only read")
    settings = Settings(database=PG_URL, algorithm="ES256", private_key_file=str(key))
    assert settings.key_path == str(key)


def test_repr_masks_the_database_password() -> None:
    text = repr(Settings(database=PG_URL, secret_key=STRONG))
    assert "Sup3r-secret" not in text
    assert "database='postgresql://jwt:***@db.example.com:5432/jwtlite?sslmode=require'" in text
    assert STRONG not in text


def test_database_settings_from_env() -> None:
    settings = Settings.from_env(
        {
            "JWTLITE_DATABASE": PG_URL,
            "JWTLITE_SECRET_KEY": STRONG,
            "JWTLITE_DATABASE_POOL_SIZE": "12",
            "JWTLITE_DATABASE_CONNECT_TIMEOUT": "2",
            "JWTLITE_DATABASE_STATEMENT_TIMEOUT": "3",
        }
    )
    assert (settings.database_pool_size, settings.database_connect_timeout) == (12, 2)
    assert settings.database_statement_timeout == 3


def test_the_algorithms_are_the_librarys() -> None:
    """ALGORITHM accepts exactly what jwtlite.algorithms registers, HMAC minimums included."""
    from jwtlite.algorithms import ALGORITHMS

    for name in ALGORITHMS:
        secret = "s" * 64 if name.startswith("HS") else None
        assert Settings(algorithm=name, secret_key=secret).algorithm == name
    with refused("ALGORITHM"):
        Settings(algorithm="none")
    with refused("SECRET_KEY"):
        Settings(algorithm="HS384", secret_key="s" * 47)


def test_the_test_suites_variable_is_refused_like_any_unknown_name() -> None:
    """The service knows nothing of the suite: its variable is an unknown setting (the suite
    keeps it away from the servers it starts)."""
    with refused("TEST_POSTGRES_URL"):
        Settings.from_env({"JWTLITE_TEST_POSTGRES_URL": "postgresql://postgres@127.0.0.1/x"})


# ------------------------------------------------------------------------------------------
# Tests for the cookie settings of jwtlite.service.settings: TOKEN_TRANSPORT and COOKIE_*.


def test_defaults_keep_the_body_transport() -> None:
    settings = Settings()
    assert settings.token_transport == "body"
    assert settings.cookie_secure is True
    assert settings.cookie_samesite == "Lax"
    assert settings.cookie_domain is None


def test_from_env_reads_the_cookie_settings() -> None:
    settings = Settings.from_env(
        {
            "JWTLITE_TOKEN_TRANSPORT": "Cookie",
            "JWTLITE_COOKIE_SECURE": "false",
            "JWTLITE_COOKIE_SAMESITE": "strict",
            "JWTLITE_COOKIE_DOMAIN": ".Example.COM",
        }
    )
    assert settings.token_transport == "cookie"
    assert settings.cookie_secure is False
    assert settings.cookie_samesite == "Strict"
    assert settings.cookie_domain == "example.com"


def test_from_env_empty_domain_means_none() -> None:
    assert Settings.from_env({"JWTLITE_COOKIE_DOMAIN": ""}).cookie_domain is None


@pytest.mark.parametrize("transport", ["body", "cookie", "both", "BOTH", " cookie "])
def test_transports_accepted(transport: str) -> None:
    assert Settings(token_transport=transport).token_transport == transport.strip().lower()


@pytest.mark.parametrize("transport", ["", "cookies", "header", "none", "body,cookie"])
def test_unknown_transport_refused(transport: str) -> None:
    with refused("TOKEN_TRANSPORT"):
        Settings(token_transport=transport)


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("Lax", "Lax"), ("lax", "Lax"), ("STRICT", "Strict"), ("None", "None"), ("none", "None")],
)
def test_samesite_spelt_as_browsers_document_it(raw: str, stored: str) -> None:
    assert Settings(cookie_samesite=raw).cookie_samesite == stored


@pytest.mark.parametrize("samesite", ["", "lax; Domain=evil.com", "Relaxed", "0"])
def test_unknown_samesite_refused(samesite: str) -> None:
    with refused("COOKIE_SAMESITE"):
        Settings(cookie_samesite=samesite)


def test_samesite_none_requires_secure() -> None:
    with refused("COOKIE_SAMESITE") as caught:
        Settings(cookie_samesite="None", cookie_secure=False)
    assert "COOKIE_SECURE" in str(caught.value)
    assert Settings(cookie_samesite="None", cookie_secure=True).cookie_samesite == "None"


@pytest.mark.parametrize(
    "domain",
    [
        "example.com:443",
        "https://example.com",
        "example.com/path",
        "example.com; Secure",
        "exa mple.com",
        "example..com",
        "-example.com",
        "example-.com",
        "exämple.com",
        "a" * 64 + ".com",
        ".",
    ],
    ids=[
        "port",
        "url",
        "path",
        "attribute-injection",
        "space",
        "empty-label",
        "leading-dash",
        "trailing-dash",
        "non-ascii",
        "label-too-long",
        "dot-only",
    ],
)
def test_bad_cookie_domain_refused(domain: str) -> None:
    with refused("COOKIE_DOMAIN"):
        Settings(cookie_domain=domain)


@pytest.mark.parametrize(
    ("field", "value", "setting"),
    [
        ("token_transport", None, "TOKEN_TRANSPORT"),
        ("cookie_secure", "false", "COOKIE_SECURE"),
        ("cookie_samesite", 1, "COOKIE_SAMESITE"),
        ("cookie_domain", 7, "COOKIE_DOMAIN"),
    ],
)
def test_wrong_cookie_types_in_code_refused(field: str, value: Any, setting: str) -> None:
    with refused(setting):
        Settings(**{field: value})


def test_from_env_refuses_a_misspelt_cookie_setting() -> None:
    with refused("COOKIE_SAMESIT") as caught:
        Settings.from_env({"JWTLITE_COOKIE_SAMESIT": "Lax"})
    assert "did you mean JWTLITE_COOKIE_SAMESITE?" in str(caught.value)
