"""The collaborators every rule of the service shares, built once for one service.

:class:`ServiceParts` is what the login, refresh and account rules stand on: the settings,
the store, the signing keys and the minter of tokens, the password hasher and the admission
to it, the clock, the throttle, the CSRF key, the per-process user-state cache and the events
feed. One object, so every part of the service sees the same ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from jwtlite.errors import MalformedTokenError
from jwtlite.keys import Key, KeySet
from jwtlite.service.admission import Admission
from jwtlite.service.credentials.passwords import PasswordHasher
from jwtlite.service.csrf import CSRFKey
from jwtlite.service.errors import InactiveUserError, TokenRevokedError
from jwtlite.service.events import Events
from jwtlite.service.sessions import clean_user_agent, new_session
from jwtlite.service.settings import Settings
from jwtlite.service.signing.keyring import KeyRing
from jwtlite.service.throttle import Throttle
from jwtlite.service.tokens import ACCESS, REFRESH, ClaimsFunction, TokenMinter
from jwtlite.service.userstate import SessionCheck, UserStateCache
from jwtlite.store import RefreshRecord, Session, Store, User

__all__ = ["ServiceParts"]


@dataclass(frozen=True, slots=True)
class ServiceParts:
    """The shared collaborators of one service (see the module docstring)."""

    settings: Settings
    store: Store
    keys: Key | KeySet | KeyRing
    hasher: PasswordHasher
    admission: Admission
    clock: Callable[[], float]
    events: Events
    tokens: TokenMinter
    throttle: Throttle
    csrf: CSRFKey
    users: UserStateCache

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        keys: Key | KeySet | KeyRing,
        hasher: PasswordHasher,
        clock: Callable[[], float],
        *,
        claims: ClaimsFunction | None,
        events: Events,
    ) -> ServiceParts:
        """The parts of a service over ``store`` signing with ``keys``."""
        tokens = TokenMinter(settings, keys, clock, claims=claims)
        # From the ring's pepper, never from the current key: a rotation must not reset the
        # login counters or end every CSRF token (a single key's pepper is derived from it).
        pepper = tokens.keyring.pepper
        return cls(
            settings=settings,
            store=store,
            keys=keys,
            hasher=hasher,
            admission=Admission(
                hasher.concurrency,
                queue=settings.password_hash_queue,
                per_address=settings.password_hash_per_client,
                wait=settings.password_hash_wait,
            ),
            clock=clock,
            events=events,
            tokens=tokens,
            throttle=Throttle(settings, store, pepper=pepper),
            csrf=CSRFKey(pepper),
            users=UserStateCache(store, clock, ttl=settings.user_state_cache_seconds),
        )

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

    def check_session(self, user_id: int, session_id: str, jti: str) -> None:
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
