"""`python -m verify train-induction`: train small attention-only models, watch induction heads form.

    python -m verify train-induction                       # default run: 2 layers x 4 heads, < 2 min
    python -m verify train-induction --seed 1 --out runs/s1
    python -m verify train-induction --n-layers 1          # the one-layer control
    python -m verify train-induction --resume runs/induction/checkpoint --steps 2000

Task (verify/formation/task.py): global bigrams plus a copied segment at a varying offset (after
Bietti et al. 2023). Writes DIR/run.json (schema circuit-proofs/induction-run/1: history,
phase change, named heads, comparison with the hand-built model, timing, versions), DIR/model/
(config.json + model.safetensors: `python -m verify analyze DIR/model` reads it), DIR/curves.png
and DIR/attention.png; a checkpoint in DIR/checkpoint every --checkpoint-every steps and on
Ctrl-C/SIGTERM (exit 130, run.json marked partial). Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from verify import checkpoint as ckpt
from verify.cli_util import OneLineParser, check_output_dir
from verify.formation import runio
from verify.formation.task import TaskConfig
from verify.formation.train import TrainConfig, config_from_json, train

HELP = "train small attention-only transformers and watch induction heads form"
D, T = TrainConfig(), TaskConfig()
MODEL_OPTIONS = ("n_layers", "n_heads", "d_model", "d_head", "d_mlp", "lr", "batch", "seed",
                 "log_every", "threads")
TASK_OPTIONS = {"vocab": "vocab_size", "length": "length", "copy_len": "copy_len",
                "sharpness": "sharpness", "table_seed": "table_seed"}


def parser() -> OneLineParser:
    ap = OneLineParser(prog="python -m verify train-induction", description=HELP)
    ap.add_argument("--out", default="runs/induction", help="output folder (runs/induction)")
    ap.add_argument("--steps", type=int, default=None, help=f"training steps ({D.steps})")
    for name in MODEL_OPTIONS:
        default = getattr(D, name)
        kind = float if name == "lr" else int
        ap.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None,
                        help=f"default {default}" + (" (attention-only)" if name == "d_mlp"
                                                     else ""))
    for opt, name in TASK_OPTIONS.items():
        kind = float if name == "sharpness" else int
        ap.add_argument(f"--{opt.replace('_', '-')}", type=kind, default=None,
                        help=f"task {name} (default {getattr(T, name)})")
    ap.add_argument("--checkpoint-every", type=int, default=250,
                    help="checkpoint every N steps (default 250)")
    ap.add_argument("--resume", metavar="CHECKPOINT", default=None,
                    help="continue the run saved in this checkpoint folder (up to --steps)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    ap.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    return ap


def _given(ns: Any) -> dict[str, Any]:
    """The options the user set (None = left at the default)."""
    keys = [*MODEL_OPTIONS, *TASK_OPTIONS]
    return {k: getattr(ns, k) for k in keys if getattr(ns, k) is not None}


def config_from(ns: Any, base: TrainConfig = D) -> TrainConfig:
    given = _given(ns)
    task_fields = {f.name: getattr(base.task, f.name) for f in fields(TaskConfig)}
    task_fields.update({TASK_OPTIONS[k]: v for k, v in given.items() if k in TASK_OPTIONS})
    model_fields = {f.name: getattr(base, f.name) for f in fields(TrainConfig) if f.name != "task"}
    model_fields.update({k: v for k, v in given.items() if k in MODEL_OPTIONS})
    if ns.steps is not None:
        model_fields["steps"] = ns.steps
    return TrainConfig(**model_fields, task=TaskConfig(**task_fields))


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.start = total, enabled, time.perf_counter()

    def __call__(self, step: int, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        done = int(30 * step / self.total)
        rate = step / max(time.perf_counter() - self.start, 1e-9)
        print(f"\r[{'#' * done}{'.' * (30 - done)}] {step}/{self.total} "
              f"loss {row['loss']:.3f} icl {row['icl_score']:+.3f} "
              f"induction {max(row['induction'][-1]):.2f} ({rate:.0f} it/s)",
              end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr)


def main(argv: list[str]) -> int:
    ns = parser().parse_args(argv)
    if ns.checkpoint_every < 1:
        raise ValueError(f"--checkpoint-every must be >= 1, got {ns.checkpoint_every}")
    out = check_output_dir(ns.out, option="--out")
    state = None
    if ns.resume is not None:
        saved, state = runio.load_state(ns.resume)
        ckpt.check_resume_options({**{k: saved[k] for k in MODEL_OPTIONS},
                                   **{k: saved["task"][v] for k, v in TASK_OPTIONS.items()}},
                                  _given(ns))
        cfg = config_from(ns, config_from_json(saved))
    else:
        cfg = config_from(ns)  # validates every argument (ValueError -> one line, exit 2)
    checkpoint_dir = out / "checkpoint"
    last: dict[str, Any] = {}

    def save(snapshot: dict[str, Any]) -> None:
        last.update(snapshot)
        runio.save_state(checkpoint_dir, snapshot, cfg.as_json())

    bar = Progress(cfg.steps, not ns.no_progress)
    try:
        with ckpt.interruptible():
            run = train(cfg, progress=bar, state=state, checkpoint=save,
                        checkpoint_every=ns.checkpoint_every)
    except KeyboardInterrupt:
        bar.close()
        partial = {"schema": "circuit-proofs/induction-run/1", "config": cfg.as_json(),
                   "history": last.get("history", []), "stopped_at_step": last.get("step"),
                   "checkpoint": str(checkpoint_dir)}
        runio.write(partial, out, figures=False, partial=True)
        print(f"interrupted at step {last.get('step')}; checkpoint in {checkpoint_dir}, partial "
              f"log in {Path(out) / 'run.json'}; continue with --resume {checkpoint_dir}",
              file=sys.stderr)
        return ckpt.INTERRUPTED_EXIT
    bar.close()
    runio.summarize(run)
    paths = runio.write(run, out, figures=not ns.no_figures)
    _report(run, paths)
    return 0


def _report(run: dict[str, Any], paths: dict[str, str]) -> None:
    h, ph, t, last = run["heads"], run["phase"], run["timing"], run["history"][-1]
    print(f"previous-token head {h['previous_token']['layer']}.{h['previous_token']['head']} "
          f"(score {h['previous_token']['score']:.3f}); induction head "
          f"{h['induction']['layer']}.{h['induction']['head']} (score {h['induction']['score']:.3f})")
    if "k_composition" in h:
        print(f"K-composition {h['k_composition']:.3f} (random baseline "
              f"{h['composition_baseline']['mean']:.3f} +- {h['composition_baseline']['std']:.3f})")
    print(f"phase change: induction at step {ph['step']}, ICL score at {ph['icl_step']}, loss at "
          f"{ph['loss_step']} (coincide within {ph['tolerance_steps']} steps: "
          f"{ph['icl_coincides']})")
    print(f"repeated half: loss {last['loss_repeated']:.3f}, accuracy {last['acc_repeated']:.3f} "
          f"(bigram baseline {run['bigram_baseline']['acc_repeated']:.3f}); ICL score "
          f"{last['icl_score']:+.3f}; agreement with induction_targets "
          f"{run['comparison']['target_agreement_repeated_half']:.3f}"
          + (f"; diagonal share {run['comparison']['diagonal_share']:.3f}"
             if "diagonal_share" in run["comparison"] else ""))
    sec = t["train_seconds"]
    phase_s = (f"; phase change after ~{sec * ph['step'] / t['steps']:.0f} s"
               if ph["step"] and t["steps"] else "")
    print(f"{t['steps']} steps in {sec:.1f} s ({t['steps_per_second']} steps/s){phase_s}")
    print("wrote " + ", ".join(paths.values()))
