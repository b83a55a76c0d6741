"""The service's tests (``jwtlite/service/``): settings, credentials, signing keys, throttling,
sessions and the rules end to end, in process with a fake clock.

Rules that need an HTTP request go through the WSGI app with webtest (the ``client`` and
``make_client`` fixtures of the root ``conftest.py``); nothing here starts a server.
"""
