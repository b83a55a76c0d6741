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

from jwtlite.store.base import LOGIN_SUCCESS, AttemptLimits

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
    (
        # Sessions (SQLite's migration 3): a session is a refresh-token family made visible;
        # refresh_tokens.family holds its id. Its state decides whether its access tokens
        # still count ('revoked': no).
        """CREATE TABLE sessions (
            id text PRIMARY KEY,
            user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            created_at double precision NOT NULL,
            last_used_at double precision NOT NULL,
            expires_at bigint NOT NULL,
            user_agent text NOT NULL DEFAULT '',
            address text NOT NULL DEFAULT '',
            state text NOT NULL CHECK (state IN ('active', 'ended', 'revoked'))
        )""",
        # Also the index the ON DELETE CASCADE from users scans by.
        "CREATE INDEX sessions_user_state ON sessions (user_id, state)",
        "CREATE INDEX sessions_expires_at ON sessions (expires_at)",
        # The rotation grace period: when a token was spent and which token replaced it.
        "ALTER TABLE refresh_tokens ADD COLUMN spent_at double precision",
        "ALTER TABLE refresh_tokens ADD COLUMN successor text",
        # Session ids are 16 hex digits (the first half of every jti of the session); an
        # existing family, named by its first token's 32-digit jti, keeps the first half.
        "UPDATE refresh_tokens SET family = left(family, 16) WHERE length(family) > 16",
        """INSERT INTO sessions
            (id, user_id, created_at, last_used_at, expires_at, user_agent, address, state)
            SELECT family, min(user_id), coalesce(min(issued_at), 0),
                   coalesce(max(issued_at), 0), max(expires_at), '', '',
                   CASE WHEN bool_or(state = 'active') THEN 'active' ELSE 'ended' END
            FROM refresh_tokens GROUP BY family
            ON CONFLICT (id) DO NOTHING""",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)

#: The tables the schema owns (what a test empties between tests).
TABLES = ("users", "sessions", "refresh_tokens", "attempts")

# -- statements ---------------------------------------------------------------------------

USER_COLUMNS = "id, username, email, password_hash, is_active, date_joined, last_login"
USER_BY_ID = f"SELECT {USER_COLUMNS} FROM users WHERE id = %s"  # noqa: S608 - constant
USER_BY_KEY = f"SELECT {USER_COLUMNS} FROM users WHERE username_key = %s"  # noqa: S608
# Both columns have a unique index: one indexed probe each.
USERNAME_TAKEN = "SELECT 1 FROM users WHERE username_key = %s OR username_skeleton = %s LIMIT 1"
TOKEN_COLUMNS = "jti, user_id, family, issued_at, expires_at, state, spent_at, successor"
TOKEN_BY_JTI = f"SELECT {TOKEN_COLUMNS} FROM refresh_tokens WHERE jti = %s"  # noqa: S608
# Whether a rotation whose COMMIT went unanswered landed: its old token names its successor.
ROTATION_LANDED = "SELECT 1 FROM refresh_tokens WHERE jti = %s AND successor = %s"
SESSION_COLUMNS = "id, user_id, created_at, last_used_at, expires_at, user_agent, address, state"
# One indexed read: the token by its primary key, its user and its session by theirs.
TOKEN_USER_SESSION_BY_JTI = (
    "SELECT t.jti, t.user_id, t.family, t.issued_at, t.expires_at, t.state, t.spent_at,"
    " t.successor,"
    " u.id, u.username, u.email, u.password_hash, u.is_active, u.date_joined, u.last_login,"
    " s.id, s.user_id, s.created_at, s.last_used_at, s.expires_at, s.user_agent, s.address,"
    " s.state"
    " FROM refresh_tokens AS t JOIN users AS u ON u.id = t.user_id"
    " LEFT JOIN sessions AS s ON s.id = t.family AND s.user_id = t.user_id WHERE t.jti = %s"
)
TOKEN_INSERT = (
    f"INSERT INTO refresh_tokens ({TOKEN_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"  # noqa: S608
)
SESSION_INSERT = f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"  # noqa: S608
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
# A login in one statement: forget the pair's attempts and its earlier success, remember this
# success (one row per pair), set last_login (and a rehashed password), insert the session and
# its first token. The DELETE and the INSERT of attempts see one snapshot, so the DELETE never
# meets the row the INSERT adds.
# A login, in one statement: the user's row first (active, the hash the password was checked
# against still current; the row lock orders it against a concurrent password change), and
# the rest only when that row was written, so a login racing a change, a deactivation or a
# deletion writes nothing (and breaks no foreign key).
START_SESSION = """
    WITH logged_in AS (
        UPDATE users SET last_login = %(now)s, password_hash = coalesce(%(hash)s, password_hash)
        WHERE id = %(user_id)s AND password_hash = %(verified)s AND is_active
        RETURNING id
    ), forgotten AS (
        DELETE FROM attempts
        WHERE kind IN (%(attempt)s, %(success)s)
          AND subject = %(subject)s AND address = %(address)s
          AND EXISTS (SELECT 1 FROM logged_in)
    ), remembered AS (
        INSERT INTO attempts (kind, subject, address, at)
        SELECT %(success)s, %(subject)s, %(address)s, %(now)s FROM logged_in
    ), started AS (
        INSERT INTO sessions
            (id, user_id, created_at, last_used_at, expires_at, user_agent, address, state)
        SELECT %(s_id)s, %(s_user)s, %(s_created)s, %(s_used)s, %(s_expires)s, %(s_agent)s,
               %(s_address)s, %(s_state)s
        FROM logged_in
    )
    INSERT INTO refresh_tokens
        (jti, user_id, family, issued_at, expires_at, state, spent_at, successor)
    SELECT %(jti)s, %(token_user)s, %(family)s, %(issued_at)s, %(expires_at)s, %(state)s,
           %(spent_at)s, %(successor)s
    FROM logged_in
"""
# Taken first by a rotation, so every change that touches a session and its tokens locks the
# session row before the token rows (rotation, end_session, revoke_family): no deadlock.
LOCK_SESSION = "SELECT 1 FROM sessions WHERE id = %s FOR NO KEY UPDATE"
# Spend the old token (noting when and its successor), insert the new one and note the use on
# the session, only when the old token was active; one statement.
ROTATE = """
    WITH spent AS (
        UPDATE refresh_tokens SET state = 'spent', spent_at = %(at)s, successor = %(jti)s
        WHERE jti = %(old)s AND state = 'active'
        RETURNING jti
    ), used AS (
        UPDATE sessions SET last_used_at = %(at)s,
            expires_at = greatest(expires_at, %(expires_at)s),
            user_agent = coalesce(%(agent)s, user_agent),
            address = coalesce(%(address)s, address)
        WHERE id = %(family)s AND EXISTS (SELECT 1 FROM spent)
    )
    INSERT INTO refresh_tokens
        (jti, user_id, family, issued_at, expires_at, state, spent_at, successor)
    SELECT %(jti)s, %(token_user)s, %(family)s, %(issued_at)s, %(expires_at)s, %(state)s,
           %(spent_at)s, %(successor)s
    FROM spent
    RETURNING jti
"""
REVOKE_SESSION = "UPDATE sessions SET state = 'revoked' WHERE id = %s AND state <> 'revoked'"
BLACKLIST_FAMILY = (
    "UPDATE refresh_tokens SET state = 'blacklisted' WHERE family = %s AND state <> 'blacklisted'"
)
BLACKLIST_USER = (
    "UPDATE refresh_tokens SET state = 'blacklisted' WHERE user_id = %s AND state <> 'blacklisted'"
)
TOUCH_SESSION = (
    "UPDATE sessions SET last_used_at = %s, user_agent = %s, address = %s"
    " WHERE id = %s AND state = 'active'"
)
LIST_SESSIONS = (
    f"SELECT {SESSION_COLUMNS} FROM sessions"  # noqa: S608 - fixed column list
    " WHERE user_id = %s AND state = 'active' AND expires_at > %s"
    " ORDER BY created_at DESC, id"
)
# End one session of one user and blacklist its tokens, in one statement; the session row is
# locked (by the UPDATE that the token UPDATE reads) before any token row. Answers one row per
# session ended (none or one).
END_SESSION = """
    WITH ended AS (
        UPDATE sessions SET state = %(state)s
        WHERE id = %(id)s AND user_id = %(user_id)s AND state = ANY(%(allowed)s)
        RETURNING id
    ), blacklisted AS (
        UPDATE refresh_tokens SET state = 'blacklisted'
        WHERE family IN (SELECT id FROM ended) AND state <> 'blacklisted'
    )
    SELECT id FROM ended
"""
END_USER_SESSIONS = "UPDATE sessions SET state = %s WHERE user_id = %s AND state = ANY(%s)"
SESSION_STATE = (
    "SELECT u.is_active, s.state FROM users AS u"
    " LEFT JOIN sessions AS s ON s.id = %s AND s.user_id = u.id WHERE u.id = %s"
)
# SKIP LOCKED: instances purging at the same moment share the work instead of queueing.
PURGE_TOKENS = """
    DELETE FROM refresh_tokens WHERE jti IN (
        SELECT jti FROM refresh_tokens WHERE expires_at <= %s LIMIT %s FOR UPDATE SKIP LOCKED
    )
"""
PURGE_SESSIONS = """
    DELETE FROM sessions WHERE id IN (
        SELECT id FROM sessions WHERE expires_at <= %s LIMIT %s FOR UPDATE SKIP LOCKED
    )
"""
PURGE_ATTEMPTS = """
    DELETE FROM attempts WHERE id IN (
        SELECT id FROM attempts WHERE kind = %s AND at <= %s LIMIT %s FOR UPDATE SKIP LOCKED
    )
"""

SCHEMA_VERSION_NOW = "SELECT coalesce(max(version), 0) FROM jwtlite_migrations"
RECORD_MIGRATION = "INSERT INTO jwtlite_migrations (version) VALUES (%s)"
# A migration may take long on a big table, and other instances wait their turn.
NO_STATEMENT_TIMEOUT = "SET LOCAL statement_timeout = 0"
TAKE_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(%s, %s)"
PING = "SELECT 1"
SET_ACTIVE = "UPDATE users SET is_active = %s WHERE username_key = %s"
DELETE_USER = "DELETE FROM users WHERE id = %s"
DELETE_USER_IF_VERIFIED = "DELETE FROM users WHERE id = %s AND password_hash = %s"
BLACKLIST_TOKEN = "UPDATE refresh_tokens SET state = 'blacklisted' WHERE jti = %s"
SET_PASSWORD = "UPDATE users SET password_hash = %s WHERE id = %s"
SET_PASSWORD_IF_VERIFIED = (
    "UPDATE users SET password_hash = %s WHERE id = %s AND password_hash = %s"
)
FORGET_LOGIN_FAILURES = "DELETE FROM attempts WHERE kind = %s AND subject = %s AND address = %s"
RETURN_ATTEMPT = (
    "DELETE FROM attempts WHERE id = (SELECT id FROM attempts"
    " WHERE kind = %s AND subject = %s AND address = %s AND at = %s LIMIT 1)"
)


def bucket_locks(count: int) -> str:
    """A statement taking ``count`` transaction-level advisory locks, in parameter order."""
    return "SELECT " + ", ".join(["pg_advisory_xact_lock(%s)"] * count)


def take_attempt(
    *, kind: str, subject: str, address: str, now: float, since: float, limits: AttemptLimits
) -> tuple[str, list[object]]:
    """The statement (and its parameters) that records an attempt unless a bucket is full.

    It counts the attempts of ``kind`` after ``since`` in each limited bucket and, when none
    is full, records this one; it answers one row: the time of the oldest attempt in a full
    bucket, or NULL when the attempt was recorded.

    One statement, so it counts on one snapshot taken after the bucket locks were granted
    (the caller's earlier statement), and the count and the insert cannot drift apart. When
    ``limits.trusted_since`` is set, the per-subject bucket has no limit (NULL: never full)
    for a pair with a :data:`LOGIN_SUCCESS` after that time, as SQLite's ``_trusted`` says.
    """
    # (the limit as SQL, its parameters, the bucket's condition, its parameters)
    buckets: list[tuple[str, tuple[object, ...], str, tuple[object, ...]]] = []
    if limits.per_pair is not None:
        pair = "subject = %s AND address = %s"
        buckets.append(("%s::bigint", (limits.per_pair,), pair, (subject, address)))
    if limits.per_subject is not None:
        buckets.append((*_per_subject_limit(subject, address, limits), "subject = %s", (subject,)))
    if limits.per_address is not None:
        buckets.append(("%s::bigint", (limits.per_address,), "address = %s", (address,)))
    counts = (
        " UNION ALL ".join(
            f"(SELECT {limit_sql} AS lim, count(*) AS n, min(at) AS first FROM attempts"  # noqa: S608
            f" WHERE kind = %s AND {condition} AND at > %s)"
            for limit_sql, _, condition, _ in buckets
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
    values = [
        value
        for _, limit_params, _, params in buckets
        for value in (*limit_params, kind, *params, since)
    ]
    return query, [*values, kind, subject, address, now]


def _per_subject_limit(
    subject: str, address: str, limits: AttemptLimits
) -> tuple[str, tuple[object, ...]]:
    """The per-subject limit as SQL, and its parameters.

    NULL (never full) for a pair with a login success after ``limits.trusted_since``."""
    if limits.trusted_since is None:
        return "%s::bigint", (limits.per_subject,)
    trusted = (
        "CASE WHEN EXISTS (SELECT 1 FROM attempts WHERE kind = %s AND subject = %s"
        " AND address = %s AND at > %s) THEN NULL ELSE %s::bigint END"
    )
    return trusted, (LOGIN_SUCCESS, subject, address, limits.trusted_since, limits.per_subject)


def bucket_lock_key(*parts: str) -> int:
    """A signed 64-bit advisory-lock key for a throttle bucket.

    A collision only serialises two unrelated buckets, never loosens one."""
    data = "\0".join(parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)
