"""Signing keys: the key file, the key directory with its ``ring.json``, and the live ring.

:mod:`~jwtlite.service.signing.keyfile` reads and writes one private key file;
:mod:`~jwtlite.service.signing.directory` owns ``KEYS_DIR`` (files, lock, rotation);
:mod:`~jwtlite.service.signing.ringfile` is the strict ``ring.json`` format;
:mod:`~jwtlite.service.signing.ring` an immutable snapshot of the keys;
:mod:`~jwtlite.service.signing.keyring` the live ring every instance reloads.
"""
