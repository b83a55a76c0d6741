"""What the SQLite store says to the database: the schema's migrations and the statements.

Text only (the store in :mod:`jwtlite.store.sqlite` runs it). Every value is a parameter; the
few statements assembled from pieces join fixed fragments of this module.

Each entry of :data:`MIGRATIONS` moves the schema from version N to N + 1 (``PRAGMA
user_version``). Append, never edit: a database in the field may be at any earlier version.
"""

from __future__ import annotations

__all__ = [
    "MIGRATIONS",
    "PURGE_ATTEMPTS",
    "PURGE_SESSIONS",
    "PURGE_TOKENS",
    "SCHEMA_VERSION",
    "SESSION_INSERT",
    "TOKEN_BY_JTI",
    "TOKEN_INSERT",
    "TOKEN_USER_SESSION_BY_JTI",
    "USER_BY_ID",
    "USER_BY_KEY",
]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # AUTOINCREMENT: a deleted user's id is never reused, so its unexpired access
        # tokens (user_id claim) cannot authenticate as the next user registered.
        """CREATE TABLE users (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            username TEXT NOT NULL,
            username_key TEXT NOT NULL UNIQUE,
            email TEXT NOT NULL DEFAULT '',
            password_hash TEXT NOT NULL,
            is_active INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
            date_joined REAL NOT NULL,
            last_login REAL
        )""",
        """CREATE TABLE refresh_tokens (
            jti TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            family TEXT NOT NULL,
            issued_at INTEGER,
            expires_at INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('active', 'spent', 'blacklisted'))
        )""",
        "CREATE INDEX refresh_tokens_family ON refresh_tokens (family)",
        "CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at)",
        # ON DELETE CASCADE scans the child table by user_id without this index.
        "CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id)",
        """CREATE TABLE login_failures (
            id INTEGER PRIMARY KEY,
            username_key TEXT NOT NULL,
            address TEXT NOT NULL,
            at REAL NOT NULL
        )""",
        "CREATE INDEX login_failures_username_at ON login_failures (username_key, at)",
        "CREATE INDEX login_failures_address_at ON login_failures (address, at)",
        "CREATE INDEX login_failures_at ON login_failures (at)",
    ),
    (
        # Throttling counts attempts by kind ('login', 'register'), by subject (a keyed hash
        # of the username: a password typed into the username field must not sit on disk in
        # clear) and by client address (an IPv6 client's /64). The old table kept usernames
        # in clear; its rows only ever mattered for a few minutes.
        "DROP TABLE login_failures",
        """CREATE TABLE attempts (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            subject TEXT NOT NULL,
            address TEXT NOT NULL,
            at REAL NOT NULL
        )""",
        "CREATE INDEX attempts_pair ON attempts (kind, subject, address, at)",
        "CREATE INDEX attempts_subject ON attempts (kind, subject, at)",
        "CREATE INDEX attempts_address ON attempts (kind, address, at)",
        "CREATE INDEX attempts_at ON attempts (kind, at)",
        # The UTS #39 skeleton of the username: whole-script look-alikes (a Cyrillic spelling
        # of a Latin name) collide on this unique index as case variants do on username_key.
        # Rows older than this migration have none (NULLs never collide).
        "ALTER TABLE users ADD COLUMN username_skeleton TEXT",
        "CREATE UNIQUE INDEX users_username_skeleton ON users (username_skeleton)",
    ),
    (
        # A session is a refresh-token family made visible: refresh_tokens.family holds its
        # id. Its state decides whether its access tokens still count ('revoked': no).
        """CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            last_used_at REAL NOT NULL,
            expires_at INTEGER NOT NULL,
            user_agent TEXT NOT NULL DEFAULT '',
            address TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL CHECK (state IN ('active', 'ended', 'revoked'))
        )""",
        "CREATE INDEX sessions_user_state ON sessions (user_id, state)",
        "CREATE INDEX sessions_expires_at ON sessions (expires_at)",
        # The rotation grace period: when a token was spent and which token replaced it.
        "ALTER TABLE refresh_tokens ADD COLUMN spent_at REAL",
        "ALTER TABLE refresh_tokens ADD COLUMN successor TEXT",
        # Session ids are 16 hex digits (the first half of every jti of the session); an
        # existing family, named by its first token's 32-digit jti, keeps the first half.
        "UPDATE refresh_tokens SET family = substr(family, 1, 16)",
        """INSERT OR IGNORE INTO sessions
            (id, user_id, created_at, last_used_at, expires_at, user_agent, address, state)
            SELECT family, min(user_id), coalesce(min(issued_at), 0),
                   coalesce(max(issued_at), 0), max(expires_at), '', '',
                   CASE WHEN max(state = 'active') = 1 THEN 'active' ELSE 'ended' END
            FROM refresh_tokens GROUP BY family""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

USER_BY_ID = (
    "SELECT id, username, email, password_hash, is_active, date_joined, last_login"
    " FROM users WHERE id = ?"
)
USER_BY_KEY = (
    "SELECT id, username, email, password_hash, is_active, date_joined, last_login"
    " FROM users WHERE username_key = ?"
)
# Both columns have a unique index: one indexed probe each.
USERNAME_TAKEN = "SELECT 1 FROM users WHERE username_key = ? OR username_skeleton = ? LIMIT 1"
TOKEN_COLUMNS = "jti, user_id, family, issued_at, expires_at, state, spent_at, successor"
TOKEN_BY_JTI = f"SELECT {TOKEN_COLUMNS} FROM refresh_tokens WHERE jti = ?"  # noqa: S608
SESSION_COLUMNS = "id, user_id, created_at, last_used_at, expires_at, user_agent, address, state"
# One indexed read: the token by its primary key, its user and its session by theirs.
TOKEN_USER_SESSION_BY_JTI = (
    "SELECT t.jti, t.user_id, t.family, t.issued_at, t.expires_at, t.state, t.spent_at,"
    " t.successor,"
    " u.id, u.username, u.email, u.password_hash, u.is_active, u.date_joined, u.last_login,"
    " s.id, s.user_id, s.created_at, s.last_used_at, s.expires_at, s.user_agent, s.address,"
    " s.state"
    " FROM refresh_tokens AS t JOIN users AS u ON u.id = t.user_id"
    " LEFT JOIN sessions AS s ON s.id = t.family AND s.user_id = t.user_id WHERE t.jti = ?"
)
TOKEN_INSERT = f"INSERT INTO refresh_tokens ({TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
SESSION_INSERT = f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608

PURGE_TOKENS = (
    "DELETE FROM refresh_tokens WHERE jti IN"
    " (SELECT jti FROM refresh_tokens WHERE expires_at <= ? LIMIT ?)"
)
PURGE_SESSIONS = (
    "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at <= ? LIMIT ?)"
)
PURGE_ATTEMPTS = (
    "DELETE FROM attempts WHERE id IN (SELECT id FROM attempts WHERE kind = ? AND at <= ? LIMIT ?)"
)

# -- connections and the schema version ---------------------------------------------------

BEGIN_IMMEDIATE = "BEGIN IMMEDIATE"
COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"
CONNECTION_PRAGMAS = ("PRAGMA foreign_keys = ON", "PRAGMA synchronous = FULL")
WAL_MODE = "PRAGMA journal_mode = WAL"
USER_VERSION = "PRAGMA user_version"
PING = "SELECT 1"


def busy_timeout(milliseconds: int) -> str:
    """The PRAGMA setting the busy timeout (PRAGMAs take no parameters; the value is an int)."""
    return f"PRAGMA busy_timeout = {int(milliseconds)}"


def set_user_version(version: int) -> str:
    """The PRAGMA recording schema ``version`` (an int, so nothing but digits is joined)."""
    return f"PRAGMA user_version = {int(version)}"


# -- users, tokens, sessions -------------------------------------------------------------

CREATE_USER = (
    "INSERT INTO users"
    " (username, username_key, username_skeleton, email, password_hash, date_joined)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
SET_ACTIVE = "UPDATE users SET is_active = ? WHERE username_key = ?"
DELETE_USER = "DELETE FROM users WHERE id = ?"
DELETE_USER_IF_VERIFIED = "DELETE FROM users WHERE id = ? AND password_hash = ?"
SET_PASSWORD = "UPDATE users SET password_hash = ? WHERE id = ?"
# The password change of a caller who proved the password of hash ``verified``: only while
# that hash is still the user's (a change or reset in between wins).
SET_PASSWORD_IF_VERIFIED = "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?"
# A login's: only for an active user whose hash is still the one the password was checked
# against, so a login racing a password change, a deactivation or a deletion starts nothing.
LOGGED_IN = (
    "UPDATE users SET last_login = ?, password_hash = coalesce(?, password_hash)"
    " WHERE id = ? AND password_hash = ? AND is_active = 1"
)
SPEND_TOKEN = (
    "UPDATE refresh_tokens SET state = 'spent', spent_at = ?, successor = ?"
    " WHERE jti = ? AND state = 'active'"
)
EXTEND_SESSION = (
    "UPDATE sessions SET last_used_at = ?, expires_at = max(expires_at, ?),"
    " user_agent = coalesce(?, user_agent), address = coalesce(?, address)"
    " WHERE id = ?"
)
BLACKLIST_FAMILY = (
    "UPDATE refresh_tokens SET state = 'blacklisted' WHERE family = ? AND state != 'blacklisted'"
)
BLACKLIST_TOKEN = "UPDATE refresh_tokens SET state = 'blacklisted' WHERE jti = ?"
BLACKLIST_USER = (
    "UPDATE refresh_tokens SET state = 'blacklisted' WHERE user_id = ? AND state != 'blacklisted'"
)
REVOKE_SESSION = "UPDATE sessions SET state = 'revoked' WHERE id = ? AND state != 'revoked'"
TOUCH_SESSION = (
    "UPDATE sessions SET last_used_at = ?, user_agent = ?, address = ?"
    " WHERE id = ? AND state = 'active'"
)
LIST_SESSIONS = (
    f"SELECT {SESSION_COLUMNS} FROM sessions"  # noqa: S608 - fixed column list
    " WHERE user_id = ? AND state = 'active' AND expires_at > ?"
    " ORDER BY created_at DESC, id"
)
END_SESSION = "UPDATE sessions SET state = ? WHERE id = ? AND user_id = ? AND state IN (?, ?)"
END_USER_SESSIONS = "UPDATE sessions SET state = ? WHERE user_id = ? AND state IN (?, ?)"
SESSION_STATE = (
    "SELECT u.is_active, s.state FROM users AS u"
    " LEFT JOIN sessions AS s ON s.id = ? AND s.user_id = u.id WHERE u.id = ?"
)

# -- throttling ---------------------------------------------------------------------------

ADD_ATTEMPT = "INSERT INTO attempts (kind, subject, address, at) VALUES (?, ?, ?, ?)"
RETURN_ATTEMPT = (
    "DELETE FROM attempts WHERE id = (SELECT id FROM attempts"
    " WHERE kind = ? AND subject = ? AND address = ? AND at = ? LIMIT 1)"
)
FORGET_LOGINS = "DELETE FROM attempts WHERE kind IN (?, ?) AND subject = ? AND address = ?"
FORGET_LOGIN_FAILURES = "DELETE FROM attempts WHERE kind = ? AND subject = ? AND address = ?"
PAIR_SUCCEEDED = "SELECT 1 FROM attempts WHERE kind = ? AND subject = ? AND address = ? AND at > ?"
# The buckets a throttled attempt is counted in: fixed fragments, joined by count_attempts.
BY_PAIR = "subject = ? AND address = ?"
BY_SUBJECT = "subject = ?"
BY_ADDRESS = "address = ?"


def count_attempts(bucket: str) -> str:
    """Count the attempts of one kind in ``bucket`` (one of the BY_* fragments) after a time."""
    if bucket not in (BY_PAIR, BY_SUBJECT, BY_ADDRESS):
        raise ValueError("not a bucket of this module")
    return f"SELECT count(*), min(at) FROM attempts WHERE kind = ? AND {bucket} AND at > ?"  # noqa: S608
