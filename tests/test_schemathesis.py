"""Property-based conformance: schemathesis fuzzes a live ``serve.py`` against openapi.json.

Every generated request (positive and negative data) must get a documented status, a
documented content type, documented headers and a body matching the documented schema;
none may get a 5xx. The number of examples per operation is bounded so the run stays short.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from support import FAST_HASH_ENV, PASSWORD, ServerProcess, http

DOCUMENT = Path(__file__).resolve().parent.parent / "jwtlite" / "web" / "openapi.json"
MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Generous lifetimes: no token issued during the run expires under it. A low per-address
# limit makes the fuzzed logins reach the throttle, so its 429 is checked too.
SERVER_ENV = {
    **FAST_HASH_ENV,
    "JWTLITE_ACCESS_TOKEN_LIFETIME": "3600",
    "JWTLITE_REFRESH_TOKEN_LIFETIME": "7200",
    "JWTLITE_LOGIN_MAX_FAILURES_PER_ADDRESS": "3",
}

schema = schemathesis.openapi.from_path(DOCUMENT)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A served database with one user, and a valid access token for ``/accounts/me/``."""
    database = tmp_path_factory.mktemp("schemathesis") / "jwtlite.sqlite3"
    with ServerProcess(database=database, env=SERVER_ENV) as server:
        user = {"username": "fuzz-user", "password": PASSWORD}
        assert http("POST", f"{server.url}/accounts/register/", user).status == 201
        tokens = http("POST", f"{server.url}/accounts/token/", user).json()
        yield {"url": server.url, "access": tokens["access"]}


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_response_is_documented(case: schemathesis.Case, live: dict[str, Any]) -> None:
    case.call_and_validate(base_url=live["url"], checks=CHECKS)
    if case.operation.path == "/accounts/me/":
        # Random Bearer tokens only reach the 401s; check the 200 too.
        case.call_and_validate(
            base_url=live["url"],
            checks=CHECKS,
            headers={"Authorization": f"Bearer {live['access']}"},
        )
