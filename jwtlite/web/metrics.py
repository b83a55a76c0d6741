"""``GET /metrics``: Prometheus metrics with ``prometheus_client``, only when ``METRICS`` is on.

This module is imported only by ``create_app`` when ``METRICS=true``, so with metrics off no
process loads ``prometheus_client`` and no request pays anything for them. When on:

* :class:`Metrics` subscribes to the service's :mod:`events <jwtlite.service.events>`
  (logins by outcome, registrations and throttled ones, refreshes, reuse, revoked
  sessions, CSRF refusals, store errors, password hashes in flight) and owns every metric;
  each is named ``jwtlite_...`` and has its help text.
* :class:`MetricsMiddleware` counts requests by route template, method and status, and
  observes their latency by route. The ``route`` label is the template a resource was
  mounted at (``/accounts/token``, ``/accounts/sessions/{session_id}``) or ``unmatched``,
  and ``method`` is one of the HTTP methods the app knows or ``other``: a client cannot
  create label values (series) by requesting random paths or inventing methods. Label
  children are bound once per route, so a request does two dictionary look-ups, one
  ``inc`` and one ``observe``.
* :class:`MetricsResource` serves the text format to clients in ``METRICS_ALLOWED``
  (default loopback); anyone else gets the 404 of an unknown path to every method (the
  middleware refuses them before a responder is picked), so a scanner cannot tell the
  endpoint exists (a 403, a 405 or an ``OPTIONS`` answer would confirm it).

Several processes (gunicorn workers): set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory
before the server starts. ``prometheus_client`` reads it at import to keep each process's
values in files there, and a scrape, whichever process answers it, merges them all (the
hashes-in-flight gauge counts live processes only: the server must call
``prometheus_client.multiprocess.mark_process_dead(pid)`` when a worker exits; see
docs/guides/observability.md, "Metrics"). The variable is read here too, because the scrape
must look where the values are.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Callable, Collection, Iterable, Mapping

import falcon
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from jwtlite.service.errors import ConfigurationError
from jwtlite.service.events import Event, EventName
from jwtlite.web.resources import NO_STORE, Resource, client_address

__all__ = ["UNMATCHED", "Metrics", "MetricsMiddleware", "MetricsResource", "allowed_networks"]

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: The ``route`` label of a request no route matched (and of CORS preflights, answered
#: before routing).
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Verification answers in well under a millisecond; a login costs an Argon2id hash (~20 ms).
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def allowed_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """The networks of ``METRICS_ALLOWED`` (already checked by the settings)."""
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


class _Route:
    """The pre-bound metric children of one route."""

    __slots__ = ("by_status", "latency", "name", "requests")

    def __init__(self, name: str, requests: Counter, latency: Histogram) -> None:
        self.name = name
        self.requests = requests
        self.latency = latency.labels(name)
        # method -> status -> counter child, filled on first use (statuses are the app's).
        self.by_status: dict[str, dict[int, Counter]] = {m: {} for m in (*_METHODS, "other")}

    def count(self, method: str, status: int, seconds: float) -> None:
        statuses = self.by_status.get(method)
        if statuses is None:
            method, statuses = "other", self.by_status["other"]
        child = statuses.get(status)
        if child is None:
            child = statuses[status] = self.requests.labels(self.name, method, str(status))
        child.inc()
        self.latency.observe(seconds)


class Metrics:
    """Every ``jwtlite_`` metric of one app, and the event subscriber that feeds them.

    Args:
        multiprocess_dir: ``PROMETHEUS_MULTIPROC_DIR`` (None: this process alone); read from
            the environment when not given, as ``prometheus_client`` itself does.

    Raises:
        ConfigurationError: ``PROMETHEUS_MULTIPROC_DIR`` is not a writable directory.
    """

    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        if multiprocess_dir is None:
            multiprocess_dir = os.environ.get(MULTIPROCESS_VARIABLE) or None
        if multiprocess_dir is not None and not (
            os.path.isdir(multiprocess_dir) and os.access(multiprocess_dir, os.W_OK)
        ):
            raise ConfigurationError(
                MULTIPROCESS_VARIABLE, f"{multiprocess_dir!r} is not a writable directory"
            )
        self.multiprocess_dir = multiprocess_dir
        # One process: a registry of this app's own (two apps in one process do not clash).
        # Several: nothing is registered; each scrape merges the processes' files.
        registry = CollectorRegistry() if multiprocess_dir is None else None
        self._registry = registry
        self.requests = Counter(
            "jwtlite_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "jwtlite_request_duration_seconds",
            "Time from the request's arrival in the app to its answer, by route template.",
            ["route"],
            buckets=_BUCKETS,
            registry=registry,
        )
        logins = Counter(
            "jwtlite_logins",
            "Login attempts by outcome: ok, bad_credentials, throttled (with the password "
            "checks of password changes and account deletions).",
            ["outcome"],
            registry=registry,
        )
        registrations = Counter("jwtlite_registrations", "Users registered.", registry=registry)
        registrations_throttled = Counter(
            "jwtlite_registrations_throttled",
            "Registrations refused by the per-address throttle (429).",
            registry=registry,
        )
        refreshes = Counter(
            "jwtlite_refreshes",
            "Token refreshes by outcome: ok, grace (a second tab in the grace period), refused.",
            ["outcome"],
            registry=registry,
        )
        reuse = Counter(
            "jwtlite_refresh_reuse_detected",
            "Spent refresh tokens presented again; each revoked its session (token family).",
            registry=registry,
        )
        revoked = Counter(
            "jwtlite_sessions_revoked",
            "Sessions ended, by reason: logout, reuse, password_change, logout_all, "
            "session_deleted, account_deleted, command_line.",
            ["reason"],
            registry=registry,
        )
        csrf = Counter(
            "jwtlite_csrf_refusals",
            "Requests refused by a CSRF check, by reason: missing, incorrect, origin.",
            ["reason"],
            registry=registry,
        )
        store_errors = Counter(
            "jwtlite_store_errors",
            "Store failures (answered 503, or a background purge that failed).",
            registry=registry,
        )
        key_rotations = Counter(
            "jwtlite_key_rotations",
            "New signing keys this instance picked up from its key directory.",
            registry=registry,
        )
        hashes = Gauge(
            "jwtlite_password_hashes_in_flight",
            "Password hashes running or waiting for a hashing thread.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._routes: dict[int, _Route] = {}
        self._unmatched = _Route(UNMATCHED, self.requests, self.latency)
        ok, bad, throttled = (logins.labels(o) for o in ("ok", "bad_credentials", "throttled"))
        reused, logged_out = revoked.labels("reuse"), revoked.labels("logout")
        changed = revoked.labels("password_change")
        ended = _by_detail(revoked, "reason", amount="sessions_ended")

        def password_changed(event: Event) -> None:
            changed.inc(_amount(event, "sessions_ended"))

        def reuse_detected(event: Event) -> None:
            reuse.inc()
            reused.inc()

        self._handlers: Mapping[EventName, Callable[[Event], None]] = {
            EventName.LOGIN_SUCCEEDED: lambda event: ok.inc(),
            EventName.LOGIN_FAILED: lambda event: bad.inc(),
            EventName.LOGIN_THROTTLED: lambda event: throttled.inc(),
            EventName.USER_REGISTERED: lambda event: registrations.inc(),
            EventName.REGISTRATION_THROTTLED: lambda event: registrations_throttled.inc(),
            EventName.LOGOUT: lambda event: logged_out.inc(),
            EventName.REFRESH: _by_detail(refreshes, "outcome"),
            EventName.REUSE_DETECTED: reuse_detected,
            EventName.PASSWORD_CHANGED: password_changed,
            EventName.SESSIONS_ENDED: ended,
            EventName.KEY_ROTATED: lambda event: key_rotations.inc(),
            EventName.CSRF_REFUSED: _by_detail(csrf, "reason"),
            EventName.STORE_ERROR: lambda event: store_errors.inc(),
            EventName.HASH_STARTED: lambda event: hashes.inc(),
            EventName.HASH_FINISHED: lambda event: hashes.dec(),
        }

    # -- the event subscriber ----------------------------------------------------------------

    def notify(self, event: Event) -> None:
        """Count ``event``."""
        handler = self._handlers.get(event.name)
        if handler is not None:
            handler(event)

    # -- requests ----------------------------------------------------------------------------

    def bind_routes(self, routes: Mapping[str, object]) -> None:
        """Name each resource of ``routes`` (template -> resource) by its template."""
        for template, resource in routes.items():
            self._routes[id(resource)] = _Route(template, self.requests, self.latency)

    def route(self, resource: object) -> _Route:
        """The metric children of the route ``resource`` serves (``unmatched`` for None)."""
        return self._routes.get(id(resource), self._unmatched)

    # -- the web parts -----------------------------------------------------------------------

    def middleware(self) -> MetricsMiddleware:
        """The middleware that counts and times every request into these metrics."""
        return MetricsMiddleware(self)

    def resource(
        self, *, allowed: Iterable[str], trusted_proxies: Collection[str]
    ) -> MetricsResource:
        """The ``/metrics`` resource serving these metrics to clients in ``allowed``."""
        return MetricsResource(self, allowed=allowed, trusted_proxies=trusted_proxies)

    # -- exposition --------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format (of every process, in multiprocess mode)."""
        registry = self._registry
        if registry is None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def __repr__(self) -> str:
        return f"Metrics(multiprocess_dir={self.multiprocess_dir!r})"


def _amount(event: Event, name: str) -> int:
    value = event.details.get(name, 1)
    return value if isinstance(value, int) and value >= 0 else 0


def _by_detail(
    counter: Counter, label: str, *, amount: str | None = None
) -> Callable[[Event], None]:
    """An event handler adding to ``counter``'s child named by the event's ``label`` detail.

    The label is a fixed code of ours; the handler adds the event's ``amount`` detail, or one.
    Children are bound once."""
    children: dict[object, Counter] = {}

    def count(event: Event) -> None:
        value = event.details.get(label)
        child = children.get(value)
        if child is None:
            child = children[value] = counter.labels(str(value))
        child.inc(1 if amount is None else _amount(event, amount))

    return count


class MetricsMiddleware:
    """Falcon middleware counting every request and timing it, by route template."""

    def __init__(self, metrics: Metrics, clock: Callable[[], float] = time.perf_counter) -> None:
        self._metrics = metrics
        self._clock = clock

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Note when the request arrived."""
        req.context.metrics_began = self._clock()

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: object
    ) -> None:
        """Refuse a client outside ``METRICS_ALLOWED`` before routing picks a responder.

        Refusing it before a responder is picked for its method makes every method it tries the
        404 of an unknown path."""
        if isinstance(resource, MetricsResource):
            resource.refuse_unless_allowed(req)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Count the answer and observe its latency."""
        began = req.context.get("metrics_began")
        if began is None:
            return
        seconds = self._clock() - began
        self._metrics.route(resource).count(req.method, resp.status_code, seconds)


class MetricsResource(Resource):
    """``GET /metrics``: the exposition, to allowed client addresses only.

    Args:
        metrics: what to expose.
        allowed: the networks of ``METRICS_ALLOWED``.
        trusted_proxies: peers whose ``X-Forwarded-For`` names the client (the address the
            throttle uses).
    """

    def __init__(
        self, metrics: Metrics, *, allowed: Iterable[str], trusted_proxies: Collection[str]
    ) -> None:
        self._metrics = metrics
        self._allowed = allowed_networks(allowed)
        self._trusted_proxies = frozenset(trusted_proxies)

    def refuse_unless_allowed(self, req: falcon.Request) -> None:
        """Raise the 404 of an unknown path unless the client is in ``METRICS_ALLOWED``.

        :class:`MetricsMiddleware` calls it for every request routed here, whatever its
        method: a 405 to ``POST`` or a 200 to ``OPTIONS`` would tell a scanner the endpoint
        exists. (A CORS preflight is answered before routing, as for any path.)

        Raises:
            falcon.HTTPRouteNotFound: the client is not allowed.
        """
        if not self._allows(client_address(req, self._trusted_proxies)):
            raise falcon.HTTPRouteNotFound()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Serve the metrics, or the 404 of an unknown path to a client not allowed."""
        self.refuse_unless_allowed(req)  # again: the resource is safe without the middleware
        resp.data = self._metrics.exposition()
        resp.content_type = CONTENT_TYPE_LATEST
        resp.cache_control = [NO_STORE]

    on_head = on_get

    def _allows(self, client: str) -> bool:
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False  # "unknown" (no peer address): fail closed
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        return any(address in network for network in self._allowed)
