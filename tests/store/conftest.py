"""The store's tests (``jwtlite/store/``): the contract every backend keeps, run on SQLite and
on PostgreSQL (modules marked ``both_backends``), and what only one backend has.

The database fixtures (``database``, ``db_rows``, ``postgres_url``...) live in the suite's
root ``conftest.py``, since the service, web and system tests use them too.
"""
