"""``python -m jwtlite``: serve the API, manage users, make keys, inspect tokens.

This is an entry point, so it reads ``os.environ`` (``JWTLITE_*`` settings, as the server
does) and argv. Exit codes: 0 success, 1 an operational failure (unknown user, invalid
token, existing file, unusable database), 2 a usage or configuration error (as argparse).
Every error is one line on stderr: ``jwtlite: error: ...``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from jwtlite import __version__
from jwtlite.algorithms import ALGORITHMS, HMACAlgorithm, get_algorithm
from jwtlite.cli import serve as launcher
from jwtlite.errors import (
    InvalidKeyError,
    JWTError,
)
from jwtlite.jws import get_unverified_header
from jwtlite.jwt import decode_complete, decode_unverified_claims
from jwtlite.keys import Key, KeySet
from jwtlite.service import audit
from jwtlite.service.accounts import AccountService
from jwtlite.service.auth import AuthService, load_signing_keys, purge_expired
from jwtlite.service.credentials.validators import normalize_username, username_key
from jwtlite.service.errors import (
    ConfigurationError,
    NotFoundError,
    ValidationError,
)
from jwtlite.service.sessions import session_document
from jwtlite.service.settings import Settings
from jwtlite.service.signing.directory import MAX_ACTIVATE_AFTER, KeyDirectory, RingFiles
from jwtlite.service.signing.keyfile import key_file_content, load_key_file, write_key_file
from jwtlite.service.signing.keyring import Ring, keep_window
from jwtlite.store import Store, is_postgres_url, masked_url
from jwtlite.store.errors import StoreUnavailableError

__all__ = ["CommandError", "UsageError", "build_parser", "main"]

PROG = "jwtlite"
UNVERIFIED_BANNER = (
    "UNVERIFIED: the signature and claims of this token were NOT checked; "
    "do not trust them (give --key to verify)"
)

Environ = Mapping[str, str]
Handler = Callable[[argparse.Namespace, Environ], int]


class CommandError(Exception):
    """An operational failure: reported on one line, exit code 1."""


class UsageError(Exception):
    """The command was called wrongly in a way argparse cannot see: exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def build_parser(environ: Environ) -> argparse.ArgumentParser:
    """The ``jwtlite`` argument parser with every sub-command.

    ``environ`` gives the defaults of ``serve``'s options (``JWTLITE_HOST`` and so on).
    """
    parser = _Parser(
        prog=PROG,
        description="jwtlite: a JWT authentication service and its tools. Settings come "
        "from JWTLITE_* environment variables.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    serve = _command(commands, "serve", _serve, "serve the API with waitress (as serve.py)")
    try:
        launcher.add_arguments(_Parser(add_help=False), environ)
    except ConfigurationError as exc:
        # A bad JWTLITE_PORT must not break every other command: only serve refuses it.
        serve.set_defaults(handler=_refuse(exc))
        environ = {}
    launcher.add_arguments(serve, environ)
    launcher.add_demo_arguments(serve)
    _add_database(serve)

    demo = _command(commands, "demo", _serve, "serve the API and the demo page (serve --demo)")
    launcher.add_arguments(demo, environ)
    launcher.add_demo_arguments(demo, switch=False)
    _add_database(demo)

    create = _command(commands, "createuser", _createuser, "create a user")
    create.add_argument("username", metavar="USERNAME")
    create.add_argument("--email", default=None, help="the user's e-mail address")
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin, even on a terminal "
        "(without a terminal, stdin is always used)",
    )
    _add_database(create)

    for name, active in (("activate", True), ("deactivate", False)):
        what = "let a user log in again" if active else "stop a user from logging in"
        toggle = _command(commands, name, _set_active(active), what)
        toggle.add_argument("username", metavar="USERNAME")
        _add_database(toggle)

    _add_session_commands(commands)

    keygen = _command(commands, "keygen", _keygen, "generate a signing key")
    keygen.add_argument("algorithm", metavar="ALG", choices=sorted(ALGORITHMS), help="%(choices)s")
    keygen.add_argument(
        "--out", metavar="FILE", help="write the key to FILE (mode 0600) instead of stdout"
    )
    keygen.add_argument("--force", action="store_true", help="replace FILE if it exists")

    decode = _command(commands, "decode", _decode, "print a token's header and claims")
    decode.add_argument("token", metavar="TOKEN", help="the token, or - to read it from stdin")
    decode.add_argument(
        "--key",
        metavar="FILE",
        help="verify with this key: PEM, JWK, JWKS, or an HS* key file (base64url secret)",
    )
    decode.add_argument(
        "--algorithm",
        metavar="ALG",
        choices=sorted(ALGORITHMS),
        help="the algorithm the key serves (needed for HS* and RSA keys)",
    )
    decode.add_argument("--audience", help="the expected aud claim")
    decode.add_argument("--issuer", help="the expected iss claim")
    decode.add_argument("--leeway", type=int, default=0, help="seconds of clock skew allowed")

    jwks = _command(commands, "jwks", _jwks, "print the service's public JWKS")
    _add_database(jwks)

    rotate = _command(
        commands,
        "rotate-key",
        _rotate_key,
        "make a new signing key in JWTLITE_KEYS_DIR and retire the current one",
    )
    rotate.add_argument(
        "--algorithm",
        metavar="ALG",
        choices=sorted(ALGORITHMS),
        help="the new key's algorithm (default: the current key's; %(choices)s)",
    )
    rotate.add_argument(
        "--import",
        dest="import_file",
        metavar="FILE",
        help="instead of rotating, make the key in FILE (a key file, e.g. the one beside the "
        "database or PRIVATE_KEY_FILE) the first key of an empty JWTLITE_KEYS_DIR, so the "
        "tokens it signed keep verifying",
    )
    rotate.add_argument(
        "--drop",
        metavar="KID",
        help="instead of rotating, remove the retired key KID at once (a compromised key: "
        "its tokens stop verifying as soon as each instance reloads; never the current key); "
        "write --drop=KID, as a kid may begin with '-'",
    )
    rotate.add_argument(
        "--activate-after",
        metavar="SECONDS",
        type=_activation_delay,
        default=0,
        help="publish the new key at once but sign with it only SECONDS later (default 0: "
        f"at once; at most {MAX_ACTIVATE_AFTER}); give the JWKS max-age (60) plus your "
        "resource servers' refetch cooldown. Rotating again before then cancels the staged "
        "key: the new key takes over from the key signing now",
    )
    rotate.add_argument(
        "--keep",
        metavar="SECONDS",
        type=_seconds,
        help="keep retired keys at least SECONDS after their retirement: raises the window "
        "ring.json records (never lowers it; default: REFRESH_TOKEN_LIFETIME + LEEWAY + "
        "KEYS_RELOAD_INTERVAL of this shell, or the recorded window if larger)",
    )

    flush = _command(
        commands, "flush-expired", _flush_expired, "delete expired tokens and login failures"
    )
    _add_database(flush)

    migrate = _command(
        commands, "migrate", _migrate, "create or upgrade the database schema, then exit"
    )
    _add_database(migrate)
    return parser


def _add_session_commands(commands: argparse._SubParsersAction[_Parser]) -> None:
    """``sessions``, ``end-sessions`` and ``set-password`` (the account lifecycle)."""
    listing = _command(commands, "sessions", _sessions, "list a user's live sessions")
    listing.add_argument("username", metavar="USERNAME")
    listing.add_argument("--json", action="store_true", help="one JSON object a line")
    _add_database(listing)
    ending = _command(
        commands, "end-sessions", _end_sessions, "end every session of a user (log out everywhere)"
    )
    ending.add_argument("username", metavar="USERNAME")
    _add_database(ending)
    setpw = _command(
        commands, "set-password", _set_password, "set a user's password and end their sessions"
    )
    setpw.add_argument("username", metavar="USERNAME")
    setpw.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin, even on a terminal "
        "(without a terminal, stdin is always used)",
    )
    _add_database(setpw)


def _command(
    commands: argparse._SubParsersAction[_Parser], name: str, handler: Handler, summary: str
) -> _Parser:
    parser = commands.add_parser(name, help=summary, description=summary[0].upper() + summary[1:])
    parser.set_defaults(handler=handler)
    return parser


def _refuse(exc: ConfigurationError) -> Handler:
    def handler(args: argparse.Namespace, environ: Environ) -> int:
        raise exc

    return handler


def _add_database(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database",
        metavar="DB",
        help="the SQLite file or postgresql:// URL (default: JWTLITE_DATABASE)",
    )


def main(argv: Sequence[str] | None = None, environ: Environ | None = None) -> int:
    """Run one command; return its exit code."""
    environ = os.environ if environ is None else environ
    args = build_parser(environ).parse_args(argv)
    if getattr(args, "database", None) is not None:
        environ = {**environ, "JWTLITE_DATABASE": args.database}
    handler: Handler = args.handler
    try:
        return handler(args, environ)
    except (ConfigurationError, UsageError) as exc:
        return _error(str(exc), 2)
    except (CommandError, StoreUnavailableError, JWTError, ValidationError, NotFoundError) as exc:
        return _error(str(exc), 1)
    except OSError as exc:
        return _error(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), 1)
    except BrokenPipeError:
        # The reader went away (| head): nothing left to say, and nowhere to say it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return _error("interrupted", 1)


def _error(message: str, code: int) -> int:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return code


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


# -- serve --------------------------------------------------------------------------------


def _serve(args: argparse.Namespace, environ: Environ) -> int:
    if not args.demo and (args.demo_port is not None or args.api_url is not None):
        print(f"{PROG}: error: --demo-port and --api-url need --demo", file=sys.stderr)
        return 2
    return launcher.run(args.host, args.port, args.threads, environ, **launcher.demo_options(args))


# -- users --------------------------------------------------------------------------------


def _createuser(args: argparse.Namespace, environ: Environ) -> int:
    settings = Settings.from_env(environ)
    password = _read_password(from_stdin=args.password_stdin or not sys.stdin.isatty())
    data = {"username": args.username, "password": password}
    if args.email is not None:
        data["email"] = args.email
    service = AuthService.from_settings(settings)
    try:
        user = service.register(data, address=None)  # the API's rules, unthrottled
    finally:
        service.store.close()
    _print_json(user)
    return 0


def _read_password(*, from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CommandError("no password on stdin")
        return line.removesuffix("\n").removesuffix("\r")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != password:
        raise CommandError("the passwords do not match")
    return password


def _set_active(active: bool) -> Handler:
    def handler(args: argparse.Namespace, environ: Environ) -> int:
        store = _existing_store(Settings.from_env(environ))
        try:
            found = store.set_active(username_key(normalize_username(args.username)), active)
        finally:
            store.close()
        if not found:
            raise CommandError(f"no user named {args.username!r}")
        print(f"{args.username}: {'active' if active else 'inactive'}")
        return 0

    return handler


def _accounts(environ: Environ) -> AccountService:
    settings = Settings.from_env(environ)
    return AccountService(AuthService.from_settings(settings, store=_existing_store(settings)))


def _sessions(args: argparse.Namespace, environ: Environ) -> int:
    accounts = _accounts(environ)
    try:
        found = accounts.user_sessions(args.username)
    finally:
        accounts.close()
    for session in found:
        document = session_document(session, current=None)
        del document["current"]
        if args.json:
            print(json.dumps(document))
        else:
            print(
                f"{session.id}  created {document['created']}  last used "
                f"{document['last_used']}  {session.address or '-'}  {session.user_agent or '-'}"
            )
    if not found and not args.json:
        print(f"{args.username}: no live sessions", file=sys.stderr)
    return 0


def _end_sessions(args: argparse.Namespace, environ: Environ) -> int:
    accounts = _accounts(environ)
    try:
        count = accounts.end_user_sessions(args.username)
    finally:
        accounts.close()
    print(f"{args.username}: {count} session{'' if count == 1 else 's'} ended")
    return 0


def _set_password(args: argparse.Namespace, environ: Environ) -> int:
    accounts = _accounts(environ)
    try:
        accounts.user_sessions(args.username)  # an unknown user fails before the prompt
        password = _read_password(from_stdin=args.password_stdin or not sys.stdin.isatty())
        count = accounts.set_password(args.username, password)
    finally:
        accounts.close()
    print(f"{args.username}: password set, {count} session{'' if count == 1 else 's'} ended")
    return 0


def _existing_store(settings: Settings) -> Store:
    # Store() would create an empty SQLite file; a typo in --database should be an error.
    if not is_postgres_url(settings.database) and not os.path.exists(settings.database):
        raise CommandError(f"database {settings.database} does not exist")
    return settings.open_store()


def _migrate(args: argparse.Namespace, environ: Environ) -> int:
    settings = Settings.from_env(environ)
    store = settings.open_store()  # opening a store applies its pending migrations
    try:
        version = store.schema_version()
    finally:
        store.close()
    print(f"{masked_url(settings.database)}: schema version {version}")
    return 0


def _flush_expired(args: argparse.Namespace, environ: Environ) -> int:
    settings = Settings.from_env(environ)
    store = _existing_store(settings)
    try:
        count = purge_expired(store, settings, time.time())
    finally:
        store.close()
    print(count)
    return 0


# -- keys ---------------------------------------------------------------------------------


def _keygen(args: argparse.Namespace, environ: Environ) -> int:
    key = Key.generate(args.algorithm)
    if args.out is None:
        sys.stdout.write(key_file_content(key).decode("ascii"))
        return 0
    try:
        write_key_file(args.out, key, replace=args.force)
    except FileExistsError:
        raise CommandError(f"{args.out} exists; give --force to replace it") from None
    print(f"{args.out}: new {args.algorithm} key (mode 0600)", file=sys.stderr)
    return 0


def _jwks(args: argparse.Namespace, environ: Environ) -> int:
    settings = Settings.from_env(environ)
    if settings.keys_dir is not None:
        directory = KeyDirectory(settings.keys_dir)
        if directory.stamp() is None:
            raise CommandError(f"no signing key in {settings.keys_dir} yet")
        _print_json(Ring.from_files(_read_ring(directory)).jwks)
        return 0
    if settings.secret_key is None and not os.path.exists(settings.key_path):
        # Not created here: the key is the server's to make on its first run.
        raise CommandError(f"no signing key at {settings.key_path} yet")
    keys = load_signing_keys(settings)
    _print_json(keys.jwks() if isinstance(keys, KeySet) else {"keys": []})
    return 0


def _rotate_key(args: argparse.Namespace, environ: Environ) -> int:
    settings = Settings.from_env(environ)
    if settings.keys_dir is None:
        raise UsageError(
            "rotate-key needs JWTLITE_KEYS_DIR (a key directory; a single SECRET_KEY or key "
            "file cannot hold a retired key)"
        )
    if args.drop is not None and (args.import_file is not None or args.algorithm is not None):
        raise UsageError("--drop takes neither --import nor --algorithm")
    if args.activate_after and (args.drop is not None or args.import_file is not None):
        raise UsageError("--activate-after is for a rotation (not with --drop or --import)")
    directory = KeyDirectory(settings.keys_dir)
    now = int(time.time())
    # Tokens signed by a retired key live at most a refresh lifetime after it was retired,
    # plus the leeway, plus the time an instance may take to notice. ring.json records the
    # window the servers need; this run's own settings (or --keep) can only raise it.
    keep = max(keep_window(settings), args.keep or 0)
    try:
        if args.import_file is not None:
            algorithm = args.algorithm or settings.algorithm
            try:
                seed = load_key_file(args.import_file, algorithm)
            except FileNotFoundError:
                raise CommandError(f"{args.import_file} does not exist") from None
            directory.ensure(algorithm, now=now, seed=seed, keep_seconds=keep)
            _print_json(
                {
                    "kid": seed.kid,
                    "algorithm": seed.algorithm,
                    "imported": args.import_file,
                    "retired": [],
                    "pruned": [],
                }
            )
            return 0
        if args.drop is not None:
            warnings = directory.drop(args.drop, now=now)
            for warning in warnings:
                print(f"{PROG}: warning: {warning}", file=sys.stderr, flush=True)
            _print_json({"dropped": args.drop})
            return 0
        # Everything reported comes from inside the lock: an empty directory's first key
        # (or, when another run made it first, a rotation of that one), the previous key,
        # the default algorithm.
        rotation = directory.rotate(
            args.algorithm,
            now=now,
            keep_seconds=keep,
            first_algorithm=settings.algorithm,
            activate_after=args.activate_after,
        )
    except InvalidKeyError as exc:
        raise CommandError(str(exc)) from exc
    for warning in rotation.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr, flush=True)
    launcher.configure_logging(settings.log_format)
    audit.key_rotated(
        kid=rotation.kid, previous_kid=rotation.previous, activates=rotation.activates
    )
    _print_json(
        {
            "kid": rotation.kid,
            "algorithm": rotation.algorithm,
            "previous": rotation.previous,
            "retired": list(rotation.retired),
            "pruned": list(rotation.pruned),
            "keep_seconds": rotation.keep_seconds,
            "activates": rotation.activates,
            "cancelled": rotation.cancelled,
        }
    )
    return 0


def _seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 10 * 366 * 86400:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return value


def _activation_delay(text: str) -> int:
    value = _seconds(text)
    if value > MAX_ACTIVATE_AFTER:
        raise argparse.ArgumentTypeError(
            f"at most {MAX_ACTIVATE_AFTER} seconds (a day), not {value}: a staged key "
            "activates soon, or is not staged yet"
        )
    return value


def _read_ring(directory: KeyDirectory) -> RingFiles:
    try:
        return directory.read()
    except InvalidKeyError as exc:
        raise CommandError(str(exc)) from exc


# -- tokens -------------------------------------------------------------------------------


def _decode(args: argparse.Namespace, environ: Environ) -> int:
    token = sys.stdin.readline().strip() if args.token == "-" else args.token
    if args.key is None:
        if args.algorithm or args.audience or args.issuer:
            raise UsageError("--algorithm, --audience and --issuer need --key")
        header = get_unverified_header(token)
        claims = decode_unverified_claims(token)
        print(f"{PROG}: warning: {UNVERIFIED_BANNER}", file=sys.stderr, flush=True)
        _print_json({"verified": False, "header": header, "claims": claims})
        return 0
    key = _verifying_key(args.key, args.algorithm)
    # What the key verifies: a PEM Ed25519 key (inferred as EdDSA) also verifies "Ed25519"
    # tokens (RFC 9864); an explicit --algorithm narrows the allowlist to that one.
    keys = list(key) if isinstance(key, KeySet) else [key]
    names = {name for k in keys for name in k.algorithms}
    algorithms = sorted(names) if args.algorithm is None else [args.algorithm]
    decoded = decode_complete(
        token,
        key,
        algorithms,
        audience=args.audience,
        issuer=args.issuer,
        leeway=args.leeway,
    )
    _print_json({"verified": True, "header": decoded["header"], "claims": decoded["payload"]})
    return 0


def _verifying_key(path: str, algorithm: str | None) -> Key | KeySet:
    with open(path, "rb") as handle:
        data = handle.read()
    start = data.lstrip()[:16]
    if start.startswith(b"{"):
        return _key_from_json(data, algorithm)
    if start.startswith(b"-----BEGIN"):
        return Key.from_pem(data, algorithm)
    if algorithm is None or not isinstance(get_algorithm(algorithm), HMACAlgorithm):
        raise UsageError(f"{path} holds a secret: give --algorithm HS256, HS384 or HS512")
    return load_key_file(path, algorithm)


def _key_from_json(data: bytes, algorithm: str | None) -> Key | KeySet:
    try:
        members = json.loads(data)
    except ValueError:
        raise InvalidKeyError("the key file is not valid JSON") from None
    if isinstance(members, dict) and isinstance(members.get("keys"), list):
        return KeySet(Key.from_jwk(jwk, algorithm) for jwk in members["keys"])
    return Key.from_jwk(members, algorithm)
