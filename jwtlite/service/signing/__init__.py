"""Signing keys: the key file, the key directory with its ``ring.json``, and the live ring.

:mod:`~jwtlite.service.signing.keyfile` reads and writes one private key file;
:mod:`~jwtlite.service.signing.directory` owns ``KEYS_DIR`` (files, lock, rotation);
:mod:`~jwtlite.service.signing.ringfile` is the strict ``ring.json`` format;
:mod:`~jwtlite.service.signing.ring` an immutable snapshot of the keys;
:mod:`~jwtlite.service.signing.keyring` the live ring every instance reloads;
:func:`load_signing_keys` is what the service signs with, as the settings say.
"""

from __future__ import annotations

import time

from jwtlite.errors import InvalidKeyError
from jwtlite.keys import Key, KeySet
from jwtlite.service.errors import ConfigurationError
from jwtlite.service.settings import Settings
from jwtlite.service.signing.directory import KeyDirectory
from jwtlite.service.signing.keyfile import algorithm_switch_problem, load_or_create_key_file
from jwtlite.service.signing.keyring import KeyRing, keep_window

__all__ = ["load_signing_keys"]


def load_signing_keys(settings: Settings) -> Key | KeySet | KeyRing:
    """The signing key of ``settings``.

    An HMAC :class:`Key`, a one-key :class:`KeySet` whose ``kid`` (the key's RFC 7638
    thumbprint) the published JWKS names, or with ``KEYS_DIR`` a
    :class:`~jwtlite.service.signing.keyring.KeyRing` following that directory.

    From ``KEYS_DIR``, ``SECRET_KEY`` or ``PRIVATE_KEY_FILE``, else generated on first run
    and kept beside the database with mode 0600, so tokens survive a restart.

    Raises:
        ConfigurationError: the key file or directory is missing, unreadable, exposed, holds
            something else, or not a key.
    """
    if settings.keys_dir is not None:
        try:
            return KeyRing.open(
                KeyDirectory(settings.keys_dir),
                settings.algorithm,
                reload_interval=settings.keys_reload_interval,
                now=int(time.time()),
                keep_seconds=keep_window(settings),
            )
        except InvalidKeyError as exc:
            raise ConfigurationError("KEYS_DIR", str(exc)) from exc
    try:
        if settings.secret_key is not None:
            key = Key(settings.secret_key.encode(), settings.algorithm)
        else:
            key = load_or_create_key_file(
                settings.key_path,
                settings.algorithm,
                create=settings.private_key_file is None,
            )
    except InvalidKeyError as exc:
        if settings.secret_key is None and settings.private_key_file is None:
            problem = algorithm_switch_problem(settings.key_path, settings.algorithm)
            if problem is not None:
                raise ConfigurationError("ALGORITHM", problem) from exc
        setting = "SECRET_KEY" if settings.secret_key is not None else "PRIVATE_KEY_FILE"
        raise ConfigurationError(setting, str(exc)) from exc
    if key.is_symmetric:
        # simplejwt's header exactly: {"alg": "HS256", "typ": "JWT"}, no kid.
        return key
    if key.kid is None:
        key.kid = key.thumbprint()
    return KeySet([key])
