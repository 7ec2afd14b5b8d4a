"""Pieces every subcommand shares: a parser whose errors are one line, exit status 2."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
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


def check_output_dir(path: str | os.PathLike[str], *, option: str) -> Path:
    """Refuse, before any work, an output folder that cannot be written: an existing file, a
    folder that is not writable, or a parent that is not a writable folder. Returns the path
    (not created). Raises UsageError naming ``option``."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{option}: {str(p)!r} is a file, not a folder")
    if p.is_dir():
        if not os.access(p, os.W_OK | os.X_OK):
            raise UsageError(f"{option}: the folder {str(p)!r} is not writable")
        return p
    parent = _nearest_existing(p.parent)
    if not parent.is_dir():
        raise UsageError(f"{option}: {str(parent)!r} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{option}: cannot create {str(p)!r}: {str(parent)!r} is not writable")
    return p


def check_output_file(path: str | os.PathLike[str], *, option: str) -> Path:
    """Refuse, before any work, an output file that cannot be written: a folder, a missing or
    non-folder parent, or a read-only location. Returns the path. Raises UsageError."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{option}: {str(p)!r} is a folder, not a file")
    if not p.parent.exists():
        raise UsageError(f"{option}: the folder {str(p.parent)!r} does not exist")
    if not p.parent.is_dir():
        raise UsageError(f"{option}: {str(p.parent)!r} is not a folder")
    target = p if p.exists() else p.parent
    if not os.access(target, os.W_OK):
        raise UsageError(f"{option}: {str(p)!r} is not writable")
    return p


def _nearest_existing(p: Path) -> Path:
    while not p.exists() and p != p.parent:
        p = p.parent
    return p
