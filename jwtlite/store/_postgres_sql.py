"""What the PostgreSQL store says to the server: the schema's migrations and the statements.

Text only (the store in :mod:`jwtlite.store.postgres` runs it). Every value is a parameter;
the few statements assembled from pieces join fixed fragments of this module.

Each entry of :data:`MIGRATIONS` moves the schema from version N to N + 1 and is recorded as
one row of ``jwtlite_migrations``. Append, never edit: a database in the field may be at any
earlier version. Version 1 is the SQLite schema's current shape (users, refresh tokens,
attempts by kind, subject and address), so both backends answer every query alike.

The store applies the pending entries at start-up in one transaction that first takes
:data:`MIGRATION_LOCK` (a transaction-level advisory lock), so however many instances start
together, one migrates and the others find the work done.
"""

from __future__ import annotations

import hashlib

from jwtlite.store.base import AttemptLimits

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TABLES",
    "bucket_lock_key",
    "bucket_locks",
    "take_attempt",
]

# pg_advisory_xact_lock(int, int): the two-key space never meets the one-key (bigint) space
# the throttle's bucket locks use. 0x6a776c74 is "jwlt".
MIGRATION_LOCK = (0x6A776C74, 1)

CREATE_MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS jwtlite_migrations (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # An identity column draws from a sequence, which never hands out a value twice
        # (not even after a rollback), so a deleted user's id is never reused and their
        # unexpired access tokens (user_id claim) cannot authenticate as a later user.
        """CREATE TABLE users (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            username text NOT NULL,
            username_key text NOT NULL,
            username_skeleton text,
            email text NOT NULL DEFAULT '',
            password_hash text NOT NULL,
            is_active boolean NOT NULL DEFAULT true,
            date_joined double precision NOT NULL,
            last_login double precision
        )""",
        # The unique indexes settle registration races: of concurrent inserts of one key, or
        # of two look-alikes (same UTS #39 skeleton), one row is made. NULLs never collide.
        "CREATE UNIQUE INDEX users_username_key ON users (username_key)",
        "CREATE UNIQUE INDEX users_username_skeleton ON users (username_skeleton)",
        """CREATE TABLE refresh_tokens (
            jti text PRIMARY KEY,
            user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            family text NOT NULL,
            issued_at bigint,
            expires_at bigint NOT NULL,
            state text NOT NULL CHECK (state IN ('active', 'spent', 'blacklisted'))
        )""",
        "CREATE INDEX refresh_tokens_family ON refresh_tokens (family)",
        "CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at)",
        # ON DELETE CASCADE scans the child table by user_id without this index.
        "CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id)",
        # Throttling counts attempts by kind ('login', 'register'), by subject (a keyed hash
        # of the username, never the name) and by client address (an IPv6 client's /64).
        """CREATE TABLE attempts (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            kind text NOT NULL,
            subject text NOT NULL,
            address text NOT NULL,
            at double precision NOT NULL
        )""",
        "CREATE INDEX attempts_pair ON attempts (kind, subject, address, at)",
        "CREATE INDEX attempts_subject ON attempts (kind, subject, at)",
        "CREATE INDEX attempts_address ON attempts (kind, address, at)",
        "CREATE INDEX attempts_at ON attempts (kind, at)",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)

#: The tables the schema owns (what a test empties between tests).
TABLES = ("users", "refresh_tokens", "attempts")

# -- statements ---------------------------------------------------------------------------

USER_COLUMNS = "id, username, email, password_hash, is_active, date_joined, last_login"
USER_BY_ID = f"SELECT {USER_COLUMNS} FROM users WHERE id = %s"  # noqa: S608 - constant
USER_BY_KEY = f"SELECT {USER_COLUMNS} FROM users WHERE username_key = %s"  # noqa: S608
TOKEN_BY_JTI = (
    "SELECT jti, user_id, family, issued_at, expires_at, state FROM refresh_tokens WHERE jti = %s"
)
TOKEN_AND_USER_BY_JTI = (
    "SELECT t.jti, t.user_id, t.family, t.issued_at, t.expires_at, t.state,"
    " u.id, u.username, u.email, u.password_hash, u.is_active, u.date_joined, u.last_login"
    " FROM refresh_tokens AS t JOIN users AS u ON u.id = t.user_id WHERE t.jti = %s"
)
TOKEN_INSERT = (
    "INSERT INTO refresh_tokens (jti, user_id, family, issued_at, expires_at, state)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
)
# NOT EXISTS spares a sequence value when the name is plainly taken; ON CONFLICT (any unique
# index) decides the races NOT EXISTS cannot see.
CREATE_USER = """
    INSERT INTO users
        (username, username_key, username_skeleton, email, password_hash, date_joined)
    SELECT %(username)s, %(key)s, %(skeleton)s, %(email)s, %(hash)s, %(now)s
    WHERE NOT EXISTS (
        SELECT 1 FROM users WHERE username_key = %(key)s OR username_skeleton = %(skeleton)s
    )
    ON CONFLICT DO NOTHING
    RETURNING id
"""
START_SESSION = """
    WITH forgotten AS (
        DELETE FROM attempts
        WHERE kind = 'login' AND subject = %(subject)s AND address = %(address)s
    ), logged_in AS (
        UPDATE users SET last_login = %(now)s, password_hash = coalesce(%(hash)s, password_hash)
        WHERE id = %(user_id)s
    )
    INSERT INTO refresh_tokens (jti, user_id, family, issued_at, expires_at, state)
    VALUES (%(jti)s, %(token_user)s, %(family)s, %(issued_at)s, %(expires_at)s, %(state)s)
"""
ROTATE = """
    WITH spent AS (
        UPDATE refresh_tokens SET state = 'spent'
        WHERE jti = %(old)s AND state = 'active'
        RETURNING jti
    )
    INSERT INTO refresh_tokens (jti, user_id, family, issued_at, expires_at, state)
    SELECT %(jti)s, %(user_id)s, %(family)s, %(issued_at)s, %(expires_at)s, %(state)s
    FROM spent
    RETURNING jti
"""
# SKIP LOCKED: instances purging at the same moment share the work instead of queueing.
PURGE_TOKENS = """
    DELETE FROM refresh_tokens WHERE jti IN (
        SELECT jti FROM refresh_tokens WHERE expires_at <= %s LIMIT %s FOR UPDATE SKIP LOCKED
    )
"""
PURGE_ATTEMPTS = """
    DELETE FROM attempts WHERE id IN (
        SELECT id FROM attempts WHERE kind = %s AND at <= %s LIMIT %s FOR UPDATE SKIP LOCKED
    )
"""

SCHEMA_VERSION_NOW = "SELECT coalesce(max(version), 0) FROM jwtlite_migrations"
RECORD_MIGRATION = "INSERT INTO jwtlite_migrations (version) VALUES (%s)"


def bucket_locks(count: int) -> str:
    """A statement taking ``count`` transaction-level advisory locks, in parameter order."""
    return "SELECT " + ", ".join(["pg_advisory_xact_lock(%s)"] * count)


def take_attempt(
    *, kind: str, subject: str, address: str, now: float, since: float, limits: AttemptLimits
) -> tuple[str, list[object]]:
    """The statement that counts the attempts of ``kind`` after ``since`` in each limited
    bucket and, when none is full, records this one; it answers one row: the time of the
    oldest attempt in a full bucket, or NULL when the attempt was recorded. Its parameters.

    One statement, so it counts on one snapshot taken after the bucket locks were granted
    (the caller's earlier statement), and the count and the insert cannot drift apart.
    """
    buckets = [
        (limit, condition, params)
        for limit, condition, params in (
            (limits.per_pair, "subject = %s AND address = %s", (subject, address)),
            (limits.per_subject, "subject = %s", (subject,)),
            (limits.per_address, "address = %s", (address,)),
        )
        if limit is not None
    ]
    counts = (
        " UNION ALL ".join(
            "(SELECT %s::bigint AS lim, count(*) AS n, min(at) AS first FROM attempts"  # noqa: S608
            f" WHERE kind = %s AND {condition} AND at > %s)"
            for _, condition, _ in buckets
        )
        or "SELECT 1::bigint AS lim, 0::bigint AS n, NULL::float8 AS first"
    )
    query = f"""
        WITH buckets AS ({counts}),
        blocked AS (SELECT max(first) AS oldest FROM buckets WHERE n >= lim),
        counted AS (
            INSERT INTO attempts (kind, subject, address, at)
            SELECT %s, %s, %s, %s FROM blocked WHERE oldest IS NULL
        )
        SELECT oldest FROM blocked
    """  # noqa: S608 - fixed fragments; every value is a parameter
    values = [value for limit, _, params in buckets for value in (limit, kind, *params, since)]
    return query, [*values, kind, subject, address, now]


def bucket_lock_key(*parts: str) -> int:
    """A signed 64-bit advisory-lock key for a throttle bucket (a collision only serialises
    two unrelated buckets, never loosens one)."""
    data = "\0".join(parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)
