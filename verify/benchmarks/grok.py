"""`python -m verify bench grok`: steps/s and time-to-generalize (test accuracy >= 99%).

Runs, each with and without Grokfast (Lee et al. 2024, EMA filter alpha 0.98, lambda 2.0):
* default: the default `python -m verify grok` run (TinyModel p=47, 40% train, AdamW lr 1e-2,
  wd 1.0, betas (0.9, 0.98));
* nanda: Nanda et al. 2023's configuration (one-layer transformer, p = 113, 30% train, full
  batch, AdamW lr 1e-3, wd 1.0, betas (0.9, 0.98), d_model 128, 4 heads, d_mlp 512, ReLU, no
  LayerNorm), capped at --nanda-steps steps: if it has not generalized by then, its
  time-to-generalize is reported as a lower bound (">=").
The figure is the ratio of times-to-generalize (nanda / default), and Grokfast's speed-up.

Batched seeds (issue 10): --batch-seeds seeds of Demo 2's settings (p = 97, 50% of pairs) and of
the default run trained --batch-steps steps as one batched model (verify/grokking/batched.py)
and as a Python loop of single runs over the same seeds, in the same process: seed-steps per
second of each and the speed-up.

The "nanda" run uses the official code's settings, data split (their random.shuffle of the pairs,
3,830 for training), "=" output class (114 outputs, 226,816 parameters), 10-step learning-rate
warmup and float64 loss; NANDA_DEVIATIONS lists every difference still known, and the benchmark
prints them.
"""

from __future__ import annotations

import json
from typing import Any

from verify.cli_util import OneLineParser
from verify.grokking.train import RunConfig, train

NANDA = RunConfig(model="transformer", p=113, frac=0.3, wd=1.0, lr=1e-3, beta1=0.9, beta2=0.98,
                  d_model=128, n_heads=4, d_mlp=512, log_every=50,
                  # as in their official code (progress-measures-paper, transformers.py):
                  warmup_steps=10, equals_class=True, loss_float64=True, split="python",
                  n_train=3830)        # int(0.3 * 113^2) pairs, their random.shuffle(seed 0)


NANDA_DEVIATIONS = (
    "initial weights: the same distributions, other random draws (their torch.randn calls in "
    "their module order; ours after torch.manual_seed(seed))",
    "the attention biases and b_U exist here, frozen at zero (their model has none): the same "
    "function and the same updates",
    "'generalizes' = first logged step (every 50) with test accuracy >= 0.99, not the paper's "
    "phase boundaries from progress measures",
    "CPU float32 matmuls here (their runs used a GPU): rounding differs",
)


def batched_speed(cfg: RunConfig, seeds: int, steps: int) -> dict[str, Any]:
    """Seed-steps per second: one batched model against a loop of single runs (same seeds)."""
    import time
    from dataclasses import replace

    import torch
    import torch.nn.functional as F

    from verify.grokking import batched, models
    from verify.grokking.train import make_dataset
    ids = list(range(seeds))
    run = batched.BatchRun(cfg, ids)
    run.step()                                   # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        run.step()
    t_batch = time.perf_counter() - start
    t_loop = 0.0
    for s in ids:
        model = models.build_model("tiny", cfg.p, d=cfg.d, seed=s)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.wd,
                                betas=(cfg.beta1, cfg.beta2))
        d = make_dataset(replace(cfg, seed=s))
        a, b, y = d.a[d.train], d.b[d.train], d.labels[d.train]
        start = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(a, b), y).backward()
            opt.step()
        t_loop += time.perf_counter() - start
    n = seeds * steps
    return {"p": cfg.p, "frac": cfg.frac, "seeds": seeds, "steps": steps,
            "batched_seed_steps_per_s": n / t_batch, "loop_seed_steps_per_s": n / t_loop,
            "speedup": t_loop / t_batch}


def measure(cfg: RunConfig) -> dict[str, Any]:
    run = train(cfg)
    t = run["timing"]
    reached = run["phases"]["t_gen"] is not None
    return {"steps_run": t["steps"], "steps_per_second": t["steps_per_second"],
            "t_gen": run["phases"]["t_gen"], "generalized": reached,
            "seconds_to_generalize": t["seconds_to_generalize"] if reached else t["train_seconds"],
            "lower_bound": not reached, "final_test_acc": run["history"]["test_acc"][-1]}


def _fmt(r: dict[str, Any]) -> str:
    bound = ">=" if r["lower_bound"] else ""
    t_gen = r["t_gen"] if r["generalized"] else f">{r['steps_run']}"
    return (f"{r['steps_per_second']:8.1f} steps/s   t_gen {t_gen!s:>7} steps   "
            f"time-to-generalize {bound}{r['seconds_to_generalize']:.1f} s   "
            f"(final test acc {r['final_test_acc']:.3f})")


def main(argv: list[str]) -> int:
    ap = OneLineParser(prog="python -m verify bench grok", description=__doc__.split("\n")[0])
    ap.add_argument("--nanda-steps", type=int, default=15000,
                    help="step cap for Nanda's config (seed 0 generalized at 6,700 here, in ~40 min)")
    ap.add_argument("--default-steps", type=int, default=6000, help='step cap of the default run')
    ap.add_argument("--skip-nanda", action="store_true",
        help="skip Nanda et al.'s configuration (about 40 minutes on one core)")
    ap.add_argument("--skip-runs", action="store_true",
                    help="only the batched-seeds measurement (no default/Nanda runs)")
    ap.add_argument("--batch-seeds", type=int, default=5, help="seeds in the batched measurement")
    ap.add_argument("--batch-steps", type=int, default=50, help="steps in the batched measurement")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help='where to train')
    ap.add_argument("--threads", type=int, default=1, help='torch threads')
    ap.add_argument("--json", default=None, metavar="FILE", help='also write the figures as JSON to FILE')
    ns = ap.parse_args(argv)
    if ns.nanda_steps < 1 or ns.default_steps < 1:
        raise ValueError("--nanda-steps and --default-steps must be >= 1")
    if ns.batch_seeds < 1 or ns.batch_steps < 1:
        raise ValueError("--batch-seeds and --batch-steps must be >= 1")
    if ns.json:
        from verify.cli_util import check_output_file
        check_output_file(ns.json, option="--json")
    import torch

    from verify.grokking.sweep import SETTINGS
    torch.set_num_threads(ns.threads)
    speed = {}
    for name in ("demo2_frac0.5", "default"):
        cfg = RunConfig(**{**SETTINGS[name].__dict__, "device": ns.device})
        speed[name] = r = batched_speed(cfg, ns.batch_seeds, ns.batch_steps)
        print(f"batched seeds ({name}, p={r['p']}, {r['seeds']} seeds x {r['steps']} steps): "
              f"{r['batched_seed_steps_per_s']:.1f} seed-steps/s batched, "
              f"{r['loop_seed_steps_per_s']:.1f} in a loop: {r['speedup']:.2f}x", flush=True)
    if ns.skip_runs:
        if ns.json:
            with open(ns.json, "w") as f:
                json.dump({"device": ns.device, "threads": ns.threads, "batched": speed}, f, indent=1)
        return 0
    common = {"device": ns.device, "threads": ns.threads, "stop_after_gen": 0}
    base = RunConfig(steps=ns.default_steps, **common)
    runs: dict[str, dict[str, Any]] = {}
    plan = [("default", base), ("default+grokfast", RunConfig(**{**base.__dict__, "grokfast": True}))]
    if not ns.skip_nanda:
        nanda = RunConfig(**{**NANDA.__dict__, "steps": ns.nanda_steps, **common})
        plan += [("nanda", nanda), ("nanda+grokfast", RunConfig(**{**nanda.__dict__,
                                                                   "grokfast": True}))]
    for name, cfg in plan:
        runs[name] = measure(cfg)
        print(f"{name:18} {_fmt(runs[name])}", flush=True)
    out: dict[str, Any] = {"device": ns.device, "threads": ns.threads, "runs": runs,
                           "batched": speed, "nanda_deviations": list(NANDA_DEVIATIONS)}
    d, dg = runs["default"], runs["default+grokfast"]
    out["grokfast_speedup_default"] = _ratio(d, dg)
    print(f"Grokfast speed-up (default, time-to-generalize): {_show(out['grokfast_speedup_default'])}")
    if not ns.skip_nanda:
        n, ng = runs["nanda"], runs["nanda+grokfast"]
        out["ratio_nanda_over_default"] = _ratio(n, d)
        out["grokfast_speedup_nanda"] = _ratio(n, ng)
        print(f"time-to-generalize ratio nanda / default: {_show(out['ratio_nanda_over_default'])}")
        print(f"Grokfast speed-up (nanda): {_show(out['grokfast_speedup_nanda'])}")
        print("the 'nanda' run differs from Nanda et al.'s official code in: "
              + "; ".join(NANDA_DEVIATIONS))
    if ns.json:
        with open(ns.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


def _ratio(slow: dict[str, Any], fast: dict[str, Any]) -> dict[str, Any]:
    """slow / fast time-to-generalize, with whether it is exact, a lower bound or unknown."""
    value = slow["seconds_to_generalize"] / fast["seconds_to_generalize"]
    if not slow["lower_bound"] and not fast["lower_bound"]:
        kind = "exact"
    elif slow["lower_bound"] and not fast["lower_bound"]:
        kind = "lower_bound"
    elif not slow["lower_bound"]:
        kind = "upper_bound"
    else:
        kind = "unknown"
    return {"value": value, "kind": kind}


def _show(r: dict[str, Any]) -> str:
    prefix = {"exact": "", "lower_bound": ">= ", "upper_bound": "<= ", "unknown": "? "}[r["kind"]]
    return f"{prefix}{r['value']:.2f}x" + (" (neither generalized)" if r["kind"] == "unknown" else "")


BENCHMARKS = {"grok": main}
