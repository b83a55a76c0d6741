"""``python -m jwtlite``: every sub-command run for real, in a subprocess, in a temporary dir.

Each test gets its own database; users created by the command line log in through the WSGI
app on the same file, so the command line and the API are checked to agree.
"""

from __future__ import annotations

import json
import os
import select
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from jwtlite import Key, MalformedTokenError, encode
from jwtlite.jwt import decode_unverified_claims
from jwtlite.service.signing.keyfile import load_or_create_key_file
from jwtlite.store.sqlite import SCHEMA_VERSION

from support import FAST_HASH_ENV, PASSWORD, ROOT, http

TIMEOUT = 60.0
ERROR_PREFIX = "jwtlite: error: "
SUBCOMMANDS = [
    "serve",
    "createuser",
    "activate",
    "deactivate",
    "sessions",
    "end-sessions",
    "set-password",
    "keygen",
    "decode",
    "jwks",
    "flush-expired",
    "migrate",
]


def base_env(db_path: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a command: no inherited JWTLITE_*, cheap hashing, our database."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("JWTLITE_")}
    env.update(FAST_HASH_ENV)
    env["JWTLITE_DATABASE"] = str(db_path)
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


@pytest.fixture
def cli(db_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m jwtlite ARGS`` in the database's directory; return the result."""

    def run(
        *args: str, stdin: str = "", env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jwtlite", *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=db_path.parent,
            env=base_env(db_path, env),
            timeout=TIMEOUT,
            check=False,
        )

    return run


def assert_error(result: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    """The command failed with ``code`` and one ``jwtlite: error:`` line naming ``fragment``."""
    assert result.returncode == code, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(ERROR_PREFIX), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def create_user(cli: Callable[..., Any], username: str = "alice", *extra: str) -> Any:
    result = cli("createuser", username, *extra, stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# -- help and usage ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [[], *([name] for name in SUBCOMMANDS)], ids=["top", *SUBCOMMANDS]
)
def test_help_everywhere(cli: Callable[..., Any], command: list[str]) -> None:
    result = cli(*command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: jwtlite {' '.join(command)}".rstrip())
    assert result.stderr == ""


def test_top_level_help_lists_every_command(cli: Callable[..., Any]) -> None:
    out = cli("--help").stdout
    for name in SUBCOMMANDS:
        assert f"    {name}" in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "arguments are required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["createuser"], "arguments are required: USERNAME"),
        (["keygen", "none"], "invalid choice: 'none'"),
        (["decode", "a.b.c", "--algorithm", "HS256"], "need --key"),
        (["serve", "--port", "eighty"], "invalid int value"),
    ],
    ids=[
        "no-command",
        "unknown-command",
        "missing-username",
        "alg-none",
        "alg-without-key",
        "bad-port",
    ],
)
def test_usage_errors_exit_2_on_one_line(
    cli: Callable[..., Any], args: list[str], fragment: str
) -> None:
    assert_error(cli(*args), 2, fragment)


def test_version(cli: Callable[..., Any]) -> None:
    import jwtlite

    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"jwtlite {jwtlite.__version__}"


def test_bad_setting_is_a_configuration_error(cli: Callable[..., Any]) -> None:
    result = cli("createuser", "alice", stdin=PASSWORD, env={"JWTLITE_ACCESS_TOKEN_LIFETIM": "5"})
    assert_error(result, 2, "did you mean JWTLITE_ACCESS_TOKEN_LIFETIME?")


def test_bad_port_variable_breaks_only_serve(cli: Callable[..., Any], db_path: Path) -> None:
    create_user(cli)
    assert cli("jwks", env={"JWTLITE_PORT": "x"}).returncode == 0
    assert_error(cli("serve", env={"JWTLITE_PORT": "x"}), 2, "PORT: not a number")


# -- users ------------------------------------------------------------------------------------


def test_createuser_then_login_through_the_api(
    cli: Callable[..., Any], make_client: Callable[..., Any]
) -> None:
    user = create_user(cli, "Alice", "--email", "Alice@Example.COM")
    assert user == {"id": 1, "username": "Alice", "email": "Alice@example.com"}
    client = make_client()
    tokens = client.post_json(
        "/accounts/token/", {"username": "alice", "password": PASSWORD}, status=200
    ).json
    me = client.get(
        "/accounts/me/", headers={"Authorization": f"Bearer {tokens['access']}"}, status=200
    ).json
    assert (me["id"], me["username"]) == (1, "Alice")


def test_createuser_reads_one_line_and_keeps_inner_spaces(
    cli: Callable[..., Any], make_client: Callable[..., Any]
) -> None:
    password = "  spaced out horse 7  "
    result = cli("createuser", "bob", "--password-stdin", stdin=f"{password}\nignored\n")
    assert result.returncode == 0, result.stderr
    client = make_client()
    client.post_json("/accounts/token/", {"username": "bob", "password": password}, status=200)


@pytest.mark.parametrize(
    ("username", "stdin", "extra", "fragment"),
    [
        ("alice", "short\n", [], "This password is too short"),
        ("alice", "password\n", [], "This password is too common"),
        ("alice", "12345678901234\n", [], "entirely numeric"),
        ("al ice", PASSWORD + "\n", [], "Enter a valid username"),
        ("alice", PASSWORD + "\n", ["--email", "not-an-email"], "Enter a valid email address"),
        ("alice", "", [], "no password on stdin"),
    ],
    ids=[
        "short-password",
        "common-password",
        "numeric-password",
        "bad-username",
        "bad-email",
        "no-stdin",
    ],
)
def test_createuser_applies_the_api_rules(
    cli: Callable[..., Any], username: str, stdin: str, extra: list[str], fragment: str
) -> None:
    assert_error(cli("createuser", username, *extra, stdin=stdin), 1, fragment)


def test_createuser_refuses_a_taken_username_whatever_its_case(cli: Callable[..., Any]) -> None:
    create_user(cli, "alice")
    result = cli("createuser", "ALICE", stdin=PASSWORD + "\n")
    assert_error(result, 1, "A user with that username already exists.")


def test_createuser_never_prints_the_password(cli: Callable[..., Any]) -> None:
    result = cli("createuser", "alice", stdin=PASSWORD + "\n")
    assert PASSWORD not in result.stdout + result.stderr


def test_createuser_prompts_twice_without_echo_on_a_terminal(db_path: Path) -> None:
    output, status = _run_in_pty(
        ["createuser", "carol"], base_env(db_path), answers=[PASSWORD, PASSWORD]
    )
    assert status == 0, output
    assert output.count("Password") == 2
    assert PASSWORD not in output  # getpass turned echo off
    assert '"username": "carol"' in output


def test_createuser_on_a_terminal_refuses_different_passwords(db_path: Path) -> None:
    output, status = _run_in_pty(
        ["createuser", "carol"], base_env(db_path), answers=[PASSWORD, PASSWORD + "x"]
    )
    assert status == 1
    assert "jwtlite: error: the passwords do not match" in output


def _run_in_pty(args: list[str], env: dict[str, str], answers: list[str]) -> tuple[str, int]:
    """Run the command on a new pseudo-terminal (its controlling tty, as getpass wants);
    answer each ``Password`` prompt in turn; return everything shown and the exit code."""
    pid, fd = os.forkpty()
    if pid == 0:  # the child: become the command
        try:
            os.chdir(env["JWTLITE_DATABASE"].rsplit("/", 1)[0])
            os.execve(sys.executable, [sys.executable, "-m", "jwtlite", *args], env)  # noqa: S606
        finally:
            os._exit(127)
    shown = b""
    pending = list(answers)
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if pending and shown.count(b"Password") > len(answers) - len(pending):
                os.write(fd, pending.pop(0).encode() + b"\n")
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return shown.decode(errors="replace"), os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize(
    ("command", "name"),
    [("deactivate", "alice"), ("deactivate", " ALICE "), ("activate", "Alice")],
    ids=["exact", "normalised", "case-insensitive"],
)
def test_activate_deactivate_find_the_user_as_login_does(
    cli: Callable[..., Any], make_client: Callable[..., Any], command: str, name: str
) -> None:
    create_user(cli, "alice")
    result = cli(command, name)
    assert result.returncode == 0, result.stderr
    client = make_client()
    user = client.store.get_user(1)
    assert user.is_active is (command == "activate")


def test_deactivated_user_cannot_log_in_then_can_again(
    cli: Callable[..., Any], make_client: Callable[..., Any]
) -> None:
    create_user(cli, "alice")
    client = make_client()
    tokens = client.post_json(
        "/accounts/token/", {"username": "alice", "password": PASSWORD}, status=200
    ).json
    assert cli("deactivate", "alice").returncode == 0
    refused = client.post_json(
        "/accounts/token/", {"username": "alice", "password": PASSWORD}, status=401
    )
    assert refused.json == {"detail": "No active account found with the given credentials"}
    refresh = client.post_json(
        "/accounts/token/refresh/", {"refresh": tokens["refresh"]}, status=401
    )
    assert refresh.json["code"] == "user_inactive"
    assert cli("activate", "alice").returncode == 0
    client.post_json("/accounts/token/", {"username": "alice", "password": PASSWORD}, status=200)


@pytest.mark.parametrize("command", ["activate", "deactivate"], ids=["activate", "deactivate"])
def test_unknown_user_is_exit_1(cli: Callable[..., Any], command: str) -> None:
    create_user(cli, "alice")
    assert_error(cli(command, "bob"), 1, "no user named 'bob'")


@pytest.mark.parametrize(
    "command", ["deactivate", "flush-expired"], ids=["deactivate", "flush-expired"]
)
def test_missing_database_is_not_created(
    cli: Callable[..., Any], tmp_path: Path, command: str
) -> None:
    missing = tmp_path / "typo.sqlite3"
    args = [command, "alice"] if command == "deactivate" else [command]
    assert_error(cli(*args, "--database", str(missing)), 1, "does not exist")
    assert not missing.exists()


def test_database_option_overrides_the_environment(cli: Callable[..., Any], tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite3"
    result = cli("createuser", "alice", "--database", str(other), stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert other.exists()
    assert_error(cli("deactivate", "alice"), 1, "does not exist")  # the env's database


def test_flush_expired_counts_what_it_deleted(
    cli: Callable[..., Any], make_client: Callable[..., Any]
) -> None:
    create_user(cli, "alice")
    client = make_client()
    # flush-expired uses the real clock: two expired refresh tokens and one failure older
    # than the window go; a live token and a recent failure stay.
    now = time.time()
    from jwtlite.store import AttemptLimits, RefreshRecord

    for at in (now - 10_000, now):
        client.store.take_attempt(
            kind="login", subject="s", address="10.0.0.1", now=at, since=0, limits=AttemptLimits()
        )

    client.store.add_refresh_token(RefreshRecord("a" * 32, 1, "a" * 32, 0, int(now) - 5, "active"))
    client.store.add_refresh_token(RefreshRecord("b" * 32, 1, "b" * 32, 0, int(now) - 5, "spent"))
    client.store.add_refresh_token(
        RefreshRecord("c" * 32, 1, "c" * 32, 0, int(now) + 3600, "active")
    )
    result = cli("flush-expired")
    assert (result.returncode, result.stdout.strip()) == (0, "3"), result.stderr
    assert client.store.get_refresh_token("c" * 32) is not None
    assert client.store.get_refresh_token("a" * 32) is None
    assert cli("flush-expired").stdout.strip() == "0"


def test_migrate_creates_the_schema_and_says_its_version(
    cli: Callable[..., Any], db_path: Path
) -> None:
    result = cli("migrate")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{db_path}: schema version {SCHEMA_VERSION}\n"
    assert db_path.exists()
    assert cli("migrate").stdout == result.stdout  # nothing left to do: the same answer


def test_migrate_never_shows_a_database_password(cli: Callable[..., Any]) -> None:
    url = "postgresql://jwt:Sup3r-secret@127.0.0.1:1/jwtlite"
    result = cli("migrate", env={"JWTLITE_DATABASE": url, "JWTLITE_SECRET_KEY": "k" * 32})
    assert_error(result, 1, "unavailable")
    assert "Sup3r-secret" not in result.stdout + result.stderr


# -- keys -------------------------------------------------------------------------------------

ALGORITHMS = [
    *("HS256", "HS384", "HS512", "RS256", "PS256", "ES256", "ES384", "ES512"),
    *("EdDSA", "Ed25519", "Ed448"),
]


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=ALGORITHMS)
def test_keygen_writes_a_key_file_the_service_loads(
    cli: Callable[..., Any], tmp_path: Path, algorithm: str
) -> None:
    path = tmp_path / f"{algorithm}.key"
    result = cli("keygen", algorithm, "--out", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = load_or_create_key_file(str(path), algorithm, create=False)
    assert key.algorithm == algorithm
    assert key.can_sign


@pytest.mark.parametrize("algorithm", ["HS256", "ES256"], ids=["HS256", "ES256"])
def test_keygen_to_stdout(cli: Callable[..., Any], algorithm: str) -> None:
    result = cli("keygen", algorithm)
    assert result.returncode == 0
    if algorithm == "HS256":
        assert len(result.stdout.strip()) == 43  # 32 bytes, base64url without padding
    else:
        assert result.stdout.startswith("-----BEGIN PRIVATE KEY-----\n")


def test_keygen_keys_differ(cli: Callable[..., Any]) -> None:
    assert cli("keygen", "HS256").stdout != cli("keygen", "HS256").stdout


def test_keygen_refuses_to_overwrite_unless_forced(cli: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    path.write_text("precious\n")
    path.chmod(0o644)
    assert_error(cli("keygen", "ES256", "--out", str(path)), 1, "give --force")
    assert path.read_text() == "precious\n"
    assert cli("keygen", "ES256", "--out", str(path), "--force").returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")


def test_keygen_into_a_missing_directory_is_exit_1(cli: Callable[..., Any], tmp_path: Path) -> None:
    assert_error(cli("keygen", "HS256", "--out", str(tmp_path / "no" / "k")), 1, "No such file")


# -- tokens -----------------------------------------------------------------------------------


@pytest.fixture
def es256(cli: Callable[..., Any], tmp_path: Path) -> tuple[Path, Key]:
    """An ES256 key file made by keygen, and the key."""
    path = tmp_path / "es256.key"
    assert cli("keygen", "ES256", "--out", str(path)).returncode == 0
    return path, Key.from_pem(path.read_bytes())


def claims(lifetime: int = 600, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "42", "iat": now, "exp": now + lifetime, **extra}


def test_decode_without_key_is_marked_unverified(
    cli: Callable[..., Any], es256: tuple[Path, Key]
) -> None:
    _, key = es256
    payload = claims()
    result = cli("decode", encode(payload, key))
    assert result.returncode == 0, result.stderr
    assert "UNVERIFIED" in result.stderr
    output = json.loads(result.stdout)
    assert output["verified"] is False
    assert output["header"] == {"alg": "ES256", "typ": "JWT", "kid": key.kid}
    assert output["claims"] == payload


def test_decode_without_key_shows_even_a_forged_token(cli: Callable[..., Any]) -> None:
    token = encode(claims(), b"s" * 32, "HS256")[:-2] + "AA"
    result = cli("decode", token)
    assert result.returncode == 0
    assert json.loads(result.stdout)["verified"] is False
    assert "UNVERIFIED" in result.stderr


def test_decode_with_key_verifies(cli: Callable[..., Any], es256: tuple[Path, Key]) -> None:
    path, key = es256
    payload = claims()
    result = cli("decode", encode(payload, key), "--key", str(path))
    assert result.returncode == 0, result.stderr
    assert "UNVERIFIED" not in result.stdout + result.stderr
    assert json.loads(result.stdout) == {
        "verified": True,
        "header": {"alg": "ES256", "typ": "JWT", "kid": key.kid},
        "claims": payload,
    }


@pytest.mark.parametrize("algorithm", ["Ed25519", "EdDSA"])
def test_decode_with_an_ed25519_public_pem_takes_both_names(
    cli: Callable[..., Any], tmp_path: Path, algorithm: str
) -> None:
    key = Key.generate("Ed25519")
    public = tmp_path / "public.pem"
    public.write_bytes(key.public_pem())
    token = encode(claims(), key, algorithm)
    result = cli("decode", token, "--key", str(public))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["header"]["alg"] == algorithm
    narrowed = cli("decode", token, "--key", str(public), "--algorithm", "Ed448")
    assert narrowed.returncode == 1


def test_decode_reads_the_token_from_stdin(
    cli: Callable[..., Any], es256: tuple[Path, Key]
) -> None:
    path, key = es256
    result = cli("decode", "-", "--key", str(path), stdin=encode(claims(), key) + "\n")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["verified"] is True


def test_decode_with_the_public_pem_and_the_jwks(
    cli: Callable[..., Any], es256: tuple[Path, Key], tmp_path: Path
) -> None:
    _, key = es256
    token = encode(claims(), key)
    public = tmp_path / "public.pem"
    public.write_bytes(key.public_pem())
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.public_jwk()]}))
    for path in (public, jwks):
        result = cli("decode", token, "--key", str(path))
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("other-key", "Signature verification failed"),
        ("expired", "Token is expired"),
        ("tampered", "Signature verification failed"),
        ("wrong-audience", "aud"),
        ("malformed", "three segments"),
    ],
    ids=["other-key", "expired", "tampered", "wrong-audience", "malformed"],
)
def test_decode_with_key_refuses_bad_tokens(
    cli: Callable[..., Any], es256: tuple[Path, Key], case: str, fragment: str
) -> None:
    path, key = es256
    tokens = {
        "other-key": encode(claims(), Key.generate("ES256")),
        "expired": encode(claims(lifetime=-5), key),
        "tampered": _tamper(encode(claims(), key)),
        "wrong-audience": encode(claims(aud="somebody-else"), key),
        "malformed": "not-a-token",
    }
    result = cli("decode", tokens[case], "--key", str(path))
    assert_error(result, 1, fragment)
    assert result.stdout == ""


def _tamper(token: str) -> str:
    header, _, signature = token.split(".")
    forged = encode(claims(sub="admin"), b"x" * 32, "HS256").split(".")[1]
    return f"{header}.{forged}.{signature}"


def test_decode_with_hs_key_file_needs_the_algorithm(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    path = tmp_path / "hs.key"
    assert cli("keygen", "HS512", "--out", str(path)).returncode == 0
    key = load_or_create_key_file(str(path), "HS512", create=False)
    token = encode(claims(), key)
    assert_error(cli("decode", token, "--key", str(path)), 2, "give --algorithm")
    result = cli("decode", token, "--key", str(path), "--algorithm", "HS512")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["verified"] is True
    # The algorithm is the one named on the command line, never the token's.
    assert_error(cli("decode", token, "--key", str(path), "--algorithm", "HS256"), 1, "not allowed")


def test_decode_refuses_a_none_token_even_without_key_checks(
    cli: Callable[..., Any], es256: tuple[Path, Key]
) -> None:
    path, _ = es256
    none_token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiI0MiJ9."
    assert_error(cli("decode", none_token, "--key", str(path)), 1, "not allowed")


def test_decode_a_service_token_with_the_service_key(
    cli: Callable[..., Any], make_client: Callable[..., Any], db_path: Path
) -> None:
    create_user(cli, "alice")
    client = make_client()
    tokens = client.post_json(
        "/accounts/token/", {"username": "alice", "password": PASSWORD}, status=200
    ).json
    # The fake clock of the test client is not the real clock: check the claims, not exp.
    unverified = json.loads(cli("decode", tokens["access"]).stdout)
    assert unverified["claims"]["token_type"] == "access"
    assert unverified["claims"]["user_id"] == "1"


@pytest.mark.parametrize(
    "token",
    [
        "eyJhbGciOiJIUzI1NiJ9.e30=.c2ln",  # padded payload
        "eyJhbGciOiJIUzI1NiJ9.WzFd.c2ln",  # payload [1]
        "eyJhbGciOiJIUzI1NiJ9.bnVsbA.c2ln",  # payload null
        "eyJhbGciOiJIUzI1NiJ9.e30",  # two segments
        "e30.e30.c2ln",  # header without alg
        "eyJhbGciOiJIUzI1NiJ9.\u00e9.c2ln",  # non-ASCII
    ],
    ids=["padded-payload", "list-payload", "null-payload", "two-segments", "no-alg", "non-ascii"],
)
def test_unverified_claims_still_refuse_malformed_tokens(token: str) -> None:
    with pytest.raises(MalformedTokenError):
        decode_unverified_claims(token)


def test_unverified_claims_are_the_payload() -> None:
    payload = claims(jti="x")
    assert decode_unverified_claims(encode(payload, b"k" * 32, "HS256")) == payload


# -- jwks -------------------------------------------------------------------------------------


def test_jwks_is_empty_for_hmac(cli: Callable[..., Any]) -> None:
    create_user(cli)  # the service made its key on first use
    result = cli("jwks")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"keys": []}


def test_jwks_publishes_the_public_key_the_api_publishes(
    cli: Callable[..., Any], make_client: Callable[..., Any], tmp_path: Path
) -> None:
    path = tmp_path / "es.key"
    assert cli("keygen", "ES256", "--out", str(path)).returncode == 0
    env = {"JWTLITE_ALGORITHM": "ES256", "JWTLITE_PRIVATE_KEY_FILE": str(path)}
    result = cli("jwks", env=env)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    client = make_client(algorithm="ES256", private_key_file=str(path))
    assert printed == client.get("/.well-known/jwks.json", status=200).json
    (jwk,) = printed["keys"]
    assert jwk["kty"] == "EC"
    assert "d" not in jwk


def test_jwks_does_not_create_a_key(cli: Callable[..., Any], db_path: Path) -> None:
    result = cli("jwks", env={"JWTLITE_ALGORITHM": "ES256"})
    assert_error(result, 1, "no signing key")
    assert not db_path.with_suffix(".key").exists()


# -- serve ------------------------------------------------------------------------------------


def test_serve_answers_and_stops_cleanly(db_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "jwtlite", "serve", "--host", "127.0.0.1", "--port", "0"],
        cwd=db_path.parent,
        env=base_env(db_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], TIMEOUT)
        assert ready, "no banner"
        banner = process.stdout.readline()
        assert banner.startswith("jwtlite listening on http://127.0.0.1:"), banner
        url = banner.split()[3]
        reply = http("GET", f"{url}/health")
        assert (reply.status, reply.json()) == (200, {"status": "ok"})
        process.send_signal(signal.SIGTERM)
        assert process.wait(TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_serve_refuses_a_bad_setting_with_exit_2(cli: Callable[..., Any]) -> None:
    result = cli("serve", "--port", "0", env={"JWTLITE_SECRET_KEY": "short"})
    assert_error(result, 2, "SECRET_KEY")
