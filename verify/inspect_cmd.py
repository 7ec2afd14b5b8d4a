"""`python -m verify inspect NAME`: print a construction's weights and circuits.

Targets come from the ``INSPECT`` dicts of the claim modules (``verify/claims/*.py``).
"""

from __future__ import annotations

from verify.cli import discover
from verify.cli_util import UsageError


def targets() -> dict:
    return discover("verify.claims", "INSPECT")


def main(argv: list[str]) -> int:
    available = targets()
    if not argv or argv[0].startswith("-"):
        raise UsageError(f"inspect needs a NAME, one of: {', '.join(sorted(available))}")
    name = argv[0]
    if name not in available:
        raise UsageError(f"unknown construction {name!r}; choose one of: "
                         f"{', '.join(sorted(available))}")
    return int(available[name](argv[1:]))
