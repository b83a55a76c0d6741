"""The HTTP layer's tests (``jwtlite/web/``): the contract, CORS, cookies, bodies, OpenAPI and
metrics through the WSGI app (webtest), in process, with a fake clock.

What needs a real socket -- ``serve.py``, other WSGI hosts, schemathesis against a live server
-- is in ``tests/system``.
"""
