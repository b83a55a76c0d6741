"""Registration rules end to end through webtest: unique usernames (case and NFKC), username,
password and e-mail rules reported at once, normalisation, and SQL-looking input as plain data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from support import PASSWORD, login, register
from support.contract import (
    BAD_EMAIL,
    COMMON,
    LIKE_EMAIL,
    LIKE_USERNAME,
    LONG,
    NUMERIC,
    SHORT,
    TOO_LONG,
    USERNAME_CHARACTERS,
    USERNAME_MIXED_SCRIPTS,
    USERNAME_TAKEN,
    assert_error,
    assert_json,
    bearer,
    post,
)

# Every test that builds a client runs on SQLite and on PostgreSQL (conftest).
pytestmark = pytest.mark.both_backends
Rows = Callable[..., list[tuple[Any, ...]]]

REGISTER = "/accounts/register/"
TOKEN = "/accounts/token/"
ME = "/accounts/me/"

# Written with escapes: these are look-alikes on purpose.
FULLWIDTH_ALICE = "\uff41\uff4c\uff49\uff43\uff45"  # NFKC: "alice"
CYRILLIC_A_DMIN = "\u0430dmin"  # Cyrillic small a (U+0430), then Latin "dmin"
SQL = "alice'; DROP TABLE users;--"


def _register(client: Any, username: str, password: str = PASSWORD, **extra: Any) -> Any:
    return post(client, REGISTER, {"username": username, "password": password, **extra})


def _user_count(db_rows: Rows) -> int:
    return int(db_rows("SELECT count(*) FROM users")[0][0])


# -- unique usernames ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("alice", "alice"),
        ("alice", "Alice"),
        ("Alice", "ALICE"),
        ("alice", " alice "),
        ("alice", FULLWIDTH_ALICE),
        (FULLWIDTH_ALICE, "alice"),
        ("straße", "STRASSE"),
    ],
    ids=["same", "capitalised", "upper", "padded", "fullwidth", "fullwidth-first", "casefold"],
)
def test_duplicate_username(client: Any, db_rows: Rows, first: str, second: str) -> None:
    register(client, first)
    assert_error(_register(client, second), 400, USERNAME_TAKEN)
    assert _user_count(db_rows) == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("ace", "\u0430\u0441\u0435"),
        ("\u0430\u0441\u0435", "ACE"),
        ("payee", "\u0440\u0430\u0443\u0435\u0435"),
        ("abe", "\u0391\u0392\u0395"),
        ("alice", "aIice"),
        ("bob", "b0b"),
        ("mary", "rnary"),
        ("\U0001d5ba\U0001d5c5\U0001d5c2\U0001d5bc\U0001d5be", "alice"),
    ],
    ids=[
        "cyrillic-ace",
        "cyrillic-first",
        "cyrillic-payee",
        "greek-capitals",
        "capital-i-for-l",
        "zero-for-o",
        "rn-for-m",
        "math-sans-serif",
    ],
)
def test_lookalike_username_is_taken(client: Any, db_rows: Rows, first: str, second: str) -> None:
    """Whole-script and character look-alikes (Unicode TR39 skeletons) count as the same
    name, as case variants do."""
    register(client, first)
    assert_error(_register(client, second), 400, USERNAME_TAKEN)
    assert _user_count(db_rows) == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [("alice", "alicia"), ("iron", "lron"), ("vvolf", "wolf"), ("clone", "done")],
    ids=["different-name", "dotted-i", "vv-is-not-w", "cl-is-not-d"],
)
def test_different_usernames_are_not_lookalikes(client: Any, first: str, second: str) -> None:
    register(client, first)
    assert register(client, second)["username"] == second


def test_username_stored_in_nfkc_form(client: Any) -> None:
    body = register(client, FULLWIDTH_ALICE)
    assert body["username"] == "alice"
    assert client.store.get_user_by_key("alice").username == "alice"


def test_username_case_kept_for_display(client: Any) -> None:
    assert register(client, "Alice")["username"] == "Alice"
    access = login(client, "alice")["access"]
    assert client.get(ME, headers=bearer(access)).json["username"] == "Alice"


# -- username rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "messages"),
    [
        ("al ice", [USERNAME_CHARACTERS]),
        ("a/b", [USERNAME_CHARACTERS]),
        ("ali\nce", [USERNAME_CHARACTERS]),
        ("a:b", [USERNAME_CHARACTERS]),
        ("<script>", [USERNAME_CHARACTERS]),
        ("alice\u200b", [USERNAME_CHARACTERS]),
        ("a" * 151, [TOO_LONG]),
        (CYRILLIC_A_DMIN, [USERNAME_MIXED_SCRIPTS]),
        ("p\u0430ypal", [USERNAME_MIXED_SCRIPTS]),
        (SQL, [USERNAME_CHARACTERS]),
        ("   ", ["This field may not be blank."]),
    ],
    ids=[
        "space",
        "slash",
        "newline",
        "colon",
        "markup",
        "zero-width-space",
        "151-chars",
        "latin-cyrillic",
        "cyrillic-inside",
        "sql",
        "whitespace",
    ],
)
def test_bad_username(client: Any, db_rows: Rows, username: str, messages: list[str]) -> None:
    assert_error(_register(client, username), 400, {"username": messages})
    assert _user_count(db_rows) == 0


@pytest.mark.parametrize(
    "username",
    ["a", "a" * 150, "alice.smith+tag@x-y_z", "José", "田中", "ユーザー名", "Σωκράτης", "123"],
    ids=["one-char", "150-chars", "punctuation", "accented", "cjk", "katakana", "greek", "digits"],
)
def test_good_username(client: Any, username: str) -> None:
    assert register(client, username)["username"] == username
    assert login(client, username)["access"]


# -- password rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password", "email", "messages"),
    [
        ("alice", "k9#Lm2", "", [SHORT]),
        ("alice", "83920174", "", [NUMERIC]),
        ("alice", "Password", "", [COMMON]),
        ("alice", "7", "", [SHORT, COMMON, NUMERIC]),
        ("margaret.thatcher", "margaretthatcher", "", [LIKE_USERNAME]),
        ("bob", "nightingale42", "nightingale42@example.com", [LIKE_EMAIL]),
        ("abc", "abc", "abc@x.io", [SHORT, LIKE_USERNAME, LIKE_EMAIL, COMMON]),
        ("alice", "a" * 4097, "", [LONG]),
        ("alice", "é" * 2049, "", [LONG]),
        ("alice", "1" * 4097, "", [LONG, NUMERIC]),
    ],
    ids=[
        "short",
        "numeric",
        "common",
        "short-common-numeric",
        "like-username",
        "like-email",
        "short-like-both-common",
        "4097-bytes",
        "4098-bytes-multibyte",
        "long-numeric",
    ],
)
def test_password_rules_reported_at_once(
    client: Any, username: str, password: str, email: str, messages: list[str]
) -> None:
    response = _register(client, username, password, email=email)
    assert_error(response, 400, {"password": messages})
    assert password not in response.text
    assert client.store.get_user_by_key(username) is None


@pytest.mark.parametrize(
    "password",
    ["é" * 2048, "x" * 4096, "correct horse battery staple", "пароль-надёжный-42"],
    ids=["4096-bytes-multibyte", "4096-bytes", "spaces", "cyrillic"],
)
def test_acceptable_password_logs_in(client: Any, password: str) -> None:
    register(client, password=password)
    assert login(client, password=password)["refresh"]
    wrong = post(client, TOKEN, {"username": "alice", "password": password[:-1]})
    assert wrong.status_int == 401


def test_every_field_reported_at_once(client: Any) -> None:
    response = _register(client, CYRILLIC_A_DMIN, "1", email="not-an-email")
    assert_error(
        response,
        400,
        {
            "username": [USERNAME_MIXED_SCRIPTS],
            "email": [BAD_EMAIL],
            "password": [SHORT, COMMON, NUMERIC],
        },
    )


# -- e-mail ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    [
        "x",
        "a@b",
        "a@@b.com",
        "a b@c.com",
        "@x.com",
        "a@x.c",
        "a@-x.com",
        "a@x..com",
        "alice@example.com\u200b",
        "alice@example.123",
        "alice@localhost",
        "a@" + "x" * 250 + ".com",
    ],
    ids=[
        "no-at",
        "no-dot",
        "two-ats",
        "space",
        "no-local",
        "one-letter-tld",
        "hyphen-label",
        "empty-label",
        "zero-width-space",
        "numeric-tld",
        "single-label",
        "too-long",
    ],
)
def test_invalid_email(client: Any, email: str) -> None:
    assert_error(_register(client, "alice", email=email), 400, {"email": [BAD_EMAIL]})


@pytest.mark.parametrize(
    ("email", "stored"),
    [
        ("", ""),
        (" Alice@EXAMPLE.COM ", "Alice@example.com"),
        ("a.b+c@Sub.Example.co.uk", "a.b+c@sub.example.co.uk"),
        ("alice@bücher.de", "alice@bücher.de"),
        ("o'brien@example.com", "o'brien@example.com"),
    ],
    ids=["empty", "domain-lowercased", "subdomains", "idn", "apostrophe"],
)
def test_email_normalised(client: Any, email: str, stored: str) -> None:
    assert register(client, email=email)["email"] == stored
    assert client.store.get_user_by_key("alice").email == stored
    access = login(client)["access"]
    assert client.get(ME, headers=bearer(access)).json["email"] == stored


# -- login ignores case; extra fields ignored ------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    ["alice", "ALICE", "aLiCe", " alice ", FULLWIDTH_ALICE],
    ids=["lower", "upper", "mixed", "padded", "fullwidth"],
)
def test_login_ignores_username_case(client: Any, typed: str) -> None:
    register(client, "Alice")
    pair = login(client, typed)
    assert client.get(ME, headers=bearer(pair["access"])).json["id"] == 1


def test_unknown_fields_ignored(client: Any) -> None:
    response = _register(client, "alice", id=99, is_active=False, is_staff=True)
    assert response.status_int == 201
    assert assert_json(response) == {"id": 1, "username": "alice", "email": ""}
    assert login(client)["access"]


# -- SQL-looking input is data ---------------------------------------------------------------


def test_sql_looking_password_is_just_data(client: Any, db_rows: Rows) -> None:
    register(client, "bob")
    assert_error(_register(client, SQL), 400, {"username": [USERNAME_CHARACTERS]})
    register(client, "alice", password=SQL)
    assert _user_count(db_rows) == 2
    assert login(client, "alice", SQL)["access"]
    refused = post(client, TOKEN, {"username": SQL, "password": SQL})
    assert refused.status_int == 401
    assert login(client, "bob")["access"]
    assert _user_count(db_rows) == 2
    stored = client.store.get_user_by_key("alice").password_hash
    assert stored.startswith("$argon2id$")
    assert SQL not in stored


def test_sql_looking_email_is_just_data(client: Any) -> None:
    email = "x'--@example.com"
    assert register(client, email=email)["email"] == email
    assert client.store.get_user_by_key("alice").email == email
