"""The authentication rules: register, log in, verify, refresh, blacklist, authenticate.

:class:`AuthService` (in :mod:`~jwtlite.service.auth.service`) is the facade the web layer and
the command line call; the rules it delegates to are grouped by what they decide:
:mod:`~jwtlite.service.auth.login` (registration, login), :mod:`~jwtlite.service.auth.refresh`
(verify, refresh, logout, reuse), :mod:`~jwtlite.service.auth.housekeeping` (the purge), over
the collaborators of :mod:`~jwtlite.service.auth.parts` that the account rules use too.
"""

from __future__ import annotations

from jwtlite.service.auth.housekeeping import purge_expired
from jwtlite.service.auth.parts import ServiceParts
from jwtlite.service.auth.service import AuthService, Principal

__all__ = ["AuthService", "Principal", "ServiceParts", "purge_expired"]
