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
    ap.add_argument("--sweep", action="store_true", help=f"run the sweep: wd {sweep.WEIGHT_DECAYS}"
                    f" x frac {sweep.FRACS} x seeds {sweep.SEEDS}, plus Demo 2's settings")
    ap.add_argument("--sweep-steps", type=int, default=6000, help="step cap per default-group run")
    ap.add_argument("--demo2-steps", type=int, default=6000, help="step cap per Demo 2 run")
    return ap


def config_from(ns: object) -> RunConfig:
    names = {f.name for f in fields(RunConfig)}
    return RunConfig(**{k: v for k, v in vars(ns).items() if k in names})


def main(argv: list[str]) -> int:
    ns = parser().parse_args(argv)
    cfg = config_from(ns)   # validates every argument (ValueError -> one line, exit 2)
    if ns.sweep:
        return _sweep(ns, cfg)
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


def _sweep(ns: object, cfg: RunConfig) -> int:
    configs = sweep.sweep_configs(replace(cfg, stop_after_gen=None), steps=ns.sweep_steps,  # type: ignore[attr-defined]
                                  demo2_steps=ns.demo2_steps)  # type: ignore[attr-defined]
    os.makedirs(ns.out, exist_ok=True)  # type: ignore[attr-defined]
    path = os.path.join(ns.out, f"{ns.name or 'sweep'}.json")  # type: ignore[attr-defined]
    rows = sweep.run_sweep(configs, progress=not ns.no_progress,  # type: ignore[attr-defined]
                           log_path=path + "l")
    with open(path, "w") as f:
        json.dump(rows, f, indent=1)
    print(sweep.summary_table(rows))
    print(f"wrote {path}")
    return 0
