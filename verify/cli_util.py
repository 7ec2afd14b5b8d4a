"""Pieces every subcommand shares: a parser whose errors are one line, exit status 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
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
    try:
        return _check_output_dir(Path(path), option)
    except OSError as error:       # e.g. a parent that cannot be searched
        raise UsageError(f"{option}: cannot use {str(path)!r}: {error.strerror}") from None


def _check_output_dir(p: Path, option: str) -> Path:
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
    try:
        return _check_output_file(Path(path), option)
    except OSError as error:
        raise UsageError(f"{option}: cannot use {str(path)!r}: {error.strerror}") from None


def _check_output_file(p: Path, option: str) -> Path:
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


# --- output paths named on a command line, checked before any work ------------------------------

def option_values(argv: list[str], option: str) -> list[str]:
    """Every value given to ``option`` in ``argv`` (``--opt VALUE`` or ``--opt=VALUE``)."""
    values = []
    for i, arg in enumerate(argv):
        if arg == option and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            values.append(argv[i + 1])
        elif arg.startswith(option + "="):
            values.append(arg[len(option) + 1:])
    return values


def check_output_options(argv: list[str], kinds: dict[str, str]) -> None:
    """Check each output option present in ``argv``; ``kinds`` maps option -> "dir" | "file"."""
    for option, kind in kinds.items():
        if kind not in ("dir", "file"):
            raise ValueError(f"kinds[{option!r}] must be 'dir' or 'file', got {kind!r}")
        check = check_output_dir if kind == "dir" else check_output_file
        for value in option_values(argv, option):
            check(value, option=option)


# --- memory: estimate, then refuse with the figure and the option that overrides it -------------

MAX_MEMORY_OPTION = "--max-memory"


def pop_max_memory(argv: list[str]) -> tuple[list[str], int | None]:
    """Remove ``--max-memory GB`` from ``argv``; (the rest, the limit in bytes or None)."""
    rest, limit, i = [], None, 0
    while i < len(argv):
        arg = argv[i]
        if arg == MAX_MEMORY_OPTION or arg.startswith(MAX_MEMORY_OPTION + "="):
            if "=" in arg:
                text = arg.split("=", 1)[1]
            elif i + 1 < len(argv):
                text, i = argv[i + 1], i + 1
            else:
                raise UsageError(f"{MAX_MEMORY_OPTION} needs a number of GB")
            try:
                gb = float(text)
            except ValueError:
                raise UsageError(f"{MAX_MEMORY_OPTION} must be a number of GB > 0, "
                                 f"got {text!r}") from None
            if not 0 < gb < float("inf"):
                raise UsageError(f"{MAX_MEMORY_OPTION} must be a number of GB > 0, got {text!r}")
            limit = max(1, int(gb * 1e9))
        else:
            rest.append(arg)
        i += 1
    return rest, limit


def guard_memory(estimates: list[tuple[str, int]], limit: int | None = None) -> None:
    """Refuse the first (what, bytes) estimate above the limit (``limit`` bytes, else
    `validation.memory_limit`): a UsageError with the estimate and ``--max-memory``."""
    from constructions import validation

    with validation.memory_limit_set(limit):
        for what, n_bytes in estimates:
            try:
                validation.check_memory(what, n_bytes)
            except validation.TooLarge as error:
                raise too_large(error) from None


def too_large(error: Exception) -> UsageError:
    """A builder's `validation.TooLarge` as the command line says it."""
    what, estimate, limit = error.what, error.estimate, error.limit  # type: ignore[attr-defined]
    from constructions.validation import format_bytes
    return UsageError(f"{what} needs about {format_bytes(estimate)} of memory, more than the "
                      f"{format_bytes(limit)} allowed; use smaller sizes, or pass "
                      f"{MAX_MEMORY_OPTION} GB to override")


def run_guarded(target: Callable[[list[str]], int], argv: list[str], outputs: dict[str, str],
                estimate: Callable[[list[str]], list[tuple[str, int]]]) -> int:
    """Run a subcommand's target on ``argv`` after the checks that come before any work: its
    output options, ``--max-memory`` and its memory estimate (skipped for ``--help``); a
    builder's `validation.TooLarge` becomes one line."""
    from constructions import validation

    rest, limit = pop_max_memory(argv)
    if "-h" not in rest and "--help" not in rest:
        check_output_options(rest, outputs)
        guard_memory(estimate(rest), limit)
    try:
        with validation.memory_limit_set(limit):
            return int(target(rest))
    except validation.TooLarge as error:
        raise too_large(error) from None
