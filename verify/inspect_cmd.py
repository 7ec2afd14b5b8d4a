"""`python -m verify inspect NAME`: print a construction's weights and circuits.

Targets come from the ``INSPECT`` dicts of the claim modules (``verify/claims/*.py``). Sizes
given on the command line (``inspect adder --p P``) are turned into a memory estimate first and
refused, with the estimate, above the limit that ``--max-memory GB`` overrides.
"""

from __future__ import annotations

from collections.abc import Callable

from verify.cli import discover
from verify.cli_util import OneLineParser, UsageError, run_guarded

HELP = "print a construction's weights, QK and OV circuits (NAME --help: its options)"
OUTPUTS = {"--plot": "dir"}   # output options of the targets, checked before any work


def targets() -> dict:
    return discover("verify.claims", "INSPECT")


def adder_estimate(argv: list[str]) -> list[tuple[str, int]]:
    """Bytes `inspect adder` allocates for ``--p``/``--freqs``: the weights of the adder
    (float64, `modular.adder_config`) plus the tuple of frequencies (~36 bytes per Python int)."""
    from constructions import modular

    ap = OneLineParser(add_help=False)
    ap.add_argument("--p", type=int, default=5)
    ap.add_argument("--freqs", type=int, nargs="+", default=None)
    try:
        ns, _ = ap.parse_known_args(argv)
    except UsageError:          # the target's own parser reports bad values
        return []
    if ns.p < 2:
        return []
    m = len(ns.freqs) if ns.freqs else max(1, (ns.p - 1) // 2)   # default: every 1..(p-1)//2
    cfg = modular.adder_config(ns.p, m)
    return [(f"inspect adder --p {ns.p} ({m:,} frequencies, {cfg.parameter_count():,} weights)",
             cfg.parameter_bytes() + 36 * m)]


# one line per target for `inspect --help` (a target's docstring, if it has one, wins)
DESCRIPTIONS = {
    "adder": "the trig-identity adder: W_E, one frequency block of W_in/W_out, logits, "
             "certificate (--p P --freqs K...)",
    "induction": "the two-layer induction model: both heads' patterns, QK and OV circuits "
                 "(--plot DIR)",
    "worked_example_1": "Worked Example 1: the stated W_Q W_K^T, its rank, what it matches",
}
ESTIMATES: dict[str, Callable[[list[str]], list[tuple[str, int]]]] = {"adder": adder_estimate}


def usage(available: dict) -> str:
    lines = ["usage: python -m verify inspect NAME [options] [--max-memory GB]", "",
             HELP + ".", "", "names:"]
    for name in sorted(available):
        doc = (available[name].__doc__ or "").strip().splitlines()
        line = doc[0] if doc else DESCRIPTIONS.get(name, f"see: inspect {name} --help")
        lines.append(f"  {name:20} {line}")
    lines += ["", "options:",
              "  -h, --help           show this message and exit",
              "  --max-memory GB      refuse sizes estimated above GB (default: 80% of RAM)"]
    return "\n".join(lines)


def main(argv: list[str]) -> int:

    available = targets()
    if argv and argv[0] in ("-h", "--help"):
        print(usage(available))
        return 0
    if not argv or argv[0].startswith("-"):
        raise UsageError(f"inspect needs a NAME, one of: {', '.join(sorted(available))}")
    name = argv[0]
    if name not in available:
        raise UsageError(f"unknown construction {name!r}; choose one of: "
                         f"{', '.join(sorted(available))}")
    return run_guarded(available[name], argv[1:], OUTPUTS, ESTIMATES.get(name, lambda _: []))
