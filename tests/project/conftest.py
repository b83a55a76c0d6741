"""The project's own checks: layer boundaries, lint, format and strict typing.

They read the source rather than run it; ``pytest tests/project`` before a commit runs every
check CONTRIBUTING.md asks for.
"""
