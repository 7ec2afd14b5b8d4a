"""Display of the induction circuit: `python -m verify inspect induction` and its heatmaps.

`inspect` prints both heads' patterns on Coding Demo 1's sequence and their QK / OV circuits;
`plot_patterns` writes, for Demo 1's sequence and the cat sentence, a figure with the two
heads' patterns on a linear scale (saturated: what the head does) and on a log scale (the small
off-target mass that proofs/induction.md bounds by delta_1 and delta_2).
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from constructions import circuits, induction
from verify.cli_util import OneLineParser
from verify.sequences import DEMO_SEQUENCE, SENTENCE, tokenize

LOG_FLOOR = 1e-18  # entries below this (exact zeros included) are drawn at this value


def inspect(argv: list[str]) -> int:
    """Print the induction model's weights and patterns; ``--plot DIR`` also writes PNGs."""
    from verify.display import matrix

    parser = OneLineParser(prog="python -m verify inspect induction",
                           description="Weights and attention patterns of the induction model.")
    parser.add_argument("--attention", choices=("softmax", "hard"), default="softmax",
        help='softmax at beta*(N), or the hard (argmax) limit')
    parser.add_argument("--plot", metavar="DIR", help="write PNG heatmaps of both heads here")
    ns = parser.parse_args(argv)
    tokens = torch.tensor([[5, *DEMO_SEQUENCE]])  # Demo 1's sequence after BOS (= 5)
    model = induction.build_induction_model(5, 9, ns.attention)
    lay = model.layout
    print(f"induction model: V={lay.vocab_size}, N={model.cfg.n_ctx}, beta={model.beta:.4f} "
          f"(beta*={induction.beta_star(model.cfg.n_ctx):.4f}), attention={ns.attention}")
    print("subspaces:", {k: (v[0], v[-1]) for k, v in lay.subspaces().items()})
    _, cache = model.run_with_cache(tokens)
    labels = ["BOS", *[str(t) for t in DEMO_SEQUENCE]]
    for layer, name in ((0, "(Layer 1) previous-token head"), (1, "(Layer 2) induction head")):
        print()
        print(matrix(f"block {layer} {name}: pattern on {labels}",
                     cache[f"blocks.{layer}.attn.hook_pattern"][0, 0], labels, labels))
    names = [str(t) for t in range(lay.vocab_size)] + ["BOS"]
    positions = [str(i) for i in range(model.cfg.n_ctx)]
    print()
    print(matrix("block 0 QK through W_pos (scores / beta): query position x key position",
                 circuits.full_qk(model, 0, 0, query="pos", key="pos") / model.beta,
                 positions, positions))
    print()
    print(matrix("block 0 OV: token subspace (rows) -> previous-token subspace (columns)",
                 circuits.ov(model, 0, 0)[lay.tok][:, lay.prev], names, names))
    print()
    print(matrix("block 1 QK (scores / beta): query token x key's previous-token coordinate",
                 circuits.qk(model, 1, 0)[lay.tok][:, lay.prev] / model.beta, names, names))
    print()
    print(matrix("block 1 full OV circuit W_E W_OV W_U: attended token (rows) -> logits",
                 circuits.full_ov(model, 1, 0), names, names))
    if ns.plot:
        plot_patterns(ns.plot, ns.attention)
    return 0


def _examples(attention: str) -> list[tuple[str, induction.InductionModel, Tensor, list[str]]]:
    vocab, ids = tokenize(SENTENCE)
    return [("demo1", induction.build_induction_model(5, 9, attention),
             torch.tensor([[5, *DEMO_SEQUENCE]]), ["BOS", *[str(t) for t in DEMO_SEQUENCE]]),
            ("cat_sat", induction.build_induction_model(len(vocab), len(ids) + 1, attention),
             torch.tensor([[len(vocab), *ids]]), ["BOS", *[vocab[i] for i in ids]])]


def plot_patterns(folder: str, attention: str = "softmax") -> list[str]:
    """PNG heatmaps of both heads on Demo 1's sequence and on the cat sentence; their paths.

    Top row: the patterns (linear, 0 to 1). Bottom row: log10 of the same entries, so the
    off-target mass (at most delta_1 in block 0, delta_2 in block 1) is visible; entries below
    `LOG_FLOOR` (exact zeros: masked keys, hard attention) are drawn at the floor."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    if attention not in ("softmax", "hard"):
        raise ValueError(f"attention must be 'softmax' or 'hard', got {attention!r}")
    os.makedirs(folder, exist_ok=True)
    paths = []
    for tag, model, tokens, labels in _examples(attention):
        _, cache = model.run_with_cache(tokens)
        bounds = induction.mass_bounds(model.beta, model.cfg.n_ctx)
        fig, axes = plt.subplots(2, 2, figsize=(11, 9.5))
        for col, layer, name, delta in (
                (0, 0, "block 0 (Layer 1): previous-token head", bounds["delta_1"]),
                (1, 1, "block 1 (Layer 2): induction head", bounds["delta_2"])):
            pattern = cache[f"blocks.{layer}.attn.hook_pattern"][0, 0].numpy()
            top, bottom = axes[0, col], axes[1, col]
            im = top.imshow(pattern, vmin=0, vmax=1, cmap="viridis")
            top.set_title(f"{name}\nattention weight (linear)", fontsize=10)
            fig.colorbar(im, ax=top, fraction=0.046, label="weight")
            im = bottom.imshow(pattern.clip(min=LOG_FLOOR), cmap="magma",
                               norm=LogNorm(vmin=LOG_FLOOR, vmax=1))
            proved = (f"proved <= {delta:.2g} per row" if attention == "softmax"
                      else "hard attention: exactly 0")
            bottom.set_title(f"log scale: off-target mass ({proved}; "
                             f"black: 0 or < {LOG_FLOOR:.0e})", fontsize=10)
            fig.colorbar(im, ax=bottom, fraction=0.046, label="weight (log scale)")
            for ax in (top, bottom):
                ax.set_xticks(range(len(labels)), labels, rotation=60)
                ax.set_yticks(range(len(labels)), labels)
                ax.set_xlabel("key position (token)")
                ax.set_ylabel("query position (token)")
        fig.suptitle(f"{tag}: attention patterns ({attention}, beta = {model.beta:.3g}, "
                     f"N = {model.cfg.n_ctx})")
        fig.tight_layout()
        path = os.path.join(folder, f"induction_{tag}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        print(f"wrote {path}")
        paths.append(path)
    return paths
