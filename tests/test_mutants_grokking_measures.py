"""The grokking measures the claims judge (verify/grokking/measures.py, phases.py) and the
comparison of fresh runs with the record (verify/grokking/evidence.py): every threshold at its
edge, every returned number pinned, bad input refused (mutation testing, issue 13)."""

from __future__ import annotations

import copy
import json
import math
import os

import pytest
import torch

from verify.grokking import evidence, measures, phases
from verify.grokking.train import RunConfig

# --- measures.first_step, rise_steps -----------------------------------------------------------


def test_first_step_at_the_level_and_never():
    assert measures.first_step([10, 20, 30], [0.0, 0.5, 0.5], 0.5) == 20
    assert measures.first_step([10, 20, 30], [0.0, 0.49, 0.6], 0.5) == 30
    assert measures.first_step([10, 20], [0.0, 0.4], 0.5) is None


def test_rise_steps_values_and_edges():
    steps = [0, 100, 200, 300]
    out = measures.rise_steps(steps, [0.0, 0.1, 0.5, 0.9])
    assert out == {"from": 0.1, "to": 0.9, "step_from": 100, "step_to": 300, "steps": 200}
    assert measures.RISE_FROM == 0.1 and measures.RISE_TO == 0.9
    assert measures.rise_steps(steps, [0.0, 0.09, 0.5, 0.9])["steps"] == 100
    none = measures.rise_steps(steps, [0.0, 0.05, 0.05, 0.05])
    assert none["step_from"] is None and none["step_to"] is None and none["steps"] is None
    assert measures.rise_steps(steps, [0.0, 0.1, 0.5, 0.8])["steps"] is None
    assert measures.rise_steps(steps, [0.0, 0.1, 0.5, 1.0], lo=0.0, hi=1.0)["steps"] == 300
    assert measures.rise_steps(steps, [0.0, 0.1, 0.5, 1.0], lo=0.5, hi=0.6)["step_to"] == 300
    for lo, hi in ((-0.01, 0.5), (0.5, 0.5), (0.6, 0.5), (0.1, 1.01)):
        with pytest.raises(ValueError, match=r"need 0 <= lo < hi <= 1, got lo="):
            measures.rise_steps(steps, [0.0] * 4, lo=lo, hi=hi)


# --- measures.sharpest_fall --------------------------------------------------------------------

STEPS = list(range(0, 101, 10))


def test_sharpest_fall_of_a_line_pins_every_number():
    values = [100.0 - s for s in STEPS]
    out = measures.sharpest_fall(STEPS, values, 0, 100, window_share=0.2)
    assert out == {"window_steps": 20.0, "window_share": 0.2, "line_share": 0.2,
                   "sharp_share": measures.SHARP_SHARE, "total_fall": 100.0, "start_from": None,
                   "defined": True, "largest_fall": 20.0, "window": [0, 20], "share": 0.2,
                   "share_over_line": 1.0, "sharp": False}
    assert measures.WINDOW_SHARE == 0.1 and measures.SHARP_SHARE == 0.5
    dflt = measures.sharpest_fall(STEPS, values, 0, 100)
    assert dflt["window_steps"] == 10.0 and dflt["largest_fall"] == 10.0
    assert dflt["window"] == [0, 10] and dflt["share"] == pytest.approx(0.1)


def test_sharpest_fall_on_a_sub_interval_and_the_window_end():
    values = [10.0, 10.0, 9.0, 8.0, 4.0, 3.0, 3.0, 3.0, 2.0, 2.0, 2.0]
    out = measures.sharpest_fall(STEPS, values, 10, 90, window_share=0.25)   # window 20 steps
    assert out["total_fall"] == 8.0 and out["window_steps"] == 20.0
    assert out["largest_fall"] == 5.0 and out["window"] == [20, 40]   # 9 -> 4 within 20 steps
    assert out["share"] == 5.0 / 8.0 and out["sharp"]
    assert out["share_over_line"] == pytest.approx(2.5)
    narrow = measures.sharpest_fall(STEPS, values, 10, 90, window_share=0.124)  # 9.92 < 10 steps
    assert narrow["largest_fall"] == 0.0 and narrow["window"] == [10, 10]
    assert narrow["share"] == 0.0 and not narrow["sharp"]
    wide = measures.sharpest_fall(STEPS, values, 10, 90, window_share=0.125)     # exactly 10
    assert wide["largest_fall"] == 4.0 and wide["window"] == [30, 40]
    after = measures.sharpest_fall(STEPS, values[:-1] + [0.0], 10, 90, window_share=0.25)
    assert after == out                               # what comes after t1 is not looked at


def test_sharpest_fall_takes_the_first_largest_and_the_lowest_point():
    values = [5.0, 3.0, 5.0, 3.0, 3.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    out = measures.sharpest_fall(STEPS, values, 0, 100, window_share=0.1)
    assert out["largest_fall"] == 2.0 and out["window"] == [0, 10]
    out = measures.sharpest_fall(STEPS, values, 0, 100, window_share=0.3)
    assert out["largest_fall"] == 4.0 and out["window"] == [20, 50]


def test_sharpest_fall_from_the_switch_at_and_after_it():
    values = [10.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 4.0, 4.0, 4.0]
    at = measures.sharpest_fall(STEPS, values, 0, 100, start_from=70)
    assert at["largest_fall"] == 1.0 and at["window"] == [70, 80] and at["start_from"] == 70
    after = measures.sharpest_fall(STEPS, values, 0, 100, start_from=71)
    assert after["largest_fall"] == 0.0
    anywhere = measures.sharpest_fall(STEPS, values, 0, 100)
    assert anywhere["largest_fall"] == 5.0 and anywhere["window"] == [0, 10]


def test_sharpest_fall_at_the_sharp_bound():
    values = [2.0, 2.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]   # each drop half the fall
    at = measures.sharpest_fall(STEPS, values, 0, 100, sharp_share=0.5)
    assert at["share"] == 0.5 and at["sharp"]
    assert not measures.sharpest_fall(STEPS, values, 0, 100, sharp_share=0.5000001)["sharp"]
    assert measures.sharpest_fall(STEPS, values, 0, 100, sharp_share=1.0)["sharp_share"] == 1.0


def test_sharpest_fall_that_does_not_fall():
    flat = measures.sharpest_fall(STEPS, [1.0] * 11, 0, 100)
    assert flat["defined"] is False and flat["sharp"] is False and flat["total_fall"] == 0.0
    assert "share" not in flat and flat["window_steps"] == 10.0
    tiny = measures.sharpest_fall(STEPS, [1.0] * 10 + [0.999], 0, 100)
    assert tiny["defined"] and tiny["share"] == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"window_share": 0.0}, "window_share must lie in"), ({"window_share": 1.0}, "window_share"),
    ({"sharp_share": 0.0}, "sharp_share must lie in"), ({"sharp_share": 1.01}, "sharp_share"),
    ({"t0": 100, "t1": 100}, "t0 < t1 must be logged steps"), ({"t0": 5}, "t0 < t1"),
    ({"t1": 95}, "t0 < t1"), ({"t0": 100, "t1": 0}, "t0 < t1"),
])
def test_sharpest_fall_refuses_bad_arguments(kwargs, match):
    args = {"t0": 0, "t1": 100, **kwargs}
    t0, t1 = args.pop("t0"), args.pop("t1")
    with pytest.raises(ValueError, match=match):
        measures.sharpest_fall(STEPS, [1.0] * 11, t0, t1, **args)


def test_sharpest_fall_window_share_just_inside_its_range():
    out = measures.sharpest_fall(STEPS, [100.0 - s for s in STEPS], 0, 100, window_share=0.999)
    assert out["window_steps"] == pytest.approx(99.9) and out["largest_fall"] == 90.0


# --- measures.norms_at -------------------------------------------------------------------------

def test_norms_at_a_step_with_per_parameter_norms():
    log = [{"step": 0, "norm2": 3.0, "norm2_embed": 1.0, "norm2_rest": 2.0, "norm2/fc.0": 2.0,
            "x/norm2": 9.0},
           {"step": 5, "norm2": 6.0, "norm2_embed": 2.0, "norm2_rest": 4.0, "norm2/fc.0": 4.0,
            "norm2/a/b": 1.5}]
    assert measures.norms_at(log, 5) == {"step": 5, "total": 6.0, "embed": 2.0, "rest": 4.0,
                                         "fc.0": 4.0, "a/b": 1.5}
    assert measures.norms_at(log, 0)["total"] == 3.0
    assert measures.norms_at(log, None) is None


# --- phases.detect -----------------------------------------------------------------------------

def test_detect_at_every_threshold():
    s = [0, 10, 20, 30]
    g = phases.detect(s, [0.5, 0.99, 1.0, 1.0], [0.0, 0.49, 0.5, 0.99])
    assert (g.kind, g.t_train, g.t_mem, g.t_gen, g.t_switch) == ("grokking", 10, 10, 30, 10)
    assert phases.detect(s, [0.5, 0.989, 1.0, 1.0], [0.0, 0.0, 0.0, 0.99]).t_train == 20
    im = phases.detect(s, [0.5, 0.99, 1.0, 1.0], [0.0, 0.5, 0.5, 0.99])
    assert (im.kind, im.t_train, im.t_mem, im.t_gen, im.t_switch) == ("immediate", 10, None, 30,
                                                                      None)
    ng = phases.detect(s, [0.5, 0.99, 1.0, 1.0], [0.0, 0.0, 0.1, 0.989])
    assert (ng.kind, ng.t_train, ng.t_mem, ng.t_gen, ng.t_switch) == ("never_generalized", 10, 10,
                                                                      None, None)
    nm = phases.detect(s, [0.5, 0.5, 0.98, 0.98], [0.0, 0.0, 0.1, 0.99])
    assert (nm.kind, nm.t_train, nm.t_mem, nm.t_gen, nm.t_switch) == ("never_memorized", None,
                                                                      None, 30, None)
    assert phases.detect(s, [0.5] * 4, [0.0] * 4).t_gen is None
    before = phases.detect(s, [0.5, 0.5, 1.0, 1.0], [0.0, 0.99, 0.2, 0.2])   # test first
    assert (before.kind, before.t_gen) == ("immediate", 10)
    same = phases.detect(s, [0.5, 0.99, 1.0, 1.0], [0.0, 0.99, 1.0, 1.0])
    assert same.kind == "immediate"
    assert (phases.MEMORIZED, phases.LOW_TEST, phases.GENERALIZED, phases.SWITCH_START) == \
        (0.99, 0.5, 0.99, 0.1)


def test_detect_the_switch_is_the_last_step_on_the_floor():
    s = [0, 10, 20, 30, 40, 50]
    ph = phases.detect(s, [0.0, 1.0, 1.0, 1.0, 1.0, 1.0], [0.0, 0.05, 0.2, 0.0999, 0.3, 1.0])
    assert ph.t_switch == 30 and ph.plateau == 40
    ph = phases.detect(s, [0.0, 1.0, 1.0, 1.0, 1.0, 1.0], [0.0, 0.1, 0.2, 0.1, 0.3, 1.0])
    assert ph.t_switch == 10                               # none below 0.1 after t_mem: t_mem
    ph = phases.detect(s, [0.0, 1.0, 1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.2, 0.3, 0.05, 0.99])
    assert ph.t_switch == 40


def test_phases_plateau_and_json():
    ph = phases.Phases("grokking", 10, 10, 50, 30)
    assert ph.plateau == 40
    assert ph.as_json() == {"kind": "grokking", "t_train": 10, "t_mem": 10, "t_gen": 50,
                            "t_switch": 30, "plateau": 40}
    assert phases.Phases("never_generalized", 10, 10, None, None).plateau is None
    assert phases.Phases("immediate", 10, None, 50, None).plateau is None


@pytest.mark.parametrize("steps, train, test, match", [
    ([], [], [], "steps must be non-empty"),
    ([0, 0], [0.1, 0.2], [0.1, 0.2], "strictly increasing"),
    ([0, 2, 1], [0.1, 0.2, 0.3], [0.1, 0.2, 0.3], "strictly increasing"),
    ([0, 1], [0.1], [0.1, 0.2], r"every curve must have len\(steps\)=2 entries, got 1"),
    ([0, 1], [0.1, 0.2], [0.1, 0.2, 0.3], r"len\(steps\)=2 entries, got 3"),
    ([0, 1], [0.1, 1.01], [0.1, 0.2], "accuracies must lie in"),
    ([0, 1], [0.1, 0.2], [-0.01, 0.2], "accuracies must lie in"),
])
def test_detect_refuses_bad_curves(steps, train, test, match):
    with pytest.raises(ValueError, match=match):
        phases.detect(steps, train, test)


def test_detect_accepts_accuracies_at_0_and_1():
    assert phases.detect([0, 1, 2], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]).kind == "grokking"
    assert phases.detect([5], [1.0], [0.0]).kind == "never_generalized"


def test_norm_rises_in_phase1():
    ph = phases.Phases("grokking", 20, 20, 40, 30)
    out = phases.norm_rises_in_phase1([0, 10, 20, 30, 40], [5.0, 9.0, 6.0, 1.0, 1.0], ph)
    assert out == {"defined": True, "norm2_init": 5.0, "norm2_at_mem": 6.0, "rises": True,
                   "max_norm2_before_mem": 9.0}
    out = phases.norm_rises_in_phase1([0, 10, 20], [5.0, 4.0, 5.0], phases.Phases(
        "never_generalized", 20, 20, None, None))
    assert out["rises"] is False and out["max_norm2_before_mem"] == 5.0
    out = phases.norm_rises_in_phase1([0, 10, 20], [5.0, 4.0, 7.0], phases.Phases(
        "never_generalized", 20, 20, None, None))
    assert out["max_norm2_before_mem"] == 7.0
    assert phases.norm_rises_in_phase1([0], [1.0], phases.Phases("immediate", 0, None, 0, None)) \
        == {"defined": False}
    later = phases.norm_rises_in_phase1([0, 10, 20, 30], [5.0, 4.0, 6.0, 8.0], phases.Phases(
        "grokking", 20, 20, 30, 20))
    assert later["max_norm2_before_mem"] == 6.0 and later["norm2_at_mem"] == 6.0


def test_total_loss_drop_rates_and_the_sharp_factor():
    steps = [0, 10, 30, 40]
    ph = phases.Phases("grokking", 10, 10, 40, 30)
    loss = [9.0, 8.0, 8.0 * math.exp(-0.2), 8.0 * math.exp(-0.2 - 0.4)]
    out = phases.total_loss_drop(steps, loss, ph)
    assert out["defined"] is True
    assert out["L_total_at_mem"] == pytest.approx(8.0)
    assert out["L_total_at_switch"] == pytest.approx(8.0 * math.exp(-0.2))
    assert out["L_total_at_gen"] == pytest.approx(8.0 * math.exp(-0.6))
    assert out["plateau_rate_per_step"] == pytest.approx(0.01)
    assert out["switch_rate_per_step"] == pytest.approx(0.04)
    assert out["sharp"] is True
    # switch rate exactly SHARP_FACTOR times the plateau rate: sharp; just below: not
    at = [1.0, 1.0, math.exp(-0.5), math.exp(-1.0)]           # plateau 0.025, switch 0.05
    ph2 = phases.Phases("grokking", 10, 10, 40, 30)
    assert phases.SHARP_FACTOR == 2.0
    assert phases.total_loss_drop(steps, at, ph2)["sharp"] is True
    below = [1.0, 1.0, math.exp(-0.5), math.exp(-0.5 - 0.0499)]
    assert phases.total_loss_drop(steps, below, ph2)["sharp"] is False


def test_total_loss_drop_without_a_plateau_and_when_rising():
    steps = [0, 10, 20]
    ph = phases.Phases("grokking", 10, 10, 20, 10)            # the switch starts at t_mem
    out = phases.total_loss_drop(steps, [1.0, 2.0, 1.0], ph)
    assert out["plateau_rate_per_step"] == 0.0 and out["sharp"] is True
    assert out["switch_rate_per_step"] == pytest.approx(math.log(2) / 10)
    flat = phases.total_loss_drop(steps, [1.0, 2.0, 2.0], ph)
    assert flat["switch_rate_per_step"] == 0.0 and flat["sharp"] is False
    rising_plateau = phases.Phases("grokking", 10, 10, 30, 20)
    out = phases.total_loss_drop([0, 10, 20, 30], [1.0, 1.0, 2.0, 1.9], rising_plateau)
    assert out["plateau_rate_per_step"] < 0 and out["sharp"] is True
    assert phases.total_loss_drop(steps, [1.0, 1.0, 1.0], phases.Phases(
        "never_generalized", 10, 10, None, None)) == {"defined": False}
    # a "grokking" Phases without one of its steps is refused, whichever is missing
    for broken in (phases.Phases("grokking", 10, 10, 20, None),
                   phases.Phases("grokking", 10, None, 20, 10),
                   phases.Phases("grokking", 10, 10, None, 10)):
        with pytest.raises(AssertionError):
            phases.total_loss_drop(steps, [1.0, 1.0, 1.0], broken)


# --- evidence.compare --------------------------------------------------------------------------

def _rows(every=10, end=100, t_mem=20, t_gen=80):
    return [{"step": s, "train_acc": 1.0 if s >= t_mem else 0.0,
             "test_acc": 1.0 if t_gen is not None and s >= t_gen else 0.0,
             "norm2_embed": 100.0, "norm2_rest": 50.0, "norm2": 150.0}
            for s in range(0, end + 1, every)]


def _entry(setting="default", seed=0, rows=None, t_mem=20, t_gen=80, every=10):
    rows = _rows(every=every, t_mem=t_mem, t_gen=t_gen) if rows is None else rows
    return {"setting": setting, "seed": seed, "log_every": every, "step_memorized": t_mem,
            "step_generalized": t_gen,
            "curves": {k: [r[k] for r in rows] for k in ("step", "train_acc", "test_acc",
                                                         "norm2_embed", "norm2_rest")}}


def _one(setting="default", **kw):
    e = _entry(setting, **kw)
    rows = [dict(zip(e["curves"], v)) for v in zip(*e["curves"].values())]
    return {"entries": [e]}, {setting: {0: {"log": rows}}}


def test_compare_reports_agreement():
    rec, fresh = _one()
    rep = evidence.compare(rec, fresh)
    assert rep == {"default/0": {"steps_compared": 11, "acc": 0.0, "norm_rel": 0.0,
                                 "t_mem": [20, 20], "t_gen": [80, 80]}}
    assert evidence.compare(rec, {}) == {}


@pytest.mark.parametrize("key, step, value, ok", [
    ("train_acc", 0, 0.02, True), ("train_acc", 0, 0.0200001, False),
    ("test_acc", 50, 0.02, True), ("test_acc", 50, 0.0200001, False),
    ("norm2_embed", 30, 102.0, True), ("norm2_embed", 30, 102.00001, False),
    ("norm2_rest", 30, 51.0, True), ("norm2_rest", 30, 50.0 * 0.9799, False),
])
def test_compare_tolerances_at_their_edges(key, step, value, ok):
    rec, fresh = _one()
    fresh["default"][0]["log"][step // 10][key] = value
    if ok:
        rep = evidence.compare(rec, fresh)["default/0"]
        worst = "acc" if key.endswith("acc") else "norm_rel"
        assert rep[worst] == pytest.approx(0.02)
    else:
        with pytest.raises(evidence.RecordMismatch, match="fresh default seed 0 disagrees"):
            evidence.compare(rec, fresh)
    assert (evidence.ACC_TOL, evidence.NORM_REL_TOL, evidence.STEP_TOL_LOGS) == (0.02, 0.02, 2)


def test_compare_norms_are_relative_to_the_record():
    rec, fresh = _one()
    for r in rec["entries"][0]["curves"]["norm2_rest"], :
        r[3] = -50.0                                   # |ref| in the denominator
    fresh["default"][0]["log"][3]["norm2_rest"] = -51.0
    assert evidence.compare(rec, fresh)["default/0"]["norm_rel"] == pytest.approx(0.02)


def test_compare_skips_steps_the_fresh_run_did_not_log():
    rec, fresh = _one()
    log = fresh["default"][0]["log"]
    fresh["default"][0]["log"] = [r for r in log if r["step"] != 50]
    rec["entries"][0]["curves"]["test_acc"][5] = 0.9          # only at the missing step
    assert evidence.compare(rec, fresh)["default/0"]["steps_compared"] == 10


def test_compare_missing_entry_and_too_few_common_steps():
    rec, fresh = _one()
    with pytest.raises(evidence.RecordMismatch, match="record has no entry for default seed 1"):
        evidence.compare(rec, {"default": {1: fresh["default"][0]}})
    with pytest.raises(evidence.RecordMismatch, match="record has no entry for other seed 0"):
        evidence.compare(rec, {"other": {0: fresh["default"][0]}})
    two = {"default": {0: {"log": fresh["default"][0]["log"][:2]}}}
    rec2 = copy.deepcopy(rec)
    rec2["entries"][0]["step_generalized"] = None
    rec2["entries"][0]["step_memorized"] = None
    assert evidence.compare(rec2, two)["default/0"]["steps_compared"] == 2
    one = {"default": {0: {"log": fresh["default"][0]["log"][:1]}}}
    with pytest.raises(evidence.RecordMismatch, match="default seed 0: fewer than 2 common"):
        evidence.compare(rec2, one)


def test_compare_goes_on_after_a_step_the_fresh_run_did_not_log():
    rec, fresh = _one()
    fresh["default"][0]["log"] = [r for r in fresh["default"][0]["log"] if r["step"] != 50]
    rec["entries"][0]["curves"]["norm2_embed"][7] = 101.0     # step 70, after the gap
    assert evidence.compare(rec, fresh)["default/0"]["norm_rel"] == pytest.approx(1 / 101)


def test_compare_generalization_step_when_the_fresh_run_ends_exactly_there():
    rows = _rows(end=110)                 # fresh generalizes at 80; its last logged step is 110
    rec, fresh = _one(rows=rows)
    rec["entries"][0]["step_generalized"] = 110          # 30 steps off, beyond 2 logs
    with pytest.raises(evidence.RecordMismatch, match="disagrees"):
        evidence.compare(rec, fresh)
    rec["entries"][0]["step_generalized"] = 111          # past the fresh run: not compared
    assert evidence.compare(rec, fresh)["default/0"]["t_gen"] == [80, 111]


@pytest.mark.parametrize("t_mem, ok", [(40, True), (41, False), (0, True), (None, False)])
def test_compare_memorization_step_within_two_logs(t_mem, ok):
    rec, fresh = _one()
    rec["entries"][0]["step_memorized"] = t_mem
    if ok:
        assert evidence.compare(rec, fresh)["default/0"]["t_mem"] == [20, t_mem]
    else:
        with pytest.raises(evidence.RecordMismatch):
            evidence.compare(rec, fresh)


@pytest.mark.parametrize("setting, t_gen, ok", [
    ("default", 100, True), ("default", 101, True),   # 101: past the fresh run's last step
    ("default", 60, True), ("default", 59, False), ("default", None, False),
    ("demo2_frac0.5", 59, True), ("demo2_frac0.5", None, True)])
def test_compare_generalization_step_only_for_the_default_run(setting, t_gen, ok):
    rec, fresh = _one(setting)
    rec["entries"][0]["step_generalized"] = t_gen
    if ok:
        rep = evidence.compare(rec, fresh)[f"{setting}/0"]
        assert rep["t_gen"] == [80, t_gen]
    else:
        with pytest.raises(evidence.RecordMismatch):
            evidence.compare(rec, fresh)


def test_compare_when_the_fresh_run_never_memorizes_or_generalizes():
    rows = _rows(t_mem=1000, t_gen=None)
    rec, fresh = _one(rows=rows, t_mem=None, t_gen=None)
    assert evidence.compare(rec, fresh)["default/0"]["t_mem"] == [None, None]
    rec["entries"][0]["step_memorized"] = 20
    with pytest.raises(evidence.RecordMismatch):
        evidence.compare(rec, fresh)
    rows = _rows(t_gen=None)
    rec, fresh = _one(rows=rows, t_gen=None)
    assert evidence.compare(rec, fresh)["default/0"]["t_gen"] == [None, None]
    rec["entries"][0]["step_generalized"] = 80
    with pytest.raises(evidence.RecordMismatch):
        evidence.compare(rec, fresh)


# --- evidence.norm_rise ------------------------------------------------------------------------

def test_norm_rise_of_a_fresh_log():
    rows = _rows()
    for r in rows:
        r["norm2"], r["norm2_embed"], r["norm2_rest"] = (
            (100.0, 70.0, 30.0) if r["step"] == 0 else (90.0, 50.0, 40.0))
    out = evidence.norm_rise(rows)
    assert out == {"defined": True, "t_mem": 20, "init": 100.0, "at_mem": 90.0, "rises": False,
                   "embed": [70.0, 50.0], "rest": [30.0, 40.0]}
    rows[2]["norm2"] = 100.0
    assert evidence.norm_rise(rows)["rises"] is False
    rows[2]["norm2"] = 100.5
    assert evidence.norm_rise(rows)["rises"] is True


def test_norm_rise_immediate_and_never_memorized():
    rows = _rows(t_mem=20, t_gen=20)                  # generalizes at once: t_train is used
    assert evidence.norm_rise(rows)["t_mem"] == 20
    assert evidence.norm_rise(_rows(t_mem=1000, t_gen=None)) == {"defined": False}
    late = _rows(t_mem=30, t_gen=None)
    late[0]["step"] = -5                               # the first logged step is the initial one
    assert evidence.norm_rise(late)["t_mem"] == 30


# --- evidence: training the fresh subset (tiny settings) ---------------------------------------

TINY = RunConfig(p=7, d=8, frac=0.6, lr=0.05, wd=0.0, log_every=5)


@pytest.fixture(scope="module")
def memorized():
    return evidence.train_seeds(TINY, [0, 1], 60, until="memorized")


def test_train_seeds_until_memorized(memorized):
    for seed, run in memorized.items():
        log = run["log"]
        assert [r["step"] for r in log] == list(range(0, 5 * len(log), 5))
        assert log[-1]["train_acc"] >= 1.0 and all(r["train_acc"] < 1.0 for r in log[:-1])
        assert all(r["seconds"] == 0.0 for r in log)
        assert set(run["memorizer"]) == set(run["final"])
        for k in run["final"]:
            assert torch.equal(run["memorizer"][k], run["final"][k])
    assert memorized[0]["log"][-1]["step"] != memorized[1]["log"][-1]["step"]   # one kept on


def test_train_seeds_to_the_cap_and_until_generalized():
    out = evidence.train_seeds(TINY, [3], 7)
    log = out[3]["log"]
    assert [r["step"] for r in log] == [0, 5, 7] and out[3]["memorizer"] is None
    assert out[3]["final"] is not None and set(out[3]) == {"log", "memorizer", "final"}
    with pytest.raises(ValueError, match="until must be 'generalized' or 'memorized', got 'x'"):
        evidence.train_seeds(TINY, [0], 5, until="x")


def test_train_seeds_keeps_going_past_memorization_until_generalized(memorized):
    t = max(run["log"][-1]["step"] for run in memorized.values())
    out = evidence.train_seeds(TINY, [0, 1], t + 10)
    for seed, run in out.items():
        steps = [r["step"] for r in run["log"]]
        assert steps[-1] == t + 10 or run["log"][-1]["test_acc"] >= phases.GENERALIZED
        assert run["memorizer"] is not None
        first = next(r for r in run["log"] if r["train_acc"] >= 1.0)
        assert first["step"] == memorized[seed]["log"][-1]["step"]
        for k in run["memorizer"]:
            assert torch.equal(run["memorizer"][k], memorized[seed]["memorizer"][k])


def test_fresh_plan_caps_demo2_and_not_the_default():
    settings = {"default": {**TINY.__dict__, "steps": 40000},
                "demo2_frac0.5": {**TINY.__dict__, "steps": 40000},
                "short": {**TINY.__dict__, "steps": 500}}
    plan = evidence.fresh_plan({"settings": settings})
    assert {k: v[1] for k, v in plan.items()} == {"default": 40000, "demo2_frac0.5": 600,
                                                   "short": 500}
    assert plan["default"][0] == RunConfig(**settings["default"])
    assert evidence.FRESH_DEMO2_STEPS == 600 and evidence.FRESH_SEEDS == (0, 1)
    at = evidence.fresh_plan({"settings": {"x": {**TINY.__dict__, "steps": 600}}})
    assert at["x"][1] == 600


def test_fresh_runs_train_the_record_s_settings_once(tmp_path):
    path = tmp_path / "rec.json"
    settings = {"default": {**TINY.__dict__, "steps": 6}, "demo2": {**TINY.__dict__, "steps": 4}}
    path.write_text(json.dumps({"schema": "circuit-proofs/grok-seeds/1", "settings": settings,
                                "entries": []}))
    out = evidence.fresh_runs(path)
    assert set(out) == {"default", "demo2"} and set(out["default"]) == {0, 1}
    assert [r["step"] for r in out["default"][0]["log"]] == [0, 5, 6]
    assert [r["step"] for r in out["demo2"][1]["log"]] == [0, 4]
    assert evidence.fresh_runs(str(path)) is out
    # a rewritten record (a new modification time) is trained afresh
    settings["default"]["steps"] = 3
    path.write_text(json.dumps({"schema": "circuit-proofs/grok-seeds/1", "settings": settings,
                                "entries": []}))
    st = path.stat()
    os.utime(path, (st.st_atime, st.st_mtime + 10))
    again = evidence.fresh_runs(path)
    assert [r["step"] for r in again["default"][0]["log"]] == [0, 3]
    assert evidence.load_record(path)["settings"] == settings


def test_the_record_path_is_the_project_s_record():
    from pathlib import Path

    from verify.grokking import record
    root = Path(__file__).resolve().parents[1]
    assert evidence.RECORD_PATH == root / "proofs" / "data" / "grokking-seeds.json"
    assert evidence.load_record()["schema"] == record.SCHEMA


def test_train_seeds_stops_at_exactly_the_generalization_threshold(monkeypatch):
    """A seed whose test accuracy equals phases.GENERALIZED is done; one just below goes on."""
    def rows(run, step, seconds):
        acc = {0: phases.GENERALIZED if step >= 5 else 0.0,
               1: math.nextafter(phases.GENERALIZED, 0.0)}
        return [{"step": step, "train_acc": 0.0, "test_acc": acc[s]} for s in run.seeds]
    monkeypatch.setattr(evidence.sweep, "log_rows", rows)
    out = evidence.train_seeds(TINY, [0, 1], 15)
    assert [r["step"] for r in out[0]["log"]] == [0, 5]
    assert [r["step"] for r in out[1]["log"]] == [0, 5, 10, 15]
