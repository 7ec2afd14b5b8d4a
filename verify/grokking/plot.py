"""The run's figure: losses (log scale), accuracies, weight norm, embedding spectrum; the
detected phase boundaries (memorization, switch, generalization) are marked. Every panel has a
y-axis label; the caption says what restricted and excluded loss are and which key frequencies
(ours: metrics.key_frequencies) they use."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_run(run: dict[str, Any], path: str) -> str:
    h, ph = run["history"], run["phases"]
    steps = h["step"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    ax = axes[0, 0]
    for key, label in (("train_loss", "train"), ("test_loss", "test"),
                       ("restricted_loss", "restricted"), ("excluded_loss", "excluded (train)")):
        ax.plot(steps, [max(v, 1e-12) for v in h[key]], label=label)
    ax.set_yscale("log")
    ax.set_title("cross-entropy loss")
    ax.set_ylabel("loss (nats, log scale)")
    ax = axes[0, 1]
    ax.plot(steps, h["train_acc"], label="train")
    ax.plot(steps, h["test_acc"], label="test")
    ax.set_title("accuracy")
    ax.set_ylabel("accuracy")
    ax = axes[1, 0]
    ax.plot(steps, h["norm2"], label="||W||^2", color="tab:purple")
    ax.set_title("squared weight norm")
    ax.set_ylabel("||W||^2")
    ax2 = ax.twinx()
    ax2.set_ylabel("Gini of W_E's Fourier norms")
    ax2.plot(steps, h["gini"], color="tab:gray", linestyle=":", label="Gini(W_E Fourier)")
    ax2.set_ylim(0, 1)
    ax2.legend(loc="center right", fontsize=8)
    for ax in (axes[0, 0], axes[0, 1], axes[1, 0]):
        for key, color in (("t_mem", "tab:red"), ("t_switch", "tab:orange"), ("t_gen", "tab:green")):
            if ph.get(key) is not None:
                ax.axvline(ph[key], color=color, linestyle="--", linewidth=1, label=key)
        ax.set_xlabel("step")
        ax.legend(fontsize=8, loc="best")
    ax = axes[1, 1]
    spectrum = run["embedding_spectrum"]
    ax.bar(range(1, len(spectrum) + 1), spectrum, color="tab:blue")
    for k in run["key_frequencies"]:
        ax.get_children()[k - 1].set_color("tab:red")
    nanda = run.get("nanda_key_frequencies", {}).get("keys", [])
    ax.plot(nanda, [max(spectrum) * 1.03] * len(nanda), "v", color="black", markersize=4,
            label="Nanda et al.'s keys (a neuron's dominant frequency)")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("final W_E Fourier spectrum (red: our key frequencies)")
    ax.set_xlabel("frequency k")
    ax.set_ylabel("squared norm of W_E in frequency k")
    cfg = run["config"]
    fig.suptitle(f"{cfg['model']} p={cfg['p']} frac={cfg['frac']} wd={cfg['wd']} lr={cfg['lr']} "
                 f"seed={cfg['seed']}{' grokfast' if cfg['grokfast'] else ''}: {ph['kind']}")
    fig.text(0.5, 0.005, "restricted loss: the logits kept to their key-frequency components "
             f"{run['key_frequencies']} (all pairs); excluded loss: those components removed "
             "(training pairs) - Nanda et al. 2023", ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.025, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_sweep(rec: dict[str, Any], path: str) -> str:
    """The record's curves, one column per setting: test accuracy, and the squared norms of the
    embedding and of the rest (every seed; dashed: the rest)."""
    names = list(rec["settings"])
    fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names), 6.5), squeeze=False)
    for j, name in enumerate(names):
        entries = [e for e in rec["entries"] if e["setting"] == name]
        top, bottom = axes[0, j], axes[1, j]
        for e in entries:
            c = e["curves"]
            line = top.plot(c["step"], c["test_acc"], label=f"seed {e['seed']}")[0]
            bottom.plot(c["step"], c["norm2_embed"], color=line.get_color())
            bottom.plot(c["step"], c["norm2_rest"], color=line.get_color(), linestyle="--")
        cfg = rec["settings"][name]
        top.set_title(f"{name}: p={cfg['p']} frac={cfg['frac']} lr={cfg['lr']} wd={cfg['wd']}",
                      fontsize=9)
        top.set_ylabel("test accuracy")
        bottom.set_ylabel("||W||^2: embedding (solid), rest (dashed)")
        for ax in (top, bottom):
            ax.set_xlabel("step")
        top.legend(fontsize=7)
    fig.suptitle("grokking seeds record" + (" (partial)" if rec.get("partial") else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
