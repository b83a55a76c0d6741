"""Falcon resources of the account lifecycle: password change, log out everywhere, sessions.

Each authenticates first (the access token comes from
:meth:`~jwtlite.web.auth.RequestAuth.access_token`, the one place a protected resource reads
credentials: the Bearer header, or the access cookie with its CSRF check), then reads the
body, then makes one service call. ``DELETE /accounts/me/`` is served only when
``ALLOW_ACCOUNT_DELETION`` is on (:class:`DeletableMeResource`); otherwise it stays the 405
of the simplejwt contract.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import falcon

from jwtlite.service import AuthService
from jwtlite.service.accounts import AccountService
from jwtlite.service.auth import Principal
from jwtlite.web.auth import RequestAuth
from jwtlite.web.body import read_body
from jwtlite.web.resources import NO_STORE, MeResource, Resource, client_address

__all__ = [
    "DeletableMeResource",
    "LogoutAllResource",
    "PasswordResource",
    "SessionListResource",
    "SessionResource",
]


class _AccountResource(Resource):
    """What every account resource holds, and how it learns who is calling."""

    def __init__(self, service: AuthService, auth: RequestAuth, accounts: AccountService) -> None:
        self._service = service
        self._auth = auth
        self._accounts = accounts

    def _principal(self, req: falcon.Request) -> Principal:
        return self._service.authenticate_access(self._auth.access_token(req))


class PasswordResource(_AccountResource):
    """``POST accounts/password/``: change the password; answers a fresh token pair.

    Under a cookie transport the pair is set as cookies, as a login's (the body then holds
    the expiries and CSRF values, and the tokens only under ``both``)."""

    def __init__(
        self,
        service: AuthService,
        auth: RequestAuth,
        accounts: AccountService,
        *,
        trusted_proxies: Collection[str],
        max_body_size: int,
    ) -> None:
        super().__init__(service, auth, accounts)
        self._trusted_proxies = frozenset(trusted_proxies)
        self._max_body_size = max_body_size
        # The new pair travels as a login's does: cookies under a cookie transport (given
        # only to a trusted origin), so no script on the page sees the refresh token.
        self._cookies = auth.exchange(issues_tokens=True)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Check the old password, set the new one, end every other session."""
        principal = self._principal(req)
        data = read_body(req, self._max_body_size)
        address = client_address(req, self._trusted_proxies)

        def change(fields: Mapping[str, Any]) -> dict[str, Any]:
            return self._accounts.change_password(
                principal, fields, address=address, user_agent=req.user_agent
            )

        resp.media = (
            change(data) if self._cookies is None else self._cookies.run(req, resp, data, change)
        )
        resp.cache_control = [NO_STORE]


class LogoutAllResource(_AccountResource):
    """``POST accounts/logout-all/``: end every session of the user; answers ``{}``."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Revoke every session (no body is read)."""
        principal = self._principal(req)
        resp.media = self._accounts.logout_all(principal)
        resp.cache_control = [NO_STORE]
        self._auth.clear(req, resp)  # this browser's session ended too


class SessionListResource(_AccountResource):
    """``GET accounts/sessions/``: the user's live sessions, newest first."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List the sessions; ``current`` marks the caller's."""
        principal = self._principal(req)
        resp.media = self._accounts.sessions(principal)
        resp.cache_control = [NO_STORE]

    on_head = on_get


class SessionResource(_AccountResource):
    """``DELETE accounts/sessions/{session_id}/``: end one session.

    204, or 404 for an id that is not one of the user's live sessions."""

    def on_delete(self, req: falcon.Request, resp: falcon.Response, session_id: str) -> None:
        """Revoke the session."""
        principal = self._principal(req)
        self._accounts.end_session(principal, session_id)
        resp.status = falcon.HTTP_204
        resp.cache_control = [NO_STORE]


class DeletableMeResource(MeResource):
    """``accounts/me/`` with ``DELETE``: delete the account, given ``{"password"}``; 204."""

    def __init__(
        self,
        service: AuthService,
        auth: RequestAuth,
        accounts: AccountService,
        *,
        trusted_proxies: Collection[str],
        max_body_size: int,
    ) -> None:
        super().__init__(service, auth)
        self._accounts = accounts
        self._trusted_proxies = frozenset(trusted_proxies)
        self._max_body_size = max_body_size

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Delete the authenticated user, given their password."""
        principal = self._service.authenticate_access(self._auth.access_token(req))
        data = read_body(req, self._max_body_size)
        address = client_address(req, self._trusted_proxies)
        self._accounts.delete_account(principal, data, address=address)
        resp.status = falcon.HTTP_204
        resp.cache_control = [NO_STORE]
        self._auth.clear(req, resp)
