"""Credentials: what a username and a password may be, and how a password is hashed.

:mod:`~jwtlite.service.credentials.validators` holds the registration rules,
:mod:`~jwtlite.service.credentials.confusables` Unicode's confusable skeletons for
usernames, :mod:`~jwtlite.service.credentials.passwords` the PBKDF2 hasher and its
admission; ``data/`` the bundled lists (see its README for their licences).
"""
