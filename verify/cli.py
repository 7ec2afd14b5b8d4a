"""The command line: ``python -m verify`` and its subcommands (see README.md).

    python -m verify                  every fast claim as a table; exit 1 if a check fails
    python -m verify --json           the same as JSON
    python -m verify --claim ID ...   some claims (slow ones too); --list lists them; --all: all
    python -m verify inspect NAME     a construction's weights, QK and OV circuits
    python -m verify grok [...]       the grokking experiment
    python -m verify report DIR       a Markdown certificate with figures
    python -m verify bench NAME       a benchmark: figures, not pass/fail

Bad usage or bad arguments print one line on stderr and exit 2.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from collections.abc import Callable, Sequence
from typing import Any

from verify import registry
from verify.cli_util import OneLineParser, UsageError, fail
from verify.display import table

SUBCOMMANDS = {
    "inspect": "verify.inspect_cmd",
    "grok": "verify.grok_cmd",
    "report": "verify.report",
    "bench": "verify.benchmarks",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in SUBCOMMANDS:
            module = importlib.import_module(SUBCOMMANDS[args[0]])
            return int(module.main(args[1:]))
        return run_claims(args)
    except (UsageError, ValueError, TypeError) as error:
        return fail(str(error))
    except ModuleNotFoundError as error:
        return fail(f"this subcommand is not available: {error}")


def run_claims(argv: list[str]) -> int:
    parser = OneLineParser(prog="python -m verify", description="Check the section's claims.")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--claim", nargs="+", metavar="ID", help="run only these claims")
    parser.add_argument("--list", action="store_true", help="list claim ids and exit")
    parser.add_argument("--all", action="store_true", help="include slow claims (grokking)")
    ns = parser.parse_args(argv)
    if ns.list:
        for c in registry.all_claims():
            print(f"{c.id:34} {c.source:24} {'(slow) ' if c.slow else ''}{c.statement}")
        return 0
    if ns.claim:
        claims = registry.get_claims(ns.claim)
    else:
        claims = [c for c in registry.all_claims() if ns.all or not c.slow]
    results = [registry.run_claim(c) for c in claims]
    if ns.json:
        print(json.dumps([r.as_json() for r in results], indent=2, default=str))
    else:
        rows = [(r.id, r.verdict, "yes" if r.passed else "NO", f"{r.seconds:.2f}") for r in results]
        print(table(("claim", "verdict", "passed", "seconds"), rows))
        failed = [r for r in results if not r.passed]
        total = sum(r.seconds for r in results)
        print(f"\n{len(results)} claims, {len(results) - len(failed)} passed, {len(failed)} failed"
              f" ({total:.1f} s)")
        for r in failed:
            print(f"FAILED {r.id}: {json.dumps(r.evidence, default=str)[:400]}")
    return 0 if all(r.passed for r in results) else 1


def discover(package: str, attribute: str) -> dict[str, Callable[..., Any]]:
    """Merge the ``attribute`` dicts ({name: function}) of every module of ``package``."""
    found: dict[str, Callable[..., Any]] = {}
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        module = importlib.import_module(f"{package}.{info.name}")
        found.update(getattr(module, attribute, {}))
    return found
