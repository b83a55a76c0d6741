"""Signing-key files: the one on-disk format the service, the CLI and operators share.

An HMAC key file holds the secret as base64url text; any other holds a PKCS#8 PEM private
key. Files are created with mode 0600 and refused when other users can read them.
"""

from __future__ import annotations

import contextlib
import os
import stat

from jwtlite._encoding import EncodingError, b64url_decode, b64url_encode
from jwtlite.algorithms import HMACAlgorithm, get_algorithm
from jwtlite.errors import InvalidKeyError
from jwtlite.keys import Key

__all__ = ["key_file_content", "load_key_file", "load_or_create_key_file", "write_key_file"]


def key_file_content(key: Key) -> bytes:
    """``key`` in the key-file format.

    Raises:
        InvalidKeyError: ``key`` holds no private key or secret.
    """
    if key.is_symmetric:
        return b64url_encode(key.secret()) + b"\n"
    return key.private_pem()


def write_key_file(path: str, key: Key, *, replace: bool = False) -> None:
    """Write ``key`` to a new file at ``path`` with mode 0600, synced to disk.

    Raises:
        FileExistsError: ``path`` exists and ``replace`` is false.
        OSError: the file cannot be written.
    """
    data = key_file_content(key)
    if replace:
        # A fresh file, so mode 0600 holds whatever was there (and a link is not followed).
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def load_or_create_key_file(path: str, algorithm: str, *, create: bool) -> Key:
    """Load the signing key kept at ``path``, or make one there (mode 0600) when allowed.

    Raises:
        InvalidKeyError: the file is missing (and ``create`` is false), unreadable, readable
            by other users, or does not hold a key for ``algorithm``.
    """
    try:
        return load_key_file(path, algorithm)
    except FileNotFoundError:
        if not create:
            raise InvalidKeyError(f"key file {path} does not exist") from None
    try:
        write_key_file(path, Key.generate(algorithm))
    except FileExistsError:  # another process made it first: use theirs
        pass
    except OSError as exc:
        raise InvalidKeyError(f"cannot create key file {path}: {exc.strerror}") from exc
    return load_key_file(path, algorithm)


def load_key_file(path: str, algorithm: str) -> Key:
    """The key for ``algorithm`` kept at ``path``.

    Raises:
        FileNotFoundError: there is no such file.
        InvalidKeyError: unreadable, readable by other users, or not a key for ``algorithm``.
    """
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            data = handle.read()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise InvalidKeyError(f"cannot read key file {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InvalidKeyError(
            f"key file {path} is accessible to other users (mode {stat.S_IMODE(mode):o}); "
            "run chmod 600 on it"
        )
    if isinstance(get_algorithm(algorithm), HMACAlgorithm):
        try:
            secret = b64url_decode(data.strip())
        except EncodingError as exc:
            raise InvalidKeyError(f"key file {path} does not hold a base64url secret") from exc
        return Key(secret, algorithm)
    try:
        return Key.from_pem(data, algorithm)
    except InvalidKeyError as exc:
        raise InvalidKeyError(f"key file {path}: {exc}") from exc
