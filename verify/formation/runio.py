"""A finished run's summary (named heads, K-composition, phase change, comparison with the
construction), its files (run.json, model/, figures) and its checkpoint state as tensors + JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from verify import checkpoint as ckpt
from verify.analysis import composition, load, scores
from verify.formation import compare, phase
from verify.formation.train import EVAL_SEED

CHECKPOINT_SCHEMA = "circuit-proofs/induction-checkpoint/1"


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    """Add "heads", "phase" and "comparison" to a run from `train.train` (returns it)."""
    model = run["model"]
    cfg = model.cfg
    probe = scores.probe_tokens(cfg, seed=EVAL_SEED + 1)
    head = scores.head_scores(model, probe, copying=False)
    first = scores.best_heads(head[:1], "previous_token")[0]
    last = cfg.n_layers - 1
    ind = max(((last, h, head[last][h]["induction"]) for h in range(cfg.n_heads)),
              key=lambda r: r[2])
    base = composition.baseline(cfg.d_model, cfg.d_head)
    out: dict[str, Any] = {"previous_token": {"layer": first[0], "head": first[1],
                                              "score": first[2]},
                           "induction": {"layer": ind[0], "head": ind[1], "score": ind[2]},
                           "composition_baseline": base}
    if cfg.n_layers >= 2:
        k = composition.matrix(model, 0, last, "k")
        out["k_composition"] = float(k[first[1], ind[1]])
        out["k_composition_into_induction_head"] = k[:, ind[1]].tolist()
        S = compare.token_qk_through_ov(model, (0, first[1]), (last, ind[1]),
                                        cfg.d_vocab - 1)
        run["comparison"] = {"diagonal_share": compare.diagonal_share(S),
                             "chance_diagonal_share": 1 / (cfg.d_vocab - 1)}
    else:
        run["comparison"] = {}
    run["comparison"]["target_agreement_repeated_half"] = compare.target_agreement(
        model, probe, cfg.d_vocab - 1)
    run["heads"] = out
    run["phase"] = phase.phase_change(run["history"], run["config"]["log_every"])
    return run


def write(run: dict[str, Any], folder: str | Path, *, figures: bool = True,
          partial: bool = False) -> dict[str, str]:
    """DIR/run.json, DIR/model/ (config.json + model.safetensors: `analyze DIR/model` reads it),
    and the figures; returns the paths written."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": str(out / "run.json")}
    record = {k: v for k, v in run.items() if k != "model"}
    record["partial"] = partial
    if "model" in run:
        paths["model"] = str(load.save_folder(run["model"], out / "model"))
    if figures and not partial and "heads" in run:
        from verify.formation import plot

        paths["curves"] = str(plot.plot_curves(run, out))
        heads = {k: (run["heads"][k]["layer"], run["heads"][k]["head"])
                 for k in ("previous_token", "induction")}
        paths["attention"] = str(plot.plot_attention(run["model"], heads, out,
                                                     run["config"]["task"]["vocab_size"]))
    record["files"] = paths
    (out / "run.json").write_text(json.dumps(record, indent=1, default=str))
    return paths


def save_state(folder: str | Path, state: dict[str, Any], config: dict[str, Any]) -> None:
    """A resumable checkpoint (verify.checkpoint: safetensors + JSON, nothing pickled)."""
    tensors = {f"model.{k}": v for k, v in state["model"].items()}
    opt = state["optimizer"]
    for index, per_param in opt["state"].items():
        for key, value in per_param.items():
            tensors[f"opt.{index}.{key}"] = torch.as_tensor(value)
    tensors["generator"] = state["generator"]
    meta = {"config": config, "history": state["history"], "step": state["step"],
            "seconds": state["seconds"], "param_groups": opt["param_groups"]}
    ckpt.save(folder, schema=CHECKPOINT_SCHEMA, meta=meta, tensors=tensors)


def load_state(folder: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config json, state for `train.train`) from `save_state`'s folder."""
    meta, tensors = ckpt.load(folder, schema=CHECKPOINT_SCHEMA)
    model = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            per_param.setdefault(int(index), {})[name] = value
    state = {"model": model, "generator": tensors["generator"], "history": meta["history"],
             "step": meta["step"], "seconds": meta["seconds"],
             "optimizer": {"state": per_param, "param_groups": meta["param_groups"]}}
    return meta["config"], state
