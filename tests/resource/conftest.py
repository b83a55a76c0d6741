"""The resource-server tools' tests (``jwtlite/resource/``): ``BearerAuth`` and ``JWKSClient``.

They run in process against loopback HTTP servers the tests control (``support.jwks``); a
resource server verifying a real ``serve.py`` is a system test (``tests/system``).
"""
