"""Fresh runs that the grokking claims re-train, and their comparison with the sweep's record.

The record (proofs/data/grokking-seeds.json, written by ``python -m verify grok --sweep
--record``) is evidence, never a substitute for a check: each claim re-trains a subset (at
least two seeds of every setting) with the same batched trainer and refuses the record
(`RecordMismatch`, so the claim is undetermined and fails) where the fresh runs fall outside it:
at every step both logged, accuracies within ACC_TOL, squared norms (embedding and the rest)
within NORM_REL_TOL, and the memorization / generalization steps within STEP_TOL_LOGS logging
intervals. Demo 2's settings are re-trained only to FRESH_DEMO2_STEPS (past memorization: about
4 minutes of CPU would not reach their generalization); the default setting to generalization.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from verify.grokking import batched, measures, phases, record, sweep
from verify.grokking.train import RunConfig

RECORD_PATH = Path(__file__).resolve().parents[2] / "proofs" / "data" / "grokking-seeds.json"
FRESH_SEEDS = (0, 1)
FRESH_DEMO2_STEPS = 600
ACC_TOL = 0.02          # accuracies: rounding differences between machines move a few pairs
NORM_REL_TOL = 0.02     # squared norms, relative
STEP_TOL_LOGS = 2       # memorization / generalization step: within this many logging intervals


class RecordMismatch(ValueError):
    """Fresh runs disagree with the record: the record cannot be used as evidence."""


def load_record(path: str | Path = RECORD_PATH) -> dict[str, Any]:
    return record.load(path)


def train_seeds(cfg: RunConfig, seeds: Sequence[int], steps: int, *,
                until: str = "generalized") -> dict[int, dict[str, Any]]:
    """Batched seeds to ``steps``, each stopping at generalization (``until="generalized"``) or
    at its first logged step with train accuracy 1 (``"memorized"``): {seed: {"log",
    "memorizer", "final"}}, the weights at that first step with train accuracy 1 and at the end."""
    if until not in ("generalized", "memorized"):
        raise ValueError(f"until must be 'generalized' or 'memorized', got {until!r}")
    run = batched.BatchRun(cfg, list(seeds))   # the cap is `steps` (cfg.steps is not read)
    out: dict[int, dict[str, Any]] = {s: {"log": [], "memorizer": None, "final": None}
                                      for s in seeds}
    step = 0
    while run.seeds:
        if step % cfg.log_every == 0 or step >= steps:
            keep = []
            for i, (seed, row) in enumerate(zip(run.seeds, sweep.log_rows(run, step, 0.0))):
                o = out[seed]
                o["log"].append(row)
                if o["memorizer"] is None and row["train_acc"] >= 1.0:
                    o["memorizer"] = batched.slot_state_dict(run.params, i)
                done = (row["test_acc"] >= phases.GENERALIZED if until == "generalized"
                        else o["memorizer"] is not None)
                if done or step >= steps:
                    o["final"] = batched.slot_state_dict(run.params, i)
                else:
                    keep.append(i)
            if not keep:
                break
            if len(keep) < len(run.seeds):
                run.keep(keep)
        run.step()
        step += 1
    return out


def fresh_plan(rec: dict[str, Any], seeds: Sequence[int] = FRESH_SEEDS) -> dict[str, tuple[RunConfig, int]]:
    """{setting: (config, steps)} for the record's settings: default to its cap, Demo 2's to
    FRESH_DEMO2_STEPS."""
    plan = {}
    for name, cfg in rec["settings"].items():
        c = RunConfig(**cfg)
        plan[name] = (c, c.steps if name == "default" else min(c.steps, FRESH_DEMO2_STEPS))
    return plan


@functools.lru_cache(maxsize=2)
def _cached_fresh(path: str, mtime: float) -> dict[str, dict[int, dict[str, Any]]]:
    rec = load_record(path)
    return {name: train_seeds(cfg, FRESH_SEEDS, steps)
            for name, (cfg, steps) in fresh_plan(rec).items()}


def fresh_runs(path: str | Path = RECORD_PATH) -> dict[str, dict[int, dict[str, Any]]]:
    """The fresh subset for the record at ``path`` (trained once per process)."""
    p = Path(path)
    return _cached_fresh(str(p), p.stat().st_mtime)


def compare(rec: dict[str, Any], fresh: dict[str, dict[int, dict[str, Any]]]) -> dict[str, Any]:
    """Each fresh seed against its record entry; RecordMismatch naming the first disagreement."""
    by_key = {(e["setting"], e["seed"]): e for e in rec["entries"]}
    report: dict[str, Any] = {}
    for name, seeds in fresh.items():
        for seed, run in seeds.items():
            e = by_key.get((name, seed))
            if e is None:
                raise RecordMismatch(f"record has no entry for {name} seed {seed}")
            log = {r["step"]: r for r in run["log"]}
            common = [s for s in e["curves"]["step"] if s in log]
            if len(common) < 2:
                raise RecordMismatch(f"{name} seed {seed}: fewer than 2 common logged steps")
            worst = {"acc": 0.0, "norm_rel": 0.0}
            for j, s in enumerate(e["curves"]["step"]):
                if s not in log:
                    continue
                for key in ("train_acc", "test_acc"):
                    worst["acc"] = max(worst["acc"], abs(e["curves"][key][j] - log[s][key]))
                for key in ("norm2_embed", "norm2_rest"):
                    ref = e["curves"][key][j]
                    worst["norm_rel"] = max(worst["norm_rel"], abs(ref - log[s][key]) / abs(ref))
            ph = phases.detect(sorted(log), [log[s]["train_acc"] for s in sorted(log)],
                               [log[s]["test_acc"] for s in sorted(log)])
            tol = STEP_TOL_LOGS * e["log_every"]
            steps_ok = _close(ph.t_mem, e["step_memorized"], tol)
            if max(log) >= (e["step_generalized"] or 0) and name == "default":
                steps_ok &= _close(ph.t_gen, e["step_generalized"], tol)
            report[f"{name}/{seed}"] = {"steps_compared": len(common), **worst,
                                        "t_mem": [ph.t_mem, e["step_memorized"]],
                                        "t_gen": [ph.t_gen, e["step_generalized"]]}
            if worst["acc"] > ACC_TOL or worst["norm_rel"] > NORM_REL_TOL or not steps_ok:
                raise RecordMismatch(f"fresh {name} seed {seed} disagrees with the record: "
                                     f"{report[f'{name}/{seed}']}")
    return report


def _close(a: int | None, b: int | None, tol: int) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and abs(a - b) <= tol)


def norm_rise(log: Sequence[dict[str, float]]) -> dict[str, Any]:
    """Phase 1 of a fresh run: squared norms at step 0 and at memorization, embedding / rest."""
    steps = [int(r["step"]) for r in log]
    ph = phases.detect(steps, [r["train_acc"] for r in log], [r["test_acc"] for r in log])
    t = ph.t_mem if ph.t_mem is not None else ph.t_train
    init, mem = measures.norms_at(log, steps[0]), measures.norms_at(log, t)
    if mem is None or init is None:
        return {"defined": False}
    return {"defined": True, "t_mem": t, "init": init["total"], "at_mem": mem["total"],
            "rises": mem["total"] > init["total"],
            "embed": [init["embed"], mem["embed"]], "rest": [init["rest"], mem["rest"]]}
