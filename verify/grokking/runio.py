"""The run JSON (schema ``circuit-proofs/grok-run/1``): writing it and checking its shape."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from verify.grokking.train import HISTORY_KEYS, SCHEMA

TOP_KEYS = ("schema", "config", "n_train", "n_test", "n_params", "history", "phases",
            "norm_phase1", "total_loss_drop", "norm2_at_memorization", "norm2_at_generalization",
            "key_frequencies", "embedding_spectrum", "product_share", "timing", "stopped",
            "versions")
CURVES = HISTORY_KEYS + ("restricted_loss", "excluded_loss")
PHASE_KEYS = ("kind", "t_train", "t_mem", "t_gen", "t_switch", "plateau")


def problems(run: Any) -> list[str]:
    """Every way ``run`` departs from the schema (an empty list: it conforms)."""
    if not isinstance(run, dict):
        return ["run must be a JSON object"]
    out = [f"missing key {k!r}" for k in TOP_KEYS if k not in run]
    if out:
        return out
    if run["schema"] != SCHEMA:
        out.append(f"schema must be {SCHEMA!r}, got {run['schema']!r}")
    h = run["history"]
    n = len(h.get("step", []))
    if n == 0:
        out.append("history.step is empty")
    for key in CURVES:
        curve = h.get(key)
        if not isinstance(curve, list) or len(curve) != n:
            out.append(f"history.{key} must be a list of {n} numbers")
        elif any(not isinstance(v, (int, float)) or not math.isfinite(v) for v in curve):
            out.append(f"history.{key} has a non-finite or non-numeric entry")
    per = h.get("norm2_per_param", {})
    if not per or any(len(v) != n for v in per.values()):
        out.append("history.norm2_per_param must map each parameter to a curve")
    elif n and abs(sum(v[-1] for v in per.values()) - h["norm2"][-1]) > 1e-6 * max(1.0, h["norm2"][-1]):
        out.append("history.norm2 must equal the sum of norm2_per_param")
    for key in ("train_acc", "test_acc"):
        if isinstance(h.get(key), list) and any(not 0 <= v <= 1 for v in h[key]):
            out.append(f"history.{key} must lie in [0, 1]")
    if isinstance(h.get("step"), list) and any(b <= a for a, b in zip(h["step"], h["step"][1:])):
        out.append("history.step must increase strictly")
    missing = [k for k in PHASE_KEYS if k not in run["phases"]]
    if missing:
        out.append(f"phases lacks {missing}")
    return out


def write_run(run: dict[str, Any], out_dir: str, name: str = "grok") -> tuple[str, str]:
    """Write ``name``.json and ``name``.png into ``out_dir``; return both paths."""
    from verify.grokking.plot import plot_run
    os.makedirs(out_dir, exist_ok=True)
    json_path = os.path.join(out_dir, f"{name}.json")
    with open(json_path, "w") as f:
        json.dump(run, f, indent=1)
    png_path = plot_run(run, os.path.join(out_dir, f"{name}.png"))
    return json_path, png_path
