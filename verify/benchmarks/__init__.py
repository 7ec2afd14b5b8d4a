"""`python -m verify bench NAME`: benchmarks print figures (and JSON), not pass/fail.

Each module here defines ``BENCHMARKS = {name: main(argv) -> int}``.
"""

from __future__ import annotations

from verify.cli import discover
from verify.cli_util import UsageError


def main(argv: list[str]) -> int:
    available = discover("verify.benchmarks", "BENCHMARKS")
    if not argv or argv[0] not in available:
        got = repr(argv[0]) if argv else "nothing"
        raise UsageError(f"bench needs NAME, one of: {', '.join(sorted(available)) or '(none)'}; "
                         f"got {got}")
    return int(available[argv[0]](argv[1:]))
