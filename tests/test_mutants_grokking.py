"""The grokking claims' checks (verify/claims/grokking.py) on synthetic records and runs: each
condition of each check made to fail alone, each bound at its edge, and the evidence a verdict
reads pinned (mutation testing, issue 13). No training: records, runs and points are small
hand-made dicts; the adder tables use three small moduli."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from verify.claims import grokking as G
from verify.grokking import evidence, growth, measures
from verify.registry import derive_verdict

SMALL_PS = (11, 23, 47)
EVERY = 50


# --- synthetic seeds ---------------------------------------------------------------------------

def log_rows(*, t_mem: int = 100, t_gen: int | None = 1000, end: int = 1000,
             init: tuple[float, float] = (80.0, 20.0), mem: tuple[float, float] = (90.0, 30.0)
             ) -> list[dict[str, float]]:
    """Logged rows: train accuracy 1 from t_mem, test accuracy 1 from t_gen (if any); squared
    norms (embedding, rest) ``init`` at step 0 and ``mem`` after."""
    rows = []
    for s in range(0, end + 1, EVERY):
        embed, rest = init if s == 0 else mem
        rows.append({"step": s, "train_acc": 1.0 if s >= t_mem else 0.5,
                     "test_acc": 1.0 if t_gen is not None and s >= t_gen else 0.01,
                     "norm2": embed + rest, "norm2_embed": embed, "norm2_rest": rest})
    return rows


def norms(embed: float, rest: float) -> dict[str, float]:
    return {"total": embed + rest, "embed": embed, "rest": rest}


def entry(setting: str, seed: int, *, kind: str = "grokking", t_mem: int | None = 100,
          t_gen: int | None = 1000, init: tuple[float, float] = (80.0, 20.0),
          mem: tuple[float, float] | None = (90.0, 30.0), sharp: bool = True, rise: int | None = 50,
          circuit: int | None = 150, acc01: int | None = 300, least: tuple[float, float] | None =
          (100.0, 50.0)) -> dict[str, Any]:
    """One record entry; by default a seed with all three phases as the section describes."""
    end = t_gen if t_gen is not None else 2000
    rows = log_rows(t_mem=t_mem or 0, t_gen=t_gen, end=end, init=init, mem=mem or init)
    out = {
        "setting": setting, "seed": seed, "kind": kind, "step_memorized": t_mem,
        "step_generalized": t_gen, "stopped": "generalized" if t_gen else "cap",
        "steps_run": end, "log_every": EVERY,
        "rise_0.1_to_0.9": {"steps": rise},
        "L_total_sharpest_fall": {"sharp": sharp, "share": 0.7 if sharp else 0.2},
        "norms_init": norms(*init), "norms_memorized": None if mem is None else norms(*mem),
        "step_circuit_formed": circuit, "test_acc_first_reaches": {"0.1": acc01},
        "least_norm2_memorizer": None if least is None else least[0],
        "least_norm2_generalizer": None if least is None else least[1],
        "curves": {k: [r[k] for r in rows] for k in ("step", "train_acc", "test_acc",
                                                     "norm2_embed", "norm2_rest")},
    }
    if t_gen is None:          # record.entry writes the fall only for seeds that generalized
        del out["L_total_sharpest_fall"]
    return out


FALLS = {"init": (80.0, 20.0), "mem": (60.0, 30.0)}   # total falls, embedding falls, rest rises


def measured(**overrides: dict[str, Any]) -> dict[str, Any]:
    """The project's measured picture: the default run's norm falls in phase 1, Demo 2 at 0.5
    grokks, Demo 2 at 0.3 memorizes and never generalizes. ``overrides``: per-setting options."""
    opts: dict[str, dict[str, Any]] = {
        "default": dict(FALLS), "demo2_frac0.5": {},
        "demo2_frac0.3": {"kind": "never_generalized", "t_gen": None, "rise": None,
                          "acc01": None, "least": None}}
    for k, v in overrides.items():
        opts[k] = {**opts[k], **v}
    return {"entries": [entry(n, s, **o) for n, o in opts.items() for s in (0, 1)],
            "settings": {}}


def section_picture() -> dict[str, Any]:
    """Every seed as the section says: the norm rises everywhere."""
    return measured(default={"init": (80.0, 20.0), "mem": (90.0, 30.0)})


def fresh_from(rec: dict[str, Any], settings=None) -> dict[str, Any]:
    """Fresh runs equal to the record's curves (so `evidence.compare` accepts them)."""
    out: dict[str, Any] = {}
    for e in rec["entries"]:
        if settings is not None and e["setting"] not in settings:
            continue
        c = e["curves"]
        rows = [{"step": s, "train_acc": tr, "test_acc": te, "norm2": em + r, "norm2_embed": em,
                 "norm2_rest": r}
                for s, tr, te, em, r in zip(c["step"], c["train_acc"], c["test_acc"],
                                            c["norm2_embed"], c["norm2_rest"])]
        out.setdefault(e["setting"], {})[e["seed"]] = {"log": rows, "memorizer": None,
                                                       "final": None}
    return out


def with_entry(rec: dict[str, Any], setting: str, seed: int, **changes: Any) -> dict[str, Any]:
    rec = copy.deepcopy(rec)
    for e in rec["entries"]:
        if (e["setting"], e["seed"]) == (setting, seed):
            for k, v in changes.items():
                e[k] = v
    return rec


# --- grokking.phases, literal ------------------------------------------------------------------

def test_phases_literal_on_the_measured_picture_and_the_section_s():
    rec = measured()
    lit, res = G.check_phases_literal(rec, {}), G.check_phases_restated(rec, {})
    assert (lit.holds, res.holds) == (False, True)
    assert lit.evidence["seeds_agreeing"] == {"memorized_first": [6, 6],
                                              "norm_rises_phase1": [4, 6],
                                              "L_total_sharp": [4, 4], "sudden": [4, 4]}
    assert lit.evidence["sudden_share"] == G.SUDDEN_SHARE == 0.1
    assert lit.evidence["sharp_share"] == measures.SHARP_SHARE
    assert lit.evidence["window_share"] == measures.WINDOW_SHARE
    good = G.check_phases_literal(section_picture(), {})
    assert good.holds
    assert derive_verdict(lit.holds, res.holds) != derive_verdict(good.holds, res.holds)


def test_phases_literal_per_seed_rows():
    rec = measured()
    rows = G.check_phases_literal(rec, {}).evidence["per_seed"]
    assert len(rows) == 6
    assert rows[0] == {"setting": "default", "seed": 0, "kind": "grokking", "t_mem": 100,
                       "t_gen": 1000, "stopped": "generalized", "steps_run": 1000,
                       "rise_0.1_to_0.9": 50, "L_total_fall_share": 0.7, "norm2_init": 100.0,
                       "norm2_mem": 90.0, "circuit_formed": 150, "test_acc_0.1": 300}
    last = rows[-1]
    assert (last["setting"], last["seed"], last["kind"], last["t_gen"], last["stopped"],
            last["L_total_fall_share"]) == ("demo2_frac0.3", 1, "never_generalized", None, "cap",
                                            None)
    # a seed that never memorized: no norms at memorization, no fall
    rec2 = with_entry(rec, "demo2_frac0.3", 1, norms_memorized=None, L_total_sharpest_fall=None)
    row = G.check_phases_literal(rec2, {}).evidence["per_seed"][-1]
    assert row["norm2_mem"] is None and row["L_total_fall_share"] is None
    del rec2["entries"][-1]["step_circuit_formed"]
    assert G.check_phases_literal(rec2, {}).evidence["per_seed"][-1]["circuit_formed"] is None


@pytest.mark.parametrize("change, key", [
    ({"kind": "immediate"}, "memorized_first"),
    ({"kind": "never_memorized"}, "memorized_first"),
    ({"norms_memorized": None}, "norm_rises_phase1"),
    ({"norms_memorized": norms(80.0, 20.0)}, "norm_rises_phase1"),       # equal: no rise
    ({"L_total_sharpest_fall": {"sharp": False, "share": 0.2}}, "L_total_sharp"),
    ({"rise_0.1_to_0.9": {"steps": None}}, "sudden"),
    ({"rise_0.1_to_0.9": {"steps": 91}}, "sudden"),                       # 0.1 * 900 = 90
])
def test_phases_literal_each_condition(change, key):
    rec = with_entry(section_picture(), "demo2_frac0.5", 1, **change)
    found = G.check_phases_literal(rec, {})
    assert not found.holds
    got = found.evidence["seeds_agreeing"][key]
    assert got[0] == got[1] - 1


def test_phases_literal_counts_never_generalized_as_memorized_and_sudden_at_the_bound():
    rec = section_picture()
    assert G.check_phases_literal(rec, {}).evidence["seeds_agreeing"]["memorized_first"] == [6, 6]
    at = with_entry(rec, "demo2_frac0.5", 0, **{"rise_0.1_to_0.9": {"steps": 90}})
    assert G.check_phases_literal(at, {}).holds                          # 90 <= 0.1 * 900
    assert not G.check_phases_literal(at, {}, sudden_share=0.0999).holds
    assert G.check_phases_literal(at, {}, sudden_share=0.0999).evidence["sudden_share"] == 0.0999


def test_phases_literal_needs_entries_and_refuses_a_disagreeing_record():
    assert not G.check_phases_literal({"entries": [], "settings": {}}, {}).holds
    rec = section_picture()
    fresh = fresh_from(rec, ("default",))
    assert G.check_phases_literal(rec, fresh).holds
    fresh["default"][0]["log"][3]["test_acc"] += 0.5
    with pytest.raises(evidence.RecordMismatch):
        G.check_phases_literal(rec, fresh)
    with pytest.raises(evidence.RecordMismatch):
        G.check_phases_restated(rec, fresh)


# --- grokking.phases, restated -----------------------------------------------------------------

def test_phases_restated_evidence_on_the_measured_picture_with_fresh_runs():
    rec = measured()
    found = G.check_phases_restated(rec, fresh_from(rec))
    assert found.holds
    assert found.evidence["seeds_agreeing"] == {
        "memorized_first": [6, 6], "default_grokked": [2, 2], "demo2_frac0.5_grokked": [2, 2],
        "demo2_norm_rises": [4, 4], "demo2_norm_rises_fresh": [4, 4],
        "default_norm_falls_embed_falls_rest_rises": [2, 2], "default_same_fresh": [2, 2],
        "circuit_before_test_0.1": [4, 4]}
    assert len(found.evidence["per_seed"]) == 6
    assert found.evidence["per_seed"][2]["setting"] == "demo2_frac0.5"


@pytest.mark.parametrize("setting, change, key", [
    ("demo2_frac0.3", {"kind": "immediate"}, "memorized_first"),
    ("default", {"kind": "never_generalized"}, "default_grokked"),
    ("demo2_frac0.5", {"kind": "never_generalized"}, "demo2_frac0.5_grokked"),
    ("demo2_frac0.3", {"norms_memorized": norms(80.0, 20.0)}, "demo2_norm_rises"),
    ("demo2_frac0.5", {"norms_memorized": None}, "demo2_norm_rises"),
    ("default", {"norms_memorized": None}, "default_norm_falls_embed_falls_rest_rises"),
    ("default", {"norms_memorized": norms(60.0, 40.0)},                   # total equal
     "default_norm_falls_embed_falls_rest_rises"),
    ("default", {"norms_memorized": {"total": 99.0, "embed": 80.0, "rest": 25.0}},  # embed equal
     "default_norm_falls_embed_falls_rest_rises"),
    ("default", {"norms_memorized": {"total": 90.0, "embed": 70.0, "rest": 20.0}},  # rest equal
     "default_norm_falls_embed_falls_rest_rises"),
    ("default", {"step_circuit_formed": None}, "circuit_before_test_0.1"),
    ("default", {"step_circuit_formed": 300}, "circuit_before_test_0.1"),   # equal: not before
    ("demo2_frac0.5", {"test_acc_first_reaches": {"0.1": None}}, "circuit_before_test_0.1"),
])
def test_phases_restated_each_condition(setting, change, key):
    rec = with_entry(measured(), setting, 1, **change)
    found = G.check_phases_restated(rec, {})
    assert not found.holds
    got = found.evidence["seeds_agreeing"][key]
    assert got[0] == got[1] - 1
    assert G.check_phases_restated(measured(), {}).holds


def test_phases_restated_circuit_just_before_the_rise_and_without_the_key():
    rec = with_entry(measured(), "default", 1, step_circuit_formed=299)
    assert G.check_phases_restated(rec, {}).holds
    del rec["entries"][1]["step_circuit_formed"]
    assert not G.check_phases_restated(rec, {}).holds


@pytest.mark.parametrize("drop", ["default", "demo2"])
def test_phases_restated_needs_the_default_and_demo2_settings(drop):
    rec = measured()
    keep = (lambda e: e["setting"] != "default") if drop == "default" else \
        (lambda e: e["setting"] == "default")
    rec["entries"] = [e for e in rec["entries"] if keep(e)]
    assert not G.check_phases_restated(rec, {}).holds
    assert not G.check_phases_restated({"entries": [], "settings": {}}, {}).holds


def test_phases_restated_demo2_0_3_alone_is_demo2():
    rec = measured()
    rec["entries"] = [e for e in rec["entries"] if e["setting"] != "demo2_frac0.5"]
    found = G.check_phases_restated(rec, {})
    assert found.evidence["seeds_agreeing"]["demo2_norm_rises"] == [2, 2]
    assert found.evidence["seeds_agreeing"]["demo2_frac0.5_grokked"] == [0, 0]
    assert found.holds


def _fresh_with(setting: str, seed: int, init, mem) -> tuple[dict, dict]:
    """The measured record and fresh runs whose one run has other phase-1 norms (the record's
    entry is changed alike, so the comparison accepts it)."""
    rec = measured()
    for e in rec["entries"]:
        if (e["setting"], e["seed"]) == (setting, seed):
            rows = log_rows(t_gen=e["step_generalized"], end=e["steps_run"], init=init, mem=mem)
            e["curves"]["norm2_embed"] = [r["norm2_embed"] for r in rows]
            e["curves"]["norm2_rest"] = [r["norm2_rest"] for r in rows]
    return rec, fresh_from(rec)


@pytest.mark.parametrize("setting, init, mem, key", [
    ("demo2_frac0.5", (80.0, 20.0), (70.0, 30.0), "demo2_norm_rises_fresh"),   # total equal
    ("demo2_frac0.3", (80.0, 20.0), (60.0, 30.0), "demo2_norm_rises_fresh"),
    ("default", (80.0, 20.0), (90.0, 30.0), "default_same_fresh"),    # rises
    ("default", (80.0, 20.0), (80.0, 10.0), "default_same_fresh"),    # embedding equal
    ("default", (80.0, 20.0), (50.0, 20.0), "default_same_fresh"),    # rest equal
])
def test_phases_restated_fresh_runs_each_condition(setting, init, mem, key):
    rec, fresh = _fresh_with(setting, 1, init, mem)
    found = G.check_phases_restated(rec, fresh)
    assert not found.holds
    assert found.evidence["seeds_agreeing"][key] == [3 if key.startswith("demo2") else 1,
                                                     4 if key.startswith("demo2") else 2]


# --- grokking.memorization_norm -----------------------------------------------------------------

def power_points(exps: dict[int, float], ns=(50, 100, 200, 400)) -> dict[int, list]:
    return {seed: [(n, 3.0 * n ** x) for n in ns] for seed, x in exps.items()}


def test_memorization_literal_at_the_tolerance_and_just_inside():
    pts = power_points({0: 1.0, 1: 1.1})
    x = growth.exponent(pts[1])
    assert G.check_memorization_literal(pts, tol=abs(x - 1)).holds
    below = G.check_memorization_literal(pts, tol=abs(x - 1) * (1 - 1e-9))
    assert not below.holds and below.evidence["seeds_agreeing"] == [1, 2]
    low = power_points({0: 1.0, 1: 0.9})
    y = growth.exponent(low[1])
    assert G.check_memorization_literal(low, tol=abs(y - 1)).holds
    assert not G.check_memorization_literal(low, tol=abs(y - 1) * (1 - 1e-9)).holds


def test_memorization_literal_evidence_and_empty_points():
    pts = power_points({0: 1.0, 3: 1.02})
    found = G.check_memorization_literal(pts)
    assert found.holds
    assert found.evidence["exponents"] == {0: pytest.approx(1.0, abs=1e-12),
                                           3: pytest.approx(1.02, abs=1e-12)}
    assert found.evidence["seeds_agreeing"] == [2, 2]
    assert found.evidence["tol"] == growth.LINEAR_EXPONENT_TOL == 0.1
    assert found.evidence["points"] is pts
    assert found.evidence["setting"] == growth.MEMORIZER_SETTING
    assert not G.check_memorization_literal({}).holds
    sub = G.check_memorization_literal(power_points({0: 0.5, 1: 0.6}))
    assert not sub.holds and sub.evidence["seeds_agreeing"] == [0, 2]


@pytest.fixture(scope="module")
def lookup_ok() -> dict[str, Any]:
    return growth.check_lookup(ns=(5, 10))


def test_memorization_restated_band_edges(monkeypatch, lookup_ok):
    monkeypatch.setattr(growth, "check_lookup", lambda builder: lookup_ok)
    pts = power_points({0: 0.5, 1: 0.3, 2: 0.8})
    lo, hi = growth.exponent(pts[1]), growth.exponent(pts[2])
    assert G.check_memorization_restated(points=pts, band=(lo, hi)).holds
    assert not G.check_memorization_restated(points=pts, band=(lo * (1 + 1e-9), hi)).holds
    out = G.check_memorization_restated(points=pts, band=(lo, hi * (1 - 1e-9)))
    assert not out.holds and out.evidence["seeds_agreeing"] == [2, 3]
    assert out.evidence["band"] == [lo, hi * (1 - 1e-9)]
    assert out.evidence["lookup"] is lookup_ok
    assert out.evidence["trained_exponents"][0] == pytest.approx(0.5, abs=1e-12)
    assert not G.check_memorization_restated(points={}).holds
    assert G.check_memorization_restated(points=pts).holds       # the default band (0.2, 0.9)
    assert growth.TRAINED_EXPONENT_BAND == (0.2, 0.9)


def test_memorization_restated_needs_the_lookup_and_flips_the_verdict(monkeypatch, lookup_ok):
    pts = power_points({0: 0.5, 1: 0.6})
    calls = []

    def fake(builder):
        calls.append(builder)
        return {**lookup_ok, "ok": False}

    monkeypatch.setattr(growth, "check_lookup", fake)
    sentinel = object()
    assert not G.check_memorization_restated(sentinel, points=pts).holds
    assert calls == [sentinel]
    lit = G.check_memorization_literal(pts)
    monkeypatch.setattr(growth, "check_lookup", lambda builder: lookup_ok)
    res = G.check_memorization_restated(points=pts)
    assert (lit.holds, res.holds) == (False, True)
    lin = G.check_memorization_literal(power_points({0: 1.0, 1: 1.0}))
    assert derive_verdict(lit.holds, res.holds) != derive_verdict(lin.holds, res.holds)


# --- grokking.generalization_norm ----------------------------------------------------------------

@pytest.fixture(scope="module")
def small_table() -> dict[str, Any]:
    return growth.adder_table(ps=SMALL_PS)


def test_generalization_literal_at_the_tolerance(monkeypatch, small_table):
    seen = []
    monkeypatch.setattr(growth, "adder_table", lambda build: seen.append(build) or small_table)
    x = small_table["few"]["exponent_rescaled_to_loss"]
    found = G.check_generalization_literal("b", tol=x)
    assert found.holds and seen == ["b"]
    assert found.evidence == {"exponent_in_p": x, "tol": x, "table": small_table}
    assert not G.check_generalization_literal(tol=x * (1 - 1e-9)).holds
    found = G.check_generalization_literal()
    assert not found.holds and found.evidence["tol"] == growth.CONSTANT_EXPONENT_TOL == 0.1


def _pairs_rec(mem: float, gen: float) -> dict[str, Any]:
    rec = measured()
    for e in rec["entries"]:
        if e["least_norm2_generalizer"] is not None:
            e["least_norm2_memorizer"], e["least_norm2_generalizer"] = mem, gen
    return rec


def test_generalization_restated_band_edges_and_evidence(monkeypatch, small_table):
    monkeypatch.setattr(growth, "adder_table", lambda build: small_table)
    few = small_table["few"]["exponent_rescaled_to_loss"]
    alle = small_table["all"]["exponent_rescaled_to_loss"]
    lo, hi = min(few, alle), max(few, alle)
    rec = measured()
    found = G.check_generalization_restated(rec=rec, fresh={}, band=(lo, hi))
    assert found.holds
    ev = found.evidence
    assert ev["lemma3_ok"] is True and ev["exponents"] == [few, alle] and ev["band"] == [lo, hi]
    assert ev["seeds_agreeing"] == [4, 4] and len(ev["mem_vs_gen"]) == 4
    assert ev["table"] is small_table
    assert not G.check_generalization_restated(rec=rec, fresh={},
                                               band=(lo * (1 + 1e-9), hi)).holds
    assert not G.check_generalization_restated(rec=rec, fresh={},
                                               band=(lo, hi * (1 - 1e-9))).holds
    dflt = G.check_generalization_restated(rec=rec, fresh={})     # few: 1.09 below 1.1
    assert not dflt.holds and dflt.evidence["band"] == [1.1, 1.3]
    assert growth.ADDER_EXPONENT_BAND == (1.1, 1.3)


def test_generalization_restated_each_condition(monkeypatch, small_table):
    monkeypatch.setattr(growth, "adder_table", lambda build: small_table)
    band = (0.0, 5.0)
    assert G.check_generalization_restated(rec=_pairs_rec(100.0, 99.0), fresh={}, band=band).holds
    equal = G.check_generalization_restated(rec=_pairs_rec(100.0, 100.0), fresh={}, band=band)
    assert not equal.holds and equal.evidence["seeds_agreeing"] == [0, 4]
    one = with_entry(measured(), "default", 0, least_norm2_generalizer=120.0)
    found = G.check_generalization_restated(rec=one, fresh={}, band=band)
    assert not found.holds and found.evidence["seeds_agreeing"] == [3, 4]
    none = measured()
    for e in none["entries"]:
        e["least_norm2_generalizer"] = None
    found = G.check_generalization_restated(rec=none, fresh={}, band=band)
    assert not found.holds and found.evidence["seeds_agreeing"] == [0, 0]
    monkeypatch.setattr(growth, "adder_table", lambda build: {**small_table, "lemma3_ok": False})
    found = G.check_generalization_restated(rec=measured(), fresh={}, band=band)
    assert not found.holds and found.evidence["lemma3_ok"] is False


def test_generalization_restated_refuses_a_disagreeing_record(monkeypatch, small_table):
    monkeypatch.setattr(growth, "adder_table", lambda build: small_table)
    rec = measured()
    fresh = fresh_from(rec, ("demo2_frac0.3",))
    fresh["demo2_frac0.3"][1]["log"][2]["norm2_rest"] *= 1.5
    with pytest.raises(evidence.RecordMismatch):
        G.check_generalization_restated(rec=rec, fresh=fresh, band=(0.0, 5.0))


def test_the_record_is_loaded_only_when_none_is_given(monkeypatch):
    rec = measured()
    monkeypatch.setattr(evidence, "load_record", lambda: rec)
    monkeypatch.setattr(evidence, "fresh_runs", lambda: {})
    assert G.check_phases_restated().holds
    assert not G.check_phases_literal().holds
    other = section_picture()
    assert G.check_phases_literal(other).holds
    monkeypatch.setattr(evidence, "fresh_runs", lambda: fresh_from(rec, ("default",)))
    assert G.check_phases_restated(rec).evidence["seeds_agreeing"]["default_same_fresh"] == [2, 2]


def test_phases_restated_counts_a_fresh_run_without_phase_1_as_disagreeing(monkeypatch):
    """A fresh run that never memorized has no phase 1 ({"defined": False}): the check fails
    and counts it, instead of raising KeyError (which would make the claim undetermined)."""
    rec = measured()
    fresh = fresh_from(rec)
    real = G.evidence.norm_rise
    calls = []

    def first_undefined(log):
        calls.append(1)
        return {"defined": False} if len(calls) in (1, 3) else real(log)

    monkeypatch.setattr(G.evidence, "norm_rise", first_undefined)
    found = G.check_phases_restated(rec, fresh)
    assert not found.holds
    agree = found.evidence["seeds_agreeing"]
    # calls 1-2: the default's fresh runs, 3-4: Demo 2 at 0.5, 5-6: at 0.3
    assert agree["default_same_fresh"] == [1, 2]
    assert agree["demo2_norm_rises_fresh"] == [3, 4]
