"""`analyze --plot DIR`: per-head scores and K-composition as heatmaps (one PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot():  # noqa: ANN202 - matplotlib.pyplot, headless
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_analysis(result: dict[str, Any], folder: str | Path) -> Path:
    """DIR/analysis.png: previous-token, duplicate-token, induction and copying scores per
    (layer, head); the zero-ablation loss change; K- and Q-composition of layer 0 -> 1 (titles
    give the random baseline)."""
    import numpy as np

    plt = _pyplot()
    m = result["model"]
    L, H = m["n_layers"], m["n_heads"]
    grid = {k: np.full((L, H), np.nan)
            for k in ("previous_token", "duplicate_token", "induction", "copying")}
    abl = np.full((L, H), np.nan)
    for h in result["heads"]:
        for k in grid:
            if h[k] is not None:
                grid[k][h["layer"], h["head"]] = h[k]
        if h["ablation_loss_delta"]:
            abl[h["layer"], h["head"]] = h["ablation_loss_delta"]["zero"]
    panels = [(grid["previous_token"], "previous-token score", (0, 1)),
              (grid["duplicate_token"], "duplicate-token score", (0, 1)),
              (grid["induction"], "induction (prefix-matching) score", (0, 1)),
              (grid["copying"], "copying score (OV eigenvalues)", (-1, 1)),
              (abl, "loss change, zero-ablation", None)]
    if np.isnan(abl).all():  # analyzed with --no-ablation
        panels.pop()
    comps = {}
    if L >= 2:
        for kind in ("k", "q"):
            comps[kind] = np.zeros((H, H))
            for row in result["composition"]:
                if row["from"][0] == 0 and row["to"][0] == 1:
                    comps[kind][row["from"][1], row["to"][1]] = row[kind]
    fig, axes = plt.subplots(1, len(panels) + len(comps),
                             figsize=(3.6 * (len(panels) + len(comps)), 3.6))
    for ax, (data, title, lim) in zip(axes, panels):
        im = ax.imshow(data, cmap="viridis", aspect="auto",
                       **({} if lim is None else {"vmin": lim[0], "vmax": lim[1]}))
        ax.set(title=title, xlabel="head", ylabel="layer", xticks=range(H), yticks=range(L))
        fig.colorbar(im, ax=ax)
    base = result["composition_baseline"]["mean"]
    for ax, (kind, data) in zip(axes[len(panels):], comps.items()):
        im = ax.imshow(data, cmap="magma", aspect="auto")
        ax.set(title=f"{kind.upper()}-composition 0 -> 1 (baseline {base:.3f})",
               xlabel="layer-1 head", ylabel="layer-0 head", xticks=range(H), yticks=range(H))
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    path = Path(folder) / "analysis.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
