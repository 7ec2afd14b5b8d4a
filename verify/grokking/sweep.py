"""`python -m verify grok --sweep`: several seeds of three settings, each run to generalization
or to a step cap, trained as batched seeds (batched.py), checkpointed, resumable.

Settings (SETTINGS): the project's default run (TinyModel p = 47, 40% of pairs, AdamW lr 1e-2,
weight decay 1.0, betas (0.9, 0.98)); and the section's Coding Demo 2 settings exactly
(TinyModel p = 97, d = 64, AdamW lr 1e-3, weight decay 0.1, PyTorch's default betas
(0.9, 0.999), full batch) at training fractions 0.5 and 0.3. A seed stops at the first logged
step with test accuracy >= phases.GENERALIZED, or at the cap (its record says which).

The work folder holds, per setting: ``checkpoint/`` (verify.checkpoint: weights and AdamW state
of the seeds still training, every seed's logged curves), ``snap_STEP.safetensors`` (weights of
the seeds training at that step, every `snapshot_every` steps: restricted/excluded loss are
computed from them at the end), ``mem_SEED.safetensors`` (weights at the first logged step with
train accuracy 1: the memorizer), ``final_SEED.safetensors`` and ``done.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from verify import checkpoint
from verify.grokking import batched, metrics, phases
from verify.grokking.train import RunConfig

SCHEMA = "circuit-proofs/grok-sweep-checkpoint/1"
CAP = 40_000                    # step cap (issue 10: at least 40,000)
SEEDS = (0, 1, 2, 3, 4)
DEMO2 = RunConfig(model="tiny", p=97, d=64, lr=1e-3, wd=0.1, beta1=0.9, beta2=0.999)
SETTINGS: dict[str, RunConfig] = {
    "default": RunConfig(steps=CAP),
    "demo2_frac0.5": replace(DEMO2, frac=0.5, steps=CAP),
    "demo2_frac0.3": replace(DEMO2, frac=0.3, steps=CAP),
}
SNAPSHOT_EVERY = {"default": 50, "demo2_frac0.5": 500, "demo2_frac0.3": 500}
CHECKPOINT_SECONDS = 120.0      # save the live state at least this often
LOG_KEYS = ("step", "seconds", "train_loss", "test_loss", "train_acc", "test_acc", "norm2",
            "norm2_embed", "norm2_rest", "total_loss", "gini", "topk_share")


def save_weights(path: Path, params: dict[str, torch.Tensor], seeds: Sequence[int],
                 slots: Sequence[int] | None = None) -> None:
    from safetensors.torch import save_file
    slots = range(len(seeds)) if slots is None else slots
    save_file({f"{seeds[i]}/{k}": v[i].detach().contiguous().cpu() for i in slots
               for k, v in params.items()}, str(path))


def load_weights(path: Path) -> dict[int, dict[str, torch.Tensor]]:
    """{seed: TinyModel state_dict} from a file written by `save_weights`."""
    from safetensors.torch import load_file
    out: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in load_file(str(path)).items():
        seed, name = key.split("/", 1)
        out.setdefault(int(seed), {})[name] = value
    return out


@torch.no_grad()
def log_rows(run: batched.BatchRun, step: int, seconds: float) -> list[dict[str, float]]:
    """One logged row per seed slot: losses, accuracies, norms (embedding / rest), L_total."""
    L = run.full_logits()                                             # [S, p^2, p]
    rows = []
    for i in range(len(run.seeds)):
        tr, te, y = run.train_idx[i], run.test_idx[i], run.labels[i]
        pred = L[i].argmax(-1) == y
        per = {k: float((v[i].double() ** 2).sum()) for k, v in run.params.items()}
        norm2 = sum(per.values())
        spectrum = metrics.embedding_spectrum(run.params[batched.EMBED][i])
        train_loss = float(F.cross_entropy(L[i][tr], y[tr]))
        rows.append({"step": step, "seconds": seconds, "train_loss": train_loss,
                     "test_loss": float(F.cross_entropy(L[i][te], y[te])),
                     "train_acc": float(pred[tr].double().mean()),
                     "test_acc": float(pred[te].double().mean()), "norm2": norm2,
                     "norm2_embed": per[batched.EMBED], "norm2_rest": norm2 - per[batched.EMBED],
                     "total_loss": train_loss + run.cfg.wd * norm2,
                     "gini": metrics.gini(spectrum.sqrt()),
                     "topk_share": metrics.top_k_share(spectrum),
                     **{f"norm2/{k}": v for k, v in per.items()}})
    return rows


def run_setting(name: str, cfg: RunConfig, seeds: Sequence[int], folder: Path, *,
                snapshot_every: int, say: Callable[[str], None] = lambda s: None
                ) -> dict[str, Any]:
    """Train ``seeds`` of one setting to the end (resuming from ``folder`` if it holds a
    checkpoint); returns done.json's content. KeyboardInterrupt: checkpoint, then re-raise."""
    folder.mkdir(parents=True, exist_ok=True)
    done_path = folder / "done.json"
    if done_path.exists():
        return json.loads(done_path.read_text())
    ck = folder / "checkpoint"
    if (ck / checkpoint.META).exists():
        meta, tensors = checkpoint.load(ck, schema=SCHEMA)
        checkpoint.check_resume_options(meta["config"], asdict(cfg), may_differ=("device", "threads"))
        active = meta["active"]
        run = batched.BatchRun(cfg, active, {k: tensors[f"param/{k}"] for k in batched.PARAM_NAMES})
        run.load_adam_state({k[5:]: v for k, v in tensors.items() if k.startswith("adam/")})
        step, seconds = meta["step"], meta["seconds"]
        logs, finished = meta["logs"], meta["finished"]
        say(f"{name}: resumed at step {step} with seeds {active}")
    else:
        run = batched.BatchRun(cfg, list(seeds))
        step, seconds = 0, 0.0
        logs = {str(s): [] for s in seeds}
        finished = {}
    memorized = {s for s in logs if (folder / f"mem_{s}.safetensors").exists()}

    def save_state() -> None:
        tensors = {f"param/{k}": v for k, v in run.params.items()}
        tensors.update({f"adam/{k}": v for k, v in run.adam_state().items()})
        checkpoint.save(ck, schema=SCHEMA, tensors=tensors,
                        meta={"config": asdict(cfg), "active": run.seeds, "step": step,
                              "seconds": seconds, "logs": logs, "finished": finished})

    def observe() -> None:
        """Log every active seed; note memorizers; finish seeds that generalized (or the cap)."""
        rows = log_rows(run, step, seconds)
        keep = []
        for i, (seed, row) in enumerate(zip(run.seeds, rows)):
            logs[str(seed)].append(row)
            if str(seed) not in memorized and row["train_acc"] >= 1.0:
                save_weights(folder / f"mem_{seed}.safetensors", run.params, run.seeds, [i])
                memorized.add(str(seed))
            reason = ("generalized" if row["test_acc"] >= phases.GENERALIZED
                      else "cap" if step >= cfg.steps else None)
            if reason is None:
                keep.append(i)
                continue
            save_weights(folder / f"final_{seed}.safetensors", run.params, run.seeds, [i])
            finished[str(seed)] = {"step": step, "reason": reason, "seconds": seconds}
            say(f"{name}: seed {seed} {reason} at step {step} ({seconds:.0f} s)")
        if len(keep) < len(run.seeds) and keep:
            run.keep(keep)
        elif not keep:
            run.seeds = []

    last_save = time.monotonic()
    try:
        if step == 0:
            save_weights(folder / "snap_000000.safetensors", run.params, run.seeds)
            observe()
        while run.seeds:
            t0 = time.perf_counter()
            run.step()
            seconds += time.perf_counter() - t0
            step += 1
            if step % snapshot_every == 0:
                save_weights(folder / f"snap_{step:06d}.safetensors", run.params, run.seeds)
            if step % cfg.log_every == 0 or step >= cfg.steps:
                observe()
            if run.seeds and time.monotonic() - last_save >= CHECKPOINT_SECONDS:
                save_state()
                last_save = time.monotonic()
                say(f"{name}: step {step}, seeds {run.seeds} training, {seconds:.0f} s")
    except KeyboardInterrupt:
        if run.seeds:
            save_state()
        raise
    done = {"setting": name, "config": asdict(cfg), "seeds": list(seeds), "logs": logs,
            "finished": finished, "train_seconds": seconds}
    done_path.write_text(json.dumps(done))
    return done


def snapshot_steps(folder: Path) -> list[int]:
    return sorted(int(p.stem.split("_")[1]) for p in folder.glob("snap_*.safetensors"))
