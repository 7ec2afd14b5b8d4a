"""`python -m verify bench grok`: steps/s and time-to-generalize (test accuracy >= 99%).

Runs, each with and without Grokfast (Lee et al. 2024, EMA filter alpha 0.98, lambda 2.0):
* default: the default `python -m verify grok` run (TinyModel p=47, 40% train, AdamW lr 1e-2,
  wd 1.0, betas (0.9, 0.98));
* nanda: Nanda et al. 2023's configuration (one-layer transformer, p = 113, 30% train, full
  batch, AdamW lr 1e-3, wd 1.0, betas (0.9, 0.98), d_model 128, 4 heads, d_mlp 512, ReLU, no
  LayerNorm), capped at --nanda-steps steps: if it has not generalized by then, its
  time-to-generalize is reported as a lower bound (">=").
The figure is the ratio of times-to-generalize (nanda / default), and Grokfast's speed-up.
"""

from __future__ import annotations

import json
from typing import Any

from verify.cli_util import OneLineParser
from verify.grokking.train import RunConfig, train

NANDA = RunConfig(model="transformer", p=113, frac=0.3, wd=1.0, lr=1e-3, beta1=0.9, beta2=0.98,
                  d_model=128, n_heads=4, d_mlp=512, log_every=50)


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
                    help="step cap for Nanda's config (it generalized at 5,400 here, in ~10 min)")
    ap.add_argument("--default-steps", type=int, default=6000)
    ap.add_argument("--skip-nanda", action="store_true")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, metavar="FILE")
    ns = ap.parse_args(argv)
    if ns.nanda_steps < 1 or ns.default_steps < 1:
        raise ValueError("--nanda-steps and --default-steps must be >= 1")
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
    out: dict[str, Any] = {"device": ns.device, "threads": ns.threads, "runs": runs}
    d, dg = runs["default"], runs["default+grokfast"]
    out["grokfast_speedup_default"] = _ratio(d, dg)
    print(f"Grokfast speed-up (default, time-to-generalize): {_show(out['grokfast_speedup_default'])}")
    if not ns.skip_nanda:
        n, ng = runs["nanda"], runs["nanda+grokfast"]
        out["ratio_nanda_over_default"] = _ratio(n, d)
        out["grokfast_speedup_nanda"] = _ratio(n, ng)
        print(f"time-to-generalize ratio nanda / default: {_show(out['ratio_nanda_over_default'])}")
        print(f"Grokfast speed-up (nanda): {_show(out['grokfast_speedup_nanda'])}")
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
