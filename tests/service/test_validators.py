"""Registration rules: usernames, e-mail addresses and passwords."""

from __future__ import annotations

import gzip
import threading
from importlib import resources

import pytest

from jwtlite.service.credentials.validators import (
    common_passwords,
    email_problems,
    normalize_email,
    normalize_username,
    password_problems,
    username_key,
    username_problems,
)

from support.contract import (
    BAD_EMAIL,
    BLANK,
    COMMON,
    LIKE_EMAIL,
    LIKE_USERNAME,
    LONG,
    NUMERIC,
    SHORT,
    TOO_LONG,
    USERNAME_CHARACTERS,
    USERNAME_MIXED_SCRIPTS,
)

# -- usernames ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("alice", "alice"),
        ("  alice\t\n", "alice"),
        ("\uff41\uff44\uff4d\uff49\uff4e", "admin"),
        ("\U0001d41a\U0001d41d\U0001d426\U0001d422\U0001d427", "admin"),
        ("e\u0301mile", "\u00e9mile"),
        ("Alice", "Alice"),
    ],
    ids=["plain", "surrounding-whitespace", "fullwidth", "math-bold", "combining-accent", "case"],
)
def test_normalize_username(raw: str, normalised: str) -> None:
    assert normalize_username(raw) == normalised


@pytest.mark.parametrize(
    ("a", "b"),
    [("Alice", "alice"), ("STRASSE", "stra\u00dfe"), ("\u0391\u03b8\u03b7\u03bd\u03b1", "αθηνα")],
    ids=["ascii-case", "german-sharp-s", "greek-case"],
)
def test_username_key_is_case_insensitive(a: str, b: str) -> None:
    assert username_key(normalize_username(a)) == username_key(normalize_username(b))


@pytest.mark.parametrize(
    "username",
    [
        "alice",
        "a",
        "alice.smith+tag@example-1_x",
        "x" * 150,
        "\u00e9mile",
        "\u0438\u0432\u0430\u043d",
        "\u03b1\u03b8\u03b7\u03bd\u03b1",
        "\u5c71\u7530\u305f\u308d\u3046\u30bf\u30ed\u30a6",
        "\uae40\ucca0\uc218\u91d1",
        "user_42",
        "12345",
    ],
    ids=[
        "ascii",
        "one-char",
        "all-allowed-punctuation",
        "150-chars",
        "latin-accent",
        "cyrillic-only",
        "greek-only",
        "japanese-han-kana",
        "korean-hangul-han",
        "underscore-digits",
        "digits-only",
    ],
)
def test_valid_usernames(username: str) -> None:
    assert username_problems(username) == []


@pytest.mark.parametrize(
    ("username", "problems"),
    [
        ("", [BLANK]),
        ("x" * 151, [TOO_LONG]),
        ("alice smith", [USERNAME_CHARACTERS]),
        ("alice!", [USERNAME_CHARACTERS]),
        ("a/b", [USERNAME_CHARACTERS]),
        ("<script>", [USERNAME_CHARACTERS]),
        ("alice\u200b", [USERNAME_CHARACTERS]),
        ("ali\u202ece", [USERNAME_CHARACTERS]),
        ("alice\x00", [USERNAME_CHARACTERS]),
        ("alice\n", [USERNAME_CHARACTERS]),
        ("\u0430dmin", [USERNAME_MIXED_SCRIPTS]),
        ("p\u0430yp\u0430l", [USERNAME_MIXED_SCRIPTS]),
        ("\u03bfpen", [USERNAME_MIXED_SCRIPTS]),
        ("\u0430" + "x" * 150 + "!", [TOO_LONG, USERNAME_CHARACTERS, USERNAME_MIXED_SCRIPTS]),
    ],
    ids=[
        "blank",
        "151-chars",
        "space",
        "exclamation",
        "slash",
        "markup",
        "zero-width-space",
        "bidi-override",
        "nul",
        "newline",
        "cyrillic-a-in-admin",
        "cyrillic-a-in-paypal",
        "greek-omicron-in-open",
        "every-rule-at-once",
    ],
)
def test_invalid_usernames(username: str, problems: list[str]) -> None:
    assert username_problems(username) == problems


def test_fullwidth_admin_collides_with_admin() -> None:
    fullwidth = normalize_username("\uff41\uff44\uff4d\uff49\uff4e")
    assert username_problems(fullwidth) == []
    assert username_key(fullwidth) == username_key(normalize_username("ADMIN"))


# -- e-mail ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("  Alice@Example.COM ", "Alice@example.com"),
        ("a@b@EXAMPLE.com", "a@b@example.com"),
        ("no-at-sign", "no-at-sign"),
        ("", ""),
    ],
    ids=["domain-lowered-local-kept", "last-at-splits", "no-at", "empty"],
)
def test_normalize_email(raw: str, normalised: str) -> None:
    assert normalize_email(raw) == normalised


@pytest.mark.parametrize(
    "email",
    [
        "",
        "alice@example.com",
        "alice.smith+tag@mail.example.co.uk",
        "o'brien@example.org",
        "user@xn--bcher-kva.example",
        "user@b\u00fccher.example",
        "a@b.io",
        "user@sub-domain.example123.com",
        "x" * 64 + "@example.com",
    ],
    ids=[
        "empty-is-optional",
        "plain",
        "dots-plus-subdomains",
        "apostrophe",
        "punycode-domain",
        "unicode-domain",
        "short",
        "hyphen-digits",
        "64-char-local",
    ],
)
def test_valid_emails(email: str) -> None:
    assert email_problems(email) == []


@pytest.mark.parametrize(
    "email",
    [
        "alice",
        "@example.com",
        "alice@",
        "alice@@example.com",
        "a@b@example.com",
        "alice@localhost",
        "alice@example.c",
        "alice@example.123",
        "alice@-example.com",
        "alice@example-.com",
        "alice@exa_mple.com",
        "alice@example..com",
        "alice@.example.com",
        "alice@example.com.",
        ".alice@example.com",
        "alice.@example.com",
        "al..ice@example.com",
        "al ice@example.com",
        "alice@exam ple.com",
        "alice@example.com\n",
        "alice\x00@example.com",
        "alice@ex\u00adample.com",
        "alice@ex\u200bample.com",
        "alice@example\u3002com",
        "\u00e9lise@example.com",
        '"alice"@example.com',
        "alice@[127.0.0.1]",
        "x" * 65 + "@example.com",
        "a@" + ("b" * 63 + ".") * 4 + "com",
        "alice@" + "b" * 64 + ".com",
    ],
    ids=[
        "no-at",
        "empty-local",
        "empty-domain",
        "double-at",
        "two-ats",
        "no-tld",
        "one-letter-tld",
        "numeric-tld",
        "label-leading-hyphen",
        "label-trailing-hyphen",
        "underscore-in-domain",
        "empty-label",
        "leading-dot-domain",
        "trailing-dot-domain",
        "leading-dot-local",
        "trailing-dot-local",
        "double-dot-local",
        "space-local",
        "space-domain",
        "trailing-newline",
        "nul",
        "soft-hyphen-idna-would-drop",
        "zero-width-space",
        "ideographic-full-stop",
        "non-ascii-local",
        "quoted-local",
        "ip-literal",
        "65-char-local",
        "over-254",
        "64-char-label",
    ],
)
def test_invalid_emails(email: str) -> None:
    assert email_problems(email) == [BAD_EMAIL]


# -- passwords ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "context", "problems"),
    [
        ("Tr0ub4dor&3-horse", {}, []),
        ("Tr0ub4d", {}, [SHORT]),
        ("x" * 4097, {}, [LONG]),
        ("\u00e9" * 2049, {}, [LONG]),
        ("\u00e9" * 2048, {}, []),
        ("alice-in-chains", {"username": "alice-in-chains"}, [LIKE_USERNAME]),
        ("AliceSmith99", {"username": "alicesmith"}, [LIKE_USERNAME]),
        ("Smith_99", {"username": "john.smith"}, [LIKE_USERNAME]),
        ("smith-family", {"username": "john.smith"}, []),
        ("wonderland77", {"email": "wonderland@example.com"}, [LIKE_EMAIL]),
        ("Xk9#mQ2$vL7!pR4@zT6%", {"username": "al", "email": "al@ex.io"}, []),
        ("password", {}, [COMMON]),
        ("PassWord", {}, [COMMON]),
        ("qwertyuiop", {}, [COMMON]),
        ("9817238476", {}, [NUMERIC]),
        ("12345678", {}, [COMMON, NUMERIC]),
        ("1234", {}, [SHORT, COMMON, NUMERIC]),
        (
            "zoltan",
            {"username": "zoltan", "email": "zoltan@x.io"},
            [SHORT, LIKE_USERNAME, LIKE_EMAIL],
        ),
        ("1" * 4097, {"username": "1" * 4097}, [LONG, NUMERIC]),
        ("", {}, [SHORT]),
    ],
    ids=[
        "strong",
        "seven-chars",
        "4097-bytes",
        "4098-bytes-in-2049-chars",
        "4096-bytes-exactly",
        "equals-username",
        "username-case-insensitive",
        "username-part",
        "username-part-diluted",
        "email-local-part",
        "long-password-short-attributes",
        "common",
        "common-any-case",
        "common-keyboard-walk",
        "numeric",
        "common-and-numeric",
        "short-common-numeric",
        "short-and-both-attributes",
        "huge-skips-similarity-and-common",
        "empty",
    ],
)
def test_password_rules(password: str, context: dict[str, str], problems: list[str]) -> None:
    assert password_problems(password, **context) == problems


def test_all_rules_reported_together_in_order() -> None:
    problems = password_problems("12345", username="12345", email="12345@example.com")
    assert problems == [SHORT, LIKE_USERNAME, LIKE_EMAIL, COMMON, NUMERIC]


def test_password_context_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        password_problems("abc", "abc")  # type: ignore[call-arg]


def test_common_password_list_is_djangos() -> None:
    data = (
        resources.files("jwtlite.service.credentials.data")
        .joinpath("common-passwords.txt.gz")
        .read_bytes()
    )
    lines = gzip.decompress(data).decode().splitlines()
    passwords = common_passwords()
    assert len(passwords) == len(set(lines)) > 19_000
    assert {"123456", "password", "qwerty", "letmein"} <= passwords
    assert all(p == p.lower() for p in passwords)


def test_common_password_list_loads_once_across_threads() -> None:
    results: list[frozenset[str]] = []
    threads = [
        threading.Thread(target=lambda: results.append(common_passwords())) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(result) for result in results}) == 1
