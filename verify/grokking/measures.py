"""Measures of one run's logged curves that the grokking claims judge (issue 10, item 4).

* `first_step(steps, values, level)`: the first logged step with value >= level (None if never).
* `rise_steps`: steps test accuracy takes from RISE_FROM (0.1) to RISE_TO (0.9), first crossings:
  how sudden "test loss suddenly drops" is.
* `sharpest_fall`: "L_total drops sharply when the model switches". Over the interval
  [t0, t1] (memorization to generalization) with total fall F = L(t0) - L(t1) > 0, the largest
  fall L(s) - L(s') over logged s < s' <= s + w, w = WINDOW_SHARE (t1 - t0), as a share of F;
  with ``start_from`` (the switch: the first step with test accuracy >= RISE_FROM) only windows
  starting there or later count. A straight line from L(t0) to L(t1) has share exactly
  WINDOW_SHARE; the fall is "sharp" iff the share is >= SHARP_SHARE (half of the whole fall
  inside a tenth of the interval: five times a line). A share above 1 means L_total rose
  somewhere in between.
* `norms_at`: squared norms (total, embedding, the rest) at a logged step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

RISE_FROM, RISE_TO = 0.1, 0.9
WINDOW_SHARE = 0.1      # the window is this share of the interval from memorization to generalization
SHARP_SHARE = 0.5       # "sharp": at least this share of the whole fall inside one window


def first_step(steps: Sequence[int], values: Sequence[float], level: float) -> int | None:
    return next((s for s, v in zip(steps, values) if v >= level), None)


def rise_steps(steps: Sequence[int], test_acc: Sequence[float], *, lo: float = RISE_FROM,
               hi: float = RISE_TO) -> dict[str, Any]:
    """Steps from the first logged test accuracy >= lo to the first >= hi (None if either is
    never reached)."""
    if not 0 <= lo < hi <= 1:
        raise ValueError(f"need 0 <= lo < hi <= 1, got lo={lo!r}, hi={hi!r}")
    t_lo, t_hi = first_step(steps, test_acc, lo), first_step(steps, test_acc, hi)
    return {"from": lo, "to": hi, "step_from": t_lo, "step_to": t_hi,
            "steps": None if t_lo is None or t_hi is None else t_hi - t_lo}


def sharpest_fall(steps: Sequence[int], values: Sequence[float], t0: int, t1: int, *,
                  window_share: float = WINDOW_SHARE, sharp_share: float = SHARP_SHARE,
                  start_from: int | None = None) -> dict[str, Any]:
    """The largest fall of ``values`` within a window of window_share (t1 - t0) steps, as a
    share of the fall from t0 to t1 (module docstring); {"defined": False} if it does not fall."""
    if not 0 < window_share < 1:
        raise ValueError(f"window_share must lie in (0, 1), got {window_share!r}")
    if not 0 < sharp_share <= 1:
        raise ValueError(f"sharp_share must lie in (0, 1], got {sharp_share!r}")
    if t1 <= t0 or t0 not in steps or t1 not in steps:
        raise ValueError(f"t0 < t1 must be logged steps, got t0={t0!r}, t1={t1!r}")
    i0, i1 = list(steps).index(t0), list(steps).index(t1)
    s, v = list(steps[i0: i1 + 1]), list(values[i0: i1 + 1])
    total = v[0] - v[-1]
    window = window_share * (t1 - t0)
    out: dict[str, Any] = {"window_steps": window, "window_share": window_share,
                           "line_share": window_share, "sharp_share": sharp_share,
                           "total_fall": total, "start_from": start_from}
    if total <= 0:
        return {**out, "defined": False, "sharp": False}
    best, at = 0.0, (s[0], s[0])
    j = 0
    for i in range(len(s)):              # for each start, the largest fall to any end in window
        if start_from is not None and s[i] < start_from:
            continue
        j = max(j, i)
        while j + 1 < len(s) and s[j + 1] - s[i] <= window:
            j += 1
        drop = v[i] - min(v[i: j + 1])
        if drop > best:
            best, at = drop, (s[i], s[i + v[i: j + 1].index(min(v[i: j + 1]))])
    share = best / total
    return {**out, "defined": True, "largest_fall": best, "window": list(at), "share": share,
            "share_over_line": share / window_share, "sharp": share >= sharp_share}


def norms_at(log: Sequence[dict[str, float]], step: int | None) -> dict[str, float] | None:
    """{"total", "embed", "rest", per parameter} at a logged step (None if step is None)."""
    if step is None:
        return None
    row = next(r for r in log if r["step"] == step)
    return {"step": step, "total": row["norm2"], "embed": row["norm2_embed"],
            "rest": row["norm2_rest"],
            **{k.split("/", 1)[1]: v for k, v in row.items() if k.startswith("norm2/")}}
