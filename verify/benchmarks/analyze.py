"""`python -m verify bench analyze`: our head scores against TransformerLens's own way.

A randomly initialized model (default 2 layers x 8 heads, d_model 256, d_head 32, 512 tokens,
n_ctx 128; float32) gets previous-token, duplicate-token and induction scores for every head on
``--n-seqs`` repeated random sequences, computed (a) by `verify.analysis.scores.head_scores`
(one batched forward pass) and (b) the way TransformerLens's documentation does it:
``detect_head(model, seq, name, heads=[(layer, head)])`` for each head, kind and sequence (each
call runs the model). The two must agree (TransformerLens's "mul" score; the largest difference
is printed); the figures are wall-clock seconds, the best of ``--repeats`` runs. Also times the
whole analysis (`verify.analysis.report.analyze`: scores, composition with baselines, zero- and
mean-ablation of every head). Figures, not pass/fail.
"""

from __future__ import annotations

import json
import platform
import time
import warnings

import torch

from constructions import interop, transformer
from constructions.transformer import Transformer
from verify.analysis import report, scores
from verify.cli_util import OneLineParser, check_output_file

KINDS = {"previous_token": "previous_token_head", "duplicate_token": "duplicate_token_head",
         "induction": "induction_head"}


def random_model(n_layers: int, n_heads: int, d_model: int, d_head: int, d_vocab: int,
                 n_ctx: int, seed: int = 0) -> Transformer:
    cfg = transformer.Config(n_layers=n_layers, n_heads=n_heads, d_model=d_model, d_head=d_head,
                             d_vocab=d_vocab, n_ctx=n_ctx, attn_scale=d_head ** 0.5,
                             dtype=torch.float32)
    return Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=seed))


def tl_scores(ht, tokens: torch.Tensor) -> dict[str, torch.Tensor]:  # noqa: ANN001
    """TransformerLens's way: detect_head per head, kind and sequence, averaged over sequences.
    detect_head tokenizes a string; our models have no tokenizer, so each call is handed its
    sequence through ``to_tokens``."""
    from transformer_lens.head_detector import detect_head

    cfg = ht.cfg
    out = {}
    for kind, name in KINDS.items():
        total = torch.zeros(cfg.n_layers, cfg.n_heads, dtype=torch.float64)
        for seq in tokens:
            ht.to_tokens = lambda *_a, _s=seq, **_k: _s[None]
            for layer in range(cfg.n_layers):
                for head in range(cfg.n_heads):
                    found = detect_head(ht, "unused", name,  # type: ignore[arg-type]
                                        heads=[(layer, head)])
                    total[layer, head] += float(found[layer, head])
        out[kind] = total / len(tokens)
    return out


def _best(repeats: int, fn):  # noqa: ANN001, ANN202
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def run_benchmark(*, n_layers: int = 2, n_heads: int = 8, d_model: int = 256, d_head: int = 32,
                  d_vocab: int = 512, n_ctx: int = 128, n_seqs: int = 8, repeats: int = 3,
                  peer: bool = True, full: bool = True) -> dict:
    model = random_model(n_layers, n_heads, d_model, d_head, d_vocab, n_ctx)
    tokens = scores.probe_tokens(model.cfg, n_seqs=n_seqs)
    ours_s, ours = _best(repeats, lambda: scores.head_scores(model, tokens,
                                                             normalization="transformer_lens",
                                                             copying=False))
    out = {"model": f"{n_layers} layers x {n_heads} heads, d_model {d_model}, d_head {d_head}, "
                    f"d_vocab {d_vocab}, float32", "sequences": n_seqs,
           "length": int(tokens.shape[1]), "ours_head_scores_seconds": round(ours_s, 4),
           "repeats_best_of": repeats, "torch": torch.__version__,
           "threads": torch.get_num_threads(), "machine": platform.machine(),
           "device": "cpu (no GPU used)"}
    if full:
        full_s, _ = _best(1, lambda: report.analyze(model, n_seqs=n_seqs))
        out["ours_full_analysis_seconds"] = round(full_s, 3)
    if peer:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ht = interop.to_hooked_transformer(model)
                tl_s, theirs = _best(repeats, lambda: tl_scores(ht, tokens))
        except ImportError:
            out["transformer_lens"] = "not installed"
            return out
        diff = max(abs(ours[layer][h][kind] - float(theirs[kind][layer, h]))
                   for kind in KINDS for layer in range(n_layers) for h in range(n_heads))
        out.update({"tl_detect_head_seconds": round(tl_s, 4),
                    "tl_detect_head_calls": len(KINDS) * n_layers * n_heads * n_seqs,
                    "speedup_ours_over_tl": round(tl_s / ours_s, 1),
                    "max_score_difference": diff})
    return out


def main(argv: list[str]) -> int:
    ap = OneLineParser(prog="python -m verify bench analyze",
                       description="Time our head scores against TransformerLens's detect_head.")
    ap.add_argument("--n-layers", type=int, default=2, help='layers of the random model')
    ap.add_argument("--n-heads", type=int, default=8, help='heads per layer')
    ap.add_argument("--d-model", type=int, default=256, help='residual width')
    ap.add_argument("--d-head", type=int, default=32, help='head width')
    ap.add_argument("--vocab", type=int, default=512, help='vocabulary size')
    ap.add_argument("--n-ctx", type=int, default=128, help='context length')
    ap.add_argument("--n-seqs", type=int, default=8, help='repeated random sequences scored')
    ap.add_argument("--repeats", type=int, default=3, help="best of this many timed runs")
    ap.add_argument("--no-peer", action="store_true", help="skip TransformerLens")
    ap.add_argument("--no-full", action="store_true", help="skip timing the whole analysis")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ns = ap.parse_args(argv)
    for name in ("n_layers", "n_heads", "d_model", "d_head", "vocab", "n_seqs", "repeats"):
        if getattr(ns, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(ns, name)}")
    if ns.n_ctx < 4:
        raise ValueError(f"--n-ctx must be >= 4, got {ns.n_ctx}")
    json_path = check_output_file(ns.json, option="--json") if ns.json else None
    figures = run_benchmark(n_layers=ns.n_layers, n_heads=ns.n_heads, d_model=ns.d_model,
                            d_head=ns.d_head, d_vocab=ns.vocab, n_ctx=ns.n_ctx,
                            n_seqs=ns.n_seqs, repeats=ns.repeats, peer=not ns.no_peer,
                            full=not ns.no_full)
    for key, value in figures.items():
        print(f"{key:30} {value}")
    if json_path is not None:
        json_path.write_text(json.dumps(figures, indent=2))
    return 0


BENCHMARKS = {"analyze": main}
