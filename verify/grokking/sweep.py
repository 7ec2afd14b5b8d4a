"""`python -m verify grok --sweep`: weight decay x training fraction x seed, plateau lengths.

Two groups: "default" (the default run's model, p, lr and betas) over WEIGHT_DECAYS x FRACS x
SEEDS, and "demo2" (the section's Coding Demo 2 settings exactly: TinyModel p = 97, d = 64,
AdamW lr 1e-3, weight decay 0.1, PyTorch's default betas (0.9, 0.999)) over FRACS x SEEDS.
Every run stops at generalization (test accuracy >= 99%) or at its step cap.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import replace
from typing import Any

from verify.grokking.train import RunConfig, train

WEIGHT_DECAYS = (0.1, 0.3, 1.0)
FRACS = (0.3, 0.5)
SEEDS = (0, 1, 2)
DEMO2 = RunConfig(model="tiny", p=97, d=64, lr=1e-3, wd=0.1, beta1=0.9, beta2=0.999)


def sweep_configs(base: RunConfig, *, steps: int, demo2_steps: int,
                  seeds: tuple[int, ...] = SEEDS) -> list[tuple[str, RunConfig]]:
    out = [("default", replace(base, wd=wd, frac=frac, seed=seed, steps=steps, stop_after_gen=0))
           for wd in WEIGHT_DECAYS for frac in FRACS for seed in seeds]
    out += [("demo2", replace(DEMO2, frac=frac, seed=seed, steps=demo2_steps, stop_after_gen=0,
                              log_every=base.log_every, device=base.device))
            for frac in FRACS for seed in seeds]
    return out


def run_sweep(configs: list[tuple[str, RunConfig]], *, progress: bool = False,
              log_path: str | None = None) -> list[dict[str, Any]]:
    """Run every config; each finished row is appended to ``log_path`` (JSON lines) at once."""
    rows = []
    iterator: Any = configs
    if progress:
        from tqdm import tqdm
        iterator = tqdm(configs, desc="sweep", unit="run")
    for group, cfg in iterator:
        run = train(cfg)
        ph = run["phases"]
        rows.append({"group": group, "p": cfg.p, "lr": cfg.lr, "betas": [cfg.beta1, cfg.beta2],
                     "wd": cfg.wd, "frac": cfg.frac, "seed": cfg.seed, "kind": ph["kind"],
                     "t_mem": ph["t_mem"], "t_gen": ph["t_gen"], "plateau": ph["plateau"],
                     "steps_run": run["history"]["step"][-1], "step_cap": cfg.steps,
                     "final_test_acc": run["history"]["test_acc"][-1],
                     "seconds": run["timing"]["train_seconds"],
                     "seconds_to_generalize": run["timing"]["seconds_to_generalize"]})
        if log_path is not None:
            with open(log_path, "a") as f:
                f.write(json.dumps(rows[-1]) + "\n")
    return rows


def summary_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table: one line per (group, wd, frac), medians over the seeds."""
    lines = ["| settings | wd | frac | grokked | t_mem (median) | t_gen (median) | "
             "plateau (median) | s to generalize (median) | final test acc (min) | step cap |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["group"], r["wd"], r["frac"]) for r in rows})
    for group, wd, frac in keys:
        rs = [r for r in rows if (r["group"], r["wd"], r["frac"]) == (group, wd, frac)]
        g = [r for r in rs if r["kind"] == "grokking"]
        r0 = rs[0]
        settings = f"{group}: p={r0['p']} lr={r0['lr']:g} betas=({r0['betas'][0]}, {r0['betas'][1]})"
        lines.append(
            f"| {settings} | {wd:g} | {frac:g} | {len(g)}/{len(rs)} | "
            f"{_median([r['t_mem'] for r in rs])} | {_median([r['t_gen'] for r in g])} | "
            f"{_median([r['plateau'] for r in g])} | "
            f"{_median([r['seconds_to_generalize'] for r in g], '.1f')} | "
            f"{min(r['final_test_acc'] for r in rs):.3f} | {r0['step_cap']} |")
    return "\n".join(lines)


def _median(values: list[Any], fmt: str = "g") -> str:
    values = [v for v in values if v is not None]
    return format(statistics.median(values), fmt) if values else "-"
