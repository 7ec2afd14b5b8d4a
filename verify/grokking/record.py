"""The sweep's evidence record (proofs/data/grokking-seeds.json): one entry per (setting, seed).

`entry` summarizes one seed of a finished setting from its logged curves (sweep.py's done.json)
and its saved weights: the settings, when it memorized and generalized (or that it hit the cap),
squared norms at initialization, memorization and the end split into embedding and the rest,
test accuracy's rise from 0.1 to 0.9, the largest windowed fall of L_total, Nanda et al.'s
restricted/excluded loss over the run (progress.py), and the least norms over function-
preserving rescalings at a fixed training loss (rescale.py). `build` assembles the record with
versions, seeds, settings, the command line, wall time and machine; ``partial`` is true until
every setting has finished.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

from verify.grokking import measures, phases

SCHEMA = "circuit-proofs/grok-seeds/1"
CURVE_POINTS = 200          # curves in the record are subsampled to about this many points
CURVE_KEYS = ("step", "train_acc", "test_acc", "train_loss", "test_loss", "norm2_embed",
              "norm2_rest", "total_loss")


def entry(done: dict[str, Any], seed: int, folder: Path | None = None) -> dict[str, Any]:
    """The record of one seed of a finished setting (``folder``: its saved weights, if any)."""
    cfg, log = done["config"], done["logs"][str(seed)]
    fin = done["finished"][str(seed)]
    steps = [r["step"] for r in log]
    tr, te = [r["train_acc"] for r in log], [r["test_acc"] for r in log]
    ph = phases.detect(steps, tr, te)
    t_full = measures.first_step(steps, tr, 1.0)
    out: dict[str, Any] = {
        "setting": done["setting"], "seed": seed, "p": cfg["p"], "d": cfg["d"], "lr": cfg["lr"],
        "weight_decay": cfg["wd"], "betas": [cfg["beta1"], cfg["beta2"]],
        "train_frac": cfg["frac"], "max_steps": cfg["steps"], "log_every": cfg["log_every"],
        "stopped": fin["reason"], "hit_cap": fin["reason"] == "cap", "steps_run": fin["step"],
        "kind": ph.kind, "step_memorized": ph.t_mem, "step_train_acc_1": t_full,
        "step_generalized": ph.t_gen,
        "final_train_acc": tr[-1], "final_test_acc": te[-1],
        "test_acc_first_reaches": {str(x): measures.first_step(steps, te, x)
                                   for x in (0.1, 0.5, 0.9, 0.99)},
        "rise_0.1_to_0.9": measures.rise_steps(steps, te),
        "norms_init": measures.norms_at(log, steps[0]),
        "norms_memorized": measures.norms_at(log, ph.t_mem if ph.t_mem is not None else ph.t_train),
        "norms_end": measures.norms_at(log, steps[-1]),
    }
    if ph.kind == "grokking":
        assert ph.t_mem is not None and ph.t_gen is not None
        switch = measures.first_step(steps, te, measures.RISE_FROM)
        total = [r["total_loss"] for r in log]
        rest = [r["train_loss"] + cfg["wd"] * r["norm2_rest"] for r in log]
        out["L_total_sharpest_fall"] = measures.sharpest_fall(steps, total, ph.t_mem, ph.t_gen,
                                                              start_from=switch)
        out["L_total_sharpest_fall_anywhere"] = measures.sharpest_fall(steps, total, ph.t_mem,
                                                                       ph.t_gen)
        out["L_total_rest_sharpest_fall"] = measures.sharpest_fall(steps, rest, ph.t_mem, ph.t_gen,
                                                                   start_from=switch)
    stride = max(1, len(log) // CURVE_POINTS)
    keep = list(range(0, len(log), stride)) + ([len(log) - 1] if (len(log) - 1) % stride else [])
    out["curves"] = {k: [log[i][k] for i in keep] for k in CURVE_KEYS}
    if folder is not None:
        from verify.grokking import progress
        out.update(progress.seed_progress(done, seed, folder))
    return out


def build(settings: dict[str, dict[str, Any]], folders: dict[str, Path], *, command: str,
          wall_seconds: float, partial: bool, pending: list[str]) -> dict[str, Any]:
    """The record: every finished setting's entries, with versions and the machine."""
    entries = []
    for name, done in settings.items():
        for seed in done["seeds"]:
            entries.append(entry(done, seed, folders.get(name)))
    rec = {
        "schema": SCHEMA, "partial": partial, "pending_settings": pending,
        "command": command, "wall_seconds": wall_seconds,
        "settings": {n: d["config"] for n, d in settings.items()},
        "train_seconds": {n: d["train_seconds"] for n, d in settings.items()},
        "seeds": {n: d["seeds"] for n, d in settings.items()},
        "generalized_criterion": f"first logged step with test accuracy >= {phases.GENERALIZED}",
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "cpu_count": os.cpu_count(), "torch_threads": 1, "device": "cpu"},
        "entries": entries,
    }
    rec["summary"] = summary(rec)
    return rec


def from_folder(folder: Path, settings: list[str], *, command: str, wall_seconds: float
                ) -> dict[str, Any]:
    """The record of a sweep folder as it stands: finished settings in full; a setting still
    training with its seeds' curves up to its last checkpoint (``stopped`` "running");
    settings not started are listed as pending. ``partial`` unless every setting finished."""
    from verify import checkpoint
    from verify.grokking import sweep

    done: dict[str, dict[str, Any]] = {}
    pending, running = [], []
    for name in settings:
        sub = folder / name
        if (sub / "done.json").exists():
            done[name] = json.loads((sub / "done.json").read_text())
        elif (sub / "checkpoint" / checkpoint.META).exists():
            meta, _ = checkpoint.load(sub / "checkpoint", schema=sweep.SCHEMA)
            fin = dict(meta["finished"])
            for seed in meta["active"]:
                fin[str(seed)] = {"step": meta["logs"][str(seed)][-1]["step"], "reason": "running",
                                  "seconds": meta["seconds"]}
            done[name] = {"setting": name, "config": meta["config"], "logs": meta["logs"],
                          "seeds": sorted(int(s) for s in meta["logs"]), "finished": fin,
                          "train_seconds": meta["seconds"]}
            running.append(name)
        else:
            pending.append(name)
    rec = build(done, {n: folder / n for n in done}, command=command, wall_seconds=wall_seconds,
                partial=bool(pending or running), pending=pending)
    rec["running_settings"] = running
    times = [p.stat().st_mtime for p in folder.rglob("*") if p.is_file()]
    rec["wall_seconds_first_to_last_file"] = max(times) - min(times) if times else 0.0
    return rec


def write(record: dict[str, Any], path: str | os.PathLike[str]) -> None:
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A record file; ValueError in one line if it is not one."""
    try:
        rec = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"record: cannot read {str(path)!r} ({type(error).__name__})") from None
    if not isinstance(rec, dict) or rec.get("schema") != SCHEMA:
        raise ValueError(f"record: {str(path)!r} is not a {SCHEMA} file")
    return rec


def summary(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """Per setting: seeds memorized / generalized / still running, and the median and range of
    the memorization and generalization steps and of test accuracy's 0.1 -> 0.9 rise."""
    import statistics

    def stats(values: list[Any]) -> dict[str, Any] | None:
        v = [x for x in values if x is not None]
        return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)} if v else None

    out = []
    for name in rec["settings"]:
        es = [e for e in rec["entries"] if e["setting"] == name]
        out.append({
            "setting": name, "seeds": len(es),
            "memorized": sum(e["step_memorized"] is not None for e in es),
            "generalized": sum(e["step_generalized"] is not None for e in es),
            "running": sum(e["stopped"] == "running" for e in es),
            "hit_cap": sum(e["hit_cap"] for e in es),
            "steps_run": stats([e["steps_run"] for e in es]),
            "t_mem": stats([e["step_memorized"] for e in es]),
            "t_gen": stats([e["step_generalized"] for e in es]),
            "rise_0.1_to_0.9": stats([e["rise_0.1_to_0.9"]["steps"] for e in es]),
            "final_test_acc": stats([e["final_test_acc"] for e in es]),
        })
    return out
