"""Figures of a train-induction run: loss curves, per-head scores over training, and the trained
heads' attention beside the hand-built model's on the same sequence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from constructions import induction
from constructions.transformer import Transformer
from verify.analysis import scores


def _pyplot():  # noqa: ANN202 - matplotlib.pyplot, headless
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_curves(run: dict[str, Any], folder: Path) -> Path:
    """curves.png: losses and ICL score (left), per-head scores (right), phase change marked."""
    plt = _pyplot()
    h = run["history"]
    steps = [r["step"] for r in h]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(16, 4.5))
    for key, label in (("loss", "loss, all positions"), ("loss_repeated", "loss, repeated half"),
                       ("loss_early", "loss, early positions")):
        a.plot(steps, [r[key] for r in h], label=label)
    a.axhline(run["bigram_baseline"]["loss_repeated"], ls=":", c="gray",
              label="true bigram table (n-gram baseline)")
    a.plot(steps, [r["icl_score"] for r in h], label="ICL score (late - early loss)", c="k")
    a.set(xlabel="step", ylabel="nats", title="loss and in-context-learning score")
    n_layers = len(h[0]["previous_token"])
    for layer in range(n_layers):
        for head in range(len(h[0]["previous_token"][layer])):
            b.plot(steps, [r["previous_token"][layer][head] for r in h],
                   ls="-" if layer == 0 else "--", label=f"{layer}.{head}")
            c.plot(steps, [r["induction"][layer][head] for r in h],
                   ls="-" if layer == n_layers - 1 else "--", label=f"{layer}.{head}")
    b.set(xlabel="step", ylabel="score", title="previous-token score per head", ylim=(0, 1))
    c.set(xlabel="step", ylabel="score", title="induction (prefix-matching) score per head",
          ylim=(0, 1))
    phase = run.get("phase", {}).get("step")
    for ax in (a, b, c):
        if phase is not None:
            ax.axvline(phase, c="r", lw=0.8, label=f"phase change (step {phase})")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = folder / "curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_attention(model: Transformer, heads: dict[str, tuple[int, int]], folder: Path,
                   vocab_size: int) -> Path:
    """attention.png: on one repeated random sequence, the trained previous-token and induction
    heads (top) and the hand-built model's two heads (bottom)."""
    plt = _pyplot()
    tokens = scores.probe_tokens(model.cfg, seed=7, n_seqs=1)
    built = induction.build_induction_model(vocab_size, model.cfg.n_ctx, "softmax")
    with torch.no_grad():
        _, ours = model.run_with_cache(tokens)
        _, ref = built.run_with_cache(tokens)
    panels = [(ours[f"blocks.{heads['previous_token'][0]}.attn.hook_pattern"][0,
                                                                          heads["previous_token"][1]],
               f"trained previous-token head {heads['previous_token'][0]}."
               f"{heads['previous_token'][1]}"),
              (ours[f"blocks.{heads['induction'][0]}.attn.hook_pattern"][0, heads["induction"][1]],
               f"trained induction head {heads['induction'][0]}.{heads['induction'][1]}"),
              (ref["blocks.0.attn.hook_pattern"][0, 0], "hand-built previous-token head 0.0"),
              (ref["blocks.1.attn.hook_pattern"][0, 0], "hand-built induction head 1.0")]
    fig, axes = plt.subplots(2, 2, figsize=(11, 10))
    for ax, (pattern, title) in zip(axes.flat, panels):
        im = ax.imshow(pattern.double().numpy(), cmap="viridis", vmin=0, vmax=1)
        ax.set(title=title, xlabel="key position", ylabel="query position")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle("the same sequence: BOS, a random block, the block again")
    fig.tight_layout()
    path = folder / "attention.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
