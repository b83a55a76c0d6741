"""The store's one exception: the database cannot be used."""

from __future__ import annotations

__all__ = ["StoreUnavailableError"]


class StoreUnavailableError(Exception):
    """The user store cannot be read or written (disk full, read-only, missing)."""
