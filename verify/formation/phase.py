"""The phase change of a training run: when the induction score jumps, and whether the loss
and the in-context-learning score change at the same step (Olsson et al. 2022's
"co-occurrence" line of evidence).

Each curve's change step is its midpoint crossing: the first logged step at which the curve has
covered half of its total change (from its first to its last logged value). A curve whose total
change is below its `MIN_CHANGE` has no change step (None): nothing formed. Two change steps
coincide when they are at most `COINCIDE_LOGS` log intervals apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

MIN_CHANGE = {"induction": 0.2,   # share of attention; chance is ~0.05 at length 47
              "icl_score": 0.2,   # nats
              "loss_repeated": 0.2}
COINCIDE_LOGS = 2


def midpoint_step(steps: Sequence[int], values: Sequence[float], min_change: float
                  ) -> int | None:
    """First step where ``values`` has covered half its first-to-last change; None if the change
    is below ``min_change`` in size. A curve holding NaN or infinity (a run that diverged) is
    refused: its change step would be meaningless."""
    if len(steps) != len(values) or len(steps) < 2:
        raise ValueError("steps and values must have the same length >= 2")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"values must be finite numbers, got {list(values)}")
    change = values[-1] - values[0]
    if abs(change) < min_change:
        return None
    half = values[0] + change / 2
    for step, value in zip(steps, values):
        if (value - half) * change >= 0:
            return int(step)
    # reached only when the change overflows float64 (|change| = inf makes every product -inf)
    return int(steps[-1])


def induction_curve(history: Sequence[dict[str, Any]]) -> list[float]:
    """Per logged step, the best induction score among heads of the last layer."""
    return [max(row["induction"][-1]) for row in history]


def phase_change(history: Sequence[dict[str, Any]], log_every: int) -> dict[str, Any]:
    """Change steps of the induction score, the ICL score and the loss on the repeated half."""
    steps = [row["step"] for row in history]
    curves = {"induction": induction_curve(history),
              "icl_score": [row["icl_score"] for row in history],
              "loss_repeated": [row["loss_repeated"] for row in history]}
    at = {k: midpoint_step(steps, v, MIN_CHANGE[k]) for k, v in curves.items()}
    tolerance = COINCIDE_LOGS * log_every

    def near(a: int | None, b: int | None) -> bool:
        return a is not None and b is not None and abs(a - b) <= tolerance

    return {"step": at["induction"], "icl_step": at["icl_score"],
            "loss_step": at["loss_repeated"],
            "icl_coincides": near(at["icl_score"], at["induction"]),
            "loss_coincides": near(at["loss_repeated"], at["induction"]),
            "tolerance_steps": tolerance,
            "induction_first_last": [curves["induction"][0], curves["induction"][-1]]}
