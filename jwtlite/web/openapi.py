"""``GET /openapi.json``: the OpenAPI 3.1 description of the service, shipped as data.

The document is ``jwtlite/web/openapi.json``, written by hand and kept in step with
``docs/reference/http.md`` by the tests (``tests/web/test_openapi.py`` and
``tests/system/test_schemathesis.py``): the document of every feature on. The app serves it
cut down to its configuration (:func:`served_document`), built once when the resource is,
and the same bytes on every request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

import falcon

from jwtlite.web.resources import Resource

__all__ = ["OPENAPI_DOCUMENT", "OpenAPIResource", "load_document", "served_document"]

OPENAPI_DOCUMENT = "openapi.json"


def load_document() -> bytes:
    """The OpenAPI document's bytes, checked to be a JSON object.

    Raises:
        ValueError: the shipped file is not a JSON object (a packaging mistake).
    """
    data = resources.files("jwtlite.web").joinpath(OPENAPI_DOCUMENT).read_bytes()
    if not isinstance(json.loads(data), dict):
        raise ValueError(f"jwtlite/web/{OPENAPI_DOCUMENT} is not a JSON object")
    return data


_METHODS = frozenset({"get", "head", "post", "put", "patch", "delete", "options", "trace"})


def served_document(routes: Mapping[str, object]) -> bytes:
    """The shipped document cut down to what ``routes`` serve.

    A path no route serves (the metadata without ``ISSUER``) and an operation its resource
    has no responder for (``DELETE /accounts/me/`` without ``ALLOW_ACCOUNT_DELETION``) are
    left out, so the document, ``OPTIONS`` and the answers agree. The shipped file is the
    document of everything on.
    """
    document = json.loads(load_document())
    routed = {path.rstrip("/") or "/": resource for path, resource in routes.items()}
    paths: dict[str, Any] = {}
    for path, operations in document["paths"].items():
        resource = routed.get(path.rstrip("/") or "/")
        if resource is None:
            continue
        paths[path] = {
            name: operation
            for name, operation in operations.items()
            if name not in _METHODS or hasattr(resource, f"on_{name}")
        }
    document["paths"] = paths
    return json.dumps(document, indent=2, ensure_ascii=False).encode()


class OpenAPIResource(Resource):
    """``GET /openapi.json`` (and ``HEAD``): the document, built once at construction.

    Args:
        routes: the app's routes, to serve only what they serve (:func:`served_document`);
            None serves the shipped document as it is.
    """

    def __init__(self, routes: Mapping[str, object] | None = None) -> None:
        self._document = load_document() if routes is None else served_document(routes)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Serve the document."""
        resp.data = self._document
        resp.content_type = falcon.MEDIA_JSON

    on_head = on_get  # as the other GET resources: HEAD wherever GET, as Django does
