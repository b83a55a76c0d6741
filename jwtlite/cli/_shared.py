"""What every command group of ``python -m jwtlite`` shares: its two errors and its output."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["PROG", "CommandError", "Environ", "Handler", "UsageError", "print_json"]

PROG = "jwtlite"
Environ = Mapping[str, str]
Handler = Callable[[argparse.Namespace, Environ], int]


class CommandError(Exception):
    """An operational failure: reported on one line, exit code 1."""


class UsageError(Exception):
    """The command was called wrongly in a way argparse cannot see: exit code 2."""


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout."""
    print(json.dumps(value, indent=2))
