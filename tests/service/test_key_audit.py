"""The ``key.rotated`` audit event of an instance that picks up a rotation: it belongs to no
request, whichever request happened to trigger the reload (in process, real key files)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jwtlite.service.signing.directory import KeyDirectory
from jwtlite.service.signing.keyring import request_reload

from support import PASSWORD, FakeClock, register

KEEP = 40


def test_a_reload_event_names_no_request_and_no_client(
    make_client: Callable[..., Any],
    tmp_path: Path,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    keys_dir = tmp_path / "keys"
    app = make_client(keys_dir=str(keys_dir), algorithm="ES256")
    register(app)
    old_kid = KeyDirectory(str(keys_dir)).read().manifest.current
    new_kid = KeyDirectory(str(keys_dir)).rotate("ES256", now=int(clock()), keep_seconds=KEEP).kid
    request_reload()
    caplog.set_level(logging.INFO, logger="jwtlite.audit")
    # The request that finds the reload due carries an id and a client of its own choosing.
    app.post_json(
        "/accounts/token/",
        {"username": "alice", "password": PASSWORD},
        headers={"X-Request-ID": "ops-rotation-by-admin"},
        status=200,
    )
    events = [r.audit for r in caplog.records if r.name == "jwtlite.audit"]
    rotated = [e for e in events if e["event"] == "key.rotated"]
    assert len(rotated) == 1
    assert rotated[0]["kid"] == new_kid
    assert rotated[0]["previous_kid"] == old_kid
    assert rotated[0]["source"] == "reload"
    assert rotated[0]["activates"] == int(clock())  # not staged: it signs from the rotation
    assert rotated[0]["request_id"] is None
    assert rotated[0]["client"] is None
    # The request's own events keep its id.
    (succeeded,) = [e for e in events if e["event"] == "login.succeeded"]
    assert succeeded["request_id"] == "ops-rotation-by-admin"


def test_a_reload_that_cancels_a_staged_key_names_the_key_that_was_signing(
    make_client: Callable[..., Any],
    tmp_path: Path,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Re-audit N1: the staged key never signed; the event's previous_kid is the signing key.
    keys_dir = tmp_path / "keys"
    app = make_client(keys_dir=str(keys_dir), algorithm="ES256")
    register(app)
    directory = KeyDirectory(str(keys_dir))
    signing_kid = directory.read().manifest.current
    directory.rotate(None, now=int(clock()), keep_seconds=KEEP, activate_after=3600)
    request_reload()
    app.get("/.well-known/jwks.json", status=200)  # this instance now holds the staged ring
    new_kid = directory.rotate(None, now=int(clock()), keep_seconds=KEEP).kid
    request_reload()
    caplog.set_level(logging.INFO, logger="jwtlite.audit")
    app.get("/.well-known/jwks.json", status=200)
    events = [r.audit for r in caplog.records if r.name == "jwtlite.audit"]
    rotated = [e for e in events if e["event"] == "key.rotated"]
    assert [(e["kid"], e["previous_kid"]) for e in rotated] == [(new_kid, signing_kid)]
