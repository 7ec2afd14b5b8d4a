"""The phase detector of claim ``grokking.phases`` (section 3, Theorem 3.1's three phases).

Definitions, on logged curves (steps s_0 < s_1 < ..., train and test accuracy):

* t_train: the first logged step with train accuracy >= MEMORIZED (0.99);
* memorization step t_mem = t_train if test accuracy there is < LOW_TEST (0.5), else none;
* generalization step t_gen: the first logged step with test accuracy >= GENERALIZED (0.99);
* plateau: the steps from t_mem to t_gen (its length t_gen - t_mem);
* switch: from t_s, the last logged step before t_gen with test accuracy < SWITCH_START (0.1)
  (t_mem if there is none after it), to t_gen.

Kinds: "grokking" (t_mem and t_gen exist, t_gen > t_mem: all three phases), "never_generalized"
(t_mem but no t_gen), "immediate" (test accuracy >= LOW_TEST at t_train, or t_gen <= t_train: no t_mem),
"never_memorized" (no t_train).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

MEMORIZED = 0.99       # train accuracy that counts as memorized
LOW_TEST = 0.5         # test accuracy below this at t_train: the model memorized, not generalized
GENERALIZED = 0.99     # test accuracy that counts as generalized
SWITCH_START = 0.1     # the switch starts when test accuracy leaves this floor for good
SHARP_FACTOR = 2.0     # "drops sharply": log L_total falls >= this many times faster per step
                       # in the switch than on the plateau before it


@dataclass(frozen=True)
class Phases:
    kind: str
    t_train: int | None
    t_mem: int | None
    t_gen: int | None
    t_switch: int | None

    @property
    def plateau(self) -> int | None:
        if self.t_mem is None or self.t_gen is None:
            return None
        return self.t_gen - self.t_mem

    def as_json(self) -> dict[str, object]:
        return {**asdict(self), "plateau": self.plateau}


def _check_curves(steps: Sequence[int], *curves: Sequence[float]) -> None:
    if len(steps) == 0:
        raise ValueError("steps must be non-empty")
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise ValueError("steps must be strictly increasing")
    for curve in curves:
        if len(curve) != len(steps):
            raise ValueError(f"every curve must have len(steps)={len(steps)} entries, "
                             f"got {len(curve)}")
        if any(not (0.0 <= float(v) <= 1.0) for v in curve):
            raise ValueError("accuracies must lie in [0, 1]")


def detect(steps: Sequence[int], train_acc: Sequence[float], test_acc: Sequence[float]) -> Phases:
    """The phases of one run (see the module docstring)."""
    _check_curves(steps, train_acc, test_acc)
    i_train = next((i for i, v in enumerate(train_acc) if v >= MEMORIZED), None)
    i_gen = next((i for i, v in enumerate(test_acc) if v >= GENERALIZED), None)
    if i_train is None:
        return Phases("never_memorized", None, None, None if i_gen is None else steps[i_gen], None)
    t_train = steps[i_train]
    if test_acc[i_train] >= LOW_TEST or (i_gen is not None and i_gen <= i_train):
        return Phases("immediate", t_train, None, None if i_gen is None else steps[i_gen], None)
    if i_gen is None:
        return Phases("never_generalized", t_train, t_train, None, None)
    low = [i for i in range(i_train, i_gen) if test_acc[i] < SWITCH_START]
    i_s = low[-1] if low else i_train
    return Phases("grokking", t_train, t_train, steps[i_gen], steps[i_s])


def norm_rises_in_phase1(steps: Sequence[int], norm2: Sequence[float], phases: Phases
                         ) -> dict[str, object]:
    """Section: "Phase 1: ||W|| increases". Compare ||W||^2 at step 0 with t_mem."""
    if phases.t_mem is None:
        return {"defined": False}
    i = list(steps).index(phases.t_mem)
    return {"defined": True, "norm2_init": norm2[0], "norm2_at_mem": norm2[i],
            "rises": bool(norm2[i] > norm2[0]),
            "max_norm2_before_mem": max(norm2[: i + 1])}


def total_loss_drop(steps: Sequence[int], total_loss: Sequence[float], phases: Phases
                    ) -> dict[str, object]:
    """Section: "L_total drops sharply when the model switches". Rates of decrease of
    ln L_total per step on the plateau [t_mem, t_switch] and in the switch [t_switch, t_gen];
    sharp iff the switch rate is positive and >= SHARP_FACTOR times the plateau rate."""
    if phases.kind != "grokking":
        return {"defined": False}
    assert phases.t_mem is not None and phases.t_gen is not None and phases.t_switch is not None
    idx = {s: i for i, s in enumerate(steps)}
    lm, ls, lg = (math.log(total_loss[idx[t]]) for t in (phases.t_mem, phases.t_switch, phases.t_gen))
    switch_rate = (ls - lg) / (phases.t_gen - phases.t_switch)
    plateau_rate = (lm - ls) / (phases.t_switch - phases.t_mem) if phases.t_switch > phases.t_mem else 0.0
    sharp = switch_rate > 0 and switch_rate >= SHARP_FACTOR * max(plateau_rate, 0.0)
    return {"defined": True, "L_total_at_mem": math.exp(lm), "L_total_at_switch": math.exp(ls),
            "L_total_at_gen": math.exp(lg), "plateau_rate_per_step": plateau_rate,
            "switch_rate_per_step": switch_rate, "sharp": bool(sharp)}
