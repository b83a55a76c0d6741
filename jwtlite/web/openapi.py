"""``GET /openapi.json``: the OpenAPI 3.1 description of the service, shipped as data.

The document is ``jwtlite/web/openapi.json``, written by hand and kept in step with
``docs/reference/http.md`` by the tests (``tests/web/test_openapi.py`` and
``tests/system/test_schemathesis.py``). It is read once,
when the resource is built, and served as the same bytes on every request.
"""

from __future__ import annotations

import json
from importlib import resources

import falcon

from jwtlite.web.resources import Resource

__all__ = ["OPENAPI_DOCUMENT", "OpenAPIResource", "load_document"]

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


class OpenAPIResource(Resource):
    """``GET /openapi.json`` (and ``HEAD``): the document, read once at construction."""

    def __init__(self) -> None:
        self._document = load_document()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Serve the document."""
        resp.data = self._document
        resp.content_type = falcon.MEDIA_JSON

    on_head = on_get  # as the other GET resources: HEAD wherever GET, as Django does
