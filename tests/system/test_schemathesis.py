"""Property-based conformance: schemathesis fuzzes a live ``serve.py`` against openapi.json.

Every generated request (positive and negative data) must get a documented status, a
documented content type, documented headers and a body matching the documented schema;
none may get a 5xx. Every schema-valid request must also be accepted
(``positive_data_acceptance``): the document states every rule that refuses a request with 400,
except the registration rules no JSON Schema can state (see ``fit_unstateable_rules``). The
number of examples per operation is bounded so the run stays short.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from jwtlite.service.credentials import validators
from jwtlite.service.credentials.confusables import username_skeleton

from support import FAST_HASH_ENV, PASSWORD, ServerProcess, http

DOCUMENT = Path(__file__).resolve().parents[2] / "jwtlite" / "web" / "openapi.json"
MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    positive_data_acceptance,
]
# Generous lifetimes: no token issued during the run expires under it. A low per-address
# limit makes the fuzzed logins reach the throttle, so its 429 is checked too.
SERVER_ENV = {
    **FAST_HASH_ENV,
    "JWTLITE_ACCESS_TOKEN_LIFETIME": "3600",
    "JWTLITE_REFRESH_TOKEN_LIFETIME": "7200",
    "JWTLITE_LOGIN_MAX_FAILURES_PER_ADDRESS": "3",
    # Every fuzzed registration comes from 127.0.0.1; the registration throttle has its own
    # tests, and a 429 here would hide what positive_data_acceptance checks.
    "JWTLITE_REGISTRATION_MAX_PER_ADDRESS": "1000000",
    # DELETE /accounts/me/ is documented, so it is served here (only a wrong password is sent).
    "JWTLITE_ALLOW_ACCOUNT_DELETION": "true",
}
# Operations that need an access token: each is called once more with a real one.
BEARER_PATHS = {
    "/accounts/me/",
    "/accounts/password/",
    "/accounts/logout-all/",
    "/accounts/sessions/",
    "/accounts/sessions/{session_id}/",
}
# Log out everywhere ends the token's sessions: each real call gets a user of its own.
SPARE_USERS = MAX_EXAMPLES


def accepting(*operation_ids: str, statuses: list[str]) -> dict[str, Any]:
    """Config: a schema-valid request to these operations is answered with one of ``statuses``."""
    return {
        "include-operation-id": list(operation_ids),
        "checks": {"positive_data_acceptance": {"expected-statuses": statuses}},
    }


# What a schema-valid request may be answered with. Never 400: the document states every rule
# that refuses a request as malformed. 401 is the honest answer to valid data naming no
# account (a random token, unknown credentials); 429 to a login past the throttle.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx"]}},
        "operations": [
            accepting("obtainTokenPair", statuses=["2xx", "401", "429"]),
            accepting(
                "refreshToken", "verifyToken", "blacklistToken", "me", "meHead",
                "logoutAll", "listSessions", "listSessionsHead",
                statuses=["2xx", "401"],
            ),
            # The old password (of a password change or an account deletion) is a secret no
            # schema can state, and so are the registration rules the new one must pass.
            accepting("changePassword", "deleteAccount", statuses=["2xx", "400", "401", "429"]),
            # A session id is one the service made: any other is 404.
            accepting("endSession", statuses=["2xx", "401", "404"]),
        ],
    }
)  # fmt: skip
schema = schemathesis.openapi.from_path(DOCUMENT, config=CONFIG)
_fresh_names = (f"fuzz{number}" for number in itertools.count())


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A served database with one user, and a valid access token for ``/accounts/me/``."""
    database = tmp_path_factory.mktemp("schemathesis") / "jwtlite.sqlite3"
    with ServerProcess(database=database, env=SERVER_ENV) as server:
        user = {"username": "fuzz-user", "password": PASSWORD}
        assert http("POST", f"{server.url}/accounts/register/", user).status == 201
        tokens = http("POST", f"{server.url}/accounts/token/", user).json()
        spare = []
        for number in range(SPARE_USERS):
            other = {"username": f"spare-{number}", "password": PASSWORD}
            assert http("POST", f"{server.url}/accounts/register/", other).status == 201
            spare.append(http("POST", f"{server.url}/accounts/token/", other).json()["access"])
        yield {
            "url": server.url,
            "access": tokens["access"],
            "spare": spare,
            "taken": {username_skeleton("fuzz-user")}
            | {username_skeleton(f"spare-{number}") for number in range(SPARE_USERS)},
        }


def fit_unstateable_rules(case: schemathesis.Case, taken: set[str]) -> None:
    """Make a schema-valid registration also pass the rules no JSON Schema can state.

    Those are: a username of Unicode letters, digits and @/./+/-/_ after NFKC, from one script,
    unique case-insensitively and by look-alike skeleton (the database decides); an e-mail
    address that IDNA can encode; and Django's password validators (not common, not numeric,
    not like the username). A generated value that breaks one of them is replaced by one that
    passes, which is still schema-valid; everything the schema states (types, lengths, blank,
    NUL, surrogates, extra fields, JSON or form) keeps varying and must be accepted.
    """
    body = case.body
    if not isinstance(body, dict):
        return
    username = validators.normalize_username(str(body.get("username", "")))
    if validators.username_problems(username) or username_skeleton(username) in taken:
        username = next(name for name in _fresh_names if username_skeleton(name) not in taken)
        body["username"] = username
    email = validators.normalize_email(str(body.get("email", "")))
    if validators.email_problems(email):
        body["email"] = email = ""
    if validators.password_problems(str(body.get("password", "")), username=username, email=email):
        body["password"] = PASSWORD


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_response_is_documented(case: schemathesis.Case, live: dict[str, Any]) -> None:
    registration = case.operation.label == "POST /accounts/register/"
    assert case.meta is not None
    if registration and case.meta.generation.mode.is_positive:
        fit_unstateable_rules(case, live["taken"])
    response = case.call_and_validate(base_url=live["url"], checks=CHECKS)
    if registration and response.status_code == 201:  # negative data may register a user too
        live["taken"].add(username_skeleton(response.json()["username"]))
    if case.operation.path in BEARER_PATHS:
        # Random Bearer tokens only reach the 401s; check the 200 too.
        token = live["access"]
        if case.operation.path == "/accounts/logout-all/":
            if not live["spare"]:
                return
            token = live["spare"].pop()
        case.call_and_validate(
            base_url=live["url"],
            checks=CHECKS,
            headers={"Authorization": f"Bearer {token}"},
        )
