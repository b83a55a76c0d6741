"""Tests for the cookie settings of jwtlite.service.settings: TOKEN_TRANSPORT and COOKIE_*."""

from __future__ import annotations

from typing import Any

import pytest

from jwtlite.service.errors import ConfigurationError
from jwtlite.service.settings import Settings


def refused(setting: str) -> Any:
    """Expect a ConfigurationError naming ``setting``."""
    return pytest.raises(ConfigurationError, match=f"^{setting}: ")


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
def test_wrong_types_in_code_refused(field: str, value: Any, setting: str) -> None:
    with refused(setting):
        Settings(**{field: value})


def test_from_env_refuses_a_misspelt_cookie_setting() -> None:
    with refused("COOKIE_SAMESIT") as caught:
        Settings.from_env({"JWTLITE_COOKIE_SAMESIT": "Lax"})
    assert "did you mean JWTLITE_COOKIE_SAMESITE?" in str(caught.value)
