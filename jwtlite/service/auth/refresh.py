"""Verify, refresh and log out: the life of a session's refresh tokens.

A refresh token is on record (:class:`~jwtlite.store.RefreshRecord`); rotation spends it
atomically, a spent token presented again is reuse and revokes its session (its family),
except within ``ROTATION_GRACE_PERIOD`` of the spend, when the same successor is answered again.

A rotation the store failed to confirm (503) may have committed all the same (PostgreSQL: the
``COMMIT`` went through, its acknowledgement was lost, and the store could not ask again).
The client's retry with the only token it has would look like reuse; so this process
remembers such rotations for :data:`UNANSWERED_FOR` seconds, and the first retry of one gets
the successor nobody received, as a grace-period replay would.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from jwtlite.errors import JWTError, MalformedTokenError
from jwtlite.service.auth.housekeeping import Housekeeping
from jwtlite.service.auth.parts import ServiceParts
from jwtlite.service.errors import InactiveUserError, TokenRevokedError
from jwtlite.service.fields import Fields
from jwtlite.service.sessions import clean_user_agent, needs_touch, within_grace
from jwtlite.service.tokens import ACCESS, REFRESH, session_of
from jwtlite.store import RefreshRecord, Session, User
from jwtlite.store.errors import StoreUnavailableError

__all__ = ["UNANSWERED_FOR", "RefreshRules"]

#: Seconds a rotation answered 503 is remembered for its client's retry.
UNANSWERED_FOR = 300.0
#: The most such rotations remembered (a store outage under load adds one a refresh).
_UNANSWERED_MAX = 4096


class _UnansweredRotations:
    """Rotations answered 503 whose outcome this process does not know, by spent jti."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_jti: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def remember(self, old_jti: str, new_jti: str, now: float) -> None:
        with self._lock:
            self._by_jti[old_jti] = (new_jti, now + UNANSWERED_FOR)
            while len(self._by_jti) > _UNANSWERED_MAX:
                self._by_jti.popitem(last=False)

    def successor(self, old_jti: str, now: float) -> str | None:
        """The successor's jti of such a rotation of ``old_jti``, while it is remembered.

        Not forgotten here: the retry can fail too (the store still down), and the one after
        it must find it still; :meth:`forget` once a retry was served."""
        with self._lock:
            found = self._by_jti.get(old_jti)
        return found[0] if found is not None and now < found[1] else None

    def forget(self, old_jti: str) -> None:
        """Forget the rotation of ``old_jti``: its retry got the successor."""
        with self._lock:
            self._by_jti.pop(old_jti, None)


class RefreshRules:
    """Verify tokens, exchange refresh tokens, end sessions on logout and on reuse."""

    def __init__(self, parts: ServiceParts, housekeeping: Housekeeping) -> None:
        self._parts = parts
        self._housekeeping = housekeeping
        self._unanswered = _UnansweredRotations()

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
        claims = self._parts.tokens.decode(token)
        if claims["token_type"] == REFRESH:
            self._live_record_and_user(claims)
        else:
            self._parts.check_session(int(claims["user_id"]), session_of(claims), claims["jti"])
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
            self._parts.events.refreshed("refused")
            raise
        self._parts.events.refreshed(outcome)
        return result

    def _refresh(
        self, data: Mapping[str, Any], *, address: str, user_agent: str | None
    ) -> tuple[dict[str, str], str]:
        fields = Fields(data)
        token = fields.text("refresh")
        fields.check()
        claims = self._parts.tokens.decode(token, expected_type=REFRESH)
        agent = clean_user_agent(user_agent)
        now = self._parts.clock()
        record, user, session = self._record_user_session(claims)
        if record.state == "spent":
            return self._replay(record, user, now), "grace"
        self._check_record(record, session)
        iat = int(now)
        result = {ACCESS: self._parts.tokens.access(user, record.family, iat)}
        if self._parts.settings.rotate_refresh_tokens:
            new_refresh, new_record = self._parts.tokens.refresh(user, record.family, iat)
            try:
                rotated = self._parts.store.rotate_refresh_token(
                    record.jti, new_record, now=now, user_agent=agent, address=address
                )
            except StoreUnavailableError:
                self._unanswered.remember(record.jti, new_record.jti, now)
                raise
            if not rotated:
                # Someone spent it between our read and our write: another tab (a replay
                # within the grace period) or a concurrent reuse.
                found = self._parts.store.get_refresh_token_and_user(record.jti)
                if found is None:
                    raise TokenRevokedError(record.jti)
                return self._replay(found[0], user, now), "grace"
            result[REFRESH] = new_refresh
        elif needs_touch(session, now=now, user_agent=agent, address=address):
            self._parts.store.touch_session(session.id, now=now, user_agent=agent, address=address)
        self._housekeeping.now_and_then(now)
        return result, "ok"

    def blacklist(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Log out: refuse ``{"refresh"}`` and every token of its session from now on.

        The session ends (``ended``): its refresh tokens are refused, its access tokens live
        out their short lives, as simplejwt's blacklist behaves.
        """
        fields = Fields(data)
        token = fields.text("refresh")
        fields.check()
        claims = self._parts.tokens.decode(token, expected_type=REFRESH)
        record, _, session = self._record_user_session(claims, for_logout=True)
        # A second tab logging out with the token the first one just rotated ends the
        # session as the current token would; any other spent token is reuse.
        if record.state != "spent" or self._successor_in_grace(record, self._parts.clock()) is None:
            self._check_record(record, session)
        if not self._parts.store.end_session(record.user_id, record.family, "ended"):
            raise TokenRevokedError(record.jti)
        self._parts.users.forget_session(record.user_id, record.family)
        self._parts.events.logout(record.user_id, record.family)
        return {}

    def _record_user_session(
        self, claims: Mapping[str, Any], *, for_logout: bool = False
    ) -> tuple[RefreshRecord, User, Session]:
        """The refresh token's record, its user and its session, in one lookup.

        Raises:
            InactiveUserError: the user was deleted or deactivated (logging out needs
                neither an active user nor, for a deleted one, this answer).
            JWTError: the token is not on record, or has no session.
        """
        found = self._parts.store.get_refresh_token_and_user(claims["jti"])
        if found is None and for_logout:
            raise MalformedTokenError("Refresh token is not on record")
        if found is None:
            # Deleting a user deletes their refresh-token records too, and the client must
            # hear "no active account" (as for an inactive one), not "invalid".
            if self._parts.store.get_user(int(claims["user_id"])) is None:
                raise InactiveUserError("user_inactive")
            # Signed by our key yet unknown to the store (a restored key, a wiped database):
            # fail closed.
            raise MalformedTokenError("Refresh token is not on record")
        record, user, session = found
        if (
            str(record.user_id) != claims["user_id"]
            or claims["exp"] != record.expires_at
            or claims["iat"] != record.issued_at
            or session is None
        ):
            # Not the token on record: the store's dates are the truth, so whoever can sign
            # (a resource server sharing SECRET_KEY, a leaked pepper) cannot stretch a
            # session past its lifetime by re-signing its token with a later exp.
            raise MalformedTokenError("Refresh token is not on record")
        if not for_logout and not user.is_active:
            raise InactiveUserError("user_inactive")
        return record, user, session

    def _live_record_and_user(self, claims: Mapping[str, Any]) -> tuple[RefreshRecord, User]:
        """The refresh token's record and its active user, refusing revoked and spent ones.

        A spent one revokes its family, unless it is inside the grace period."""
        record, user, session = self._record_user_session(claims)
        if record.state == "spent" and self._successor_in_grace(record, self._parts.clock()):
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
        """A spent token presented again: the grace period's answer, or reuse.

        Within the grace period, the same successor and a fresh access token of its session;
        otherwise reuse, which revokes the session."""
        successor = self._successor_in_grace(record, now) or self._unanswered_successor(record, now)
        if successor is None:
            self._revoke(record)
            raise TokenRevokedError(record.jti)
        return {
            ACCESS: self._parts.tokens.access(user, successor.family, int(now)),
            REFRESH: self._parts.tokens.rebuild_refresh(successor),
        }

    def _unanswered_successor(self, record: RefreshRecord, now: float) -> RefreshRecord | None:
        """The successor of a rotation this process answered 503, for its client's retry.

        Only while nobody has used it (it is still active): then nobody received it. A store
        error reading it propagates (503 again), and the retry after that is served the same."""
        jti = self._unanswered.successor(record.jti, now)
        if jti is None or jti != record.successor:
            return None
        successor = self._parts.store.get_refresh_token(jti)
        self._unanswered.forget(record.jti)  # only one retry is served, once it can be
        return successor if successor is not None and successor.state == "active" else None

    def _successor_in_grace(self, record: RefreshRecord, now: float) -> RefreshRecord | None:
        grace = self._parts.settings.rotation_grace_period
        if grace <= 0 or record.successor is None:
            return None
        successor = self._parts.store.get_refresh_token(record.successor)
        return successor if within_grace(record, successor, now=now, grace=grace) else None

    def _revoke(self, record: RefreshRecord) -> None:
        # Reached only for reuse: a spent token presented outside the grace period.
        self._parts.store.revoke_family(record.family)
        self._parts.users.forget_session(record.user_id, record.family)
        self._parts.events.reuse_detected(record.user_id, record.family)
