"""Write docs/reference/settings.md from :class:`jwtlite.service.Settings` itself.

``.venv/bin/python docs/settings_reference.py`` rewrites the page; ``tests/project/test_docs.py`` fails
when the committed page differs from what this writes (a setting added, removed or given
another default without the page following). Names and defaults come from the dataclass and
the launcher; only the meanings are written here, and every setting must have one.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jwtlite.cli.serve import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_THREADS  # noqa: E402
from jwtlite.service.settings import ENV_PREFIX, LAUNCHER_VARIABLES, Settings  # noqa: E402

PAGE = ROOT / "docs" / "reference" / "settings.md"

INTRO = """\
# Settings

Every setting is an environment variable `JWTLITE_<NAME>` (read by `serve.py`, `python -m
jwtlite` and `jwtlite.web.wsgi`), or the lower-case field of `jwtlite.service.Settings` in
code (`Settings(access_token_lifetime=60)`). An unknown `JWTLITE_` name is refused, with the
nearest known name suggested, so a typo does not pass silently; a bad value stops start-up
with one line naming the setting.

Without `SECRET_KEY`, `PRIVATE_KEY_FILE` or `KEYS_DIR`, a SQLite deployment generates its key
on first run beside the database (`jwtlite.key` beside `jwtlite.sqlite3`, mode 0600); a
PostgreSQL one refuses to start, because instances must share one key.

This page is generated from the code (`.venv/bin/python docs/settings_reference.py`); a test fails when
it is out of date.
"""

#: The page's sections, in order, and the settings in each.
SECTIONS: list[tuple[str, list[str]]] = [
    (
        "Store",
        [
            "DATABASE",
            "DATABASE_POOL_SIZE",
            "DATABASE_CONNECT_TIMEOUT",
            "DATABASE_STATEMENT_TIMEOUT",
        ],
    ),
    (
        "Signing keys",
        ["ALGORITHM", "SECRET_KEY", "PRIVATE_KEY_FILE", "KEYS_DIR", "KEYS_RELOAD_INTERVAL"],
    ),
    (
        "Tokens and accounts",
        [
            "ACCESS_TOKEN_LIFETIME",
            "REFRESH_TOKEN_LIFETIME",
            "ROTATE_REFRESH_TOKENS",
            "ROTATION_GRACE_PERIOD",
            "ALLOW_ACCOUNT_DELETION",
            "ISSUER",
            "AUDIENCE",
            "ACCESS_TOKEN_FORMAT",
            "CLIENT_ID",
            "LEEWAY",
            "USER_STATE_CACHE_SECONDS",
        ],
    ),
    (
        "CORS",
        [
            "CORS_ALLOWED_ORIGINS",
            "CORS_ALLOWED_ORIGIN_REGEXES",
            "CORS_ALLOW_ALL_ORIGINS",
            "CORS_ALLOW_CREDENTIALS",
            "CORS_PREFLIGHT_MAX_AGE",
        ],
    ),
    (
        "Throttling and requests",
        [
            "LOGIN_MAX_FAILURES",
            "LOGIN_MAX_FAILURES_PER_USERNAME",
            "LOGIN_MAX_FAILURES_PER_ADDRESS",
            "LOGIN_FAILURE_WINDOW",
            "REGISTRATION_MAX_PER_ADDRESS",
            "REGISTRATION_WINDOW",
            "TRUSTED_PROXIES",
            "MAX_BODY_SIZE",
        ],
    ),
    (
        "Password hashing",
        [
            "PASSWORD_HASH_MEMORY_KIB",
            "PASSWORD_HASH_ITERATIONS",
            "PASSWORD_HASH_LANES",
            "PASSWORD_HASH_CONCURRENCY",
            "PASSWORD_HASH_PER_CLIENT",
            "PASSWORD_HASH_QUEUE",
            "PASSWORD_HASH_WAIT",
        ],
    ),
    ("Cookies", ["TOKEN_TRANSPORT", "COOKIE_SECURE", "COOKIE_SAMESITE", "COOKIE_DOMAIN"]),
    ("Observability", ["METRICS", "METRICS_ALLOWED", "LOG_FORMAT"]),
    ("Server (`serve.py`)", ["HOST", "PORT", "THREADS"]),
]

#: What each setting means: the one part of the page written by hand.
MEANINGS: dict[str, str] = {
    "DATABASE": "SQLite file or `file:` URI (created with mode 0600), or `postgresql://user:pass@host:5432/db` (also `postgres://`, any libpq URL) for [several instances](../guides/instances.md); the password never shows in a log, an error or a repr",
    "DATABASE_POOL_SIZE": "PostgreSQL connections per process; `0`: one per server thread (`THREADS`, at most 16; 8 when embedded)",
    "DATABASE_CONNECT_TIMEOUT": "seconds to open a PostgreSQL connection or wait for a pooled one; past it, 503",
    "DATABASE_STATEMENT_TIMEOUT": "seconds any PostgreSQL statement may run or wait for a lock; past it, 503",
    "ALGORITHM": "`HS256/384/512`, `RS*`, `PS*`, `ES256/384/512`, `EdDSA`, `Ed25519`, `Ed448` (RFC 9864: the token's `alg` names the curve; `EdDSA` is deprecated there but kept)",
    "SECRET_KEY": "HMAC secret (at least the hash size: 32 bytes for HS256)",
    "PRIVATE_KEY_FILE": "PEM private key (or, for HS*, a file holding a base64url secret)",
    "KEYS_DIR": "a key directory holding the current signing key and the retired ones (see [Rotating signing keys](../guides/key-rotation.md)); created (mode 0700) with a first `ALGORITHM` key when missing or empty; not together with `SECRET_KEY`/`PRIVATE_KEY_FILE`",
    "KEYS_RELOAD_INTERVAL": "seconds between checks of `KEYS_DIR` for a rotation made elsewhere (one `stat`; the keys are read only when it changed); SIGHUP and a token naming an unknown `kid` check at once. A retired key's tokens are believed `max(this, 60) + LEEWAY` after its retirement: instances on one directory share `LEEWAY`, and an interval above 60 must be set on all of them",
    "ACCESS_TOKEN_LIFETIME": "seconds an access token lives",
    "REFRESH_TOKEN_LIFETIME": "seconds a refresh token (and its session) lives",
    "ROTATE_REFRESH_TOKENS": "refresh returns a new refresh token and spends the old one; reuse revokes the family",
    "ROTATION_GRACE_PERIOD": "seconds during which a just-spent refresh token gets the same successor again instead of revoking its session (see [Sessions](../guides/sessions.md))",
    "ALLOW_ACCOUNT_DELETION": "serve `DELETE /accounts/me/` (off by default: simplejwt answers it 405)",
    "ISSUER": "the `iss` claim written into every token and required of every token checked; "
    "an `http(s)` URL (the service's public URL) also publishes the issuer's metadata at "
    "`/.well-known/openid-configuration`; a value that starts as a URL must be a plain one "
    "(no userinfo, query, fragment, percent-escapes, spaces or dot segments)",
    "AUDIENCE": "the `aud` claim written into every token and required of every token checked",
    "ACCESS_TOKEN_FORMAT": "`simplejwt` (the seed's claims, header `typ: JWT`) or `rfc9068` (RFC 9068's JWT profile for access tokens: header `typ: at+jwt`, and `sub` and `client_id` beside the seed's claims, which strict validators such as `express-oauth2-jwt-bearer`'s `strict: true` require); `rfc9068` needs `ISSUER` and `AUDIENCE`",
    "CLIENT_ID": "the `client_id` claim of `rfc9068` access tokens: the client the tokens are issued to (1 to 255 printable ASCII characters)",
    "LEEWAY": "seconds of clock skew allowed when checking `exp`, `nbf` and `iat`",
    "CORS_ALLOWED_ORIGINS": "comma-separated exact origins",
    "CORS_ALLOWED_ORIGIN_REGEXES": "comma-separated, matched in full",
    "CORS_ALLOW_ALL_ORIGINS": "`*` (refused together with credentials)",
    "CORS_ALLOW_CREDENTIALS": "`Access-Control-Allow-Credentials: true` for allowed origins (cookies, see [Cookies](../guides/cookies.md))",
    "CORS_PREFLIGHT_MAX_AGE": "seconds a browser may cache a preflight answer (`Access-Control-Max-Age`)",
    "LOGIN_MAX_FAILURES": "login attempts at one username (existing or not) from one client address within the window, then 429",
    "LOGIN_MAX_FAILURES_PER_USERNAME": "login attempts at one username from all addresses within the window (guessing spread over many addresses)",
    "LOGIN_MAX_FAILURES_PER_ADDRESS": "login attempts from one client address at any username within the window",
    "LOGIN_FAILURE_WINDOW": "seconds the login limits count over",
    "REGISTRATION_MAX_PER_ADDRESS": "registrations from one client address within the registration window, then 429",
    "REGISTRATION_WINDOW": "seconds the registration limit counts over",
    "USER_STATE_CACHE_SECONDS": "how long a process may trust what it last read of a user's and a session's state when checking an access token (`0`: read every time); the bound for a revocation made elsewhere to be seen",
    "TRUSTED_PROXIES": "comma-separated proxy IPs whose `X-Forwarded-For` is believed; an IPv4-mapped address (`::ffff:10.0.0.5`) is the same proxy as its IPv4 address, and a zone id (`fe80::1%eth0`) is refused (peers are compared without one)",
    "MAX_BODY_SIZE": "larger request bodies get 413",
    "PASSWORD_HASH_MEMORY_KIB": "Argon2id memory cost in KiB (OWASP's minimum); raising a cost rehashes each password at its next login; lowering one does not (instances of different costs on one database leave each other's hashes alone)",
    "PASSWORD_HASH_ITERATIONS": "Argon2id time cost",
    "PASSWORD_HASH_LANES": "Argon2id parallelism",
    "PASSWORD_HASH_CONCURRENCY": "hashes that may run at once (`0`: one per core); more wait their turn, round-robin across client addresses ([the admission model](../explanation/performance.md#admission-to-password-hashing))",
    "PASSWORD_HASH_PER_CLIENT": "logins, registrations and password checks one client address may have hashing or waiting at once (enough for an office behind one NAT address); more get 503 with `Retry-After` at once",
    "PASSWORD_HASH_QUEUE": "requests that may wait for a hash in all; each holds a server thread, so keep it below `THREADS` minus the hashing threads. When it is full, a newcomer from a lighter address takes the place of the newest waiter of the heaviest one; else 503 at once",
    "PASSWORD_HASH_WAIT": "seconds a request waits for a hashing slot before it gets 503 with `Retry-After`",
    "HOST": "the address `serve.py` binds (also `--host`)",
    "PORT": "the port `serve.py` binds, `0` for a free one (also `--port`)",
    "THREADS": "`serve.py`'s worker threads (also `--threads`); sized with `PASSWORD_HASH_QUEUE`, so that a login burst waiting for hashes leaves threads for everything else",
    "TOKEN_TRANSPORT": "`body` (tokens in the JSON body, no cookie set or read), `cookie` (HttpOnly cookies, see [Cookies](../guides/cookies.md)) or `both`",
    "COOKIE_SECURE": "`Secure` on every cookie; `false` only for plain-HTTP development (`serve.py` refuses it with a non-loopback host)",
    "COOKIE_SAMESITE": "`Lax`, `Strict` or `None` (`None` only with `COOKIE_SECURE=true`)",
    "COOKIE_DOMAIN": "the cookies' `Domain` (e.g. `example.com`); unset: host-only cookies",
    "METRICS": "serve [`GET /metrics`](../guides/observability.md) (Prometheus text format); off: 404, and `prometheus_client` is never imported",
    "METRICS_ALLOWED": "comma-separated networks (CIDR) whose clients may read `/metrics` (the client as `TRUSTED_PROXIES` resolves it); anyone else gets the 404 of an unknown path",
    "LOG_FORMAT": "how `serve.py` writes its log, the [audit log](../guides/observability.md#the-audit-log) included, to stderr: `json` (one object a line) or `text`",
}


def defaults() -> dict[str, object]:
    """Every setting's name and its default: the dataclass's fields, then the launcher's."""
    found: dict[str, object] = {
        field.name.upper(): field.default for field in dataclasses.fields(Settings)
    }
    launcher = {"HOST": DEFAULT_HOST, "PORT": DEFAULT_PORT, "THREADS": DEFAULT_THREADS}
    if {ENV_PREFIX + name for name in launcher} != LAUNCHER_VARIABLES:
        raise ValueError("the launcher's variables changed: document them here")
    return found | launcher


def shown(value: object) -> str:
    """A default as the environment spells it."""
    if value is None or value == ():
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, tuple):
        return "`" + ",".join(str(item) for item in value) + "`"
    return f"`{value}`"


def render() -> str:
    """The page; raises ValueError when a setting and the meanings disagree."""
    known = defaults()
    listed = [name for _, names in SECTIONS for name in names]
    problems = sorted(set(known) ^ set(listed)) + sorted(set(known) ^ set(MEANINGS))
    if problems or len(listed) != len(set(listed)):
        raise ValueError(f"settings and their documentation disagree: {problems}")
    parts = [INTRO]
    for title, names in SECTIONS:
        parts.append(f"\n## {title}\n\n| name | default | meaning |\n|---|---|---|\n")
        parts.extend(f"| `{name}` | {shown(known[name])} | {MEANINGS[name]} |\n" for name in names)
    return "".join(parts)


if __name__ == "__main__":
    PAGE.write_text(render(), encoding="utf-8")
