"""The WSGI application: routes, middleware, and the one place errors become responses.

``create_app`` returns a plain ``falcon.App`` (a WSGI callable) that any WSGI server can host,
mounted at the root or under a ``SCRIPT_NAME`` prefix. Every response is JSON in the shapes
of Django REST framework and djangorestframework-simplejwt, so their clients work unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import falcon

from jwtlite._encoding import json_text
from jwtlite.errors import (
    ExpiredTokenError,
    JWTError,
)
from jwtlite.service.accounts import AccountService
from jwtlite.service.audit import AuditLog
from jwtlite.service.auth import AuthService
from jwtlite.service.csrf import CSRF_MISSING, CSRF_WRONG
from jwtlite.service.errors import (
    AccessTokenRejectedError,
    AuthenticationError,
    BusyError,
    CSRFError,
    InactiveUserError,
    NotAuthenticatedError,
    NotFoundError,
    ThrottledError,
    TokenRevokedError,
    ValidationError,
    WrongTokenTypeError,
)
from jwtlite.service.events import Events
from jwtlite.service.settings import Settings
from jwtlite.service.tokens import ClaimsFunction
from jwtlite.store import Store
from jwtlite.store.errors import StoreUnavailableError
from jwtlite.web.accounts import (
    DeletableMeResource,
    LogoutAllResource,
    PasswordResource,
    SessionListResource,
    SessionResource,
)
from jwtlite.web.auth import RequestAuth
from jwtlite.web.cookies import TokenCookies
from jwtlite.web.cors import (
    CSRF_ALLOW_HEADER,
    DEFAULT_ALLOW_HEADERS,
    DEFAULT_EXPOSE_HEADERS,
    CORSMiddleware,
)
from jwtlite.web.discovery import discovery_routes
from jwtlite.web.openapi import OpenAPIResource
from jwtlite.web.requestid import RequestIdMiddleware
from jwtlite.web.resources import (
    BodyEndpoint,
    HealthResource,
    JWKSResource,
    MeResource,
    ThrottledEndpoint,
)

if TYPE_CHECKING:
    from jwtlite.web.metrics import Metrics

__all__ = ["create_app"]

log = logging.getLogger("jwtlite")

WWW_AUTHENTICATE = 'Bearer realm="api"'
# The CSRF refusal reason codes of the events (anything else is an origin check).
_CSRF_REASONS = {CSRF_MISSING: "missing", CSRF_WRONG: "incorrect"}
TOKEN_NOT_VALID = "token_not_valid"


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    clock: Callable[[], float] | None = None,
    claims: ClaimsFunction | None = None,
) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the authentication service as a WSGI application.

    Args:
        settings: the configuration; ``Settings()`` defaults when None (read the
            environment with ``Settings.from_env(os.environ)`` at your entry point).
        store: the user store; opened from ``settings.database`` when None.
        clock: returns the current Unix time; ``time.time`` when None.
        claims: a function of the user returning extra claims for access tokens (see
            :class:`~jwtlite.service.auth.AuthService`).

    Every response carries an ``X-Request-ID``; security events go to the ``jwtlite.audit``
    logger, and with ``settings.metrics`` to the Prometheus metrics served at ``/metrics``
    (``prometheus_client`` is imported only then).

    Raises:
        ConfigurationError: the settings or the signing key are unusable.
        StoreUnavailableError: the database cannot be opened.
    """
    settings = settings or Settings()
    events = Events([AuditLog()])
    metrics = _metrics(settings, events)
    service = AuthService.from_settings(
        settings, store=store, clock=clock, claims=claims, events=events
    )
    accounts = AccountService(service)
    cookies = TokenCookies.from_settings(settings)
    cors = CORSMiddleware(
        allowed_origins=settings.cors_allowed_origins,
        allowed_origin_regexes=settings.cors_allowed_origin_regexes,
        allow_all_origins=settings.cors_allow_all_origins,
        allow_credentials=settings.cors_allow_credentials,
        max_age=settings.cors_preflight_max_age,
        allow_headers=DEFAULT_ALLOW_HEADERS
        if cookies is None
        else (*DEFAULT_ALLOW_HEADERS, CSRF_ALLOW_HEADER),
        expose_headers=DEFAULT_EXPOSE_HEADERS,
    )
    auth = RequestAuth(
        service,
        cookies=cookies,
        body_tokens=settings.token_transport == "both",
        listed_origin=cors.listed_origin,
    )
    # The request id first: its answer runs last, so every response carries the id. Metrics
    # next, so they time everything the app does (CORS included).
    middleware: list[Any] = [RequestIdMiddleware(settings.trusted_proxies)]
    if metrics is not None:
        middleware.append(metrics.middleware())
    app = falcon.App(middleware=[*middleware, cors])
    # Compact JSON as DRF renders it, from an encoder built once rather than per response.
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = falcon.media.JSONHandler(dumps=json_text)
    # One route serves "/accounts/token" and "/accounts/token/": a redirect would break a
    # POST or a preflight.
    app.req_options.strip_url_path_trailing_slash = True
    limit = settings.max_body_size
    proxies = settings.trusted_proxies
    routes: dict[str, object] = {
        "/accounts/register": ThrottledEndpoint(
            service.register, trusted_proxies=proxies, max_body_size=limit, status=falcon.HTTP_201
        ),
        "/accounts/token": ThrottledEndpoint(
            service.login,
            trusted_proxies=proxies,
            max_body_size=limit,
            carries_tokens=True,
            names_user_agent=True,
            cookies=auth.exchange(issues_tokens=True),
        ),
        "/accounts/token/refresh": ThrottledEndpoint(
            service.refresh,
            trusted_proxies=proxies,
            max_body_size=limit,
            carries_tokens=True,
            names_user_agent=True,
            cookies=auth.exchange("refresh", issues_tokens=True),
        ),
        "/accounts/token/verify": BodyEndpoint(
            service.verify, max_body_size=limit, cookies=auth.exchange("token")
        ),
        "/accounts/token/blacklist": BodyEndpoint(
            service.blacklist,
            max_body_size=limit,
            cookies=auth.exchange("refresh", ends_session=True),
        ),
        "/accounts/me": (
            DeletableMeResource(
                service, auth, accounts, trusted_proxies=proxies, max_body_size=limit
            )
            if settings.allow_account_deletion
            else MeResource(service, auth)
        ),
        "/accounts/password": PasswordResource(
            service, auth, accounts, trusted_proxies=proxies, max_body_size=limit
        ),
        "/accounts/logout-all": LogoutAllResource(service, auth, accounts),
        "/accounts/sessions": SessionListResource(service, auth, accounts),
        "/accounts/sessions/{session_id}": SessionResource(service, auth, accounts),
        "/.well-known/jwks.json": JWKSResource(service),
        "/health": HealthResource(service),
    }
    routes.update(
        discovery_routes(
            settings.issuer,
            algorithms=service.signing_algorithms,
            publishes_keys=lambda: bool(service.jwks()["keys"]),
        )
    )
    # The document of what is routed, its own path included.
    routes["/openapi.json"] = OpenAPIResource({**routes, "/openapi.json": OpenAPIResource})
    if metrics is not None:
        # Not in the OpenAPI document: an operator's endpoint, off by default, not JSON.
        routes["/metrics"] = metrics.resource(
            allowed=settings.metrics_allowed, trusted_proxies=proxies
        )
        metrics.bind_routes(routes)
    for path, resource in routes.items():
        app.add_route(path, resource)
    _add_error_handlers(app, events)
    return app


def _metrics(settings: Settings, events: Events) -> Metrics | None:
    """The app's metrics, subscribed to its events, when ``METRICS`` is on.

    None when off: then ``prometheus_client`` is never imported."""
    if not settings.metrics:
        return None
    from jwtlite.web.metrics import Metrics  # noqa: PLC0415 - prometheus_client only when on

    metrics = Metrics()
    events.subscribe(metrics)
    return metrics


def _add_error_handlers(
    app: falcon.App[falcon.Request, falcon.Response], events: Events | None = None
) -> None:
    events = events if events is not None else Events()

    def csrf_refused(req: falcon.Request, resp: falcon.Response, exc: CSRFError, _: Any) -> None:
        events.csrf_refused(_CSRF_REASONS.get(str(exc), "origin"))
        _csrf(req, resp, exc, _)

    def store_unavailable(
        req: falcon.Request, resp: falcon.Response, exc: StoreUnavailableError, _: Any
    ) -> None:
        events.store_error()
        _store_unavailable(req, resp, exc, _)

    # Falcon picks the most specific handler by the exception's class hierarchy.
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(falcon.HTTPError, _http_error)
    app.add_error_handler(ValidationError, _validation)
    app.add_error_handler(JWTError, _token)
    app.add_error_handler(AccessTokenRejectedError, _access_token)
    app.add_error_handler(AuthenticationError, _credentials)
    app.add_error_handler(InactiveUserError, _inactive_user)
    app.add_error_handler(NotAuthenticatedError, _not_authenticated)
    app.add_error_handler(NotFoundError, _not_found)
    app.add_error_handler(ThrottledError, _throttled)
    # The two refusals the service's events report are seen here, the one place every
    # CSRFError (the service's token checks and this layer's origin check) and every store
    # failure of a request end.
    app.add_error_handler(CSRFError, csrf_refused)
    app.add_error_handler(StoreUnavailableError, store_unavailable)
    app.add_error_handler(BusyError, _busy)


def _answer(resp: falcon.Response, status: int, body: dict[str, Any]) -> None:
    resp.status = status
    resp.media = body
    resp.cache_control = ["no-store"]
    if status == HTTPStatus.UNAUTHORIZED:
        resp.set_header("WWW-Authenticate", WWW_AUTHENTICATE)


def _token_message(exc: JWTError) -> str:
    if isinstance(exc, ExpiredTokenError):
        return "Token is expired"
    if isinstance(exc, WrongTokenTypeError):
        return "Token has wrong type"
    if isinstance(exc, TokenRevokedError):
        return "Token is blacklisted"
    return "Token is invalid"


def _validation(req: falcon.Request, resp: falcon.Response, exc: ValidationError, _: Any) -> None:
    _answer(resp, HTTPStatus.BAD_REQUEST, exc.errors)


def _token(req: falcon.Request, resp: falcon.Response, exc: JWTError, _: Any) -> None:
    _answer(resp, HTTPStatus.UNAUTHORIZED, {"detail": _token_message(exc), "code": TOKEN_NOT_VALID})


def _access_token(
    req: falcon.Request, resp: falcon.Response, exc: AccessTokenRejectedError, _: Any
) -> None:
    message = {"token_class": "AccessToken", "token_type": "access"}
    message["message"] = _token_message(exc.cause)
    _answer(
        resp,
        HTTPStatus.UNAUTHORIZED,
        {"detail": str(exc), "code": TOKEN_NOT_VALID, "messages": [message]},
    )


def _credentials(
    req: falcon.Request, resp: falcon.Response, exc: AuthenticationError, _: Any
) -> None:
    _answer(resp, HTTPStatus.UNAUTHORIZED, {"detail": str(exc)})


def _inactive_user(
    req: falcon.Request, resp: falcon.Response, exc: InactiveUserError, _: Any
) -> None:
    _answer(resp, HTTPStatus.UNAUTHORIZED, {"detail": str(exc), "code": exc.code})


def _not_authenticated(
    req: falcon.Request, resp: falcon.Response, exc: NotAuthenticatedError, _: Any
) -> None:
    body = {"detail": str(exc)}
    if exc.code is not None:
        body["code"] = exc.code
    _answer(resp, HTTPStatus.UNAUTHORIZED, body)


def _not_found(req: falcon.Request, resp: falcon.Response, exc: NotFoundError, _: Any) -> None:
    _answer(resp, HTTPStatus.NOT_FOUND, {"detail": "Not found."})


def _csrf(req: falcon.Request, resp: falcon.Response, exc: CSRFError, _: Any) -> None:
    # Django REST framework's wording for its own CSRF refusals.
    _answer(resp, HTTPStatus.FORBIDDEN, {"detail": f"CSRF Failed: {exc}"})


def _throttled(req: falcon.Request, resp: falcon.Response, exc: ThrottledError, _: Any) -> None:
    _answer(resp, HTTPStatus.TOO_MANY_REQUESTS, {"detail": str(exc)})
    resp.set_header("Retry-After", str(exc.retry_after))


def _store_unavailable(
    req: falcon.Request, resp: falcon.Response, exc: StoreUnavailableError, _: Any
) -> None:
    log.error("store unavailable: %s", exc)
    _answer(resp, HTTPStatus.SERVICE_UNAVAILABLE, {"detail": "Service temporarily unavailable."})
    resp.set_header("Retry-After", "5")


def _busy(req: falcon.Request, resp: falcon.Response, exc: BusyError, _: Any) -> None:
    _answer(resp, HTTPStatus.SERVICE_UNAVAILABLE, {"detail": "Service temporarily unavailable."})
    resp.set_header("Retry-After", "1")


def _http_error(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError, _: Any) -> None:
    status = exc.status_code
    if status == HTTPStatus.NOT_FOUND:
        detail = "Not found."
    elif status == HTTPStatus.METHOD_NOT_ALLOWED:
        detail = f'Method "{req.method}" not allowed.'
    else:
        detail = exc.description or exc.title or HTTPStatus(status).phrase
    _answer(resp, status, {"detail": detail})
    if exc.headers:
        resp.set_headers(exc.headers)


def _unexpected(req: falcon.Request, resp: falcon.Response, exc: Exception, _: Any) -> None:
    # The one place an unforeseen failure is logged: server-side, with its traceback, and
    # answered with a body that reveals nothing.
    log.error("unexpected error on %s %s", req.method, req.path, exc_info=exc)
    _answer(resp, HTTPStatus.INTERNAL_SERVER_ERROR, {"detail": "A server error occurred."})
