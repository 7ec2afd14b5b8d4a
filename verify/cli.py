"""The command line: ``python -m verify`` and its subcommands (see README.md).

    python -m verify                  every fast claim as a table; exit 1 if a check fails
    python -m verify --json           the same as JSON (Result.as_json of verify.registry)
    python -m verify --claim ID ...   some claims (slow ones too); --list lists them; --all: all
    python -m verify SUBCOMMAND ...   one of SUBCOMMANDS; `python -m verify --help` lists them

Each subcommand is a module with ``main(argv) -> int`` and a one-line ``HELP``. Bad usage or
bad arguments print one line on stderr and exit 2; Ctrl-C prints one line and exits 130.
Progress goes to stderr, one line per claim, so stdout stays the table or the JSON.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from collections.abc import Callable, Sequence
from typing import Any

from verify import registry
from verify.cli_util import (
    OneLineParser,
    UsageError,
    check_output_options,
    fail,
    guard_memory,
    pop_max_memory,
    too_large,
)

SUBCOMMANDS = {
    "inspect": "verify.inspect_cmd",
    "grok": "verify.grok_cmd",
    "report": "verify.report",
    "bench": "verify.benchmarks",
    "analyze": "verify.analyze_cmd",
    "train-induction": "verify.train_induction_cmd",
}
# output options of subcommands whose parsers live elsewhere, checked before any work
OUTPUTS = {"grok": {"--out": "dir"}, "train-induction": {"--out": "dir"},
           "inspect": {"--plot": "dir"}, "bench": {"--json": "file"}}
INTERRUPTED = 130   # the shell's status for SIGINT


def grok_estimate(argv: list[str]) -> list[tuple[str, int]]:
    """Bytes of `grok --p P`: the pair tables (a, b, labels, permutation, splits: ~6 p^2 int64)
    and the all-pairs logits and Fourier bases of the progress measures (~3 p^3 float32)."""
    ap = OneLineParser(add_help=False)
    ap.add_argument("--p", type=int, default=None)
    try:
        p = ap.parse_known_args(argv)[0].p
    except UsageError:          # grok's own parser reports bad values
        return []
    if p is None or p < 2:
        return []
    return [(f"grok --p {p}", 6 * p * p * 8 + 3 * p**3 * 4)]


def train_induction_estimate(argv: list[str]) -> list[tuple[str, int]]:
    """Bytes of `train-induction`: parameters with their gradients and two AdamW moments (4
    copies), and per step the [batch, n_ctx, vocab + 1] logits and [batch, heads, n_ctx, n_ctx]
    patterns of every layer, forward and backward (x 3); 8 bytes per number, an upper figure."""
    from constructions.transformer import Config

    ap = OneLineParser(add_help=False)
    for name, default in (("vocab", 32), ("length", 32), ("n_layers", 2), ("n_heads", 4),
                          ("d_model", 64), ("d_head", 16), ("batch", 32)):
        ap.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    try:
        ns = ap.parse_known_args(argv)[0]
        cfg = Config(n_layers=ns.n_layers, n_heads=ns.n_heads, d_model=ns.d_model,
                     d_head=ns.d_head, d_vocab=ns.vocab + 1, n_ctx=ns.length + 1)
    except (UsageError, ValueError, TypeError):   # its own parser reports bad values
        return []
    if ns.batch < 1 or ns.vocab < 1:
        return []
    n = cfg.n_ctx
    per_step = 3 * 8 * ns.batch * n * (cfg.d_vocab + cfg.n_layers * cfg.n_heads * n
                                       + 4 * cfg.n_layers * cfg.d_model)
    return [(f"train-induction (vocab {ns.vocab}, length {ns.length}, d_model {ns.d_model})",
             4 * cfg.parameter_bytes() + per_step)]


# memory estimates of subcommands whose parsers live elsewhere (inspect and bench have theirs)
ESTIMATES = {"grok": grok_estimate, "train-induction": train_induction_estimate}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in SUBCOMMANDS:
            if "-h" not in args and "--help" not in args:   # before torch is imported
                check_output_options(args[1:], OUTPUTS.get(args[0], {}))
                if args[0] == "report":
                    from verify.report import check_paths
                    check_paths(args[1:])
            rest, limit = args[1:], None
            if args[0] in ESTIMATES and "-h" not in args and "--help" not in args:
                rest, limit = pop_max_memory(rest)
                guard_memory(ESTIMATES[args[0]](rest), limit)
            module = importlib.import_module(SUBCOMMANDS[args[0]])
            from constructions import validation
            try:
                with validation.memory_limit_set(limit):
                    return int(module.main(rest))
            except validation.TooLarge as error:
                raise too_large(error) from None
        return run_claims(args)
    except (UsageError, ValueError, TypeError) as error:
        return fail(str(error))
    except ModuleNotFoundError as error:
        return fail(f"this subcommand is not available: {error}")
    except MemoryError:
        return fail("out of memory; use smaller sizes (--max-memory GB sets the limit)")
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C); nothing more was written", file=sys.stderr)
        return INTERRUPTED


def subcommand_help(name: str) -> str:
    """The one-line HELP of a subcommand (its docstring's first line if it has none)."""
    try:
        module = importlib.import_module(SUBCOMMANDS[name])
    except ImportError as error:
        return f"(not available: {error})"
    text = getattr(module, "HELP", None) or (module.__doc__ or "").strip().split("\n")[0]
    return text.split(":", 1)[1].strip() if text.startswith("`") and ":" in text else text


def claims_parser() -> OneLineParser:
    epilog = "subcommands (python -m verify SUBCOMMAND --help for their options):\n" + "\n".join(
        f"  {name:16} {subcommand_help(name)}" for name in SUBCOMMANDS)
    parser = OneLineParser(prog="python -m verify", epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           description="Check the section's claims: each has a literal check "
                           "(the section as written) and a restated one (proofs/); exit 1 if a "
                           "verdict differs from the one proofs/ records.")
    parser.add_argument("--json", action="store_true",
                        help="print the results as JSON on stdout (progress stays on stderr)")
    parser.add_argument("--claim", nargs="+", metavar="ID", help="run only these claims")
    parser.add_argument("--list", action="store_true", help="list claim ids and exit")
    parser.add_argument("--all", action="store_true", help="include slow claims (training)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def run_claims(argv: list[str]) -> int:
    ns = claims_parser().parse_args(argv)
    if ns.list:
        for c in registry.all_claims():
            print(f"{c.id:34} {c.source:24} {'(slow) ' if c.slow else ''}{c.statement}")
        return 0
    if ns.claim:
        claims = registry.get_claims(ns.claim)
    else:
        claims = [c for c in registry.all_claims() if ns.all or not c.slow]
    results = run_with_progress(claims, quiet=ns.quiet)
    from verify.display import table
    if ns.json:
        print(json.dumps([r.as_json() for r in results], indent=2, default=str))
    else:
        print(table(("claim", "literal", "restated", "verdict", "recorded", "passed", "seconds"),
                    [result_row(r) for r in results]))
        failed = [r for r in results if not r.passed]
        total = sum(r.seconds for r in results)
        print(f"\n{len(results)} claims, {len(results) - len(failed)} passed, {len(failed)} failed"
              f" ({total:.1f} s)")
        for r in failed:
            print(f"FAILED {r.id}: {json.dumps(r.evidence, default=str)[:400]}")
    return 0 if all(r.passed for r in results) else 1


def holds(finding: registry.Finding | None) -> str:
    """A check's outcome in a table cell: holds / fails / error (it raised or is missing)."""
    return "error" if finding is None else ("holds" if finding.holds else "fails")


def result_row(r: registry.Result) -> tuple[str, ...]:
    return (r.id, holds(r.literal), holds(r.restated), r.verdict, str(r.recorded),
            "yes" if r.passed else "NO", f"{r.seconds:.2f}")


def run_with_progress(claims: list[registry.Claim], *, quiet: bool = False
                      ) -> list[registry.Result]:
    """Run the claims in order; one line per claim on stderr (never stdout)."""
    results = []
    for i, c in enumerate(claims, 1):
        if not quiet:
            print(f"[{i}/{len(claims)}] {c.id}{' (slow)' if c.slow else ''} ...", end="",
                  file=sys.stderr, flush=True)
        try:
            r = registry.run_claim(c)
        except KeyboardInterrupt:
            if not quiet:
                print(file=sys.stderr, flush=True)   # end the progress line, then one message
            raise
        if not quiet:
            print(f" {r.verdict}, {'passed' if r.passed else 'FAILED'} ({r.seconds:.1f} s)",
                  file=sys.stderr, flush=True)
        results.append(r)
    return results


def discover(package: str, attribute: str) -> dict[str, Callable[..., Any]]:
    """Merge the ``attribute`` dicts ({name: function}) of every module of ``package``."""
    found: dict[str, Callable[..., Any]] = {}
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        module = importlib.import_module(f"{package}.{info.name}")
        found.update(getattr(module, attribute, {}))
    return found
