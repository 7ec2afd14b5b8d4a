"""`python -m verify grok`: train on (a + b) mod p and watch for grokking (claim grokking.phases).

    python -m verify grok                       # the default run (TinyModel, p=47, < 60 s)
    python -m verify grok --model transformer --p 113 --lr 1e-3 --n-train 3830 --split python \
        --warmup-steps 10 --equals-class --loss-float64 --steps 15000 --stop-after-gen 0
                                                # Nanda et al.'s official settings (6,700 here)
    python -m verify grok --grokfast            # Lee et al.'s EMA gradient filter
    python -m verify grok --sweep --record proofs/data/grokking-seeds.json
                                                # seeds 0-4 of three settings, batched, resumable

Writes DIR/NAME.json (schema circuit-proofs/grok-run/1) and DIR/NAME.png. Bad arguments
(weight decay < 0, frac outside (0, 1), p < 2, ...) print one line on stderr and exit 2.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields, replace
from typing import Any

from constructions import validation
from verify.cli_util import OneLineParser
from verify.grokking import runio, sweep
from verify.grokking.train import (
    CHECKPOINT_EVERY,
    CHECKPOINT_SCHEMA,
    Interrupted,
    RunConfig,
    load_checkpoint,
    train,
)

D = RunConfig()


def parser() -> OneLineParser:
    ap = OneLineParser(prog="python -m verify grok",
                       description="Train on (a + b) mod p, log progress measures, mark phases.")
    ap.add_argument("--model", choices=("tiny", "transformer"), default=D.model,
        help='"tiny": Demo 2\'s MLP; "transformer": Nanda et al.\'s 1-layer transformer')
    ap.add_argument("--p", type=int, default=D.p, help=f"modulus (default {D.p})")
    ap.add_argument("--frac", type=float, default=D.frac, help="training fraction in (0, 1)")
    ap.add_argument("--wd", type=float, default=D.wd, help="AdamW weight decay >= 0")
    ap.add_argument("--lr", type=float, default=D.lr, help='AdamW learning rate')
    ap.add_argument("--beta1", type=float, default=D.beta1, help='AdamW beta1')
    ap.add_argument("--beta2", type=float, default=D.beta2, help='AdamW beta2')
    ap.add_argument("--steps", type=int, default=D.steps, help='full-batch training steps')
    ap.add_argument("--seed", type=int, default=D.seed, help='seed of the data split and the initialization')
    ap.add_argument("--log-every", type=int, default=D.log_every, help='steps between logged measurements')
    ap.add_argument("--d", type=int, default=D.d, help="TinyModel width")
    ap.add_argument("--d-model", type=int, default=D.d_model, help='transformer width')
    ap.add_argument("--n-heads", type=int, default=D.n_heads, help='transformer attention heads')
    ap.add_argument("--d-mlp", type=int, default=D.d_mlp, help='transformer MLP width')
    ap.add_argument("--init-scale", type=float, default=D.init_scale,
        help='multiply the initial weights by this')
    ap.add_argument("--labels", choices=("sum", "random"), default=D.labels,
        help='"sum": (a+b) mod p; "random": a fixed random label per pair (memorization only)')
    ap.add_argument("--n-train", type=int, default=None,
                    help="number of training pairs (default: round(frac p^2))")
    ap.add_argument("--split", choices=("torch", "python"), default=D.split,
                    help='"torch": torch.randperm(seed); "python": random.Random(seed).shuffle of '
                    "the a-major pairs, as Nanda et al.'s official code")
    ap.add_argument("--warmup-steps", type=int, default=D.warmup_steps,
                    help="linear learning-rate warmup: step s uses lr * min(s / N, 1) (theirs: 10)")
    ap.add_argument("--equals-class", action="store_true",
                    help='transformer: p + 1 outputs, "=" a class too (theirs)')
    ap.add_argument("--loss-float64", action="store_true",
                    help="compute the training loss in float64 (theirs)")
    ap.add_argument("--grokfast", action="store_true", help="Grokfast EMA gradient filter")
    ap.add_argument("--gf-alpha", type=float, default=D.gf_alpha, help='Grokfast EMA decay')
    ap.add_argument("--gf-lambda", type=float, default=D.gf_lambda, help='Grokfast amplification')
    ap.add_argument("--stop-after-gen", type=int, default=None,
                    help="stop this many steps after test accuracy reaches 99%%")
    ap.add_argument("--max-seconds", type=float, default=None,
        help='stop after this many seconds of training')
    ap.add_argument("--threads", type=int, default=D.threads, help='torch threads')
    ap.add_argument("--device", choices=("cpu", "cuda"), default=D.device, help='where to train')
    ap.add_argument("--out", default="grok_out", help="output folder (default grok_out)")
    ap.add_argument("--name", default=None, help="file name stem (default grok or sweep)")
    ap.add_argument("--checkpoint", default=None, metavar="DIR",
                    help="checkpoint folder, saved every --checkpoint-every steps, at the end and "
                    "on Ctrl-C / SIGTERM (default OUT/NAME-checkpoint)")
    ap.add_argument("--checkpoint-every", type=int, default=CHECKPOINT_EVERY,
                    help=f"steps between checkpoints (default {CHECKPOINT_EVERY})")
    ap.add_argument("--resume", default=None, metavar="DIR",
                    help="continue a run from its checkpoint folder to --steps (options that "
                    "change the model or data are refused), or a sweep from its --sweep-dir")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--sweep", action="store_true",
                    help="the seeds sweep: --seeds of each setting in --settings, batched, to "
                    "generalization or --cap; resumable (--resume DIR)")
    ap.add_argument("--settings", nargs="+", default=list(sweep.SETTINGS),
                    choices=list(sweep.SETTINGS), help="sweep settings (default: all three)")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(sweep.SEEDS),
                    help="sweep seeds (default 0 1 2 3 4)")
    ap.add_argument("--cap", type=int, default=sweep.CAP, help="sweep step cap per run")
    ap.add_argument("--sweep-dir", default=None,
                    help="sweep work folder: checkpoints and weights (default OUT/sweep)")
    ap.add_argument("--record-only", action="store_true",
                    help="with --sweep --resume DIR --record FILE: write the record from the "
                    "folder as it stands (seeds still training: up to their last checkpoint)")
    ap.add_argument("--record", default=None, metavar="FILE",
                    help="write the sweep's evidence record here (e.g. "
                    "proofs/data/grokking-seeds.json)")
    return ap


def config_from(ns: object) -> RunConfig:
    names = {f.name for f in fields(RunConfig)}
    return RunConfig(**{k: v for k, v in vars(ns).items() if k in names})


RESUME_MAY_DIFFER = ("steps", "device", "threads", "max_seconds", "stop_after_gen")


def main(argv: list[str]) -> int:
    import sys

    from verify import checkpoint
    from verify.cli_util import check_output_dir

    ns = parser().parse_args(argv)
    cfg = config_from(ns)   # validates every argument (ValueError -> one line, exit 2)
    if ns.sweep:
        return _sweep(ns, cfg, argv)
    validation.check_int("--checkpoint-every", ns.checkpoint_every, minimum=1)
    check_output_dir(ns.out, option="--out")
    name = ns.name or "grok"
    ck = ns.checkpoint or os.path.join(ns.out, f"{name}-checkpoint")
    check_output_dir(ck, option="--checkpoint")
    if ns.resume is not None:
        _refuse_run_json(ns.resume)
        meta, _ = checkpoint.load(ns.resume, schema=CHECKPOINT_SCHEMA)
        given = {f.name: getattr(ns, f.name) for f in fields(RunConfig)
                 if _given(argv, f.name.replace("_", "-"))}
        checkpoint.check_resume_options(meta["cfg"], given, may_differ=RESUME_MAY_DIFFER)
        state = load_checkpoint(ns.resume, **{k: v for k, v in given.items()
                                              if k in RESUME_MAY_DIFFER})
    with checkpoint.interruptible():
        try:
            if ns.resume is not None:
                run = train(state=state, progress=not ns.no_progress, checkpoint=ck,
                            checkpoint_every=ns.checkpoint_every)
            else:
                run = train(cfg, progress=not ns.no_progress, checkpoint=ck,
                            checkpoint_every=ns.checkpoint_every)
        except Interrupted as stop:
            json_path = os.path.join(ns.out, f"{name}.json")
            os.makedirs(ns.out, exist_ok=True)
            with open(json_path, "w") as f:
                json.dump(stop.run | {"checkpoint": ck}, f, indent=1)
            print(f"interrupted at step {stop.run['history']['step'][-1]}: partial run {json_path}"
                  f", checkpoint {ck}; continue with: python -m verify grok --resume {ck}",
                  file=sys.stderr)
            return checkpoint.INTERRUPTED_EXIT
    json_path, png_path = runio.write_run(run | {"checkpoint": ck}, ns.out, name)
    ph, t = run["phases"], run["timing"]
    print(f"phases: {ph['kind']}  t_mem={ph['t_mem']}  t_gen={ph['t_gen']}  "
          f"plateau={ph['plateau']}  (final train acc {run['history']['train_acc'][-1]:.3f}, "
          f"test acc {run['history']['test_acc'][-1]:.3f})")
    print(f"||W||^2 at memorization {run['norm2_at_memorization']}, at generalization "
          f"{run['norm2_at_generalization']}; key frequencies {run['key_frequencies']}")
    print(f"{t['steps']} steps in {t['train_seconds']:.1f} s ({t['steps_per_second']:.0f} steps/s)"
          f"{'; ' + run['stopped'] if run['stopped'] else ''}")
    print(f"wrote {json_path} and {png_path}")
    return 0


def _refuse_run_json(path: str) -> None:
    """A run JSON given to --resume: one line naming the checkpoint it records, if any."""
    if os.path.isfile(path):
        try:
            with open(path) as f:
                run = json.load(f)
        except (OSError, ValueError, UnicodeDecodeError):
            return
        if isinstance(run, dict) and "schema" in run:
            hint = f"; its checkpoint is {run['checkpoint']}" if run.get("checkpoint") else ""
            raise ValueError(f"--resume: {path!r} is a run JSON, not a checkpoint folder{hint}")


def _sweep(ns: object, cfg: RunConfig, argv: list[str]) -> int:
    import sys
    import time
    from pathlib import Path

    import torch

    from verify import checkpoint
    from verify.cli_util import check_output_dir, check_output_file
    from verify.grokking import record

    o: Any = ns
    torch.set_num_threads(cfg.threads)   # one thread: on a loaded 2-core machine two spin
    validation.check_int("--cap", o.cap, minimum=1)
    for s in o.seeds:
        validation.check_int("--seeds", s, minimum=0)
    if len(set(o.seeds)) != len(o.seeds):
        raise ValueError(f"--seeds must be distinct, got {o.seeds}")
    folder = Path(o.resume or o.sweep_dir or Path(o.out) / "sweep")
    check_output_dir(folder, option="--resume" if o.resume else "--sweep-dir")
    if o.record:
        check_output_file(o.record, option="--record")
    if o.record_only and not (o.resume and o.record):
        raise ValueError("--record-only needs --resume DIR and --record FILE")
    if o.resume and not (folder / "sweep.json").exists():
        raise ValueError(f"--resume: {str(folder)!r} is not a sweep folder (no sweep.json)")
    if not o.resume and (folder / "sweep.json").exists():
        raise ValueError(f"--sweep-dir: {str(folder)!r} holds a sweep; continue it with "
                         f"--resume {folder} or choose another folder")
    plan = {"settings": o.settings, "seeds": o.seeds, "cap": o.cap, "device": cfg.device}
    if o.resume:
        saved = json.loads((folder / "sweep.json").read_text())
        checkpoint.check_resume_options(saved, {k: v for k, v in plan.items()
                                                if _given(argv, k)},
                                        may_differ=("device", "settings"))
        unknown = [n for n in o.settings if n not in saved["settings"]]
        if unknown:
            raise ValueError(f"--settings: {unknown} are not in this sweep ({saved['settings']})")
        order = o.settings if _given(argv, "settings") else saved["settings"]
        plan = {**saved, "device": cfg.device}
    else:
        order = plan["settings"]
    if not o.record_only:
        plan["commands"] = plan.get("commands", []) + ["python -m verify grok " + " ".join(argv)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sweep.json").write_text(json.dumps(plan))
    start = time.time()

    def save_wall() -> None:
        plan["wall_seconds"] = plan.get("wall_seconds", 0.0) + time.time() - start
        (folder / "sweep.json").write_text(json.dumps(plan))

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    done: dict[str, Any] = {}

    def write_record() -> None:
        if o.record:
            rec = record.from_folder(folder, plan["settings"], command=" ; ".join(plan["commands"]),
                                     wall_seconds=plan.get("wall_seconds", 0.0) + time.time() - start)
            record.write(rec, o.record)
            from verify.grokking.plot import plot_sweep
            plot_sweep(rec, str(Path(o.record).with_suffix(".png")))

    if o.record_only:
        write_record()
        print(f"wrote {o.record} from {folder} (nothing trained)")
        return 0
    with checkpoint.interruptible():
        try:
            for name in order:   # on --resume, --settings picks which settings train now
                base = sweep.SETTINGS[name]
                scfg = replace(base, steps=plan["cap"], device=cfg.device)
                done[name] = sweep.run_setting(name, scfg, plan["seeds"], folder / name,
                                               snapshot_every=sweep.SNAPSHOT_EVERY[name], say=say)
                write_record()
        except KeyboardInterrupt:
            write_record()
            save_wall()
            print(f"interrupted: checkpoint in {folder}; continue with --sweep --resume {folder}"
                  + (f"; partial record {o.record}" if o.record else ""), file=sys.stderr)
            return checkpoint.INTERRUPTED_EXIT
    write_record()
    save_wall()
    for name, d in done.items():
        fin = d["finished"]
        gen = sorted(v["step"] for v in fin.values() if v["reason"] == "generalized")
        print(f"{name}: {len(gen)}/{len(fin)} seeds generalized (steps {gen}); "
              f"{d['train_seconds']:.0f} s of training")
    if o.record:
        print(f"wrote {o.record}")
    return 0


def _given(argv: list[str], key: str) -> bool:
    return any(a == f"--{key}" or a.startswith(f"--{key}=") for a in argv)
