"""The least squared norm of a TinyModel at a given training loss, over the rescalings that keep
its function (issue 10, item 5: compare memorizer and generalizer on equal terms).

Demo 2's TinyModel computes logits = W2 relu(W1 [E a; E b] + b1) + b2. These rescalings leave the
function unchanged (ReLU is positively homogeneous):
* the embedding: E -> s E, W1 -> W1 / s (s > 0; the biases are untouched);
* each hidden unit i: row i of (W1, b1) -> c_i (row i), column i of W2 -> column i / c_i.
Scaling the output layer (W2, b2) -> R (W2, b2) scales the logits by R; it changes the loss but
not the predictions. `least_norm2` first picks R so that the mean training cross-entropy is
``target`` (bisection: with every training pair classified correctly the loss falls strictly
from its value at R -> 0 to 0 as R grows), then minimizes over s and c:
for fixed s the best c_i gives unit i the cost 2 sqrt(a_i b_i) (AM-GM), a_i = |W1_i|^2 / s^2 +
b1_i^2, b_i = R^2 |W2_:,i|^2; the total s^2 |E|^2 + sum_i 2 sqrt(a_i b_i) + R^2 |b2|^2 is convex
in log s (each term is), so golden-section search finds its minimum.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

TARGET_LOSS = 0.01      # the training cross-entropy both models are brought to (nats)
LOG_R_RANGE = (-20.0, 20.0)
LOG_S_RANGE = (-12.0, 12.0)
SEARCH_ITERS = 200      # bisection / golden-section iterations: far below float64 resolution


def _loss(state: dict[str, Tensor], a: Tensor, b: Tensor, y: Tensor, R: float) -> float:
    E, W1, b1 = state["embed.weight"], state["fc.0.weight"], state["fc.0.bias"]
    h = torch.relu(torch.cat([E[a], E[b]], -1) @ W1.T + b1)
    return float(F.cross_entropy(R * (h @ state["fc.2.weight"].T + state["fc.2.bias"]), y))


def logit_scale_for_loss(state: dict[str, Tensor], a: Tensor, b: Tensor, y: Tensor,
                         target: float = TARGET_LOSS) -> float | None:
    """R with mean cross-entropy ``target`` on (a, b, y) after scaling the logits by R; None if
    some training pair is misclassified (then the loss does not fall to ``target``) ."""
    if not target > 0:
        raise ValueError(f"target must be > 0, got {target!r}")
    st = {k: v.detach().double() for k, v in state.items()}
    lo, hi = LOG_R_RANGE
    if _loss(st, a, b, y, math.exp(hi)) > target or _loss(st, a, b, y, math.exp(lo)) < target:
        return None
    for _ in range(SEARCH_ITERS):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _loss(st, a, b, y, math.exp(mid)) > target else (lo, mid)
    return math.exp((lo + hi) / 2)


def least_norm2_at_scale(state: dict[str, Tensor], R: float) -> dict[str, float]:
    """min over s, c of the squared norm of the rescaled model with logits scaled by R."""
    st = {k: v.detach().double() for k, v in state.items()}
    e2 = float((st["embed.weight"] ** 2).sum())
    w1 = (st["fc.0.weight"] ** 2).sum(1)                  # [width] |W1_i|^2
    c1 = st["fc.0.bias"] ** 2                             # [width]
    w2 = R ** 2 * (st["fc.2.weight"] ** 2).sum(0)         # [width] R^2 |W2_:,i|^2
    bias2 = R ** 2 * float((st["fc.2.bias"] ** 2).sum())

    def cost(t: float) -> float:
        s2 = math.exp(2 * t)
        return s2 * e2 + float((2 * torch.sqrt((w1 / s2 + c1) * w2)).sum()) + bias2

    lo, hi = LOG_S_RANGE
    g = (math.sqrt(5) - 1) / 2
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    f1, f2 = cost(x1), cost(x2)
    for _ in range(SEARCH_ITERS):
        if f1 <= f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - g * (hi - lo)
            f1 = cost(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + g * (hi - lo)
            f2 = cost(x2)
    t = (lo + hi) / 2
    raw = e2 + float((w1 + c1).sum()) + float((st["fc.2.weight"] ** 2).sum()) \
        + float((st["fc.2.bias"] ** 2).sum())
    return {"least_norm2": cost(t), "embed_scale": math.exp(t), "raw_norm2": raw}


def least_norm2_at_loss(state: dict[str, Tensor], a: Tensor, b: Tensor, y: Tensor,
                        target: float = TARGET_LOSS) -> dict[str, Any]:
    """{"R", "least_norm2", ...}: the least squared norm at training loss ``target``; R None
    (and least_norm2 None) if some training pair is misclassified."""
    R = logit_scale_for_loss(state, a, b, y, target)
    if R is None:
        return {"R": None, "least_norm2": None, "target_loss": target}
    return {"R": R, "target_loss": target, **least_norm2_at_scale(state, R)}
