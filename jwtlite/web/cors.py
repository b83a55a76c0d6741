"""CORS for Falcon 4, resolved once at construction (behaviour: ``docs/reference/http.md``, "CORS").

Origins are compared exactly after normalisation (``jwtlite.service.origins``); regexes must match
the whole origin. A preflight is answered in ``process_request``, before routing, so it works
for every path; all headers are added in ``process_response``, which Falcon runs after its
error handlers, so 401/404/405/413/415/500 responses carry them too. A disallowed origin gets
no ``Access-Control-*`` header and its request is processed normally (the browser, not the
server, enforces CORS). The middleware knows nothing of tokens or users.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

import falcon

from jwtlite.service.errors import ConfigurationError
from jwtlite.service.origins import MAX_ORIGIN_LENGTH, normalize_origin

__all__ = [
    "CSRF_ALLOW_HEADER",
    "DEFAULT_ALLOW_HEADERS",
    "DEFAULT_ALLOW_METHODS",
    "DEFAULT_EXPOSE_HEADERS",
    "CORSMiddleware",
]

# django-cors-headers' defaults, so simplejwt front-ends keep working unchanged.
DEFAULT_ALLOW_METHODS = ("DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT")
DEFAULT_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "user-agent",
    "x-csrftoken",
    "x-requested-with",
    "x-request-id",
)
#: Response headers the app lets a page's script read: the request id, to quote in a report.
DEFAULT_EXPOSE_HEADERS = ("x-request-id",)
#: Announced too when tokens travel in cookies: the header that carries a CSRF value back.
CSRF_ALLOW_HEADER = "x-csrf-token"

_ALLOW_ORIGIN = "Access-Control-Allow-Origin"
_REQUEST_METHOD = "Access-Control-Request-Method"
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+").fullmatch  # RFC 9110 §5.6.2
_Vary = tuple[tuple[str, ...], str]


def _vary(*names: str) -> _Vary:
    """Precompute a Vary addition: the names and the header value they make alone."""
    return names, ", ".join(names)


_PREFLIGHT_VARY = _vary("Origin", _REQUEST_METHOD, "Access-Control-Request-Headers")
_ORIGIN_VARY = _vary("Origin")
_NO_VARY = _vary()


class CORSMiddleware:
    """Falcon middleware applying one CORS policy, fixed when it is built.

    Args:
        allowed_origins: exact origins (``scheme://host[:port]``), normalised here.
        allowed_origin_regexes: patterns that must match a whole origin (``fullmatch``).
        allow_all_origins: answer ``Access-Control-Allow-Origin: *`` to everyone.
        allow_credentials: send ``Access-Control-Allow-Credentials: true``.
        max_age: seconds a browser may cache a preflight answer.
        allow_methods: methods announced to a preflight.
        allow_headers: request headers announced to a preflight.
        expose_headers: response headers a page's script may read.

    Raises:
        ConfigurationError: an origin, regex, header name or max-age is invalid, or
            ``allow_all_origins`` is combined with ``allow_credentials``.
    """

    def __init__(
        self,
        *,
        allowed_origins: Iterable[str] = (),
        allowed_origin_regexes: Iterable[str] = (),
        allow_all_origins: bool = False,
        allow_credentials: bool = False,
        max_age: int = 86400,
        allow_methods: Iterable[str] = DEFAULT_ALLOW_METHODS,
        allow_headers: Iterable[str] = DEFAULT_ALLOW_HEADERS,
        expose_headers: Iterable[str] = (),
    ) -> None:
        if allow_all_origins and allow_credentials:
            raise ConfigurationError(
                "CORS_ALLOW_ALL_ORIGINS", "cannot be combined with CORS_ALLOW_CREDENTIALS"
            )
        self._allow_all = allow_all_origins
        self._origins = frozenset(_normalize_all(allowed_origins))
        self._regexes = tuple(_compile_all(allowed_origin_regexes))
        common = [("Access-Control-Allow-Credentials", "true")] if allow_credentials else []
        expose = _tokens("CORS_EXPOSE_HEADERS", expose_headers)
        self._simple_headers = tuple(
            common + ([("Access-Control-Expose-Headers", expose)] if expose else [])
        )
        self._preflight_headers = (
            *common,
            ("Access-Control-Allow-Methods", _tokens("CORS_ALLOW_METHODS", allow_methods, True)),
            ("Access-Control-Allow-Headers", _tokens("CORS_ALLOW_HEADERS", allow_headers)),
            ("Access-Control-Max-Age", str(_check_max_age(max_age))),
        )
        # With "*" for everyone the answer does not depend on the origin, so caches may share it.
        self._simple_vary = _NO_VARY if allow_all_origins else _ORIGIN_VARY
        # Bounded: Origin values are attacker-chosen.
        self._resolve_cached = functools.lru_cache(maxsize=1024)(self._resolve)

    def allowed_origin(self, origin: str | None) -> str | None:
        """Return the ``Access-Control-Allow-Origin`` value for ``origin``, or ``None``.

        The value is ``*`` under allow-all, else the normalised origin. Browsers send origins
        already normalised, so for them this is exactly the ``Origin`` they sent.
        """
        if self._allow_all:
            return "*"
        # Checked before the cache: an Origin can be as long as the server's header limit,
        # and a cache of 1,024 such strings held 250 MB for an attacker.
        if origin is None or len(origin) > MAX_ORIGIN_LENGTH:
            return None
        return self._resolve_cached(origin)

    def listed_origin(self, origin: str) -> str | None:
        """The normalised ``origin`` if the allowlist names it (exactly or by a regex), else None.

        Allow-all does not count: this answers "do we trust this origin", not "may it read our
        answers"."""
        return self._resolve_cached(origin)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer a preflight before routing: 200 with an empty body, for any path."""
        if _is_preflight(req):
            resp.status = falcon.HTTP_200
            resp.data = b""  # overrides the app's JSON default: a preflight has no body
            resp.complete = True

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Add ``Vary`` to every response and the CORS headers for an allowed origin."""
        origin = req.get_header("Origin")  # read once: this runs for every response
        preflight = req.method == "OPTIONS" and req.get_header(_REQUEST_METHOD) is not None
        if origin is not None and preflight:
            vary, headers = _PREFLIGHT_VARY, self._preflight_headers
        else:
            vary, headers = self._simple_vary, self._simple_headers
        _merge_vary(resp, vary)
        allowed = self.allowed_origin(origin)
        if allowed is not None:
            resp.set_header(_ALLOW_ORIGIN, allowed)
            resp.set_headers(headers)

    def _resolve(self, origin: str) -> str | None:
        normalized = normalize_origin(origin)
        if normalized is None:
            return None
        if normalized in self._origins:
            return normalized
        # The raw value is tried too (it is a valid origin, just not in normal form) so a
        # pattern written for, say, an explicit default port still matches.
        candidates = (normalized,) if origin == normalized else (normalized, origin)
        for regex in self._regexes:
            if any(regex.fullmatch(candidate) for candidate in candidates):
                return normalized
        return None


def _is_preflight(req: falcon.Request) -> bool:
    return (
        req.method == "OPTIONS"
        and req.get_header("Origin") is not None
        and req.get_header(_REQUEST_METHOD) is not None
    )


def _merge_vary(resp: falcon.Response, vary: _Vary) -> None:
    names, value = vary
    if not names:
        return
    current = resp.get_header("Vary")
    if not current:
        resp.set_header("Vary", value)
        return
    present = {token.strip().lower() for token in current.split(",")}
    missing = [name for name in names if name.lower() not in present]
    if missing and "*" not in present:  # "Vary: *" already covers everything
        resp.set_header("Vary", ", ".join([current, *missing]))


def _reject_bare_string(setting: str, values: Iterable[str]) -> None:
    # A lone string is iterable too; treating "http://a.com" as characters is never meant.
    if isinstance(values, str):
        raise ConfigurationError(setting, f"give a list of values, not the string {values!r}")


def _normalize_all(origins: Iterable[str]) -> list[str]:
    _reject_bare_string("CORS_ALLOWED_ORIGINS", origins)
    normalized = []
    for origin in origins:
        value = normalize_origin(origin)
        if value is None:
            raise ConfigurationError(
                "CORS_ALLOWED_ORIGINS",
                f"{origin!r} is not an origin (scheme://host[:port], no path)",
            )
        normalized.append(value)
    return normalized


def _compile_all(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    _reject_bare_string("CORS_ALLOWED_ORIGIN_REGEXES", patterns)
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as error:
            raise ConfigurationError(
                "CORS_ALLOWED_ORIGIN_REGEXES", f"{pattern!r} is not a valid regex: {error}"
            ) from None
    return compiled


def _tokens(setting: str, names: Iterable[str], upper: bool = False) -> str:
    """Validate header or method names (no CR/LF can reach a header) and comma-join them."""
    _reject_bare_string(setting, names)
    checked = []
    for name in names:
        if not isinstance(name, str) or _TOKEN(name) is None:
            raise ConfigurationError(setting, f"{name!r} is not a valid name")
        checked.append(name.upper() if upper else name)
    return ", ".join(dict.fromkeys(checked))


def _check_max_age(max_age: int) -> int:
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
        raise ConfigurationError("CORS_PREFLIGHT_MAX_AGE", f"must be >= 0, got {max_age!r}")
    return max_age
