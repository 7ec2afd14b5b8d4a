"""`python -m verify analyze PATH`: head scores, composition and ablations of any model.

    python -m verify analyze induction             # the hand-built induction model
    python -m verify analyze runs/model --json     # a folder: config.json + model.safetensors
    python -m verify analyze runs/model --plot figs

PATH is a folder holding config.json (TransformerLens HookedTransformerConfig field names) and
model.safetensors (TransformerLens state_dict names), or the name ``induction``. Bad input
prints one line on stderr and exits 2.
"""

from __future__ import annotations

import json

from verify.analysis import load, report
from verify.cli_util import OneLineParser, check_output_dir

HELP = "per-head scores, composition and ablations of any TransformerLens-style model"


def parser() -> OneLineParser:
    ap = OneLineParser(prog="python -m verify analyze", description=HELP)
    ap.add_argument("path", metavar="PATH",
                    help="a model folder (config.json + model.safetensors) or 'induction'")
    ap.add_argument("--task", choices=report.TASKS, default="induction",
                    help="the probe: repeated random tokens (induction)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--plot", metavar="DIR", help="write DIR/analysis.png")
    ap.add_argument("--seed", type=int, default=0, help="seed of the probe sequences")
    ap.add_argument("--n-seqs", type=int, default=32, help="probe sequences (default 32)")
    ap.add_argument("--bos", type=int, default=None,
                    help="BOS token id of the probe (default d_vocab - 1)")
    ap.add_argument("--no-ablation", action="store_true", help="skip the ablations")
    return ap


def main(argv: list[str]) -> int:
    ns = parser().parse_args(argv)
    if ns.n_seqs < 1:
        raise ValueError(f"--n-seqs must be >= 1, got {ns.n_seqs}")
    if ns.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {ns.seed}")
    plot_dir = check_output_dir(ns.plot, option="--plot") if ns.plot else None
    model = load.load_model(ns.path)
    result = report.analyze(model, task=ns.task, seed=ns.seed, n_seqs=ns.n_seqs, bos=ns.bos,
                            ablations=not ns.no_ablation)
    if plot_dir is not None:
        from verify.analysis.plot import plot_analysis

        plot_dir.mkdir(parents=True, exist_ok=True)
        result["figure"] = str(plot_analysis(result, plot_dir))
    if ns.json:
        print(json.dumps(result, indent=1))
    else:
        print(report.summary(result))
        if plot_dir is not None:
            print(f"wrote {result['figure']}")
    return 0
