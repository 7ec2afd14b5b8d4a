"""Pieces every subcommand shares: a parser whose errors are one line, exit status 2."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class UsageError(ValueError):
    """Bad command-line usage; the command line prints it as one line and exits 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, except that a usage error raises `UsageError` instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def fail(message: str) -> int:
    """Print one line on stderr; the exit status for bad input."""
    print(f"error: {message}".replace("\n", " "), file=sys.stderr)
    return 2
