"""The authentication rules: register, log in, verify, refresh, blacklist, authenticate.

Knows users, tokens and throttling; knows nothing of HTTP or SQL text. Request bodies arrive
as plain mappings and leave as plain dicts; every refusal is an exception from
:mod:`jwtlite.errors`, which ``jwtlite.web.app`` maps to responses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jwtlite.errors import (
    InvalidKeyError,
    JWTError,
    MalformedTokenError,
)
from jwtlite.keys import Key, KeySet
from jwtlite.service.audit import AuditLog
from jwtlite.service.context import NO_REQUEST, request_context
from jwtlite.service.credentials import validators
from jwtlite.service.credentials.confusables import username_skeleton
from jwtlite.service.credentials.passwords import PasswordHasher
from jwtlite.service.csrf import CSRF_MISSING, CSRFKey, IssuedToken
from jwtlite.service.errors import (
    AccessTokenRejectedError,
    AuthenticationError,
    ConfigurationError,
    CSRFError,
    InactiveUserError,
    ThrottledError,
    TokenRevokedError,
    ValidationError,
)
from jwtlite.service.events import Events
from jwtlite.service.fields import Fields
from jwtlite.service.sessions import (
    clean_user_agent,
    iso8601,
    needs_touch,
    new_session,
    within_grace,
)
from jwtlite.service.settings import Settings
from jwtlite.service.signing.directory import KeyDirectory
from jwtlite.service.signing.keyfile import algorithm_switch_problem, load_or_create_key_file
from jwtlite.service.signing.keyring import KeyRing, Ring, keep_window
from jwtlite.service.throttle import (
    LOGIN,
    REGISTER,
    TRUSTED,
    TRUSTED_ADDRESS_SECONDS,
    Throttle,
    address_group,
)
from jwtlite.service.tokens import ACCESS, REFRESH, ClaimsFunction, TokenMinter, session_of
from jwtlite.service.userstate import SessionCheck, UserStateCache
from jwtlite.store import RefreshRecord, Session, Store, User
from jwtlite.store.errors import StoreUnavailableError

__all__ = ["AuthService", "Principal", "load_signing_keys", "purge_expired"]

log = logging.getLogger("jwtlite")

_USERNAME_TAKEN = "A user with that username already exists."
_PURGE_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who an accepted access token speaks for: an active user, in a live session."""

    user: User
    session_id: str


def load_signing_keys(settings: Settings) -> Key | KeySet | KeyRing:
    """The signing key of ``settings``: an HMAC :class:`Key`, a one-key :class:`KeySet`
    whose ``kid`` (the key's RFC 7638 thumbprint) the published JWKS names, or with
    ``KEYS_DIR`` a :class:`~jwtlite.service.signing.keyring.KeyRing` following that directory.

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


class AuthService:
    """The service's rules over a store, a key set, a password hasher and a clock.

    Args:
        settings: lifetimes, claim checks, rotation and throttling limits.
        store: the user and token store.
        keys: a key, a key set that signs with its current key and verifies by ``kid``, or
            a key ring that follows a key directory (``KEYS_DIR``).
        hasher: hashes and verifies passwords.
        clock: returns the current Unix time; injected so tests control expiry.
        claims: a function of the :class:`~jwtlite.store.User` returning extra claims for
            access tokens, called at login and at every refresh; a reserved claim (see
            :data:`~jwtlite.service.tokens.RESERVED_CLAIMS`) or a value JSON cannot carry
            raises :class:`~jwtlite.service.errors.ConfigurationError` at the first call.
        events: where the service reports logins, refreshes, revocations and the other
            events of :mod:`jwtlite.service.events`; by default to the audit log alone.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        keys: Key | KeySet | KeyRing,
        hasher: PasswordHasher,
        clock: Callable[[], float] = time.time,
        *,
        claims: ClaimsFunction | None = None,
        events: Events | None = None,
    ) -> None:
        self.settings = settings
        self.events = events if events is not None else Events([AuditLog()])
        self.store = store
        self.keys = keys
        self.hasher = hasher
        self.clock = clock
        self.tokens = TokenMinter(settings, keys, clock, claims=claims)
        self.tokens.keyring.on_change = self._keys_reloaded
        self._next_purge = 0.0
        # From the ring's pepper, never from the current key: a rotation must not reset the
        # login counters or end every CSRF token (a single key's pepper is derived from it).
        self.throttle = Throttle(settings, store, pepper=self.tokens.keyring.pepper)
        self.csrf = CSRFKey(self.tokens.keyring.pepper)
        self.users = UserStateCache(store, clock, ttl=settings.user_state_cache_seconds)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        store: Store | None = None,
        clock: Callable[[], float] | None = None,
        claims: ClaimsFunction | None = None,
        events: Events | None = None,
    ) -> AuthService:
        """Build the service that ``settings`` describe (opening the store if not given)."""
        events = events if events is not None else Events([AuditLog()])
        hasher = PasswordHasher(
            memory_kib=settings.password_hash_memory_kib,
            iterations=settings.password_hash_iterations,
            lanes=settings.password_hash_lanes,
            concurrency=settings.password_hash_concurrency,
            queue=settings.password_hash_queue,
            per_client=settings.password_hash_per_client,
            in_flight=events.hashes_in_flight,
        )
        keys = load_signing_keys(settings)
        return cls(
            settings,
            store if store is not None else settings.open_store(),
            keys,
            hasher,
            clock or time.time,
            claims=claims,
            events=events,
        )

    # -- users ------------------------------------------------------------------------------

    def register(self, data: Mapping[str, Any], *, address: str | None) -> dict[str, Any]:
        """Create a user from ``{"username", "password", "email"?}``.

        Returns ``{"id", "username", "email"}``. Raises :class:`ValidationError` listing
        every broken rule (duplicate or look-alike username, weak password, bad email, bad
        username), or :class:`ThrottledError` when ``address`` registered too often (checked
        before the password is hashed, so a refused registration costs no hash). ``address``
        None is a trusted local caller (the command line), never throttled.
        """
        fields = Fields(data)
        username = validators.normalize_username(fields.text("username", trim=False))
        password = fields.text("password", trim=False)
        email = validators.normalize_email(fields.text("email", required=False, allow_blank=True))
        if "username" not in fields.errors:
            fields.extend("username", validators.username_problems(username))
        if "email" not in fields.errors:
            fields.extend("email", validators.email_problems(email))
        if "password" not in fields.errors:
            # Compared only with a username and e-mail that passed their own rules: a
            # refused one is not kept, and a long one would make the comparison slow.
            fields.extend(
                "password",
                validators.password_problems(
                    password,
                    username="" if "username" in fields.errors else username,
                    email="" if "email" in fields.errors else email,
                ),
            )
        fields.check()
        with self.hasher.admission(None if address is None else address_group(address)):
            if address is not None:
                self._take_registration(address)
            password_hash = self.hasher.hash(password)
        user = self.store.create_user(
            username=username,
            username_key=validators.username_key(username),
            username_skeleton=username_skeleton(username),
            email=email,
            password_hash=password_hash,
            now=self.clock(),
        )
        if user is None:
            raise ValidationError({"username": [_USERNAME_TAKEN]})
        self.events.user_registered(user.id)
        return {"id": user.id, "username": user.username, "email": user.email}

    def _take_registration(self, address: str) -> None:
        try:
            self.throttle.take_registration(address, self.clock())
        except ThrottledError:
            self.events.registration_throttled()
            raise

    def login(
        self, data: Mapping[str, Any], *, address: str, user_agent: str | None = None
    ) -> dict[str, str]:
        """Check ``{"username", "password"}``, start a session and return
        ``{"refresh", "access"}``.

        Unknown user, wrong password and inactive user are one error that takes one time.
        ``address`` and ``user_agent`` describe the client in the session list.

        Raises:
            ValidationError: a field is missing or not a string.
            BusyError: too many password hashes are in flight (nothing was counted).
            ThrottledError: too many recent failures for this username or address.
            AuthenticationError: the credentials do not name an active user.
        """
        fields = Fields(data)
        # Trimmed as DRF's CharField does, so a whitespace-only username is a blank field
        # (400), not a failed login counted against the username "".
        username = validators.normalize_username(fields.text("username"))
        password = fields.text("password", trim=False)
        fields.check()
        if len(username) > validators.USERNAME_MAX_LENGTH:
            # No account can have this name: refused at once, before the throttle's hash of
            # a name that may be 64 KB and before any password hash.
            self.events.login_failed(None, "unknown_user")
            raise AuthenticationError("No active account found with the given credentials")
        key = validators.username_key(username)
        now = self.clock()
        subject = self.throttle.subject(key)
        with self.hasher.admission(address_group(address)):
            user, rehashed = self._check_credentials(key, password, subject, address, now)
        pair, session, record = self.new_session_tokens(
            user, now, address=address, user_agent=user_agent
        )
        self.store.start_session(
            user.id,
            subject=subject,
            address=address_group(address),
            now=now,
            refresh=record,
            session=session,
            password_hash=rehashed,
        )
        self.events.login_succeeded(user.id, session.id)
        self._purge_now_and_then(now)
        return pair

    def _check_credentials(
        self, key: str, password: str, subject: str, address: str, now: float
    ) -> tuple[User, str | None]:
        """The active user these credentials name, and the password's new hash when its
        parameters changed; :class:`AuthenticationError` for any other outcome."""
        # Counted before the password is checked (atomically with the check of the limits),
        # and forgotten on success: parallel guesses see each other at once instead of all
        # slipping through during the tens of milliseconds a hash takes.
        try:
            self.throttle.take_login(subject, address, now)
        except ThrottledError:
            self.events.login_throttled()
            raise
        user = self.store.get_user_by_key(key)
        if user is None:
            self.hasher.dummy_verify(password)  # the same cost as a real verification
            valid = False
        else:
            # Verified even for an inactive user, so that refusal takes the same time.
            valid = self.hasher.verify(password, user.password_hash) and user.is_active
        if user is None or not valid:
            self.events.login_failed(*_failure(user))
            raise AuthenticationError("No active account found with the given credentials")
        rehashed = None
        if self.hasher.needs_rehash(user.password_hash):
            rehashed = self.hasher.hash(password)
        return user, rehashed

    def authenticate(self, token: str) -> dict[str, Any]:
        """The user an access token names, as the public ``me`` document.

        Raises:
            AccessTokenRejectedError: the token is not a valid access token, or its session
                was revoked.
            InactiveUserError: its user was deleted or deactivated.
        """
        user = self.authenticate_access(token).user
        return {
            "id": user.id,
            "username": user.username,
            "email": user.email,
            "date_joined": iso8601(user.date_joined),
            "last_login": iso8601(user.last_login) if user.last_login is not None else None,
        }

    def authenticate_access(self, token: str) -> Principal:
        """The active user of a valid access token and the id of its live session.

        The user is read from the store; the session's state comes through the per-process
        cache (see :mod:`jwtlite.service.userstate`).

        Raises:
            AccessTokenRejectedError: not a valid access token, or its session is revoked
                or unknown.
            InactiveUserError: its user was deleted (``user_not_found``) or deactivated.
        """
        try:
            claims = self.tokens.decode(token, expected_type=ACCESS)
        except JWTError as exc:
            raise AccessTokenRejectedError(exc) from exc
        user = self.store.get_user(int(claims["user_id"]))
        if user is None:
            raise InactiveUserError("user_not_found")
        if not user.is_active:
            raise InactiveUserError("user_inactive")
        session_id = session_of(claims)
        try:
            self._check_session(user.id, session_id, claims["jti"])
        except JWTError as exc:
            raise AccessTokenRejectedError(exc) from exc
        return Principal(user, session_id)

    # -- tokens -----------------------------------------------------------------------------

    def verify(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``{"token"}``: what ``/accounts/me/`` or refresh would accept.

        An access token must name an active user and a session that was not revoked (known
        to this process for at most ``USER_STATE_CACHE_SECONDS``, see
        :mod:`jwtlite.service.userstate`); a refresh token must be on record, neither spent
        nor blacklisted, and its user active.

        Raises:
            JWTError: the token is invalid, expired, revoked or not ours.
            InactiveUserError: its user was deleted or deactivated.
        """
        fields = Fields(data)
        token = fields.text("token")
        fields.check()
        claims = self.tokens.decode(token)
        if claims["token_type"] == REFRESH:
            self._live_record_and_user(claims)
        else:
            self._check_session(int(claims["user_id"]), session_of(claims), claims["jti"])
        return {}

    def refresh(
        self,
        data: Mapping[str, Any],
        *,
        address: str = "",
        user_agent: str | None = None,
    ) -> dict[str, str]:
        """Exchange ``{"refresh"}`` for ``{"access"}`` (and a new ``"refresh"`` with rotation).

        With rotation the old token is spent atomically; presenting a spent token again
        revokes its whole family (its session), because it means two parties hold it, unless
        it comes within ``ROTATION_GRACE_PERIOD`` seconds of the spend while its successor is
        still active: then the answer is the successor again with a fresh access token.

        Raises:
            JWTError: invalid, expired, wrong type, blacklisted or spent.
            InactiveUserError: the user was deleted or deactivated.
        """
        try:
            result, outcome = self._refresh(data, address=address, user_agent=user_agent)
        except (JWTError, InactiveUserError):
            self.events.refreshed("refused")
            raise
        self.events.refreshed(outcome)
        return result

    def _refresh(
        self, data: Mapping[str, Any], *, address: str, user_agent: str | None
    ) -> tuple[dict[str, str], str]:
        fields = Fields(data)
        token = fields.text("refresh")
        fields.check()
        claims = self.tokens.decode(token, expected_type=REFRESH)
        agent = clean_user_agent(user_agent)
        now = self.clock()
        record, user, session = self._record_user_session(claims)
        if record.state == "spent":
            return self._replay(record, user, now), "grace"
        self._check_record(record, session)
        iat = int(now)
        result = {ACCESS: self.tokens.access(user, record.family, iat)}
        if self.settings.rotate_refresh_tokens:
            new_refresh, new_record = self.tokens.refresh(user, record.family, iat)
            rotated = self.store.rotate_refresh_token(
                record.jti, new_record, now=now, user_agent=agent, address=address
            )
            if not rotated:
                # Someone spent it between our read and our write: another tab (a replay
                # within the grace period) or a concurrent reuse.
                found = self.store.get_refresh_token_and_user(record.jti)
                if found is None:
                    raise TokenRevokedError(record.jti)
                return self._replay(found[0], user, now), "grace"
            result[REFRESH] = new_refresh
        elif needs_touch(session, now=now, user_agent=agent, address=address):
            self.store.touch_session(session.id, now=now, user_agent=agent, address=address)
        self._purge_now_and_then(now)
        return result, "ok"

    def blacklist(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Log out: refuse ``{"refresh"}`` and every token of its session from now on.

        The session ends (``ended``): its refresh tokens are refused, its access tokens live
        out their short lives, as simplejwt's blacklist behaves.
        """
        fields = Fields(data)
        token = fields.text("refresh")
        fields.check()
        claims = self.tokens.decode(token, expected_type=REFRESH)
        record, _, session = self._record_user_session(claims, for_logout=True)
        # A second tab logging out with the token the first one just rotated ends the
        # session as the current token would; any other spent token is reuse.
        if record.state != "spent" or self._successor_in_grace(record, self.clock()) is None:
            self._check_record(record, session)
        if not self.store.end_session(record.user_id, record.family, "ended"):
            raise TokenRevokedError(record.jti)
        self.users.forget_session(record.user_id, record.family)
        self.events.logout(record.user_id, record.family)
        return {}

    # -- cookies (see jwtlite.service.csrf) -----------------------------------------------------

    def describe(self, token: str) -> IssuedToken:
        """Type, expiry, lifetime and CSRF value of a token this service issued, for its cookie.

        Raises:
            JWTError: the token is not valid (never for one just issued).
        """
        claims = self.tokens.decode(token)
        token_type, jti, exp = claims["token_type"], claims["jti"], int(claims["exp"])
        csrf = self.csrf.value(token_type=token_type, jti=jti)
        return IssuedToken(token, token_type, exp, exp - int(claims["iat"]), csrf)

    def check_csrf(self, token: str, presented: str | None) -> None:
        """Refuse a request authenticated by ``token`` from a cookie unless it shows that
        token's CSRF value.

        A missing value is refused before the token is even decoded; a token that does not
        decode is refused as it would be anywhere else.

        Raises:
            CSRFError: the value is missing or is not this token's.
            JWTError: the token is invalid or expired.
        """
        if not presented:
            raise CSRFError(CSRF_MISSING)
        claims = self.tokens.decode(token)
        self.csrf.check(presented, token_type=claims["token_type"], jti=claims["jti"])
        # Refusals are reported where every CSRFError becomes a 403 (the web layer's error
        # handler), which also sees the origin checks made there.

    def _keys_reloaded(self, previous: Ring, ring: Ring) -> None:
        """Report a new signing key this instance picked up from its key directory.

        Outside any request's context: whichever request found the reload due (its id and
        address are the client's to choose) did not cause it.
        """
        if ring.current_kid is None or ring.current_kid == previous.current_kid:
            return
        token = request_context.set(NO_REQUEST)
        try:
            self.events.key_rotated(
                kid=ring.current_kid,
                # The key that was signing: not a staged key a rotation cancelled.
                previous_kid=previous.signing_kid_at(self.clock()),
                source="reload",
                activates=ring.activates,
            )
        finally:
            request_context.reset(token)

    def jwks(self) -> dict[str, Any]:
        """The public keys that verify our tokens: the current (a staged one from its
        rotation on, before it signs) and the retired ones (none for HMAC keys). Checks the
        key directory first (one ``stat``, never waiting on a reload in progress)."""
        return self.tokens.keyring.published().jwks

    def health(self) -> dict[str, str]:
        """``{"status": "ok"}`` when the store answers; raises StoreUnavailableError if not."""
        self.store.ping()
        return {"status": "ok"}

    # -- sessions, for the account rules ----------------------------------------------------

    def new_session_tokens(
        self, user: User, now: float, *, address: str, user_agent: str | None
    ) -> tuple[dict[str, str], Session, RefreshRecord]:
        """A new session of ``user`` (not stored yet), its token pair and first record."""
        iat = int(now)
        session = new_session(
            user,
            now=now,
            expires_at=iat + self.settings.refresh_token_lifetime,
            user_agent=clean_user_agent(user_agent),
            address=address,
        )
        refresh, record = self.tokens.refresh(user, session.id, iat)
        pair = {REFRESH: refresh, ACCESS: self.tokens.access(user, session.id, iat)}
        return pair, session, record

    # -- internals --------------------------------------------------------------------------

    def _check_session(self, user_id: int, session_id: str, jti: str) -> None:
        """Refuse an access token whose user is gone or whose session is revoked or unknown."""
        check = self.users.session(user_id, session_id)
        if check is SessionCheck.USER_INACTIVE:
            raise InactiveUserError("user_inactive")
        if check is SessionCheck.REVOKED:
            raise TokenRevokedError(jti)
        if check is SessionCheck.UNKNOWN:
            # Signed by our key, yet of no session of its user (issued before sessions
            # existed, or its session was purged): fail closed.
            raise MalformedTokenError("Token session is not on record")

    def _record_user_session(
        self, claims: Mapping[str, Any], *, for_logout: bool = False
    ) -> tuple[RefreshRecord, User, Session]:
        """The refresh token's record, its user and its session, in one lookup.

        Raises:
            InactiveUserError: the user was deleted or deactivated (logging out needs
                neither an active user nor, for a deleted one, this answer).
            JWTError: the token is not on record, or has no session.
        """
        found = self.store.get_refresh_token_and_user(claims["jti"])
        if found is None and for_logout:
            raise MalformedTokenError("Refresh token is not on record")
        if found is None:
            # Deleting a user deletes their refresh-token records too, and the client must
            # hear "no active account" (as for an inactive one), not "invalid".
            if self.store.get_user(int(claims["user_id"])) is None:
                raise InactiveUserError("user_inactive")
            # Signed by our key yet unknown to the store (a restored key, a wiped database):
            # fail closed.
            raise MalformedTokenError("Refresh token is not on record")
        record, user, session = found
        if str(record.user_id) != claims["user_id"] or session is None:
            raise MalformedTokenError("Refresh token is not on record")  # not ours
        if not for_logout and not user.is_active:
            raise InactiveUserError("user_inactive")
        return record, user, session

    def _live_record_and_user(self, claims: Mapping[str, Any]) -> tuple[RefreshRecord, User]:
        """The refresh token's record and its active user, refusing revoked and spent ones
        (a spent one revokes its family, unless it is inside the grace period)."""
        record, user, session = self._record_user_session(claims)
        if record.state == "spent" and self._successor_in_grace(record, self.clock()):
            raise TokenRevokedError(record.jti)  # refused, but a benign second tab
        self._check_record(record, session)
        return record, user

    def _check_record(self, record: RefreshRecord, session: Session) -> None:
        if record.state == "spent":
            self._revoke(record)
            raise TokenRevokedError(record.jti)
        if record.state != "active" or session.state != "active":
            raise TokenRevokedError(record.jti)

    def _replay(self, record: RefreshRecord, user: User, now: float) -> dict[str, str]:
        """A spent token presented again: within the grace period the same successor and a
        fresh access token of its session; otherwise reuse, which revokes the session."""
        successor = self._successor_in_grace(record, now)
        if successor is None:
            self._revoke(record)
            raise TokenRevokedError(record.jti)
        return {
            ACCESS: self.tokens.access(user, successor.family, int(now)),
            REFRESH: self.tokens.rebuild_refresh(successor),
        }

    def _successor_in_grace(self, record: RefreshRecord, now: float) -> RefreshRecord | None:
        grace = self.settings.rotation_grace_period
        if grace <= 0 or record.successor is None:
            return None
        successor = self.store.get_refresh_token(record.successor)
        return successor if within_grace(record, successor, now=now, grace=grace) else None

    def _revoke(self, record: RefreshRecord) -> None:
        # Reached only for reuse: a spent token presented outside the grace period.
        self.store.revoke_family(record.family)
        self.users.forget_session(record.user_id, record.family)
        self.events.reuse_detected(record.user_id, record.family)

    def _purge_now_and_then(self, now: float) -> None:
        # Expired rows go as the service runs, at most once a minute; a race between two
        # threads only means one extra, harmless DELETE. It runs after the request's own
        # work has committed, so its failure must not fail the request: a refresh whose
        # rotation committed but answered 503 would leave the client holding only a spent
        # token, and its retry would revoke the whole family.
        if now >= self._next_purge:
            self._next_purge = now + _PURGE_INTERVAL
            try:
                purge_expired(self.store, self.settings, now)
            except StoreUnavailableError as exc:
                self.events.store_error()
                log.warning("purge of expired rows failed, will retry: %s", exc)


def purge_expired(store: Store, settings: Settings, now: float) -> int:
    """Delete what no check can use any more; return the number of rows deleted.

    A refresh token stays on record until no check could accept it (its expiry plus the
    leeway): a spent token purged inside the leeway would be refused as unknown instead of
    revoking its family. A session stays as long as an access token of it may (its expiry
    plus the leeway plus the access-token lifetime). Attempts go once they count toward no
    throttle window.
    """
    return store.purge_expired(
        tokens_before=now - settings.leeway,
        # An access token issued at the last refresh outlives its session's expiry by up to
        # its own lifetime, and must find its session until then.
        sessions_before=now - settings.leeway - settings.access_token_lifetime,
        attempts_before={
            LOGIN: now - settings.login_failure_window,
            REGISTER: now - settings.registration_window,
            TRUSTED: now - TRUSTED_ADDRESS_SECONDS,
        },
    )


def _failure(user: User | None) -> tuple[int | None, str]:
    """The user id (only of a user that exists) and reason code of a refused login."""
    if user is None:
        return None, "unknown_user"
    return user.id, "inactive_user" if not user.is_active else "bad_password"
