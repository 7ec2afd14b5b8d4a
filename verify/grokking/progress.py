"""Nanda et al.'s progress measures over a sweep seed's saved weights (sweep.py's folder).

For one seed: the final model's key frequencies by two rules (metrics.key_frequencies, ours:
the fewest holding 90% of the logit energy, at most 8; metrics.nanda_key_frequencies, theirs:
every frequency that is some MLP neuron's dominant one), and at every snapshot step the
restricted loss (only the key frequencies' logit components, all pairs) and the excluded loss
(the key frequencies removed, training pairs), with both rules' keys. From them: the first
snapshot step with restricted loss <= CIRCUIT_FORMED_SHARE ln p (a quarter of chance: the
key-frequency circuit alone already classifies most pairs), to be placed against memorization
and the rise of test accuracy; and the least norms (rescale.py) of the memorizer (first logged
step with train accuracy 1) and of the generalizer (the final model, if it generalized).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from constructions.tiny_mlp import TinyModel
from verify.grokking import metrics, models, rescale, sweep
from verify.grokking.train import RunConfig, make_dataset

CIRCUIT_FORMED_SHARE = 0.25   # restricted loss <= this share of ln p (chance): circuit formed


def _model(cfg: dict[str, Any], state: dict[str, torch.Tensor]) -> TinyModel:
    model = TinyModel(cfg["p"], cfg["d"])
    model.load_state_dict(state)
    return model


@torch.no_grad()
def seed_progress(done: dict[str, Any], seed: int, folder: Path) -> dict[str, Any]:
    cfg = done["config"]
    final_path = folder / f"final_{seed}.safetensors"
    if not final_path.exists():       # still training: only the memorizer can be measured
        return _memorizer_only(cfg, seed, folder)
    data = make_dataset(RunConfig(**{**cfg, "seed": seed}))
    a, b, y = data.a, data.b, data.labels
    final = _model(cfg, sweep.load_weights(final_path)[seed])
    L = models.logits(final, a, b).double()
    keys = metrics.key_frequencies(L)
    hidden = models.hidden(final, a, b).double()
    nanda = metrics.nanda_key_frequencies(hidden, cfg["p"])
    steps, restricted, excluded, restricted_n, excluded_n = [], [], [], [], []
    last = done["finished"][str(seed)]["step"]
    for step in sweep.snapshot_steps(folder):
        if step > last:
            break
        snap = sweep.load_weights(folder / f"snap_{step:06d}.safetensors")
        if seed not in snap:
            continue
        Ls = models.logits(_model(cfg, snap[seed]), a, b).double()
        steps.append(step)
        restricted.append(metrics.restricted_loss(Ls, y, keys))
        excluded.append(metrics.excluded_loss(Ls, y, keys, data.train))
        restricted_n.append(metrics.restricted_loss(Ls, y, nanda["keys"]) if nanda["keys"] else None)
        excluded_n.append(metrics.excluded_loss(Ls, y, nanda["keys"], data.train)
                          if nanda["keys"] else None)
    tr = data.train
    least = {}
    for role, path in (("memorizer", folder / f"mem_{seed}.safetensors"), ("generalizer", final_path)):
        if role == "generalizer" and done["finished"][str(seed)]["reason"] != "generalized":
            continue
        if path.exists():
            least[role] = rescale.least_norm2_at_loss(sweep.load_weights(path)[seed],
                                                      a[tr], b[tr], y[tr])
    level = CIRCUIT_FORMED_SHARE * math.log(cfg["p"])
    formed = next((s for s, v in zip(steps, restricted) if v <= level), None)
    return {"key_frequencies": keys, "nanda_key_frequencies": nanda,
            "progress": {"step": steps, "restricted_loss": restricted, "excluded_loss": excluded,
                         "restricted_loss_nanda_keys": restricted_n,
                         "excluded_loss_nanda_keys": excluded_n},
            "least_norm2_memorizer": least.get("memorizer", {}).get("least_norm2"),
            "least_norm2_generalizer": least.get("generalizer", {}).get("least_norm2"),
            "least_norm2_detail": least, "step_circuit_formed": formed,
            "circuit_formed_threshold": level}


def _memorizer_only(cfg: dict[str, Any], seed: int, folder: Path) -> dict[str, Any]:
    path = folder / f"mem_{seed}.safetensors"
    if not path.exists():
        return {}
    data = make_dataset(RunConfig(**{**cfg, "seed": seed}))
    tr = data.train
    least = rescale.least_norm2_at_loss(sweep.load_weights(path)[seed], data.a[tr], data.b[tr],
                                        data.labels[tr])
    return {"least_norm2_memorizer": least["least_norm2"],
            "least_norm2_detail": {"memorizer": least}}
