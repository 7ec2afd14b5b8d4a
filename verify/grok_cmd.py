"""`python -m verify grok`: train on (a + b) mod p and watch for grokking (claim grokking.phases).

    python -m verify grok                       # the default run (TinyModel, p=47, < 60 s)
    python -m verify grok --model transformer --p 113 --frac 0.3 --lr 1e-3   # Nanda et al.
    python -m verify grok --grokfast            # Lee et al.'s EMA gradient filter
    python -m verify grok --sweep               # wd x frac x seed, incl. Demo 2's settings

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
from verify.grokking.train import RunConfig, load_checkpoint, train

D = RunConfig()


def parser() -> OneLineParser:
    ap = OneLineParser(prog="python -m verify grok",
                       description="Train on (a + b) mod p, log progress measures, mark phases.")
    ap.add_argument("--model", choices=("tiny", "transformer"), default=D.model)
    ap.add_argument("--p", type=int, default=D.p, help=f"modulus (default {D.p})")
    ap.add_argument("--frac", type=float, default=D.frac, help="training fraction in (0, 1)")
    ap.add_argument("--wd", type=float, default=D.wd, help="AdamW weight decay >= 0")
    ap.add_argument("--lr", type=float, default=D.lr)
    ap.add_argument("--beta1", type=float, default=D.beta1)
    ap.add_argument("--beta2", type=float, default=D.beta2)
    ap.add_argument("--steps", type=int, default=D.steps)
    ap.add_argument("--seed", type=int, default=D.seed)
    ap.add_argument("--log-every", type=int, default=D.log_every)
    ap.add_argument("--d", type=int, default=D.d, help="TinyModel width")
    ap.add_argument("--d-model", type=int, default=D.d_model)
    ap.add_argument("--n-heads", type=int, default=D.n_heads)
    ap.add_argument("--d-mlp", type=int, default=D.d_mlp)
    ap.add_argument("--init-scale", type=float, default=D.init_scale)
    ap.add_argument("--labels", choices=("sum", "random"), default=D.labels)
    ap.add_argument("--grokfast", action="store_true", help="Grokfast EMA gradient filter")
    ap.add_argument("--gf-alpha", type=float, default=D.gf_alpha)
    ap.add_argument("--gf-lambda", type=float, default=D.gf_lambda)
    ap.add_argument("--stop-after-gen", type=int, default=None,
                    help="stop this many steps after test accuracy reaches 99%%")
    ap.add_argument("--max-seconds", type=float, default=None)
    ap.add_argument("--threads", type=int, default=D.threads)
    ap.add_argument("--device", choices=("cpu", "cuda"), default=D.device)
    ap.add_argument("--out", default="grok_out", help="output folder (default grok_out)")
    ap.add_argument("--name", default=None, help="file name stem (default grok or sweep)")
    ap.add_argument("--checkpoint", default=None, help="save a resumable checkpoint here")
    ap.add_argument("--resume", default=None, help="continue from this checkpoint to --steps")
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
    ap.add_argument("--record", default=None, metavar="FILE",
                    help="write the sweep's evidence record here (e.g. "
                    "proofs/data/grokking-seeds.json)")
    return ap


def config_from(ns: object) -> RunConfig:
    names = {f.name for f in fields(RunConfig)}
    return RunConfig(**{k: v for k, v in vars(ns).items() if k in names})


def main(argv: list[str]) -> int:
    ns = parser().parse_args(argv)
    cfg = config_from(ns)   # validates every argument (ValueError -> one line, exit 2)
    if ns.sweep:
        return _sweep(ns, cfg, argv)
    if ns.resume is not None:
        if not os.path.exists(ns.resume):
            raise ValueError(f"--resume: no such checkpoint {ns.resume!r}")
        state = load_checkpoint(ns.resume, steps=cfg.steps, device=cfg.device,
                                threads=cfg.threads)
        run = train(state=state, progress=not ns.no_progress, checkpoint=ns.checkpoint)
    else:
        run = train(cfg, progress=not ns.no_progress, checkpoint=ns.checkpoint)
    json_path, png_path = runio.write_run(run, ns.out, ns.name or "grok")
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


def _sweep(ns: object, cfg: RunConfig, argv: list[str]) -> int:
    import sys
    import time
    from pathlib import Path

    from verify import checkpoint
    from verify.cli_util import check_output_dir, check_output_file
    from verify.grokking import record

    o: Any = ns
    validation.check_int("--cap", o.cap, minimum=1)
    for s in o.seeds:
        validation.check_int("--seeds", s, minimum=0)
    if len(set(o.seeds)) != len(o.seeds):
        raise ValueError(f"--seeds must be distinct, got {o.seeds}")
    folder = Path(o.resume or o.sweep_dir or Path(o.out) / "sweep")
    check_output_dir(folder, option="--resume" if o.resume else "--sweep-dir")
    if o.record:
        check_output_file(o.record, option="--record")
    if o.resume and not (folder / "sweep.json").exists():
        raise ValueError(f"--resume: {str(folder)!r} is not a sweep folder (no sweep.json)")
    if not o.resume and (folder / "sweep.json").exists():
        raise ValueError(f"--sweep-dir: {str(folder)!r} holds a sweep; continue it with "
                         f"--resume {folder} or choose another folder")
    plan = {"settings": o.settings, "seeds": o.seeds, "cap": o.cap, "device": cfg.device}
    if o.resume:
        saved = json.loads((folder / "sweep.json").read_text())
        checkpoint.check_resume_options(saved, {k: v for k, v in plan.items()
                                                if _given(argv, k)}, may_differ=("device",))
        plan = {**saved, "device": cfg.device}
    command = "python -m verify grok " + " ".join(argv)
    plan["commands"] = plan.get("commands", []) + [command]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sweep.json").write_text(json.dumps(plan))
    start = time.time()

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    done: dict[str, Any] = {}

    def write_record(partial: bool) -> None:
        if not o.record:
            return
        pending = [n for n in plan["settings"] if n not in done]
        rec = record.build(done, {n: folder / n for n in done}, command=" ; ".join(plan["commands"]),
                           wall_seconds=time.time() - start, partial=partial, pending=pending)
        record.write(rec, o.record)

    with checkpoint.interruptible():
        try:
            for name in plan["settings"]:
                base = sweep.SETTINGS[name]
                scfg = replace(base, steps=plan["cap"], device=cfg.device)
                done[name] = sweep.run_setting(name, scfg, plan["seeds"], folder / name,
                                               snapshot_every=sweep.SNAPSHOT_EVERY[name], say=say)
                write_record(partial=True)
        except KeyboardInterrupt:
            write_record(partial=True)
            print(f"interrupted: checkpoint in {folder}; continue with --sweep --resume {folder}"
                  + (f"; partial record {o.record}" if o.record else ""), file=sys.stderr)
            return checkpoint.INTERRUPTED_EXIT
    write_record(partial=False)
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
