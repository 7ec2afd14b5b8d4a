"""The finished (or interrupted) grokking run as JSON: its config, logged curves, phases, the
restricted and excluded loss at every snapshot (Nanda et al. 2023) under both key-frequency rules
(ours and Nanda's), the embedding spectrum, timings and versions."""

from __future__ import annotations

import platform
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import torch

from verify.grokking import metrics, models, phases
from verify.grokking.config import Dataset

if TYPE_CHECKING:
    from verify.grokking.train import State

SCHEMA = "circuit-proofs/grok-run/1"


def summarize(state: State, data: Dataset) -> dict[str, Any]:
    """The run as JSON: config, curves, phases, progress measures, versions and timings."""
    cfg, h, model = state.cfg, state.history, state.model
    ph = phases.detect(h["step"], h["train_acc"], h["test_acc"])
    p = cfg.p
    a, b, y = data.a, data.b, data.labels
    dev = next(model.parameters()).device
    with torch.no_grad():
        # the Fourier measures read the p residue logits (an "=" class, if any, is left out,
        # as Nanda et al.'s code does with logits[..., :-1])
        final = models.logits(model, a.to(dev), b.to(dev)).double().cpu()[:, :p]
        keys = metrics.key_frequencies(final)
        hid = models.hidden(model, a.to(dev), b.to(dev)).double().cpu()
        nanda = metrics.nanda_key_frequencies(hid, p)
        restricted, excluded, restricted_n, excluded_n = [], [], [], []
        probe = models.build_model(cfg.model, p, d=cfg.d, d_model=cfg.d_model,
                                   n_heads=cfg.n_heads, d_mlp=cfg.d_mlp,
                                   equals_class=cfg.equals_class)
        for snap in state.snapshots:
            probe.load_state_dict(snap)
            L = models.logits(probe, a, b).double()[:, :p]
            restricted.append(metrics.restricted_loss(L, y, keys))
            excluded.append(metrics.excluded_loss(L, y, keys, data.train))
            if nanda["keys"]:
                restricted_n.append(metrics.restricted_loss(L, y, nanda["keys"]))
                excluded_n.append(metrics.excluded_loss(L, y, nanda["keys"], data.train))
    spectrum = metrics.embedding_spectrum(models.embedding(model))
    idx = {s: i for i, s in enumerate(h["step"])}
    n_steps = h["step"][-1]
    return {
        "schema": SCHEMA,
        "config": asdict(cfg),
        "n_train": int(len(data.train)), "n_test": int(len(data.test)),
        "n_params": sum(q.numel() for q in model.parameters() if q.requires_grad),
        "history": h | {"restricted_loss": restricted, "excluded_loss": excluded},
        "phases": ph.as_json(),
        "norm_phase1": phases.norm_rises_in_phase1(h["step"], h["norm2"], ph),
        "total_loss_drop": phases.total_loss_drop(h["step"], h["total_loss"], ph),
        "norm2_at_memorization": h["norm2"][idx[ph.t_mem]] if ph.t_mem is not None else None,
        "norm2_at_generalization": h["norm2"][idx[ph.t_gen]] if ph.t_gen is not None else None,
        "key_frequencies": keys,
        "key_frequency_rules": {
            "ours": "the fewest frequencies holding 90% of the non-constant logit energy, at most 8",
            "nanda": "every frequency that is some live MLP neuron's dominant one (Nanda et al.)"},
        "nanda_key_frequencies": nanda,
        "progress_nanda_keys": {"restricted_loss": restricted_n, "excluded_loss": excluded_n},
        "embedding_spectrum": spectrum.tolist(),
        "product_share": metrics.product_share(hid, p, keys),
        "timing": {"train_seconds": state.seconds, "steps": n_steps,
                   "steps_per_second": n_steps / state.seconds if state.seconds > 0 else None,
                   "seconds_to_generalize": (h["seconds"][idx[ph.t_gen]]
                                             if ph.t_gen is not None else None)},
        "stopped": state.stopped,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "platform": platform.platform()},
    }
