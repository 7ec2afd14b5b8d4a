"""Claims grokking.phases, grokking.memorization_norm, grokking.generalization_norm (section 3,
Theorem 3.1, and Coding Demo 2's "train loss to 0 quickly, a long plateau, then test loss
suddenly drops"). All three are slow: they re-train (only with --claim or --all).

Evidence: the sweep's record (proofs/data/grokking-seeds.json: five seeds of the default run and
of Demo 2's settings at training fractions 0.5 and 0.3, each to generalization or 40,000 steps),
checked against fresh runs of two seeds per setting (verify/grokking/evidence.py: a record that
disagrees with them makes the claim undetermined); fresh random-label memorizers; the
hand-built adder (constructions/modular.py) and lookup memorizer (verify/grokking/norms.py).
Every check takes what it judges as an argument; the thresholds are named below and in
verify/grokking/measures.py. Proofs, tables and the seeds that agree: proofs/grokking.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from verify.grokking import evidence, growth, measures
from verify.registry import Finding, claim

DEMO2 = ("demo2_frac0.5", "demo2_frac0.3")
SUDDEN_SHARE = 0.1      # "suddenly": test accuracy 0.1 -> 0.9 within this share of the plateau


def _record(rec: dict[str, Any] | None) -> dict[str, Any]:
    return evidence.load_record() if rec is None else rec


def _fresh(rec: dict[str, Any], fresh: dict[str, Any] | None) -> dict[str, Any]:
    """Fresh runs (trained once per process for the stored record) after checking they agree
    with the record (RecordMismatch otherwise)."""
    if fresh is None:
        fresh = evidence.fresh_runs()
    evidence.compare(rec, fresh)
    return fresh


def _count(entries: list[dict[str, Any]], test: Callable[[dict[str, Any]], bool]) -> list[int]:
    """[seeds for which ``test`` holds, seeds]."""
    return [sum(1 for e in entries if test(e)), len(entries)]


def _by_setting(rec: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for e in rec["entries"] if e["setting"] == name]


# --- grokking.phases --------------------------------------------------------------------------

phases_claim = claim("grokking.phases", source="section 3, Theorem 3.1; section 5, Coding Demo 2",
                     statement="memorize, long plateau, then test loss suddenly drops; ||W|| "
                     "increases in phase 1; L_total drops sharply when the model switches",
                     slow=True)


@phases_claim.literal
def check_phases_literal(rec: dict[str, Any] | None = None, fresh: dict[str, Any] | None = None,
                         sudden_share: float = SUDDEN_SHARE) -> Finding:
    """The section's three phases, for every seed of every setting in the record (its Demo 2
    settings and the project's default run): (1) it memorizes before test accuracy rises (no
    "immediate" run); (2) ||W||^2 at memorization exceeds ||W||^2 at initialization; and for
    every seed that generalizes (3) L_total's sharpest fall is sharp (measures.sharpest_fall)
    and (4) test accuracy goes 0.1 -> 0.9 within ``sudden_share`` of the plateau ("suddenly").
    Made precise: the thresholds of (3) and (4)."""
    rec = _record(rec)
    _fresh(rec, fresh)
    entries = rec["entries"]
    grokked = [e for e in entries if e["kind"] == "grokking"]
    counts = {
        "memorized_first": _count(entries, _memorized_first),
        "norm_rises_phase1": _count(entries, _norm_rises),
        "L_total_sharp": _count(grokked, lambda e: e["L_total_sharpest_fall"]["sharp"]),
        "sudden": _count(grokked, lambda e: _sudden(e, sudden_share)),
    }
    holds = bool(entries) and all(c[0] == c[1] for c in counts.values())
    return Finding(holds, {"seeds_agreeing": counts, "sudden_share": sudden_share,
                           "sharp_share": measures.SHARP_SHARE,
                           "window_share": measures.WINDOW_SHARE,
                           "per_seed": [_phase_row(e) for e in entries]})


def _memorized_first(e: dict[str, Any]) -> bool:
    return e["kind"] in ("grokking", "never_generalized")


def _norm_rises(e: dict[str, Any]) -> bool:
    mem = e["norms_memorized"]
    return mem is not None and mem["total"] > e["norms_init"]["total"]


def _sudden(e: dict[str, Any], share: float) -> bool:
    rise = e["rise_0.1_to_0.9"]["steps"]
    plateau = e["step_generalized"] - e["step_memorized"]
    return rise is not None and rise <= share * plateau


def _phase_row(e: dict[str, Any]) -> dict[str, Any]:
    fall = e.get("L_total_sharpest_fall") or {}
    mem = e["norms_memorized"] or {}
    return {"setting": e["setting"], "seed": e["seed"], "kind": e["kind"],
            "t_mem": e["step_memorized"], "t_gen": e["step_generalized"],
            "stopped": e["stopped"], "steps_run": e["steps_run"],
            "rise_0.1_to_0.9": e["rise_0.1_to_0.9"]["steps"],
            "L_total_fall_share": fall.get("share"),
            "norm2_init": e["norms_init"]["total"], "norm2_mem": mem.get("total"),
            "circuit_formed": e.get("step_circuit_formed"),
            "test_acc_0.1": e["test_acc_first_reaches"]["0.1"]}


@phases_claim.restated
def check_phases_restated(rec: dict[str, Any] | None = None, fresh: dict[str, Any] | None = None
                          ) -> Finding:
    """proofs/grokking.md's restatement: (1) every seed memorizes before test accuracy rises,
    and every seed of the default run and of Demo 2's settings at fraction 0.5 generalizes
    within the cap; (2) in phase 1 ||W||^2 rises
    at Demo 2's settings, and falls at the default one, where the embedding shrinks while the
    rest grows (record and fresh runs); (3) in every seed that generalizes, the key-frequency
    circuit forms (restricted loss <= progress.CIRCUIT_FORMED_SHARE ln p) before test accuracy
    first reaches 0.1: during the plateau, before the rise."""
    rec = _record(rec)
    fresh = _fresh(rec, fresh)
    default = _by_setting(rec, "default")
    demo2 = [e for n in DEMO2 for e in _by_setting(rec, n)]
    grok = [e for e in rec["entries"] if e["kind"] == "grokking"]
    rises = {n: [evidence.norm_rise(r["log"]) for r in fresh.get(n, {}).values()]
             for n in ("default",) + DEMO2}
    counts = {
        "memorized_first": _count(rec["entries"], _memorized_first),
        "default_grokked": _count(default, lambda e: e["kind"] == "grokking"),
        "demo2_frac0.5_grokked": _count(_by_setting(rec, DEMO2[0]),
                                        lambda e: e["kind"] == "grokking"),
        "demo2_norm_rises": _count(demo2, _norm_rises),
        # a fresh run that never memorized has no phase 1 ({"defined": False}): it disagrees
        "demo2_norm_rises_fresh": [sum(r.get("rises", False) for n in DEMO2 for r in rises[n]),
                                   sum(len(rises[n]) for n in DEMO2)],
        "default_norm_falls_embed_falls_rest_rises": _count(default, _default_phase1),
        "default_same_fresh": [sum(1 for r in rises["default"] if r["defined"] and not r["rises"]
                                   and r["embed"][1] < r["embed"][0] and r["rest"][1] > r["rest"][0]),
                               len(rises["default"])],
        "circuit_before_test_0.1": _count(grok, _circuit_first),
    }
    holds = bool(default) and bool(demo2) and all(c[0] == c[1] for c in counts.values())
    return Finding(holds, {"seeds_agreeing": counts,
                           "per_seed": [_phase_row(e) for e in rec["entries"]]})


def _default_phase1(e: dict[str, Any]) -> bool:
    init, mem = e["norms_init"], e["norms_memorized"]
    return (mem is not None and mem["total"] < init["total"] and mem["embed"] < init["embed"]
            and mem["rest"] > init["rest"])


def _circuit_first(e: dict[str, Any]) -> bool:
    formed, rise = e.get("step_circuit_formed"), e["test_acc_first_reaches"]["0.1"]
    return formed is not None and rise is not None and formed < rise


# --- grokking.memorization_norm ---------------------------------------------------------------

memorization_claim = claim("grokking.memorization_norm",
                           source="section 3, Theorem 3.1 (proof outline)",
                           statement="memorizing N_train examples needs O(N_train) parameters; "
                           "||W_mem||^2 grows linearly with N_train", slow=True)


@memorization_claim.literal
def check_memorization_literal(points: dict[int, list[tuple[int, float]]] | None = None,
                               tol: float = growth.LINEAR_EXPONENT_TOL) -> Finding:
    """Trained memorizers (random labels, growth.memorizer_points), each at its least squared
    norm over function-preserving rescalings at training loss rescale.TARGET_LOSS: for every
    seed the fitted exponent of that norm in N_train lies within 1 +- ``tol``."""
    points = growth.memorizer_points() if points is None else points
    fits = {seed: growth.exponent(pts) for seed, pts in points.items()}
    linear = [s for s, x in fits.items() if abs(x - 1) <= tol]
    return Finding(bool(fits) and len(linear) == len(fits),
                   {"exponents": fits, "seeds_agreeing": [len(linear), len(fits)], "tol": tol,
                    "points": points, "setting": growth.MEMORIZER_SETTING})


@memorization_claim.restated
def check_memorization_restated(builder: Callable[..., Any] | None = None,
                                points: dict[int, list[tuple[int, float]]] | None = None,
                                band: tuple[float, float] = growth.TRAINED_EXPONENT_BAND
                                ) -> Finding:
    """proofs/grokking.md's restatement: (1) the lookup memorizer stores every pair with margin
    gamma and, at its least norm over rescalings, costs growth.lookup_least(N) (a bound,
    linear in N up to a sqrt(N) term); (2) trained memorizers at the same loss grow sublinearly:
    every seed's fitted exponent lies in ``band``."""
    lookup = growth.check_lookup(builder)
    points = growth.memorizer_points() if points is None else points
    fits = {seed: growth.exponent(pts) for seed, pts in points.items()}
    inside = [s for s, x in fits.items() if band[0] <= x <= band[1]]
    holds = lookup["ok"] and bool(fits) and len(inside) == len(fits)
    return Finding(holds, {"lookup": lookup, "trained_exponents": fits, "band": list(band),
                           "seeds_agreeing": [len(inside), len(fits)]})


# --- grokking.generalization_norm -------------------------------------------------------------

generalization_claim = claim("grokking.generalization_norm",
                             source="section 3, Theorem 3.1 (proof outline)",
                             statement="||W_gen||^2 is constant relative to p and N_train",
                             slow=True)


@generalization_claim.literal
def check_generalization_literal(build: Callable[..., Any] | None = None,
                                 tol: float = growth.CONSTANT_EXPONENT_TOL) -> Finding:
    """The trig-identity circuit with a few fixed frequencies (growth.FEW_FREQS), at its least
    norm over layer rescalings at a fixed loss (Lemma 5): its fitted exponent in p is at most
    ``tol`` (constant in p; N_train does not enter the construction)."""
    table = growth.adder_table(build)
    x = table["few"]["exponent_rescaled_to_loss"]
    return Finding(x <= tol, {"exponent_in_p": x, "tol": tol, "table": table})


@generalization_claim.restated
def check_generalization_restated(build: Callable[..., Any] | None = None,
                                  rec: dict[str, Any] | None = None,
                                  fresh: dict[str, Any] | None = None,
                                  band: tuple[float, float] = growth.ADDER_EXPONENT_BAND
                                  ) -> Finding:
    """proofs/grokking.md's restatement: (1) Lemma 3 holds per layer (||W_E||^2 = ||W_U||^2 =
    p m, the rest 46.3125 m); (2) at a fixed loss after the best layer rescaling the adder's
    norm grows like p^(7/6) (fitted exponent in ``band``, few and all frequencies); (3) on
    comparable terms, every seed that generalized has a smaller least norm at the fixed loss
    than its own memorizer (record and fresh runs)."""
    table = growth.adder_table(build)
    rec = _record(rec)
    fresh = _fresh(rec, fresh)
    pairs = growth.mem_vs_gen(rec, fresh)
    smaller = [r for r in pairs if r["gen"] < r["mem"]]
    exps = [table[k]["exponent_rescaled_to_loss"] for k in ("few", "all")]
    holds = (table["lemma3_ok"] and all(band[0] <= x <= band[1] for x in exps)
             and bool(pairs) and len(smaller) == len(pairs))
    return Finding(holds, {"lemma3_ok": table["lemma3_ok"], "exponents": exps, "band": list(band),
                           "mem_vs_gen": pairs, "seeds_agreeing": [len(smaller), len(pairs)],
                           "table": table})
