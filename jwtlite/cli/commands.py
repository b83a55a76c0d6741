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
from collections.abc import Sequence
from typing import NoReturn

from jwtlite import __version__
from jwtlite.algorithms import ALGORITHMS
from jwtlite.cli import keys
from jwtlite.cli import serve as launcher
from jwtlite.cli._shared import PROG, CommandError, Environ, Handler, UsageError, print_json
from jwtlite.errors import (
    JWTError,
)
from jwtlite.service.accounts import AccountService
from jwtlite.service.auth import AuthService, purge_expired
from jwtlite.service.credentials.validators import normalize_username, username_key
from jwtlite.service.errors import (
    ConfigurationError,
    NotFoundError,
    ValidationError,
)
from jwtlite.service.sessions import session_document
from jwtlite.service.settings import Settings
from jwtlite.service.signing.directory import MAX_ACTIVATE_AFTER
from jwtlite.store import Store, is_postgres_url, masked_url
from jwtlite.store.errors import StoreUnavailableError

__all__ = ["build_parser", "main"]


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

    keygen = _command(commands, "keygen", keys.keygen, "generate a signing key")
    keygen.add_argument("algorithm", metavar="ALG", choices=sorted(ALGORITHMS), help="%(choices)s")
    keygen.add_argument(
        "--out", metavar="FILE", help="write the key to FILE (mode 0600) instead of stdout"
    )
    keygen.add_argument("--force", action="store_true", help="replace FILE if it exists")

    decode = _command(commands, "decode", keys.decode, "print a token's header and claims")
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

    jwks = _command(commands, "jwks", keys.jwks, "print the service's public JWKS")
    _add_database(jwks)

    rotate = _command(
        commands,
        "rotate-key",
        keys.rotate_key,
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
        type=keys.activation_delay,
        default=0,
        help="publish the new key at once but sign with it only SECONDS later (default 0: "
        f"at once; at most {MAX_ACTIVATE_AFTER}); give the JWKS max-age (60) plus your "
        "resource servers' refetch cooldown. Rotating again before then cancels the staged "
        "key: the new key takes over from the key signing now",
    )
    rotate.add_argument(
        "--keep",
        metavar="SECONDS",
        type=keys.seconds,
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


# -- serve --------------------------------------------------------------------------------


def _serve(args: argparse.Namespace, environ: Environ) -> int:
    if not args.demo and (args.demo_port is not None or args.api_url is not None):
        print(f"{PROG}: error: --demo-port and --api-url need --demo", file=sys.stderr)
        return 2
    return launcher.serve(args, environ)


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
    print_json(user)
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
