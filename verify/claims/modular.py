"""Claims of Theorem 3.1 and Worked Example 3: the trig-identity modular adder, with the pizza
construction on Demo 2's architecture as further evidence. Each claim's literal check tests the
section's words; its restated check tests proofs/modular-addition.md. The mathematics lives in
verify/trig_identities.py (SymPy), verify/adder_certificate.py and verify/adder_pairs.py (float64
certificate, exact condition), verify/pizza_certificate.py; display in verify/adder_inspect.py.

``modular.trig_identity`` (Theorem 3.1: the circuit "uses" cos(w(a+b)) = cos wa cos wb -
sin wa sin wb, w = 2 pi/p).
- literal: a readout that sees that identity's value alone determines (a+b) mod p on every pair.
  Made precise: "uses" = the identity's value is the readout's input; p = 5 (Worked Example 3).
- restated: the identity table holds, the adder's symbolic forward pass is sum_k cos(w_k(a+b-c)),
  and the cos and sin identities together determine (a+b) mod p.

``modular.adder_exact`` (Theorem 3.1's "only a few frequencies"; Demo 2's prime modulus).
- literal: every set of at most FEW frequencies, chosen freely in 1..p-1 (the section sets no
  condition), makes the adder exact, for every p in LITERAL_P. Made precise: "a few" = at most
  3; exact = certified; a failure must be proved (an exact tie in integers and wrong argmax of
  the network), else the check raises.
- restated: exact iff gcd(p, K) = 1 (every set of small p), every frequency certified with the
  Dirichlet margin (p = 2..200), and Demo 2's TinyModel exact by the pizza construction.

``worked_example_3.mod5`` (E(x) = (cos 2pi x/5, sin 2pi x/5); "the product of these components"
carries x + y).
- literal: the product cos(wx) cos(wy) determines x + y mod 5. Made precise: "the product" =
  that one product (the section names no other).
- restated: with K = {1} the exact margin is (5 - sqrt 5)/4 and the float network is certified.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import sympy as sp

from constructions import modular, pizza, validation
from constructions.modular import ModularAdder
from verify import registry
from verify.adder_certificate import certify
from verify.adder_inspect import inspect_adder
from verify.adder_pairs import condition_all_subsets, network_all_pairs, ties_exactly
from verify.pizza_certificate import certify_pizza
from verify.trig_identities import (
    Features,
    angle_addition_features,
    cosine_identity_features,
    identity_holds,
    identity_table,
    product_feature,
    sum_clash,
    symbolic_forward,
    table_holds,
)

SECTION_P = 5                # Worked Example 3's modulus, the section's one worked instance
FEW = 3                      # "a few frequencies", made precise
LITERAL_P = range(2, 13)     # moduli the literal "few frequencies" check searches, in order
# every frequency 1..(p-1)//2, certified with the Dirichlet margin (tests: every p in 2..200)
CERTIFIED_P = (*range(2, 41), 64, 96, 97, 100, 101, 127, 128, 199, 200)
SUBSET_P = range(2, 15)      # every non-empty frequency set of these moduli (16,369 sets)
PIZZA_RECORD = Path(__file__).resolve().parents[2] / "proofs" / "data" / "pizza_range.json"
STATED_MARGIN_MOD5 = (5 - sp.sqrt(5)) / 4
# Demo 2's TinyModel: (p, d, hidden or "min" or None = 2d, all pairs?), odd and even p; Demo 2's
# own p = 97 and sizes first. Every case must be certified.
PIZZA_CASES = ([(97, 64, None, True)]
               + [(p, 64, None, True) for p in (2, 3, 4, 6, 9, 10, 21, 96, 100, 127)]
               + [(p, 64, "min", True) for p in (2, 4, 5, 8, 45, 97, 96)]
               + [(p, 64, None, False) for p in (1000, 1001)])
# Re-run from the record of every p (d = 64): the compact certificate must agree with it, at the
# largest certified p and on both sides of that edge.
PIZZA_RECORD_P = (5200, 5201)


# --- modular.trig_identity ------------------------------------------------------------------------

def trig_literal(p: int = SECTION_P, features: Features = cosine_identity_features
                 ) -> registry.Finding:
    """A readout of cos(w(a+b)) alone (the identity's value) is exact: no two pairs with
    different sums have the same value. Fails for p >= 3: cos is even, s and p - s tie."""
    clash = sum_clash(p, features)
    return registry.Finding(clash is None, {
        "p": p, "readout_input": getattr(features, "__name__", str(features)),
        "clash": [list(clash[0]), list(clash[1])] if clash else None,
        "why": "cos(w s) = cos(w (p - s)): the sums s and p - s give the same value"})


def trig_restated(identities: list | None = None, adder: ModularAdder | None = None,
                  p: int = SECTION_P, features: Features = angle_addition_features
                  ) -> registry.Finding:
    """The identity table holds; the adder's symbolic logit is sum_k cos(w_k(a+b-c)); the cos and
    sin identities together determine (a+b) mod p."""
    results = table_holds(identity_table() if identities is None else identities)
    adder = modular.build_adder(SECTION_P) if adder is None else adder
    logit, target = symbolic_forward(adder)
    forward_ok = identity_holds(logit, target)
    clash = sum_clash(p, features)
    holds = all(results.values()) and forward_ok and clash is None
    return registry.Finding(holds, {
        "identities": len(results), "failed": [k for k, v in results.items() if not v],
        "network_forward_symbolic": forward_ok,
        "forward": "logit_c = sum_k cos(w_k (a + b - c)), symbolic w_k, a, b, c",
        "cos_and_sin_determine_sum": clash is None, "p": p})


trig_identity = registry.claim(
    "modular.trig_identity", source="section 3, Theorem 3.1",
    statement="\"A generalizing circuit uses the identity\" cos(2pi(a+b)/p) = "
              "cos(2pi a/p)cos(2pi b/p) - sin(2pi a/p)sin(2pi b/p)")
trig_identity.literal(trig_literal)
trig_identity.restated(trig_restated)


# --- modular.adder_exact --------------------------------------------------------------------------

def adder_literal(ps: Iterable[int] = LITERAL_P, few: int = FEW,
                  build: Callable[[int, tuple[int, ...]], ModularAdder] = modular.build_unchecked
                  ) -> registry.Finding:
    """Every set of at most ``few`` frequencies in 1..p-1 makes the adder exact, every p in ``ps``.
    Stops at the first proved counterexample; a set neither certified nor shown to tie raises."""
    few = validation.check_int("few", few, minimum=1)
    ps = [validation.check_int("ps entry", p, minimum=2) for p in ps]
    tried = 0
    for p in ps:
        for size in range(1, min(few, p - 1) + 1):
            for ks in itertools.combinations(range(1, p), size):
                adder = build(p, ks)
                tried += 1
                if certify(adder)["certified"]:
                    continue
                ties = ties_exactly(p, ks)            # T(d) = |K| exactly: logits c, c+d tie
                if not ties:
                    raise RuntimeError(f"p={p}, K={ks}: not certified, and no tie proves it wrong")
                net = network_all_pairs(adder)
                return registry.Finding(False, {
                    "counterexample": {"p": p, "K": list(ks), "tying_shifts": ties[:3],
                                       "wrong_pairs": net["wrong"], "gcd": modular.freq_gcd(p, ks)},
                    "sets_tried": tried, "few": few})
    return registry.Finding(True, {"sets_tried": tried, "few": few, "moduli": sorted(set(ps))})


def adder_restated(condition: Callable[[int, tuple[int, ...]], bool] | None = None,
                   subset_ps: Iterable[int] = SUBSET_P, certified_ps: Iterable[int] = CERTIFIED_P,
                   build: Callable[[int], ModularAdder] = modular.build_adder,
                   expected_margin: Callable[[int], float] = modular.dirichlet_margin,
                   pizza_cases: list | None = None,
                   build_pizza: Callable = pizza.build_pizza,
                   record: Path | dict = PIZZA_RECORD, record_ps: Iterable[int] = PIZZA_RECORD_P
                   ) -> registry.Finding:
    """Exact iff ``condition`` (gcd(p, K) = 1) on every set of ``subset_ps``; every p of
    ``certified_ps`` certified with margin ``expected_margin(p)`` (within 2 x its error bound);
    Demo 2's TinyModel exact (pizza certificate) on every case; and the compact pizza
    certificate agrees with the recorded sweep (``record``) at ``record_ps``."""
    sets_ok, sets = condition_all_subsets(subset_ps, condition)
    failures, worst_ratio = [], float("inf")
    for p in certified_ps:
        cert = certify(build(p))
        if not cert["certified"]:
            failures.append((p, cert.get("reason", "margin <= 2 x error bound")))
        elif abs(cert["min_margin"] - expected_margin(p)) > 2 * cert["error_bound"]:
            failures.append((p, f"margin {cert['min_margin']} != {expected_margin(p)}"))
        else:
            worst_ratio = min(worst_ratio, cert["min_margin"] / cert["error_bound"])
    pizza_ok, pizza_evidence = _pizza_cases(PIZZA_CASES if pizza_cases is None else pizza_cases,
                                            build_pizza)
    record_ok, record_evidence = _agrees_with_record(record, record_ps)
    ps = list(certified_ps)
    return registry.Finding(sets_ok and not failures and pizza_ok and record_ok, {
        "condition": "exact iff gcd(p, k_1..k_m) = 1 (frequency 1 alone always works)",
        "all_frequency_sets": sets,
        "certified": {"moduli": f"{ps[0]}..{ps[-1]}" if ps else "none",
                      "failures": failures[:5], "min_margin_over_error": worst_ratio},
        "dirichlet_margin": {str(q): modular.dirichlet_margin(q) for q in (2, 3, 4, 5, 97, 100)},
        "demo_2_pizza": pizza_evidence, "pizza_record": record_evidence})


def _agrees_with_record(record: Path | dict, ps: Iterable[int]) -> tuple[bool, dict]:
    """The compact pizza certificate at TinyModel(p, d) for each p: certified iff the record says so."""
    if isinstance(record, dict):
        data = record
    else:
        with open(record) as handle:
            data = json.load(handle)
    runs = data["certified_every_p_from_to"]
    d, disagree = int(data["d"]), []
    for p in ps:
        recorded = any(lo <= p <= hi for lo, hi in runs)
        now = (pizza.condition_holds(p, d)                         # m = hidden/2 = d
               and certify_pizza(pizza.build_pizza(p, d), all_pairs=False)["proof_certified"])
        if now != recorded:
            disagree.append({"p": p, "recorded": recorded, "now": now})
    return not disagree, {"command": data.get("command"), "certified_every_p_from_to": runs,
                          "rechecked": list(ps), "disagreements": disagree}


def _pizza_cases(cases: list, build: Callable) -> tuple[bool, dict]:
    failures, demo = [], None
    for p, d, hidden, pairs in cases:
        width = pizza.min_hidden(p) if hidden == "min" else hidden
        cert = certify_pizza(build(p, d, width), all_pairs=pairs)
        demo = demo or cert
        if not cert["certified"]:
            failures.append((p, width, cert.get("reason", "margin not above the error bound")))
    keys = ("p", "m", "min_margin", "margin_lower_bound", "delta_R", "delta_W", "seconds")
    return not failures, {
        "model": "constructions.pizza.build_pizza: Demo 2's TinyModel, hand-set weights",
        "condition": "any p >= 2; b-half rotated by pi/p for even p; m = hidden/2 with "
                     "(4/3pi) sin(pi/p) > A(m)",
        "demo": {k: (demo or {}).get(k) for k in keys},
        "moduli": sorted({c[0] for c in cases}), "failures": failures[:5],
        "largest_p_d64": "every p <= 5200 float64-certified: proofs/data/pizza_range.json"}


adder_exact = registry.claim(
    "modular.adder_exact", source="section 3, Theorem 3.1 (Generalization Cost); section 5, Demo 2",
    statement="\"The trig-identity circuit requires only a few frequencies\" "
              "(Demo 2: \"P = 97 # Prime modulus\")")
adder_exact.literal(adder_literal)
adder_exact.restated(adder_restated)


# --- worked_example_3.mod5 ------------------------------------------------------------------------

def mod5_literal(p: int = SECTION_P, features: Features = product_feature) -> registry.Finding:
    """The product cos(wx) cos(wy) determines x + y mod 5 (no two pairs with different sums share
    it)."""
    clash = sum_clash(p, features)
    return registry.Finding(clash is None, {
        "p": p, "readout_input": getattr(features, "__name__", str(features)),
        "clash": [list(clash[0]), list(clash[1])] if clash else None,
        "identity_named": "sum-to-product; the one used is product-to-sum"})


def exact_margin(p: int, freqs: tuple[int, ...]) -> sp.Expr:
    """min_{d != 0} sum_k (1 - cos(2 pi k d / p)), exactly (SymPy)."""
    p = validation.check_int("p", p, minimum=2)
    freqs = modular.check_freqs(p, freqs, admissible_only=False)
    values = [sum(1 - sp.cos(2 * sp.pi * k * d / p) for k in freqs) for d in range(1, p)]
    return min(values, key=lambda v: float(sp.N(v, 30)))


def mod5_restated(adder: ModularAdder | None = None, stated_margin: sp.Expr = STATED_MARGIN_MOD5
                  ) -> registry.Finding:
    """The adder's exact margin equals ``stated_margin`` ((5 - sqrt 5)/4), and the float64
    network is certified on every pair."""
    adder = modular.build_adder(SECTION_P, (1,)) if adder is None else adder
    stated_margin = sp.sympify(stated_margin)
    if not isinstance(stated_margin, sp.Expr) or stated_margin.has(sp.Float) or \
            not stated_margin.is_real:
        raise TypeError(f"stated_margin must be an exact real number (int, Rational or SymPy "
                        f"expression without floats), got {stated_margin!r}")
    margin = exact_margin(adder.p, adder.freqs)
    equal = sp.minimal_polynomial(margin - stated_margin, sp.Symbol("x")) == sp.Symbol("x")
    cert = certify(adder)
    return registry.Finding(bool(equal) and cert["certified"], {
        "p": adder.p, "K": list(adder.freqs), "exact_margin": str(margin),
        "stated_margin": str(stated_margin), "margin_equal": bool(equal),
        "margin_float": float(margin), "certified": cert["certified"],
        "certified_margin": cert.get("min_margin"), "error_bound": cert.get("error_bound")})


mod5 = registry.claim(
    "worked_example_3.mod5", source="section 4, Worked Example 3",
    statement="E(x) = [cos(2pi x/5), sin(2pi x/5)]; \"the MLP computes the product of these "
              "components\", which carries x + y (mod 5) for the unembedding to read")
mod5.literal(mod5_literal)
mod5.restated(mod5_restated)


INSPECT = {"adder": inspect_adder}
