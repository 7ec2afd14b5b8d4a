"""How the norms of memorizing and generalizing circuits grow (claims grokking.memorization_norm
and grokking.generalization_norm; proofs/grokking.md, Lemmas 1 to 5).

* `memorizer_points`: TinyModels trained on N random labels (batched seeds), each taken at its
  first logged step with train accuracy 1 and measured at its least squared norm over
  function-preserving rescalings at training loss rescale.TARGET_LOSS (rescale.py).
* `lookup_least`: the lookup memorizer's least squared norm over the same rescalings, in closed
  form up to a one-dimensional minimization: with W_E = s I, fc.0 entries alpha / s, bias
  -alpha, fc.2 columns beta (e_y - 1/p), alpha beta = gamma, c = 1 - 1/p, the squared norm is
  p s^2 + N (2 alpha^2 / s^2 + alpha^2 + c beta^2); the best s gives 2 alpha sqrt(2 p N), so
  least = min_alpha [2 alpha sqrt(2 p N) + N alpha^2 + N c gamma^2 / alpha^2]
  (>= 2 sqrt(c) gamma N: linear in N up to the sqrt(N) term).
* `adder_table`: the trig-identity adder's squared norms per layer (Lemma 3: 2pm + 46.3125m) and
  its least norm at a fixed loss over layer rescalings (Lemma 5), with fitted exponents in p.
* `mem_vs_gen`: memorizer against generalizer of the same seed, both at their least norms at
  the same training loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from verify.grokking import norms, rescale
from verify.grokking.train import RunConfig, make_dataset

LINEAR_EXPONENT_TOL = 0.1        # "linear": fitted exponent within 1 +- this
TRAINED_EXPONENT_BAND = (0.2, 0.9)   # the restatement: trained memorizers grow sublinearly
CONSTANT_EXPONENT_TOL = 0.1      # "constant in p": fitted exponent at most this
ADDER_EXPONENT_BAND = (1.1, 1.3)     # Lemma 5: p^(7/6) times log^(1/3) p from the margin
REL_TOL = 1e-9                   # float64 norms of exactly specified weights
RESCALE_REL_TOL = 1e-6           # golden-section minimum against the closed form

MEM_P, MEM_NS, MEM_SEEDS, MEM_STEPS = 23, (50, 100, 200, 400), (0, 1), 3000
MEMORIZER_SETTING: dict[str, Any] = {"model": "tiny", "p": MEM_P, "d": 64, "labels": "random", "lr": 1e-2,
                     "wd": 1.0, "beta1": 0.9, "beta2": 0.98, "log_every": 10}
GEN_PS = (11, 23, 47, 97, 199, 401, 1009)
FEW_FREQS = (1, 2, 3)
HOMOGENEOUS_DEGREES = {"embed.W_E": 2, "blocks.0.mlp.W_in": 2, "blocks.0.mlp.W_out": 1,
                       "unembed.W_U": 1}   # the adder's logits' degree in each group


def exponent(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of log y against log x over (x, y) points."""
    return norms.fit_exponent([float(x) for x, _ in points], [float(y) for _, y in points])


def memorizer_points(ns: tuple[int, ...] = MEM_NS, seeds: tuple[int, ...] = MEM_SEEDS,
                     steps: int = MEM_STEPS) -> dict[int, list[tuple[int, float]]]:
    """{seed: [(N, least squared norm at the target loss)]} for trained memorizers."""
    from verify.grokking import evidence
    out: dict[int, list[tuple[int, float]]] = {s: [] for s in seeds}
    for n in ns:
        cfg = RunConfig(**MEMORIZER_SETTING, n_train=n, steps=steps)
        runs = evidence.train_seeds(cfg, seeds, steps, until="memorized")
        for seed, run in runs.items():
            if run["memorizer"] is None:
                raise ValueError(f"random-label memorizer N={n} seed={seed} did not reach "
                                 f"train accuracy 1 in {steps} steps")
            data = make_dataset(RunConfig(**MEMORIZER_SETTING, n_train=n, seed=seed))
            tr = data.train
            least = rescale.least_norm2_at_loss(run["memorizer"], data.a[tr], data.b[tr],
                                                data.labels[tr])
            out[seed].append((n, least["least_norm2"]))
    return out


def lookup_least(p: int, n: int, gamma: float) -> float:
    """min over alpha of 2 alpha sqrt(2 p N) + N alpha^2 + N c gamma^2 / alpha^2 (docstring)."""
    c = 1 - 1 / p

    def f(t: float) -> float:
        a = math.exp(t)
        return 2 * a * math.sqrt(2 * p * n) + n * a * a + n * c * gamma ** 2 / (a * a)

    lo, hi = -10.0, 10.0
    for _ in range(300):     # f is convex in log alpha: ternary search
        m1, m2 = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        lo, hi = (lo, m2) if f(m1) <= f(m2) else (m1, hi)
    return f((lo + hi) / 2)


def check_lookup(builder: Callable[..., Any] | None = None, p: int = MEM_P,
                 ns: tuple[int, ...] = MEM_NS) -> dict[str, Any]:
    """Lemmas 1-2 and the rescaled bound on lookup memorizers built by ``builder``."""
    builder = norms.build_lookup if builder is None else builder
    gamma = norms.margin_for_loss(p)
    gen = torch.Generator().manual_seed(0)
    rows, ok = [], True
    for n in ns:
        flat = torch.randperm(p * p, generator=gen)[:n]
        pairs = torch.stack([flat // p, flat % p], dim=1)
        labels = torch.randint(0, p, (n,), generator=gen)
        model = builder(p, pairs, labels, gamma)
        with torch.no_grad():
            logits = model(pairs[:, 0], pairs[:, 1]).double()
        correct = logits.gather(1, labels[:, None])[:, 0]
        margin = float((correct - logits.scatter(1, labels[:, None], -math.inf).amax(1)).min())
        raw, formula = norms.squared_norm(model), norms.lookup_min_norm2(p, n, gamma)
        least = rescale.least_norm2_at_loss(model.state_dict(), pairs[:, 0], pairs[:, 1], labels)
        closed = lookup_least(p, n, gamma)
        row_ok = (margin >= gamma * (1 - REL_TOL) and abs(raw - formula) <= REL_TOL * formula
                  and least["least_norm2"] is not None
                  and abs(least["least_norm2"] - closed) <= RESCALE_REL_TOL * closed)
        ok &= row_ok
        rows.append({"N": n, "margin": margin, "norm2": raw, "formula": formula,
                     "least_rescaled": least["least_norm2"], "closed_form": closed, "ok": row_ok})
    return {"p": p, "gamma": gamma, "rows": rows, "ok": bool(ok),
            "exponent_least": exponent([(r["N"], r["closed_form"]) for r in rows])}


def adder_norms(build: Callable[..., Any], p: int, freqs: tuple[int, ...] | None) -> dict[str, Any]:
    from constructions import modular
    adder = build(p, freqs)
    per = {name: float((w.detach().double() ** 2).sum()) for name, w in adder.named_parameters()}
    m = len(tuple(adder.freqs))
    t = modular.ideal_logits(p, tuple(adder.freqs), torch.arange(p))
    margin = float(t[0] - t[1:].max())
    vo = 2 * math.sqrt(per["blocks.0.attn.W_V"] * per["blocks.0.attn.W_O"])
    rescaled = vo + norms.min_norm2_rescaled({k: per[k] for k in HOMOGENEOUS_DEGREES},
                                             HOMOGENEOUS_DEGREES, norms.margin_for_loss(p) / margin)
    return {"p": p, "m": m, "per_layer": per, "total": sum(per.values()), "margin": margin,
            "rescaled_to_loss": rescaled}


def adder_table(build: Callable[..., Any] | None = None, ps: tuple[int, ...] = GEN_PS
                ) -> dict[str, Any]:
    """Lemma 3 per layer and Lemma 5's least norms, few and all frequencies, over ``ps``."""
    if build is None:
        from constructions import modular
        build = modular.build_adder
    out: dict[str, Any] = {"lemma3_ok": True}
    for label, freqs in (("few", FEW_FREQS), ("all", None)):
        rows = [adder_norms(build, p, freqs) for p in ps]
        for r in rows:
            pm, per = r["p"] * r["m"], r["per_layer"]
            mid = r["total"] - per["embed.W_E"] - per["unembed.W_U"]
            out["lemma3_ok"] &= all(abs(per[k] - pm) <= REL_TOL * pm
                                    for k in ("embed.W_E", "unembed.W_U"))
            out["lemma3_ok"] &= abs(mid - 46.3125 * r["m"]) <= REL_TOL * mid
        out[label] = {
            "table": [{"p": r["p"], "m": r["m"], "total": r["total"], "margin": r["margin"],
                       "rescaled_to_loss": r["rescaled_to_loss"]} for r in rows],
            "exponent_total": exponent([(r["p"], r["total"]) for r in rows]),
            "exponent_rescaled_to_loss": exponent([(r["p"], r["rescaled_to_loss"]) for r in rows]),
        }
    out["lemma3_ok"] = bool(out["lemma3_ok"])
    return out


def mem_vs_gen(rec: dict[str, Any], fresh: dict[str, Any]) -> list[dict[str, Any]]:
    """Seeds that generalized: least norms of memorizer and generalizer at the same loss."""
    rows = [{"source": "record", "setting": e["setting"], "seed": e["seed"],
             "mem": e["least_norm2_memorizer"], "gen": e["least_norm2_generalizer"]}
            for e in rec["entries"] if e.get("least_norm2_generalizer") is not None
            and e.get("least_norm2_memorizer") is not None]
    for name, runs in fresh.items():
        cfg = RunConfig(**rec["settings"][name])
        for seed, run in runs.items():
            log = run["log"]
            if run["memorizer"] is None or log[-1]["test_acc"] < 0.99:
                continue
            data = make_dataset(RunConfig(**{**rec["settings"][name], "seed": seed}))
            tr = data.train
            a, b, y = data.a[tr], data.b[tr], data.labels[tr]
            rows.append({"source": "fresh", "setting": name, "seed": seed,
                         "mem": rescale.least_norm2_at_loss(run["memorizer"], a, b, y)["least_norm2"],
                         "gen": rescale.least_norm2_at_loss(run["final"], a, b, y)["least_norm2"],
                         "p": cfg.p})
    return [r for r in rows if r["mem"] is not None and r["gen"] is not None]
