"""Key rotation with real processes: ``python -m jwtlite rotate-key``, SIGHUP to a real
``serve.py``, and the issue's test: two instances on one database and one key directory
under load while the key rotates, with no 401 for a valid token.

Loopback only; every wait is bounded and every load stops by itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from jwtlite import Key
from jwtlite.service.signing.keyfile import write_key_file

from support import PASSWORD, ROOT, ServerProcess, clean_environ, http
from support.load import Client, run_threads
from support.server import unverified_segment

CLI_TIMEOUT = 60.0
WAIT = 15.0  # the longest any step may take on a loaded two-core machine
ROOMY = {
    "JWTLITE_PASSWORD_HASH_QUEUE": "1000",
    "JWTLITE_PASSWORD_HASH_PER_CLIENT": "1000",
    "JWTLITE_ACCESS_TOKEN_LIFETIME": "120",
    "JWTLITE_REFRESH_TOKEN_LIFETIME": "240",
}


def kid_of(token: str) -> str | None:
    kid: str | None = unverified_segment(token, 0).get("kid")
    return kid


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def command(db_path: Path, keys_dir: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m jwtlite ARGS`` with ``JWTLITE_KEYS_DIR`` set."""

    def run(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environ = {
            **clean_environ(),
            "PYTHONPATH": str(ROOT),
            "JWTLITE_DATABASE": str(db_path),
            "JWTLITE_KEYS_DIR": str(keys_dir),
            **ROOMY,
            **(env or {}),
        }
        return subprocess.run(
            [sys.executable, "-m", "jwtlite", *args],
            capture_output=True,
            text=True,
            cwd=db_path.parent,
            env=environ,
            timeout=CLI_TIMEOUT,
            check=False,
        )

    return run


@pytest.fixture
def rotate_key(command: Callable[..., Any]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m jwtlite rotate-key ARGS`` with ``JWTLITE_KEYS_DIR`` set."""

    def run(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result: subprocess.CompletedProcess[str] = command("rotate-key", *args, env=env)
        return result

    return run


def printed(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    assert "PRIVATE KEY" not in result.stdout
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.fixture
def serve(
    start_server: Callable[..., ServerProcess], keys_dir: Path
) -> Callable[..., ServerProcess]:
    """Start ``serve.py --threads 8`` on the test's database and key directory; stopped at
    teardown."""

    def start(database: str | None = None, **env: str) -> ServerProcess:
        return start_server(
            {
                **ROOMY,
                "JWTLITE_KEYS_DIR": str(keys_dir),
                **({"JWTLITE_DATABASE": database} if database else {}),
                **env,
            },
            ["--threads", "8"],
        )

    return start


# -- the command --------------------------------------------------------------------------


def test_rotate_key_needs_a_key_directory(rotate_key: Callable[..., Any]) -> None:
    result = rotate_key(env={"JWTLITE_KEYS_DIR": ""})
    assert result.returncode == 2
    assert "rotate-key needs JWTLITE_KEYS_DIR" in result.stderr


def test_rotate_key_makes_retires_and_never_prints_a_key(
    rotate_key: Callable[..., Any], keys_dir: Path
) -> None:
    first = printed(rotate_key("--algorithm", "ES256"))  # an empty directory: its first key
    assert first["retired"] == []
    second = printed(rotate_key())  # the current key's algorithm by default
    assert second["algorithm"] == "ES256"
    assert second["retired"] == [first["kid"]]
    third = printed(rotate_key("--algorithm", "EdDSA"))
    assert third["retired"] == [second["kid"]]
    assert third["pruned"] == []
    ring = json.loads((keys_dir / "ring.json").read_text())
    assert [key["alg"] for key in ring["keys"]] == ["EdDSA", "ES256", "ES256"]
    secret = (keys_dir / f"{third['kid']}.key").read_text()
    for result in (first, second, third):
        assert secret not in json.dumps(result)


def test_rotate_key_writes_an_audit_event(rotate_key: Callable[..., Any], keys_dir: Path) -> None:
    first = printed(rotate_key("--algorithm", "ES256"))
    result = rotate_key("--activate-after", "30")
    second = printed(result)
    (line,) = [json.loads(line) for line in result.stderr.splitlines()]
    assert line["event"] == "key.rotated"
    assert (line["kid"], line["previous_kid"], line["source"], line["activates"]) == (
        second["kid"],
        first["kid"],
        "rotate-key",
        second["activates"],
    )
    assert second["activates"] >= int(time.time()) + 25  # staged: signs half a minute later
    assert {"time", "user_id", "client", "session_id", "request_id"} <= line.keys()
    for kid in (first["kid"], second["kid"]):
        key = (keys_dir / f"{kid}.key").read_text()
        assert key not in result.stderr
        assert key.splitlines()[1] not in result.stderr  # not even one line of the PEM


def test_rotate_key_from_a_shorter_shell_prunes_no_live_key(
    serve: Callable[..., ServerProcess], rotate_key: Callable[..., Any]
) -> None:
    # M1: the servers (refresh lifetime 240) made the ring; a rotate-key run from a shell
    # with a 1-second refresh lifetime must not prune the key that signed a live token.
    server = serve(JWTLITE_ALGORITHM="ES256", JWTLITE_KEYS_RELOAD_INTERVAL="1")
    user = {"username": "alice", "password": PASSWORD}
    assert http("POST", server.url + "/accounts/register/", user).status == 201
    tokens = http("POST", server.url + "/accounts/token/", user).json()
    old_kid = kid_of(tokens["access"])
    printed(rotate_key())
    time.sleep(3)
    short = {
        "JWTLITE_ACCESS_TOKEN_LIFETIME": "1",
        "JWTLITE_REFRESH_TOKEN_LIFETIME": "1",
        "JWTLITE_KEYS_RELOAD_INTERVAL": "1",
    }
    second = printed(rotate_key(env=short))
    assert second["pruned"] == []
    assert second["keep_seconds"] == 240 + 0 + 5  # the first rotate-key raised it from 241
    time.sleep(1.5)
    refresh = {"refresh": tokens["refresh"]}
    assert http("POST", server.url + "/accounts/token/refresh/", refresh).status == 200
    assert old_kid in jwks_kids(server)
    raised = printed(rotate_key("--keep", "5000", env=short))
    assert raised["keep_seconds"] == 5000
    assert printed(rotate_key("--keep", "10"))["keep_seconds"] == 5000  # never lowered


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_rotate_key_refuses_a_directory_of_another_user(
    rotate_key: Callable[..., Any], keys_dir: Path
) -> None:
    # M2 and L7: root rotating the key directory of the user the servers run as (or a
    # directory another user made) would write files those servers cannot read, or hand
    # that user the power to rename root's ring and pepper away. Refused, nothing written.
    printed(rotate_key("--algorithm", "ES256"))
    before = (keys_dir / "ring.json").read_bytes()
    os.chown(keys_dir, 65534, -1)
    try:
        result = rotate_key()
    finally:
        os.chown(keys_dir, os.geteuid(), -1)
    assert result.returncode == 1
    assert "owned by uid 65534" in result.stderr
    assert "as the directory's owner, uid 65534" in result.stderr
    assert (keys_dir / "ring.json").read_bytes() == before
    assert result.stdout == ""


def test_rotate_key_drop_removes_a_retired_key_only(
    rotate_key: Callable[..., Any], keys_dir: Path
) -> None:
    first = printed(rotate_key("--algorithm", "ES256"))["kid"]
    second = printed(rotate_key())["kid"]
    current = rotate_key(f"--drop={second}")
    assert current.returncode == 1
    assert "is the current key" in current.stderr
    assert printed(rotate_key(f"--drop={first}")) == {"dropped": first}
    ring = json.loads((keys_dir / "ring.json").read_text())
    assert [key["kid"] for key in ring["keys"]] == [second]
    assert not (keys_dir / f"{first}.key").exists()
    assert rotate_key(f"--drop={first}", "--algorithm", "ES256").returncode == 2


def test_a_kid_beginning_with_a_dash_can_be_dropped(
    rotate_key: Callable[..., Any], keys_dir: Path, tmp_path: Path
) -> None:
    # A kid is base64url (a thumbprint, or random): one in 64 begins with "-", which
    # argparse reads as an option after "--drop " but not after "--drop=".
    key = Key.generate("ES256")
    for _ in range(2000):
        if key.thumbprint().startswith("-"):
            break
        key = Key.generate("ES256")
    kid = key.thumbprint()
    assert kid.startswith("-")
    write_key_file(str(tmp_path / "dash.key"), key)
    imported = printed(rotate_key("--import", str(tmp_path / "dash.key"), "--algorithm", "ES256"))
    assert imported["kid"] == kid
    printed(rotate_key())
    assert printed(rotate_key(f"--drop={kid}")) == {"dropped": kid}
    assert not (keys_dir / f"{kid}.key").exists()


def test_jwks_prints_the_ring(rotate_key: Callable[..., Any], command: Callable[..., Any]) -> None:
    empty = command("jwks")
    assert empty.returncode == 1
    assert "no signing key in" in empty.stderr
    old = printed(rotate_key("--algorithm", "ES256"))["kid"]
    new = printed(rotate_key("--algorithm", "HS256"))["kid"]
    listed = printed(command("jwks"))
    assert [key["kid"] for key in listed["keys"]] == [old]  # the HMAC key is not published
    assert new != old


def test_concurrent_rotations_keep_one_chain(
    rotate_key: Callable[..., Any], keys_dir: Path
) -> None:
    first = printed(rotate_key())
    with ThreadPoolExecutor(4) as pool:
        results = [printed(r) for r in pool.map(lambda _: rotate_key(), range(8))]
    ring = json.loads((keys_dir / "ring.json").read_text())
    kids = {key["kid"] for key in ring["keys"]}
    assert len(kids) == 9
    assert kids == {first["kid"]} | {result["kid"] for result in results}
    retired = [kid for result in results for kid in result["retired"]]
    # Each rotation retired the key the previous one made: one chain, no key lost.
    assert sorted(retired) == sorted(kids - {ring["current"]})
    assert sorted(os.listdir(keys_dir)) == sorted(
        [".lock", "pepper", "ring.json", *(f"{kid}.key" for kid in kids)]
    )
    # L4: what each run reports was decided under the lock: its previous key is the one it
    # retired, so the reported chain has no repeat.
    assert all(result["previous"] == result["retired"][0] for result in results)
    assert sorted(result["previous"] for result in results) == sorted(retired)


def test_concurrent_first_keys_report_what_each_run_did(
    rotate_key: Callable[..., Any], keys_dir: Path
) -> None:
    # L4: two runs on an empty directory: one makes the first key, the other rotates it;
    # neither reports the other's key as its own.
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(rotate_key, ["--algorithm=HS256", "--algorithm=RS256"]))
    first, second = sorted((printed(run) for run in runs), key=lambda r: r["previous"] or "")
    assert first["previous"] is None
    assert second["previous"] == first["kid"]
    assert second["retired"] == [first["kid"]]
    assert {first["algorithm"], second["algorithm"]} == {"HS256", "RS256"}
    ring = json.loads((keys_dir / "ring.json").read_text())
    assert ring["current"] == second["kid"]
    for run, result in zip(runs, [printed(run) for run in runs], strict=True):
        (line,) = [json.loads(line) for line in run.stderr.splitlines()]
        assert (line["kid"], line["previous_kid"]) == (result["kid"], result["previous"])


@pytest.mark.parametrize("name", [".tmp-left-behind", "orphan-kid.key"], ids=["temp", "key"])
def test_a_cleanup_failure_after_the_switch_is_a_warning(
    rotate_key: Callable[..., Any], keys_dir: Path, name: str
) -> None:
    # L5: a directory where debris (a temporary file, an unnamed key file) is deleted.
    printed(rotate_key())
    (keys_dir / name).mkdir()
    result = rotate_key()
    rotated = printed(result)
    assert json.loads((keys_dir / "ring.json").read_text())["current"] == rotated["kid"]
    assert "jwtlite: warning: cannot remove" in result.stderr
    assert any('"key.rotated"' in line for line in result.stderr.splitlines())


def test_import_moves_a_key_file_into_a_directory(
    rotate_key: Callable[..., Any], serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    key_file = tmp_path / "old.key"
    write_key_file(str(key_file), Key.generate("HS256"))
    before = serve(JWTLITE_KEYS_DIR="", JWTLITE_PRIVATE_KEY_FILE=str(key_file))
    user = {"username": "alice", "password": PASSWORD}
    assert http("POST", before.url + "/accounts/register/", user).status == 201
    old = http("POST", before.url + "/accounts/token/", user).json()
    before.stop()
    imported = printed(rotate_key("--import", str(key_file)))
    assert imported["imported"] == str(key_file)
    again = rotate_key("--import", str(key_file))
    assert again.returncode == 1
    assert "empty directory" in again.stderr
    after = serve()
    verified = http("POST", after.url + "/accounts/token/verify/", {"token": old["access"]})
    assert verified.status == 200
    new = http("POST", after.url + "/accounts/token/", user).json()
    assert kid_of(new["access"]) is None  # still the one key: simplejwt's header


# -- SIGHUP -------------------------------------------------------------------------------


def jwks_kids(server: ServerProcess) -> list[str]:
    reply = http("GET", server.url + "/.well-known/jwks.json")
    assert reply.status == 200
    return [key["kid"] for key in reply.json()["keys"]]


def test_sighup_makes_a_server_reload_its_keys(
    serve: Callable[..., ServerProcess], rotate_key: Callable[..., Any]
) -> None:
    server = serve(JWTLITE_ALGORITHM="ES256", JWTLITE_KEYS_RELOAD_INTERVAL="3600")
    user = {"username": "alice", "password": PASSWORD}
    assert http("POST", server.url + "/accounts/register/", user).status == 201

    def signing_kid() -> str | None:
        return kid_of(http("POST", server.url + "/accounts/token/", user).json()["access"])

    old_kid = signing_kid()
    new_kid = printed(rotate_key())["kid"]
    assert signing_kid() == old_kid  # no check due for an hour: nothing changed
    assert server.process is not None
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + WAIT
    while signing_kid() != new_kid and time.monotonic() < deadline:
        time.sleep(0.05)
    assert signing_kid() == new_kid
    assert jwks_kids(server) == [new_kid, old_kid]
    assert server.process.poll() is None  # SIGHUP did not stop it
    log = server.stderr()
    assert "signing keys reloaded (signal)" in log
    events = [json.loads(line) for line in log.splitlines() if '"key.rotated"' in line]
    assert [(e["kid"], e["previous_kid"], e["source"]) for e in events] == [
        (new_kid, old_kid, "reload")
    ]


def test_a_staged_rotation_is_published_everywhere_before_it_signs(
    serve: Callable[..., ServerProcess], rotate_key: Callable[..., Any]
) -> None:
    # M3: two instances that check the directory only hourly; rotate-key --activate-after.
    a = serve(JWTLITE_ALGORITHM="ES256", JWTLITE_KEYS_RELOAD_INTERVAL="3600")
    b = serve(JWTLITE_ALGORITHM="ES256", JWTLITE_KEYS_RELOAD_INTERVAL="3600")
    user = {"username": "alice", "password": PASSWORD}
    assert http("POST", a.url + "/accounts/register/", user).status == 201
    (old_kid,) = jwks_kids(b)
    staged = printed(rotate_key("--activate-after", "4"))
    assert staged["previous"] == old_kid
    for server in (a, b):  # published by both at once, no signal, no interval
        assert jwks_kids(server) == [staged["kid"], old_kid]
    asked = time.time()
    signed = http("POST", a.url + "/accounts/token/", user).json()
    if asked < staged["activates"] - 0.5:  # (a loaded machine may take that long)
        assert kid_of(signed["access"]) == old_kid
    time.sleep(max(0.0, staged["activates"] + 0.2 - time.time()))
    for server in (a, b):
        signed = http("POST", server.url + "/accounts/token/", user).json()
        assert kid_of(signed["access"]) == staged["kid"]
        verify = {"token": signed["access"]}
        assert http("POST", b.url + "/accounts/token/verify/", verify).status == 200


def test_a_leaked_key_is_taken_out_of_service_while_a_key_is_staged(
    serve: Callable[..., ServerProcess], rotate_key: Callable[..., Any]
) -> None:
    # Re-audit N1: the operator's emergency path, "rotate-key, then rotate-key --drop", works
    # whatever was staged; a ten-year staging is a usage error.
    server = serve(JWTLITE_ALGORITHM="ES256", JWTLITE_KEYS_RELOAD_INTERVAL="3600")
    user = {"username": "alice", "password": PASSWORD}
    assert http("POST", server.url + "/accounts/register/", user).status == 201
    leaked = http("POST", server.url + "/accounts/token/", user).json()
    leaked_kid = kid_of(leaked["access"])
    decade = rotate_key("--activate-after", "316224000")
    assert decade.returncode == 2
    assert "at most 86400 seconds" in decade.stderr
    staged = printed(rotate_key("--activate-after", "86400"))
    emergency = printed(rotate_key())
    assert emergency["previous"] == leaked_kid
    assert emergency["cancelled"] == staged["kid"]
    assert sorted(emergency["retired"]) == sorted([leaked_kid, staged["kid"]])
    assert printed(rotate_key(f"--drop={leaked_kid}")) == {"dropped": leaked_kid}
    assert server.process is not None
    server.process.send_signal(signal.SIGHUP)
    verify = server.url + "/accounts/token/verify/"
    deadline = time.monotonic() + WAIT
    while http("POST", verify, {"token": leaked["access"]}).status != 401:
        assert time.monotonic() < deadline, "the dropped key still verifies"
        time.sleep(0.05)
    # The session lives on (refresh tokens have a key of their own); what it is given now is
    # signed by the new key.
    refresh = http("POST", server.url + "/accounts/token/refresh/", {"refresh": leaked["refresh"]})
    assert refresh.status == 200
    assert kid_of(refresh.json()["access"]) == emergency["kid"]
    fresh = http("POST", server.url + "/accounts/token/", user).json()
    assert kid_of(fresh["access"]) == emergency["kid"]
    assert http("POST", verify, {"token": fresh["access"]}).status == 200
    assert leaked_kid not in jwks_kids(server)


# -- the test ---------------------------------------------------------------------

LOAD_THREADS = 6


class Load:
    """Threads that log in, verify and refresh alternately on two servers, and verify the
    tokens they got earlier, recording every refusal of a valid token."""

    def __init__(self, servers: list[ServerProcess]) -> None:
        self.urls = [server.url for server in servers]
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.kids: list[tuple[int, str | None]] = []  # (server index, kid) per issued token
        self.first_tokens: list[dict[str, str]] = []
        self.operations = 0

    def worker(self, index: int) -> int:
        clients = [Client(url).connect() for url in self.urls]
        user = {"username": f"user{index}", "password": PASSWORD}
        self.expect(clients[0].post("/accounts/register/", user), 201, "register")
        kept: list[dict[str, str]] = []
        turn = index
        try:
            while not self.stop.is_set():
                here, there = clients[turn % 2], clients[(turn + 1) % 2]
                pair = self.expect(here.post("/accounts/token/", user), 200, "login")
                self.kids.append((turn % 2, kid_of(pair["access"])))
                if not kept:
                    self.first_tokens.append(pair)
                kept = [pair, *kept][:4]
                for tokens in kept:  # this one and older ones, maybe of a retired key
                    for client in (here, there):
                        self.expect(
                            client.post("/accounts/token/verify/", {"token": tokens["access"]}),
                            200,
                            "verify",
                        )
                refreshed = self.expect(
                    there.post("/accounts/token/refresh/", {"refresh": kept[-1]["refresh"]}),
                    200,
                    "refresh",
                )
                self.kids.append(((turn + 1) % 2, kid_of(refreshed["access"])))
                self.operations += 1
                turn += 1
        finally:
            for client in clients:
                client.close()
        return self.operations

    def expect(self, reply: Any, status: int, what: str) -> Any:
        if reply.status != status:
            self.failures.append(f"{what}: {reply.status} {reply.body[:200]!r}")
            return {"access": "", "refresh": ""}
        return reply.json()


def wait_for_operations(load: Load, more: int) -> None:
    """Let the load run ``more`` rounds (bounded in time; at once if it already failed)."""
    target = load.operations + more
    deadline = time.monotonic() + WAIT
    while load.operations < target and time.monotonic() < deadline and not load.failures:
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.both_backends
def test_rotation_under_load_across_two_instances(
    serve: Callable[..., ServerProcess], rotate_key: Callable[..., Any], database: str
) -> None:
    # A reloads on SIGHUP only; B only by itself (its interval, and an unknown kid).
    a = serve(database, JWTLITE_KEYS_RELOAD_INTERVAL="3600")
    b = serve(database, JWTLITE_KEYS_RELOAD_INTERVAL="2")
    load = Load([a, b])
    runner = threading.Thread(
        target=lambda: run_threads(LOAD_THREADS, load.worker, timeout=4 * WAIT), daemon=True
    )
    runner.start()
    rotations: list[str] = []
    try:
        for _ in range(2):
            wait_for_operations(load, 12)
            rotations.append(printed(rotate_key())["kid"])
            assert a.process is not None
            a.process.send_signal(signal.SIGHUP)
        wait_for_operations(load, 12)
    finally:
        load.stop.set()
        runner.join(4 * WAIT)
    assert not runner.is_alive()
    assert load.failures == []
    assert load.operations >= 36
    # Tokens of every key were issued: kid-less before the first rotation, then each new kid.
    issued = {kid for _, kid in load.kids}
    assert {None, *rotations} <= issued
    # The first tokens (simplejwt's header, the retired first key) still verify and refresh
    # on both instances; once B has met the newest kid, both sign with it.
    user = {"username": "user0", "password": PASSWORD}
    newest = http("POST", a.url + "/accounts/token/", user).json()
    assert kid_of(newest["access"]) == rotations[-1]
    assert kid_of(load.first_tokens[0]["access"]) is None
    for server in (a, b):
        for pair in (*load.first_tokens, newest):
            verify = {"token": pair["access"]}
            reply = http("POST", server.url + "/accounts/token/verify/", verify)
            assert reply.status == 200
            refresh = {"refresh": pair["refresh"]}
            assert http("POST", server.url + "/accounts/token/refresh/", refresh).status == 200
    from_b = http("POST", b.url + "/accounts/token/", user).json()
    assert kid_of(from_b["access"]) == rotations[-1]
    for server in (a, b):
        assert "Traceback" not in server.stderr()
