"""`python -m verify bench NAME`: benchmarks print figures (and JSON), not pass/fail.

Each module here defines ``BENCHMARKS = {name: main(argv) -> int}``. Before a benchmark runs,
its ``--json FILE`` is checked and the sizes on its command line are turned into a memory
estimate, refused above the limit that ``--max-memory GB`` overrides.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from verify.cli import discover
from verify.cli_util import OneLineParser, UsageError, run_guarded

HELP = "run a benchmark: figures, not pass/fail (NAME --help: its options)"
OUTPUTS = {"--json": "file"}
FLOAT = 8                       # bytes of a float64 / int64


def _known(argv: list[str], **defaults: int | list[int]) -> argparse.Namespace | None:
    ap = OneLineParser(add_help=False)
    for name, default in defaults.items():
        ap.add_argument("--" + name.replace("_", "-"), type=int, default=default,
                        nargs="+" if isinstance(default, list) else None)
    try:
        return ap.parse_known_args(argv)[0]
    except UsageError:          # the benchmark's own parser reports bad values
        return None


def induction_estimate(argv: list[str]) -> list[tuple[str, int]]:
    """Bytes of `bench induction`: weights twice (the weight dict and the model; a third copy in
    TransformerLens), the token, reference and prediction tables [n_seqs, length], and per chunk
    C the [C, N, N] scores, pattern and reference masks plus [C, N, d_model] streams and
    [C, N, V + 1] logits (twice with the peer)."""
    from constructions.previous_token import Layout
    from constructions.transformer import Config

    ns = _known(argv, n_seqs=1000, length=512, vocab=64, chunk=25)
    if ns is None or min(ns.n_seqs, ns.length, ns.vocab, ns.chunk) < 1:
        return []
    layout = Layout(ns.vocab, ns.length)
    cfg = Config(n_layers=2, n_heads=1, d_model=layout.d_model, d_head=layout.d_head,
                 d_vocab=layout.n_tokens, n_ctx=ns.length, d_vocab_out=layout.n_tokens)
    n, c = ns.length, min(ns.chunk, ns.n_seqs)
    per_chunk = c * n * (n * (2 * FLOAT + FLOAT + 1) + 4 * cfg.d_model * FLOAT
                         + layout.n_tokens * FLOAT)
    total = 3 * cfg.parameter_bytes() + 3 * ns.n_seqs * n * FLOAT + 2 * per_chunk
    return [(f"bench induction (vocab {ns.vocab}, length {n}, {ns.n_seqs} sequences, "
             f"chunk {ns.chunk})", total)]


def adder_estimate(argv: list[str]) -> list[tuple[str, int]]:
    """Bytes of `bench adder`: for the largest --p, the adder's weights plus the 64 MiB logit
    chunks of the certificate and brute force."""
    from constructions import modular

    ns = _known(argv, p=[257, 1009])
    if ns is None or min(ns.p) < 2:
        return []
    p = max(ns.p)
    cfg = modular.adder_config(p, max(1, (p - 1) // 2))
    return [(f"bench adder --p {p}", cfg.parameter_bytes() + 2 * 2**26)]


def analyze_estimate(argv: list[str]) -> list[tuple[str, int]]:
    """Bytes of `bench analyze`: the random model's weights (twice with the peer) plus, for all
    sequences at once, logits [n_seqs, n_ctx, vocab] and every layer's patterns
    [n_seqs, heads, n_ctx, n_ctx], kept in the cache (x 3 for the analysis and the peer)."""
    from constructions.transformer import Config

    ns = _known(argv, n_layers=2, n_heads=8, d_model=256, d_head=32, vocab=512, n_ctx=128,
                n_seqs=8)
    if ns is None or min(vars(ns).values()) < 1:
        return []
    cfg = Config(n_layers=ns.n_layers, n_heads=ns.n_heads, d_model=ns.d_model, d_head=ns.d_head,
                 d_vocab=ns.vocab, n_ctx=ns.n_ctx)
    acts = ns.n_seqs * ns.n_ctx * (ns.vocab + ns.n_layers * ns.n_heads * ns.n_ctx
                                   + 6 * ns.n_layers * ns.d_model) * FLOAT
    return [(f"bench analyze (vocab {ns.vocab}, n_ctx {ns.n_ctx}, d_model {ns.d_model})",
             2 * cfg.parameter_bytes() + 3 * acts)]


ESTIMATES: dict[str, Callable[[list[str]], list[tuple[str, int]]]] = {
    "induction": induction_estimate, "adder": adder_estimate, "analyze": analyze_estimate}


def usage(available: dict) -> str:
    lines = ["usage: python -m verify bench NAME [options] [--max-memory GB]", "",
             HELP + ".", "", "names:"]
    for name in sorted(available):
        module = __import__(available[name].__module__, fromlist=["_"])
        doc = (module.__doc__ or "").strip().splitlines()
        line = doc[0].split(":", 1)[-1].strip() if doc else f"see: bench {name} --help"
        lines.append(f"  {name:20} {line}")
    lines += ["", "options:",
              "  -h, --help           show this message and exit",
              "  --max-memory GB      refuse sizes estimated above GB (default: 80% of RAM)"]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    available = discover("verify.benchmarks", "BENCHMARKS")
    if argv and argv[0] in ("-h", "--help"):
        print(usage(available))
        return 0
    if not argv or argv[0] not in available:
        got = repr(argv[0]) if argv else "nothing"
        raise UsageError(f"bench needs NAME, one of: {', '.join(sorted(available)) or '(none)'}; "
                         f"got {got}")
    name = argv[0]
    return run_guarded(available[name], argv[1:], OUTPUTS, ESTIMATES.get(name, lambda _: []))
