"""Signing-key files: the one on-disk format the service, the CLI and operators share.

An HMAC key file holds the secret as base64url text; any other holds a PKCS#8 PEM private
key. Files are created with mode 0600 and refused when other users can read them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from jwtlite._encoding import EncodingError, b64url_decode, b64url_encode
from jwtlite.algorithms import ALGORITHMS, HMACAlgorithm, get_algorithm
from jwtlite.errors import InvalidKeyError
from jwtlite.keys import Key

__all__ = [
    "MAX_KEY_FILE_BYTES",
    "key_file_content",
    "load_key_file",
    "load_or_create_key_file",
    "read_private_file",
    "write_key_file",
]


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


#: A key file is a few kilobytes at most (an RSA-4096 PEM is about 3.3 KB).
MAX_KEY_FILE_BYTES = 64 * 1024


def load_key_file(
    path: str, algorithm: str, *, follow_symlinks: bool = True, owner: int | None = None
) -> Key:
    """The key for ``algorithm`` kept at ``path``.

    Only a regular file of at most :data:`MAX_KEY_FILE_BYTES` is read, opened without
    blocking (a FIFO or a device is refused, never waited on or read for ever).

    Args:
        path: the key file.
        algorithm: the algorithm the key must serve.
        follow_symlinks: false for a file of a key directory: a symbolic link is refused.
            (A configured key file may be one, as secret volumes mount them.)
        owner: the uid that must own the file, or None.

    Raises:
        FileNotFoundError: there is no such file.
        InvalidKeyError: unreadable, not a regular file, too large, a symbolic link (when
            not followed), owned by another user than ``owner``, readable by other users,
            or not a key for ``algorithm``.
    """
    data = read_private_file(
        path,
        limit=MAX_KEY_FILE_BYTES,
        what="key file",
        follow_symlinks=follow_symlinks,
        owner=owner,
    )
    return _key_from_file_data(data, path, algorithm)


def _key_from_file_data(data: bytes, path: str, algorithm: str) -> Key:
    """The key for ``algorithm`` in a key file's bytes; InvalidKeyError when it is none."""
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


def read_private_file(
    path: str, *, limit: int, what: str, follow_symlinks: bool, owner: int | None
) -> bytes:
    """The bytes of the private file ``path``, once it passes a private file's checks.

    ``what`` names it in messages. It is opened without blocking (and without following a link
    unless ``follow_symlinks``), and must be a regular file, owned by ``owner`` (unless None),
    unreadable by others, and at most ``limit`` bytes.

    Raises:
        FileNotFoundError: there is no such file.
        InvalidKeyError: any other refusal (the message names the file and the reason).
    """
    name = f"{what} {path}".lstrip()
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise InvalidKeyError(f"{name} is a symbolic link") from exc
        raise InvalidKeyError(f"cannot read {name}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise InvalidKeyError(f"{name} is not a regular file")
        if owner is not None and st.st_uid != owner:
            raise InvalidKeyError(
                f"{name} is owned by uid {st.st_uid}, not by this user (uid {owner}); "
                f"run jwtlite as the directory's owner, uid {st.st_uid}"
            )
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InvalidKeyError(
                f"{name} is accessible to other users "
                f"(mode {stat.S_IMODE(st.st_mode):o}); run chmod 600 on it"
            )
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise InvalidKeyError(f"cannot read {name}: {exc.strerror}") from exc
    if len(data) > limit:
        raise InvalidKeyError(f"{name} is too large (over {limit} bytes)")
    return data


def algorithm_switch_problem(path: str, algorithm: str) -> str | None:
    """Why the generated key at ``path`` does not serve ``algorithm``, if it serves another.

    That is when it is a good key for another algorithm (``ALGORITHM`` was changed after the key
    was made); else None.

    Only called after :func:`load_key_file` refused the file, so a start-up that works
    never pays for it.
    """
    try:
        data = read_private_file(
            path, limit=MAX_KEY_FILE_BYTES, what="key file", follow_symlinks=True, owner=None
        )
    except (InvalidKeyError, OSError):
        return None
    # Asymmetric names first: a PEM file is never a base64url secret, but try HMAC last.
    candidates = sorted(ALGORITHMS, key=lambda name: name.startswith("HS"))
    for other in candidates:
        if other == algorithm:
            continue
        try:
            _key_from_file_data(data, path, other)
        except InvalidKeyError:
            continue
        return (
            f"the key generated on an earlier start at {path} is a {other} key, not a "
            f"{algorithm} key (ALGORITHM was changed since). Set JWTLITE_ALGORITHM={other} "
            f"again; or move {path} away so that a new {algorithm} key is generated (every "
            "token signed with the old key then stops verifying); or use JWTLITE_KEYS_DIR and "
            "`python -m jwtlite rotate-key --algorithm "
            f"{algorithm}` to switch without logging anyone out"
        )
    return None
