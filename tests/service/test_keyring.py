"""The key directory and the key ring: format, atomicity, permissions, pruning, garbage,
reloads, and the service over a rotating directory (in process, real files).

Two apps on one database and one directory stand for two instances; ``request_reload()`` is
what SIGHUP does (``test_keyring_serve.py`` sends the real signal to a real ``serve.py``).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jwtlite import Key, jws, jwt
from jwtlite._encoding import b64url_encode
from jwtlite.errors import InvalidKeyError
from jwtlite.service.errors import ConfigurationError
from jwtlite.service.settings import Settings
from jwtlite.service.signing import load_signing_keys
from jwtlite.service.signing.directory import (
    MAX_ACTIVATE_AFTER,
    KeyDirectory,
    RingFiles,
    Stamp,
    key_pepper,
)
from jwtlite.service.signing.keyfile import load_key_file, load_or_create_key_file, write_key_file
from jwtlite.service.signing.keyring import (
    RETIREMENT_GRACE_FLOOR,
    KeyRing,
    Ring,
    request_reload,
    retirement_grace,
)
from jwtlite.service.tokens import refresh_key

from support import FakeClock, login, register
from support.server import unverified_segment

NOW = 1_800_000_000
KEEP = 40  # refresh lifetime 30 + leeway 0 + reload interval, as rotate-key computes it
VERIFY = "/accounts/token/verify/"
REFRESH = "/accounts/token/refresh/"
JWKS = "/.well-known/jwks.json"


def manifest(directory: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((directory / "ring.json").read_bytes())
    return document


def header(token: str) -> dict[str, Any]:
    result: dict[str, Any] = unverified_segment(token, 0)
    return result


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def instance(
    make_client: Callable[..., Any], keys_dir: Path, clock: FakeClock
) -> Callable[..., Any]:
    """An app over the key directory (another call: another instance on the same files)."""

    def build(**overrides: Any) -> Any:
        return make_client(keys_dir=str(keys_dir), **overrides)

    return build


def rotate(keys_dir: Path, clock: FakeClock, algorithm: str = "HS256") -> str:
    """Rotate as ``rotate-key`` does (at the service's clock), tell instances; the new kid."""
    rotation = KeyDirectory(str(keys_dir)).rotate(algorithm, now=int(clock()), keep_seconds=KEEP)
    request_reload()
    return rotation.kid


# -- the directory format -----------------------------------------------------------------


def test_an_empty_directory_gets_its_first_key_and_private_files(keys_dir: Path) -> None:
    directory = KeyDirectory(str(keys_dir))
    directory.ensure("ES256", now=NOW, keep_seconds=KEEP)
    ring = manifest(keys_dir)
    (record,) = ring["keys"]
    assert ring["current"] == record["kid"]
    assert ring["keep_seconds"] == KEEP
    assert record == {
        "kid": record["kid"],
        "alg": "ES256",
        "created": NOW,
        "activates": NOW,
        "retired": None,
        "kidless": False,
    }
    assert sorted(os.listdir(keys_dir)) == sorted(
        [".lock", "pepper", "ring.json", record["kid"] + ".key"]
    )
    assert mode(keys_dir) == 0o700
    assert all(mode(keys_dir / name) == 0o600 for name in os.listdir(keys_dir))
    key = directory.read().keys[record["kid"]]
    assert key.kid == key.thumbprint() == record["kid"]  # what today's ES256 tokens carry
    directory.ensure("ES256", now=NOW + 1, keep_seconds=KEEP)  # a second start: no change
    assert manifest(keys_dir) == ring


def test_an_hmac_key_has_a_random_kid_and_signs_without_one_while_alone(keys_dir: Path) -> None:
    directory = KeyDirectory(str(keys_dir))
    directory.ensure("HS256", now=NOW, keep_seconds=KEEP)
    files = directory.read()
    (record,) = files.manifest.records
    assert record.kidless
    secret = files.keys[record.kid].secret()
    assert secret.hex() not in record.kid
    assert len(record.kid) == 16
    ring = Ring.from_files(files)
    assert ring.signing_key.kid is None
    assert ring.jwks == {"keys": []}


def test_rotation_retires_the_current_key_and_prunes_from_retirement(keys_dir: Path) -> None:
    directory = KeyDirectory(str(keys_dir))
    directory.ensure("ES256", now=NOW, keep_seconds=KEEP)
    first = manifest(keys_dir)["current"]
    second = directory.rotate("ES256", now=NOW + 100, keep_seconds=KEEP)
    assert second.retired == (first,)
    assert second.pruned == ()
    # 'first' was created long ago, but retired only KEEP seconds ago: kept.
    third = directory.rotate("ES256", now=NOW + 100 + KEEP, keep_seconds=KEEP)
    assert third.retired == (second.kid,)
    assert third.pruned == ()
    fourth = directory.rotate("ES256", now=NOW + 101 + KEEP, keep_seconds=KEEP)
    assert fourth.pruned == (first,)
    ring = manifest(keys_dir)
    assert [key["kid"] for key in ring["keys"]] == [fourth.kid, third.kid, second.kid]
    assert [key["retired"] for key in ring["keys"]] == [None, NOW + 101 + KEEP, NOW + 100 + KEEP]
    assert not (keys_dir / f"{first}.key").exists()
    # The current key is never pruned, however old.
    fifth = directory.rotate("ES256", now=NOW + 10_000, keep_seconds=KEEP)
    assert set(fifth.pruned) == {second.kid, third.kid}
    assert manifest(keys_dir)["keys"][1]["kid"] == fourth.kid


def test_the_keep_window_is_recorded_and_only_ever_raised(keys_dir: Path) -> None:
    # M1: the servers' window is in ring.json; a rotate-key run from a shell with shorter
    # settings neither lowers it nor prunes inside it.
    directory = KeyDirectory(str(keys_dir))
    directory.ensure("ES256", now=NOW, keep_seconds=300)
    assert manifest(keys_dir)["keep_seconds"] == 300
    first = manifest(keys_dir)["current"]
    second = directory.rotate("ES256", now=NOW + 100, keep_seconds=300)
    third = directory.rotate(None, now=NOW + 200, keep_seconds=40)  # a shorter shell
    assert third.pruned == ()
    assert third.keep_seconds == manifest(keys_dir)["keep_seconds"] == 300
    assert third.previous == second.kid
    raised = directory.rotate(None, now=NOW + 201, keep_seconds=1000)
    assert raised.keep_seconds == manifest(keys_dir)["keep_seconds"] == 1000
    assert first in {key["kid"] for key in manifest(keys_dir)["keys"]}
    last = directory.rotate(None, now=NOW + 100 + 1001, keep_seconds=40)
    assert last.pruned == (first,)


def test_an_instance_needing_a_longer_window_warns(
    keys_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    KeyDirectory(str(keys_dir)).ensure("ES256", now=NOW, keep_seconds=KEEP)
    settings = Settings(
        database=str(tmp_path / "db.sqlite3"), keys_dir=str(keys_dir), refresh_token_lifetime=600
    )
    with caplog.at_level(logging.WARNING, logger="jwtlite"):
        keyring = load_signing_keys(settings)
    assert isinstance(keyring, KeyRing)
    assert f"keeps retired keys {KEEP} s" in caplog.text
    assert "rotate-key --keep 605" in caplog.text
    caplog.clear()
    KeyDirectory(str(keys_dir)).rotate(None, now=NOW, keep_seconds=605)
    with caplog.at_level(logging.WARNING, logger="jwtlite"):
        assert keyring.reload("test")
    assert "keeps retired keys" not in caplog.text


def test_readers_never_see_half_a_ring_while_rotations_run(keys_dir: Path) -> None:
    directory = KeyDirectory(str(keys_dir))
    directory.ensure("HS256", now=NOW, keep_seconds=5)
    errors: list[Exception] = []
    done = threading.Event()
    reads = 0

    def reader() -> None:
        nonlocal reads
        reader_directory = KeyDirectory(str(keys_dir))
        while not done.is_set():
            try:
                files = reader_directory.read()
                assert files.manifest.current in files.keys
                reads += 1
            except InvalidKeyError as exc:
                # Outrun by back-to-back rotations: a clean refusal (a live ring keeps its
                # snapshot and tries again), never a half-read ring.
                if "keeps changing" not in str(exc):
                    errors.append(exc)
            except Exception as exc:
                errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for step in range(40):  # pruning on: key files disappear under the reader too
            directory.rotate("HS256", now=NOW + 10 * step, keep_seconds=5)
    finally:
        done.set()
        thread.join(30)
    assert errors == []
    assert reads > 0


# -- refusals -----------------------------------------------------------------------------


def break_foreign_file(keys_dir: Path, kid: str) -> None:
    (keys_dir / "notes.txt").write_text("hello")


def break_truncated_key(keys_dir: Path, kid: str) -> None:
    path = keys_dir / f"{kid}.key"
    path.write_bytes(path.read_bytes()[:40])


def break_other_family(keys_dir: Path, kid: str) -> None:
    path = keys_dir / f"{kid}.key"
    path.unlink()
    write_key_file(str(path), Key.generate("RS256"))


def break_exposed_key(keys_dir: Path, kid: str) -> None:
    (keys_dir / f"{kid}.key").chmod(0o640)


def break_exposed_ring(keys_dir: Path, kid: str) -> None:
    (keys_dir / "ring.json").chmod(0o644)


def break_exposed_directory(keys_dir: Path, kid: str) -> None:
    keys_dir.chmod(0o755)


def break_truncated_ring(keys_dir: Path, kid: str) -> None:
    path = keys_dir / "ring.json"
    path.write_bytes(path.read_bytes()[:30])


def break_missing_key(keys_dir: Path, kid: str) -> None:
    (keys_dir / f"{kid}.key").unlink()


def break_unknown_member(keys_dir: Path, kid: str) -> None:
    ring = manifest(keys_dir)
    ring["keys"][0]["use"] = "sig"
    (keys_dir / "ring.json").write_text(json.dumps(ring))


def break_two_current(keys_dir: Path, kid: str) -> None:
    ring = manifest(keys_dir)
    ring["keys"].append({**ring["keys"][0], "kid": "other"})
    (keys_dir / "ring.json").write_text(json.dumps(ring))


def break_kidless_asymmetric(keys_dir: Path, kid: str) -> None:
    ring = manifest(keys_dir)
    ring["keys"][0]["kidless"] = True
    (keys_dir / "ring.json").write_text(json.dumps(ring))


def break_kid_path(keys_dir: Path, kid: str) -> None:
    ring = manifest(keys_dir)
    ring["keys"][0]["kid"] = ring["current"] = "../ring"
    (keys_dir / "ring.json").write_text(json.dumps(ring))


OTHER_UID = 65534  # nobody


def give_away(path: Path) -> None:
    """Make ``path`` another user's (only root may: elsewhere the test is skipped)."""
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    os.chown(path, OTHER_UID, -1)


def break_directory_owner(keys_dir: Path, kid: str) -> None:
    give_away(keys_dir)


def break_ring_owner(keys_dir: Path, kid: str) -> None:
    give_away(keys_dir / "ring.json")


def break_key_owner(keys_dir: Path, kid: str) -> None:
    give_away(keys_dir / f"{kid}.key")


def break_pepper_owner(keys_dir: Path, kid: str) -> None:
    give_away(keys_dir / "pepper")


def break_key_symlink(keys_dir: Path, kid: str) -> None:
    path = keys_dir / f"{kid}.key"
    elsewhere = keys_dir.parent / "elsewhere.key"
    path.rename(elsewhere)  # a valid key, 0600, ours: only the link is wrong
    path.symlink_to(elsewhere)


def break_key_too_large(keys_dir: Path, kid: str) -> None:
    path = keys_dir / f"{kid}.key"
    path.write_bytes(path.read_bytes() + b"\n" * (64 * 1024))


GARBAGE = {
    "foreign file": (break_foreign_file, "foreign file 'notes.txt'"),
    "truncated key": (break_truncated_key, "key file"),
    "key of another family": (break_other_family, "key file"),
    "key readable by others": (break_exposed_key, "chmod 600"),
    "ring.json readable by others": (break_exposed_ring, "chmod 600"),
    "directory open to others": (break_exposed_directory, "chmod 700"),
    "truncated ring.json": (break_truncated_ring, "not JSON"),
    "missing key file": (break_missing_key, "is missing"),
    "unknown member": (break_unknown_member, "exactly"),
    "two current keys": (break_two_current, "exactly the current key"),
    "kidless asymmetric key": (break_kidless_asymmetric, "kidless is only for an HMAC key"),
    "kid that is a path": (break_kid_path, "kid is not"),
    "directory of another user": (break_directory_owner, "as the directory's owner, uid 65534"),
    "ring.json of another user": (break_ring_owner, "owned by uid 65534"),
    "key of another user": (break_key_owner, "owned by uid 65534"),
    "pepper of another user": (break_pepper_owner, "owned by uid 65534"),
    "key file that is a symlink": (break_key_symlink, "is a symbolic link"),
    "key file too large": (break_key_too_large, "too large"),
}


@pytest.mark.parametrize(("damage", "fragment"), GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_is_refused_at_start_up(
    keys_dir: Path, damage: Callable[[Path, str], None], fragment: str, tmp_path: Path
) -> None:
    KeyDirectory(str(keys_dir)).ensure("ES256", now=NOW, keep_seconds=KEEP)
    damage(keys_dir, manifest(keys_dir)["current"])
    settings = Settings(database=str(tmp_path / "db.sqlite3"), keys_dir=str(keys_dir))
    with pytest.raises(ConfigurationError) as info:
        load_signing_keys(settings)
    assert info.value.setting == "KEYS_DIR"
    assert fragment in str(info.value)
    assert "PRIVATE KEY" not in str(info.value)


def test_keys_dir_excludes_the_single_key_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="KEYS_DIR: give KEYS_DIR or SECRET_KEY"):
        Settings(keys_dir=str(tmp_path), secret_key="s" * 32)
    key_file = tmp_path / "k.key"
    write_key_file(str(key_file), Key.generate("HS256"))
    with pytest.raises(ConfigurationError, match="rotate-key --import"):
        Settings(keys_dir=str(tmp_path), private_key_file=str(key_file))
    with pytest.raises(ConfigurationError, match="KEYS_RELOAD_INTERVAL"):
        Settings(keys_dir=str(tmp_path), keys_reload_interval=0)
    assert Settings.from_env({"JWTLITE_KEYS_DIR": "/k"}).keys_dir == "/k"


# -- reloads ------------------------------------------------------------------------------


class CountingDirectory(KeyDirectory):
    """A real key directory that counts its ``stat`` checks and its full reads."""

    checks = 0
    reads = 0

    def stamp(self) -> Stamp | None:
        self.checks += 1
        return super().stamp()

    def read(self) -> RingFiles:
        self.reads += 1
        return super().read()


def live_ring(keys_dir: Path, clock: FakeClock) -> tuple[KeyRing, CountingDirectory]:
    directory = CountingDirectory(str(keys_dir))
    directory.ensure("ES256", now=NOW, keep_seconds=KEEP)
    files = directory.read()
    ring = KeyRing(
        Ring.from_files(files),
        pepper=files.pepper,
        directory=directory,
        stamp=files.stamp,
        reload_interval=3600,
        clock=clock,
    )
    return ring, directory


def test_unknown_kids_cost_a_stat_and_a_rotation_is_followed_at_once(
    keys_dir: Path, clock: FakeClock
) -> None:
    keyring, directory = live_ring(keys_dir, clock)
    directory.checks = directory.reads = 0
    seen = keyring.current()
    for _ in range(500):
        assert keyring.after_unknown_kid(seen) is seen
    assert directory.reads == 0  # random kids: a stat each, never a read of the keys
    new_kid = KeyDirectory(str(keys_dir)).rotate("ES256", now=NOW, keep_seconds=KEEP).kid
    # The first token naming the new kid is followed at once (no waiting out a rate limit
    # that random kids might have used up), and the keys are read once.
    fresh = keyring.after_unknown_kid(seen)
    assert new_kid in fresh.kids
    assert fresh.signing_key.kid == new_kid
    assert directory.reads == 1
    checks = directory.checks
    assert keyring.current() is fresh  # nothing due: no check on the hot path
    assert directory.checks == checks


def test_a_broken_directory_is_read_at_most_once_a_second_for_unknown_kids(
    keys_dir: Path, clock: FakeClock
) -> None:
    keyring, directory = live_ring(keys_dir, clock)
    seen = keyring.current()
    KeyDirectory(str(keys_dir)).rotate("ES256", now=NOW, keep_seconds=KEEP)
    (keys_dir / "stray.pem").write_text("garbage")
    directory.reads = 0
    for _ in range(500):
        assert keyring.after_unknown_kid(seen) is seen
    assert directory.reads == 1
    clock.advance(1)
    (keys_dir / "stray.pem").unlink()
    assert keyring.after_unknown_kid(seen) is not seen
    assert directory.reads == 2


def test_a_failed_reload_keeps_the_working_ring(
    keys_dir: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    keyring, directory = live_ring(keys_dir, clock)
    working = keyring.current()
    directory.rotate("ES256", now=NOW, keep_seconds=KEEP)
    (keys_dir / "stray.pem").write_text("garbage")
    with caplog.at_level(logging.WARNING, logger="jwtlite"):
        assert not keyring.reload("test")
    assert keyring.current() is working
    assert "keeping the current ring" in caplog.text
    # M2: an instance that cannot follow the ring may sign with a retired key: an error.
    assert [r.levelname for r in caplog.records if "not reloaded" in r.message] == ["ERROR"]
    assert "stray.pem" in caplog.text
    (keys_dir / "stray.pem").unlink()
    assert keyring.reload("test")  # tried again once the directory is usable
    assert keyring.current() is not working


@pytest.mark.parametrize(
    ("damage", "message"),
    [("fifo", "is not a regular file"), ("device", "is a symbolic link")],
    ids=["FIFO", "symlink to /dev/zero"],
)
def test_a_fifo_or_a_device_as_key_file_never_hangs_a_reload(
    keys_dir: Path,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    damage: str,
    message: str,
) -> None:
    # L6: a FIFO would block the open for ever (holding the ring's lock); /dev/zero would
    # be read until memory runs out. Both are refused at once.
    keyring, directory = live_ring(keys_dir, clock)
    kid = directory.rotate("ES256", now=NOW, keep_seconds=KEEP).kid
    path = keys_dir / f"{kid}.key"
    path.unlink()
    if damage == "fifo":
        os.mkfifo(path, 0o600)
    else:
        path.symlink_to("/dev/zero")
    outcome: list[bool] = []
    thread = threading.Thread(target=lambda: outcome.append(keyring.reload("test")), daemon=True)
    with caplog.at_level(logging.ERROR, logger="jwtlite"):
        thread.start()
        thread.join(10)
    assert outcome == [False]
    assert kid not in keyring.current().kids
    assert message in caplog.text


def test_a_configured_key_file_must_be_a_small_regular_file(tmp_path: Path) -> None:
    # L6, the single key file path: a FIFO is refused at once, a big file too.
    fifo = tmp_path / "fifo.key"
    os.mkfifo(fifo, 0o600)
    big = tmp_path / "big.key"
    big.write_bytes(b"A" * (64 * 1024 + 1))
    big.chmod(0o600)
    errors: list[str] = []

    def load(path: Path) -> None:
        # (Settings' own readability check of PRIVATE_KEY_FILE is not this module's.)
        try:
            load_or_create_key_file(str(path), "HS256", create=False)
        except InvalidKeyError as exc:
            errors.append(str(exc))

    for path in (fifo, big):
        thread = threading.Thread(target=load, args=(path,), daemon=True)
        thread.start()
        thread.join(10)
        assert not thread.is_alive(), path
    assert "is not a regular file" in errors[0]
    assert "too large" in errors[1]


def test_only_the_headers_we_sign_skip_the_header_parse(
    instance: Callable[..., Any], keys_dir: Path, clock: FakeClock
) -> None:
    # Info (header cache): requests never add to the map; it holds exactly the headers the
    # service writes, for every key (and simplejwt's kid-less header of the first HMAC key).
    a = instance()
    register(a)
    kidless = login(a)["access"]
    rotate(keys_dir, clock, "Ed25519")
    signed = login(a)["access"]
    ring = Ring.from_files(KeyDirectory(str(keys_dir)).read())
    ours = dict(ring._by_header)
    assert len(ours) == 3  # the Ed25519 key, the HMAC key with its kid, and without
    for token in (kidless, signed):
        assert ours[token.partition(".")[0]] is ring.verifying_key(token)
    kid = header(signed)["kid"]
    for n in range(100):  # distinct headers naming a real kid
        forged = {"alg": "Ed25519", "kid": kid, "typ": "JWT", "x": n}
        segment = b64url_encode(json.dumps(forged).encode()).decode()
        assert ring.verifying_key(segment + ".e30.sig") is not None
    assert ring._by_header == ours


def test_a_reload_signal_is_followed_at_the_next_use(keys_dir: Path, clock: FakeClock) -> None:
    keyring, directory = live_ring(keys_dir, clock)
    before = keyring.current()
    directory.rotate("ES256", now=NOW, keep_seconds=KEEP)
    assert keyring.current() is before  # interval 3600: nothing due
    request_reload()
    assert keyring.current() is not before


# -- the service over a key directory -----------------------------------------------------


def test_hs256_rotation_keeps_old_tokens_until_they_expire(
    instance: Callable[..., Any], keys_dir: Path, clock: FakeClock
) -> None:
    a, b = instance(), instance()
    register(a)
    old = login(a)
    assert header(old["access"]) == {"alg": "HS256", "typ": "JWT"}  # simplejwt's, exactly
    new_kid = rotate(keys_dir, clock)
    new = login(b)
    assert header(new["access"]) == {"alg": "HS256", "typ": "JWT", "kid": new_kid}
    for client in (a, b):
        client.post_json(VERIFY, {"token": old["access"]}, status=200)
        client.post_json(VERIFY, {"token": new["access"]}, status=200)
    refreshed = a.post_json(REFRESH, {"refresh": old["refresh"]}, status=200).json
    assert header(refreshed["access"])["kid"] == new_kid
    assert a.get(JWKS, status=200).json == {"keys": []}  # secrets are never published
    clock.advance(11)  # past the access lifetime: the old access token expires as usual
    a.post_json(VERIFY, {"token": old["access"]}, status=401)
    a.post_json(REFRESH, {"refresh": old["refresh"]}, status=200)
    clock.advance(20)  # past the refresh lifetime
    a.post_json(REFRESH, {"refresh": old["refresh"]}, status=401)


def test_a_read_only_directory_serves(
    instance: Callable[..., Any], keys_dir: Path, clock: FakeClock
) -> None:
    KeyDirectory(str(keys_dir)).ensure("ES256", now=NOW, keep_seconds=KEEP)
    (keys_dir / ".lock").unlink()
    keys_dir.chmod(0o500)  # as a read-only mount: no lock file can be made
    try:
        a = instance(algorithm="ES256")
        register(a)
        a.post_json(VERIFY, {"token": login(a)["access"]}, status=200)
    finally:
        keys_dir.chmod(0o700)


FOREIGN_HEADERS = {
    "unknown kid": {"alg": "ES256", "typ": "JWT", "kid": "no-such-key"},
    "no kid in an asymmetric ring": {"alg": "ES256", "typ": "JWT"},
    "kid not a string": {"alg": "ES256", "typ": "JWT", "kid": 7},
    "kid of a path": {"alg": "ES256", "typ": "JWT", "kid": "../ring.json"},
}


@pytest.mark.parametrize("forged", FOREIGN_HEADERS.values(), ids=FOREIGN_HEADERS.keys())
def test_tokens_naming_no_key_of_the_ring_get_401(
    instance: Callable[..., Any], keys_dir: Path, clock: FakeClock, forged: dict[str, Any]
) -> None:
    a = instance(algorithm="ES256")
    register(a)
    claims = unverified_segment(login(a)["access"], 1)
    signing_input = b".".join(b64url_encode(json.dumps(part).encode()) for part in (forged, claims))
    token = (signing_input + b"." + b64url_encode(os.urandom(64))).decode()
    for path, body in ((VERIFY, {"token": token}), (REFRESH, {"refresh": token})):
        reply = a.post_json(path, body, status=401)
        assert reply.json["code"] == "token_not_valid"


def test_jwks_lists_current_and_retired_keys_until_pruned(
    instance: Callable[..., Any], keys_dir: Path, clock: FakeClock
) -> None:
    a = instance(algorithm="ES256")
    register(a)
    first = a.get(JWKS, status=200)
    assert first.headers["Cache-Control"] == "max-age=60"
    (old_kid,) = [key["kid"] for key in first.json["keys"]]
    old = login(a)
    assert header(old["access"])["kid"] == old_kid
    new_kid = rotate(keys_dir, clock, "ES256")
    assert [key["kid"] for key in a.get(JWKS).json["keys"]] == [new_kid, old_kid]
    a.post_json(VERIFY, {"token": old["refresh"]}, status=200)
    clock.advance(KEEP + 1)
    newest = rotate(keys_dir, clock, "ES256")
    assert [key["kid"] for key in a.get(JWKS).json["keys"]] == [newest, new_kid]
    assert not (keys_dir / f"{old_kid}.key").exists()
    a.post_json(VERIFY, {"token": old["refresh"]}, status=401)


def test_the_jwks_follows_the_directory_at_once(
    instance: Callable[..., Any], keys_dir: Path, clock: FakeClock
) -> None:
    # M3 (a): no interval, no signal: the JWKS answer checks ring.json itself.
    a = instance(algorithm="ES256", keys_reload_interval=3600)
    (old_kid,) = [key["kid"] for key in a.get(JWKS).json["keys"]]
    new = KeyDirectory(str(keys_dir)).rotate(None, now=int(clock()), keep_seconds=KEEP)
    assert [key["kid"] for key in a.get(JWKS).json["keys"]] == [new.kid, old_kid]


def test_the_jwks_and_unknown_kids_do_not_wait_on_a_reload(
    keys_dir: Path, clock: FakeClock
) -> None:
    keyring, directory = live_ring(keys_dir, clock)
    seen = keyring.current()
    directory.rotate(None, now=NOW, keep_seconds=KEEP)
    with keyring._lock:  # another thread is reloading (a stalled directory)
        started = time.monotonic()
        assert keyring.published() is seen  # at once, from the current snapshot
        assert time.monotonic() - started < 0.1
        assert keyring.after_unknown_kid(seen) is seen  # bounded, not for ever
        assert time.monotonic() - started < 2.0
    assert keyring.published() is not seen


def test_a_staged_key_is_published_at_once_and_signs_from_its_activation(
    instance: Callable[..., Any], keys_dir: Path, clock: FakeClock
) -> None:
    # M3 (b): rotate-key --activate-after 60.
    a, b = instance(algorithm="ES256"), instance(algorithm="ES256")
    register(a)
    old_kid = header(login(a)["access"])["kid"]
    directory = KeyDirectory(str(keys_dir))
    staged = directory.rotate(None, now=int(clock()), keep_seconds=KEEP, activate_after=60)
    assert staged.activates == int(clock()) + 60
    request_reload()
    for client in (a, b):
        assert [key["kid"] for key in client.get(JWKS).json["keys"]] == [staged.kid, old_kid]
        assert header(login(client)["access"])["kid"] == old_kid
    early = forge(keys_dir, staged.kid, unverified_segment(login(a)["access"], 1))
    b.post_json(VERIFY, {"token": early}, status=200)  # verifies before it signs
    clock.advance(59)
    last_of_old = login(a)
    assert header(last_of_old["access"])["kid"] == old_kid
    clock.advance(1)
    for client in (a, b):  # no reload needed: the snapshot knows the activation time
        assert header(login(client)["access"])["kid"] == staged.kid
    clock.advance(5)
    b.post_json(VERIFY, {"token": last_of_old["access"]}, status=200)  # retired at activation


def test_a_rotation_while_a_key_is_staged_takes_over_at_once(
    instance: Callable[..., Any], keys_dir: Path, clock: FakeClock
) -> None:
    # Re-audit N1: a key staged for a day used to block rotate-key and --drop of the key
    # signing meanwhile, so a leaked signing key stayed in service until the activation.
    a = instance(algorithm="ES256")
    register(a)
    leaked = login(a)
    leaked_kid = header(leaked["access"])["kid"]
    directory = KeyDirectory(str(keys_dir))
    now = int(clock())
    staged = directory.rotate(None, now=now, keep_seconds=KEEP, activate_after=MAX_ACTIVATE_AFTER)
    with pytest.raises(InvalidKeyError, match="signs until"):
        directory.drop(leaked_kid, now=now)
    clock.advance(1)
    now = int(clock())
    emergency = directory.rotate(None, now=now, keep_seconds=KEEP)
    assert emergency.previous == leaked_kid  # the key that was signing, not the staged one
    assert emergency.cancelled == staged.kid
    assert sorted(emergency.retired) == sorted([leaked_kid, staged.kid])
    assert emergency.activates == now
    records = {key["kid"]: key for key in manifest(keys_dir)["keys"]}
    assert records[staged.kid]["activates"] == records[staged.kid]["retired"] == now
    assert records[leaked_kid]["retired"] == now
    request_reload()
    fresh = login(a)
    assert header(fresh["access"])["kid"] == emergency.kid
    assert directory.drop(leaked_kid, now=now) == ()
    request_reload()
    a.post_json(VERIFY, {"token": leaked["access"]}, status=401)
    # Refresh tokens have their own key, which no leaked signing key gives away: the session
    # lives on, and its new access token is signed by the new key.
    renewed = a.post_json(REFRESH, {"refresh": leaked["refresh"]}, status=200).json
    assert header(renewed["access"])["kid"] == emergency.kid
    # A refresh token signed by a signing key (even the current one) is nothing.
    forged = signed_by_key(keys_dir, emergency.kid, unverified_segment(leaked["refresh"], 1))
    a.post_json(REFRESH, {"refresh": forged}, status=401)
    a.post_json(VERIFY, {"token": fresh["access"]}, status=200)
    assert [key["kid"] for key in a.get(JWKS).json["keys"]] == [emergency.kid, staged.kid]


def test_a_rotation_while_a_key_is_staged_may_stage_its_own(
    instance: Callable[..., Any], keys_dir: Path, clock: FakeClock
) -> None:
    # Re-audit N1: with its own --activate-after, the key signing now signs until then.
    a = instance(algorithm="ES256")
    register(a)
    old_kid = header(login(a)["access"])["kid"]
    directory = KeyDirectory(str(keys_dir))
    staged = directory.rotate(None, now=int(clock()), keep_seconds=KEEP, activate_after=600)
    now = int(clock())
    again = directory.rotate(None, now=now, keep_seconds=KEEP, activate_after=60)
    assert (again.previous, again.cancelled, again.activates) == (old_kid, staged.kid, now + 60)
    request_reload()
    assert header(login(a)["access"])["kid"] == old_kid
    clock.advance(60)
    assert header(login(a)["access"])["kid"] == again.kid


def test_a_rotation_from_a_clock_behind_the_ring_keeps_it_valid(keys_dir: Path) -> None:
    # N1 follow-up: with staged keys no longer refused, a rotation whose clock is behind the
    # current key's creation must neither cancel that key nor write retired < activates.
    directory = KeyDirectory(str(keys_dir))
    directory.ensure("ES256", now=NOW, keep_seconds=KEEP)
    second = directory.rotate(None, now=NOW + 10, keep_seconds=KEEP)
    third = directory.rotate(None, now=NOW + 5, keep_seconds=KEEP)
    assert (third.previous, third.cancelled, third.activates) == (second.kid, None, NOW + 10)
    assert directory.read().manifest.current == third.kid


@pytest.mark.parametrize("seconds", [MAX_ACTIVATE_AFTER + 1, 316224000, -1], ids=str)
def test_a_key_is_staged_a_day_at_most(keys_dir: Path, clock: FakeClock, seconds: int) -> None:
    # Re-audit N1: --activate-after accepted ten years.
    directory = KeyDirectory(str(keys_dir))
    directory.ensure("ES256", now=int(clock()), keep_seconds=KEEP)
    with pytest.raises(InvalidKeyError, match="may be staged"):
        directory.rotate(None, now=int(clock()), keep_seconds=KEEP, activate_after=seconds)


def forge(keys_dir: Path, kid: str, claims: dict[str, Any], **changes: Any) -> str:
    """A token signed by the key ``kid`` of the directory (a leaked key), with ``changes``;
    with claims of a refresh token, by the refresh-token key the directory's pepper gives."""
    files = KeyDirectory(str(keys_dir)).read()
    key = refresh_key(files.pepper) if claims["token_type"] == "refresh" else files.keys[kid]
    return jwt.encode({**claims, **changes}, key)


def signed_by_key(keys_dir: Path, kid: str, claims: dict[str, Any]) -> str:
    """``claims`` signed by the signing key ``kid`` itself, whatever their type."""
    return jwt.encode(claims, KeyDirectory(str(keys_dir)).read().keys[kid])


def test_a_retired_key_signs_nothing_new(
    instance: Callable[..., Any], keys_dir: Path, clock: FakeClock
) -> None:
    # L1: a token signed by a retired (not yet pruned) key, issued after its retirement
    # (plus the reload interval and the leeway an instance may take to notice), is refused;
    # one it signed before its retirement still verifies.
    a = instance(algorithm="Ed25519")
    register(a)
    old = login(a)
    claims = unverified_segment(old["access"], 1)
    old_kid = header(old["access"])["kid"]
    rotate(keys_dir, clock, "Ed25519")
    retired_at = int(clock())
    # N2: the grace is max(KEYS_RELOAD_INTERVAL, RETIREMENT_GRACE_FLOOR) + LEEWAY, 60 s here.
    grace = retirement_grace(a.settings)
    assert grace == RETIREMENT_GRACE_FLOOR
    a.post_json(REFRESH, {"refresh": old["refresh"]}, status=200)
    clock.advance(grace)
    lag = forge(keys_dir, old_kid, claims, iat=retired_at + grace, exp=retired_at + grace + 10)
    a.post_json(VERIFY, {"token": lag}, status=200)  # an instance that had not noticed yet
    clock.advance(1)  # past the grace after the retirement
    now = int(clock())
    forged = forge(keys_dir, old_kid, claims, iat=now, exp=now + 10)
    a.post_json(VERIFY, {"token": forged}, status=401)
    a.get("/accounts/me/", headers={"Authorization": f"Bearer {forged}"}, status=401)


def test_instances_with_different_reload_intervals_accept_each_others_tokens(
    instance: Callable[..., Any], keys_dir: Path, clock: FakeClock
) -> None:
    # Re-audit N2: A reloads every 30 s, B every 2 s. After an unsignalled rotation A goes on
    # signing with the old key until it notices; B, which noticed at once, must accept those
    # tokens (it used its own 2 s + leeway, and answered 401 from 3 s after the rotation).
    a = instance(algorithm="ES256", keys_reload_interval=30)
    b = instance(algorithm="ES256", keys_reload_interval=2)
    register(a)
    old_kid = header(login(a)["access"])["kid"]
    new_kid = KeyDirectory(str(keys_dir)).rotate(None, now=int(clock()), keep_seconds=KEEP).kid
    retired_at = int(clock())
    assert new_kid in [key["kid"] for key in b.get(JWKS).json["keys"]]  # B has reloaded
    assert header(login(b)["access"])["kid"] == new_kid
    clock.advance(29)  # A has not reached its next check yet
    late = login(a)
    assert header(late["access"])["kid"] == old_kid
    b.post_json(VERIFY, {"token": late["access"]}, status=200)
    b.post_json(REFRESH, {"refresh": late["refresh"]}, status=200)
    # A forgery with the leaked old key, beyond the grace, is still refused.
    claims = unverified_segment(late["access"], 1)
    beyond = retired_at + RETIREMENT_GRACE_FLOOR + 1
    forged = forge(keys_dir, old_kid, claims, iat=beyond, exp=beyond + 10)
    clock.advance(beyond - int(clock()))
    b.post_json(VERIFY, {"token": forged}, status=401)


def test_a_token_living_longer_than_its_type_is_refused(
    instance: Callable[..., Any], keys_dir: Path, clock: FakeClock
) -> None:
    # L1: exp - iat beyond the configured lifetime: not a token we issued, whatever key.
    a = instance(algorithm="ES256")
    register(a)
    tokens = login(a)
    kid = header(tokens["access"])["kid"]
    now = int(clock())
    for name, lifetime in (("access", 10), ("refresh", 30)):
        claims = unverified_segment(tokens[name], 1)
        a.post_json(VERIFY, {"token": forge(keys_dir, kid, claims)}, status=200)
        long = forge(keys_dir, kid, claims, iat=now, exp=now + lifetime + 1)
        a.post_json(VERIFY, {"token": long}, status=401)
    decade = forge(
        keys_dir, kid, unverified_segment(tokens["access"], 1), exp=now + 10 * 365 * 86400
    )
    a.get("/accounts/me/", headers={"Authorization": f"Bearer {decade}"}, status=401)


def test_a_dropped_key_stops_verifying_at_the_next_reload(
    instance: Callable[..., Any], keys_dir: Path, clock: FakeClock
) -> None:
    # L1: rotate-key --drop KID, for a compromised key, without waiting for its pruning.
    a = instance(algorithm="ES256")
    register(a)
    old = login(a)
    old_kid = header(old["access"])["kid"]
    directory = KeyDirectory(str(keys_dir))
    with pytest.raises(InvalidKeyError, match="is the current key"):
        directory.drop(old_kid, now=int(clock()))
    new_kid = rotate(keys_dir, clock, "ES256")
    a.post_json(VERIFY, {"token": old["access"]}, status=200)
    with pytest.raises(InvalidKeyError, match="is the current key"):
        directory.drop(new_kid, now=int(clock()))
    with pytest.raises(InvalidKeyError, match="holds no key"):
        directory.drop("no-such-key", now=int(clock()))
    assert directory.drop(old_kid, now=int(clock())) == ()
    request_reload()
    a.post_json(VERIFY, {"token": old["access"]}, status=401)
    assert not (keys_dir / f"{old_kid}.key").exists()
    assert [key["kid"] for key in a.get(JWKS).json["keys"]] == [new_kid]


@pytest.mark.parametrize(
    ("before", "after"),
    [("ES256", "HS256"), ("HS256", "EdDSA"), ("RS256", "PS256")],
    ids=["asymmetric to HMAC", "HMAC to asymmetric", "RS256 to PS256"],
)
def test_an_algorithm_change_keeps_each_key_on_its_algorithm(
    instance: Callable[..., Any], keys_dir: Path, clock: FakeClock, before: str, after: str
) -> None:
    a = instance(algorithm=before)
    register(a)
    old = login(a)
    new_kid = rotate(keys_dir, clock, after)
    new = login(a)
    assert header(new["access"])["alg"] == after
    assert header(new["access"])["kid"] == new_kid
    a.post_json(VERIFY, {"token": old["access"]}, status=200)
    a.post_json(VERIFY, {"token": new["access"]}, status=200)
    published = a.get(JWKS).json["keys"]
    assert all(key["kty"] != "oct" for key in published)
    assert {key["alg"] for key in published} == {before, after} - {"HS256"}
    # A token naming a key with another algorithm than that key's is refused.
    forged_header = {**header(new["access"]), "kid": header(old["access"]).get("kid")}
    if forged_header["kid"] is not None:
        payload = json.dumps(unverified_segment(new["access"], 1)).encode()
        forged = jws.encode(payload, Key.generate(after), headers=forged_header)
        a.post_json(VERIFY, {"token": forged}, status=401)


def test_a_rotation_keeps_the_login_throttle_counters(
    instance: Callable[..., Any], keys_dir: Path, clock: FakeClock
) -> None:
    a = instance(login_max_failures_per_username=3)
    register(a)
    wrong = {"username": "alice", "password": "wrong-password-1"}
    for address in ("192.0.2.1", "192.0.2.2"):
        a.post_json("/accounts/token/", wrong, status=401, extra_environ={"REMOTE_ADDR": address})
    rotate(keys_dir, clock)
    a.post_json("/accounts/token/", wrong, status=401, extra_environ={"REMOTE_ADDR": "192.0.2.3"})
    right = {"username": "alice", "password": "correct-horse-battery-7"}
    a.post_json("/accounts/token/", right, status=429, extra_environ={"REMOTE_ADDR": "192.0.2.4"})


def test_import_keeps_a_single_key_deployment_working(
    make_client: Callable[..., Any], keys_dir: Path, tmp_path: Path, clock: FakeClock
) -> None:
    key_file = tmp_path / "single.key"
    write_key_file(str(key_file), Key.generate("HS256"))
    before = make_client(private_key_file=str(key_file), login_max_failures_per_username=2)
    register(before)
    old = login(before)
    wrong = {"username": "alice", "password": "wrong-password-1"}
    before.post_json(
        "/accounts/token/", wrong, status=401, extra_environ={"REMOTE_ADDR": "1.1.1.0"}
    )
    directory = KeyDirectory(str(keys_dir))
    seed = load_key_file(str(key_file), "HS256")
    directory.ensure("HS256", now=int(clock()), seed=seed, keep_seconds=KEEP)
    assert directory.read().pepper == key_pepper(load_key_file(str(key_file), "HS256"))
    after = make_client(keys_dir=str(keys_dir), login_max_failures_per_username=2)
    after.post_json(VERIFY, {"token": old["access"]}, status=200)
    assert header(login(after)["access"]) == {"alg": "HS256", "typ": "JWT"}
    # The counter kept by the single-key deployment still counts: one more failure throttles.
    after.post_json("/accounts/token/", wrong, status=401, extra_environ={"REMOTE_ADDR": "1.1.1.1"})
    after.post_json("/accounts/token/", wrong, status=429, extra_environ={"REMOTE_ADDR": "1.1.1.2"})
    with pytest.raises(InvalidKeyError, match="empty directory"):
        directory.ensure("HS256", now=int(clock()), seed=seed, keep_seconds=KEEP)


@pytest.mark.parametrize(
    ("made_for", "switched_to"),
    [("ES256", "RS256"), ("RS256", "EdDSA"), ("HS256", "ES256"), ("EdDSA", "HS256")],
)
def test_switching_algorithm_under_the_generated_key_says_what_to_do(
    tmp_path: Path, made_for: str, switched_to: str
) -> None:
    database = str(tmp_path / "db.sqlite3")
    load_signing_keys(Settings(database=database, algorithm=made_for))  # generates the key
    with pytest.raises(ConfigurationError) as info:
        load_signing_keys(Settings(database=database, algorithm=switched_to))
    message = str(info.value)
    assert info.value.setting == "ALGORITHM"
    assert f"is a {made_for} key, not a {switched_to} key" in message
    assert f"JWTLITE_ALGORITHM={made_for}" in message
    assert "rotate-key" in message
    assert "PRIVATE KEY" not in message


def test_a_generated_key_that_is_no_key_at_all_still_names_the_key_file(tmp_path: Path) -> None:
    database = str(tmp_path / "db.sqlite3")
    settings = Settings(database=database, algorithm="ES256")
    load_signing_keys(settings)
    Path(settings.key_path).write_bytes(b"not a key")
    with pytest.raises(ConfigurationError) as info:
        load_signing_keys(settings)
    assert info.value.setting == "PRIVATE_KEY_FILE"
