"""Everything `python -m verify analyze` reports about a model, as one JSON-ready dict.

For each head: previous-token, duplicate-token, induction and copying scores (scores.py) and
the change of the loss on the repeated half when it is zero- or mean-ablated (ablation.py);
for each pair of heads in layers l1 < l2: Q-, K-, V-composition with the random baseline of the
same shapes (composition.py); and the heads it names: the best previous-token head and the best
induction head, with every head scoring above `NAME_THRESHOLD`.
"""

from __future__ import annotations

from typing import Any

from constructions.transformer import Transformer
from verify.analysis import ablation, composition, scores

TASKS = ("induction",)
NAME_THRESHOLD = 0.5  # a head is named when more than half of its attention is on its targets
                      # (uniform attention scores ~1/(mean row length), ~0.1 at length 21)


def analyze(model: Transformer, *, task: str = "induction", seed: int = 0,
            n_seqs: int = scores.PROBE_SEQS, bos: int | None = None,
            ablations: bool = True) -> dict[str, Any]:
    """The analysis of the module docstring on repeated random tokens (seeded)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if not isinstance(model, Transformer):
        raise TypeError(f"model must be a Transformer, got {type(model).__name__}")
    tokens = scores.probe_tokens(model.cfg, seed=seed, n_seqs=n_seqs, bos=bos)
    head = scores.head_scores(model, tokens)
    deltas = ablation.loss_deltas(model, tokens) if ablations else None
    heads = [{"layer": layer, "head": h, **head[layer][h],
              "ablation_loss_delta": None if deltas is None else deltas[layer][h]}
             for layer in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)]
    base = composition.baseline(model.cfg.d_model, model.cfg.d_head)
    pairs = [{**row, "baseline": base["mean"]} for row in composition.all_pairs(model)]
    c = model.cfg
    return {
        "model": {"n_layers": c.n_layers, "n_heads": c.n_heads, "d_model": c.d_model,
                  "d_head": c.d_head, "d_vocab": c.d_vocab, "d_vocab_out": c.vocab_out,
                  "n_ctx": c.n_ctx, "d_mlp": c.d_mlp, "attn_scale": c.attn_scale,
                  "dtype": str(c.dtype)},
        "probe": {"kind": "repeated random tokens", "n_seqs": int(tokens.shape[0]),
                  "length": int(tokens.shape[1]), "bos": int(tokens[0, 0]), "seed": seed},
        "clean_loss_repeated_half": ablation.repeated_half_loss(model, tokens),
        "heads": heads,
        "composition": pairs,
        "composition_baseline": base,
        "named": {kind: _named(head, kind) for kind in ("previous_token", "induction")},
    }


def _named(head: list[list[dict[str, Any]]], kind: str) -> dict[str, Any]:
    ranked = scores.best_heads(head, kind)
    best = ranked[0]
    return {"best": {"layer": best[0], "head": best[1], "score": best[2]},
            "above_threshold": [[layer, h] for layer, h, s in ranked if s > NAME_THRESHOLD],
            "threshold": NAME_THRESHOLD}


def summary(result: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    lines = [f"model: {result['model']['n_layers']} layers x {result['model']['n_heads']} heads, "
             f"d_model {result['model']['d_model']}; probe: {result['probe']['n_seqs']} repeated "
             f"random sequences of length {result['probe']['length']}",
             f"loss on the repeated half: {result['clean_loss_repeated_half']:.4f}",
             f"{'head':>6} {'prev':>6} {'dup':>6} {'induct':>6} {'copy':>6} "
             f"{'zero-abl':>9} {'mean-abl':>9}"]
    for h in result["heads"]:
        d = h["ablation_loss_delta"] or {}
        copying = "   n/a" if h["copying"] is None else f"{h['copying']:6.3f}"
        lines.append(f"{h['layer']:>3}.{h['head']:<2} {h['previous_token']:6.3f} "
                     f"{h['duplicate_token']:6.3f} {h['induction']:6.3f} {copying} "
                     f"{d.get('zero', float('nan')):+9.4f} {d.get('mean', float('nan')):+9.4f}")
    for kind, named in result["named"].items():
        b = named["best"]
        lines.append(f"{kind} head: {b['layer']}.{b['head']} (score {b['score']:.3f}); above "
                     f"{named['threshold']}: {named['above_threshold']}")
    if result["composition"]:
        top = max(result["composition"], key=lambda r: r["k"])
        lines.append(f"strongest K-composition: {top['from']} -> {top['to']} = {top['k']:.3f} "
                     f"(random baseline {result['composition_baseline']['mean']:.3f} +- "
                     f"{result['composition_baseline']['std']:.3f})")
    return "\n".join(lines)
