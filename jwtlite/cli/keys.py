"""The key and token commands: ``keygen``, ``jwks``, ``rotate-key`` and ``decode``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from jwtlite.algorithms import HMACAlgorithm, get_algorithm
from jwtlite.cli import serve as launcher
from jwtlite.cli._shared import PROG, CommandError, Environ, UsageError, print_json
from jwtlite.errors import InvalidKeyError
from jwtlite.jws import get_unverified_header
from jwtlite.jwt import decode_complete, decode_unverified_claims
from jwtlite.keys import Key, KeySet
from jwtlite.service import audit
from jwtlite.service.settings import Settings
from jwtlite.service.signing import load_signing_keys
from jwtlite.service.signing.directory import MAX_ACTIVATE_AFTER, KeyDirectory, RingFiles
from jwtlite.service.signing.keyfile import key_file_content, load_key_file, write_key_file
from jwtlite.service.signing.keyring import Ring, keep_window

__all__ = ["activation_delay", "decode", "jwks", "keygen", "rotate_key", "seconds"]

UNVERIFIED_BANNER = (
    "UNVERIFIED: the signature and claims of this token were NOT checked; "
    "do not trust them (give --key to verify)"
)


def keygen(args: argparse.Namespace, environ: Environ) -> int:
    """``keygen``: a new key for ``ALG``, written to ``--out`` (mode 0600) or to stdout."""
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


def jwks(args: argparse.Namespace, environ: Environ) -> int:
    """``jwks``: print the service's public JWKS (no keys for an HMAC secret)."""
    settings = Settings.from_env(environ)
    if settings.keys_dir is not None:
        directory = KeyDirectory(settings.keys_dir)
        if directory.stamp() is None:
            raise CommandError(f"no signing key in {settings.keys_dir} yet")
        print_json(Ring.from_files(_read_ring(directory)).jwks)
        return 0
    if settings.secret_key is None and not os.path.exists(settings.key_path):
        # Not created here: the key is the server's to make on its first run.
        raise CommandError(f"no signing key at {settings.key_path} yet")
    keys = load_signing_keys(settings)
    print_json(keys.jwks() if isinstance(keys, KeySet) else {"keys": []})
    return 0


def rotate_key(args: argparse.Namespace, environ: Environ) -> int:
    """``rotate-key``: rotate the key directory's key, import a key file, or drop a retired key."""
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
            print_json(
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
            print_json({"dropped": args.drop})
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
    print_json(
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


def seconds(text: str) -> int:
    """An argument type: a whole number of seconds, from 0 to ten years (of 366 days)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 10 * 366 * 86400:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return value


def activation_delay(text: str) -> int:
    """The type of ``--activate-after``: :func:`seconds`, at most :data:`MAX_ACTIVATE_AFTER`."""
    value = seconds(text)
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


def decode(args: argparse.Namespace, environ: Environ) -> int:
    """``decode``: print a token's header and claims, verified when ``--key`` is given."""
    token = sys.stdin.readline().strip() if args.token == "-" else args.token
    if args.key is None:
        if args.algorithm or args.audience or args.issuer:
            raise UsageError("--algorithm, --audience and --issuer need --key")
        header = get_unverified_header(token)
        claims = decode_unverified_claims(token)
        print(f"{PROG}: warning: {UNVERIFIED_BANNER}", file=sys.stderr, flush=True)
        print_json({"verified": False, "header": header, "claims": claims})
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
    print_json({"verified": True, "header": decoded["header"], "claims": decoded["payload"]})
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
