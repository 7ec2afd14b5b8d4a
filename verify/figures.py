"""The report's figures: each maker draws PNGs into a folder and returns their paths.

- induction: both heads' attention patterns on Demo 1's sequence and on the cat sentence;
- adder: the trig adder's logits against c for one input (every frequency, and K = {1}), and
  the margin against p (the Dirichlet closed form, the lower bound 2 sin^2(pi/p), and the
  margin computed from the built network);
- grokking: the curves of a `python -m verify grok` run, when the report is given one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from constructions import modular


def _pyplot():  # noqa: ANN202 - matplotlib.pyplot, loaded headless on first use
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def induction_figures(folder: Path, options: dict[str, Any]) -> list[Path]:
    from verify.claims import induction
    return [Path(p) for p in induction.plot_patterns(str(folder), "softmax")]


def adder_figures(folder: Path, options: dict[str, Any], *, p: int = 13, a: int = 5,
                  b: int = 11) -> list[Path]:
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    c = torch.arange(p)
    target = (a + b) % p
    for freqs, label in ((None, "every frequency 1..(p-1)/2"), ((1,), "K = {1}")):
        adder = modular.build_adder(p, freqs)
        with torch.no_grad():
            logits = adder(torch.tensor([a]), torch.tensor([b]))[0]
        left.plot(c.numpy(), logits.numpy(), marker="o", label=label)
    left.axvline(target, color="grey", linestyle=":", label=f"(a+b) mod p = {target}")
    left.set(xlabel="c", ylabel="logit_c", title=f"trig adder, p = {p}, a = {a}, b = {b}")
    left.legend()
    curves = adder_margin_curves(list(range(2, 60)))
    ps = curves["p"]
    right.plot(ps, curves["closed_form"], label="closed form (Dirichlet)")
    right.plot(ps, curves["measured"], "o", markersize=3, label="built network, min over all pairs")
    right.plot(ps, curves["bound"], label="lower bound, any admissible K")
    right.set(xlabel="p", ylabel="min over pairs of logit(answer) - max other logit",
              yscale="log",
              title="margin: every frequency; lower bound: any admissible K")
    right.legend()
    fig.tight_layout()
    path = folder / "adder_logits_and_margin.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]


def adder_margin_curves(ps: list[int]) -> dict[str, list[float]]:
    """For each p: the margin of the adder with every frequency in closed form and measured on
    the built network (min over all p^2 pairs of logit(answer) - best other logit), and the
    lower bound that holds for any admissible frequency set."""
    measured = []
    for q in ps:
        adder = modular.build_adder(q)
        with torch.no_grad():
            x = torch.arange(q).repeat_interleave(q)
            y = torch.arange(q).repeat(q)
            logits = adder(x, y)
        right_answer = logits.gather(1, ((x + y) % q)[:, None])[:, 0]
        others = logits.scatter(1, ((x + y) % q)[:, None], float("-inf")).amax(1)
        measured.append(float((right_answer - others).min()))
    return {"p": list(ps), "measured": measured,
            "closed_form": [float(modular.dirichlet_margin(q)) for q in ps],
            "bound": [float(modular.margin_lower_bound(q)) for q in ps]}


def load_grok_run(run_file: Path) -> dict[str, Any]:
    """A run written by `python -m verify grok`, or ValueError saying what is wrong with it."""
    from verify.grokking import runio
    try:
        run = json.loads(Path(run_file).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"--grok-run {run_file} is not readable JSON: {error}") from None
    problems = runio.problems(run)
    if problems:
        raise ValueError(f"--grok-run {run_file} is not a grok run: {problems[0]}")
    return run


def grokking_figures(folder: Path, options: dict[str, Any]) -> list[Path]:
    run_file = options.get("grok_run")
    if run_file is None:
        return []
    from verify.grokking import plot
    return [Path(plot.plot_run(load_grok_run(run_file), str(folder / "grokking_curves.png")))]


# captions by file-name prefix (REPORT.md and index.html print them under each figure)
CAPTIONS = {
    "induction_demo1": "The hand-built two-layer induction model (softmax, beta = beta*(N)) on "
    "Demo 1's sequence after BOS: block 0 (the previous-token head) attends from i to i - 1; "
    "block 1 (the induction head) attends from the second occurrence of a token to the token "
    "after its first occurrence. Rows are query positions, columns key positions. Where a "
    "log-scale row is drawn, it shows the small attention mass off the target that the proofs "
    "bound (softmax never puts exactly zero anywhere).",
    "induction_cat_sat": "The same construction on the cat sentence: at the second 'cat' the "
    "induction head attends to 'sat' (Worked Example 2).",
    "induction": "Attention patterns of the hand-built induction model.",
    "adder_logits_and_margin": "Left: the trig-identity adder's logits against c for one input "
    "pair, with every frequency and with K = {1}; both peak at (a + b) mod p. Right: the "
    "smallest gap between the right answer's logit and the best other logit, over all pairs, "
    "with every frequency (the Dirichlet closed form and the built network agree), and the "
    "lower bound 2 sin^2(pi/p) that holds for any admissible frequency set K.",
    "grokking_curves": "A grokking run: accuracy, loss and the squared weight norm against the "
    "training step, with the phases marked. Restricted loss keeps only the logit components of "
    "the key frequencies; excluded loss removes them (on the training set), so it rises as "
    "the model comes to rely on the Fourier circuit (Nanda et al. 2023).",
}


def caption_for(file_name: str) -> str:
    """The caption of a figure file: the longest matching prefix of CAPTIONS."""
    stem = Path(file_name).stem
    matches = [k for k in CAPTIONS if stem.startswith(k)]
    return CAPTIONS[max(matches, key=len)] if matches else stem.replace("_", " ")


FIGURES: dict[str, Callable[[Path, dict[str, Any]], list[Path]]] = {
    "induction": induction_figures,
    "adder": adder_figures,
    "grokking": grokking_figures,
}
