"""The modular claims' checks and their exact mathematics (verify/claims/modular.py,
verify/trig_identities.py, verify/adder_pairs.py): the literal search's count and evidence on
both of its outcomes, the pair loops' counts across chunks, and the Dirichlet statements pinned
as written, each seen to fail on a broken input (mutation testing, issue 13)."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch

from constructions import modular, pizza
from verify import adder_pairs, registry
from verify import trig_identities as ti
from verify.claims import modular as claims

# --- modular.adder_exact: the literal search ---------------------------------------------------


def test_adder_literal_counts_every_set_it_certifies():
    """Sizes 1..min(few, p-1), frequencies 1..p-1: p = 5, 3, 2 and few = 2 give (4 + 6) + (2 + 1)
    + 1 = 14 sets; a repeated modulus is searched again (17) and listed once."""
    found = claims.adder_literal(ps=(5, 3, 2, 3), few=2)
    assert found.holds and found.evidence == {"sets_tried": 17, "few": 2, "moduli": [2, 3, 5]}
    assert registry.derive_verdict(found.holds, True) == "confirmed"


def _certified_except(bad: tuple[int, ...]):
    """A builder whose adder is the certified K = {1} one for every set except ``bad``."""
    def build(p, ks):
        return modular.build_unchecked(p, ks) if ks == bad else modular.build_adder(p, (1,))
    return build


def test_adder_literal_counterexample_evidence():
    """p = 10, K = {5} (reached fifth, after four sets built certified): T(d) = |K| at every even
    d, so four shifts tie and the first three are reported; the network is wrong on 50 pairs."""
    found = claims.adder_literal(ps=(10,), few=1, build=_certified_except((5,)))
    assert not found.holds
    example = found.evidence["counterexample"]
    assert example == {"p": 10, "K": [5], "tying_shifts": [2, 4, 6],
                       "wrong_pairs": adder_pairs.network_all_pairs(
                           modular.build_unchecked(10, (5,)))["wrong"], "gcd": 5}
    assert example["wrong_pairs"] > 0
    assert found.evidence["sets_tried"] == 5 and found.evidence["few"] == 1
    assert adder_pairs.ties_exactly(10, (5,)) == [2, 4, 6, 8]


# --- adder_pairs: the pair loops and the integer tie --------------------------------------------


class _WrongAtTop:
    """Logits 1 at the answer s and at s + 1 (mod p): argmax breaks the tie towards the lower
    index, so only s = p - 1 (partner 0) is answered wrongly."""

    def __init__(self, p: int):
        self.p = p

    def __call__(self, x, y):
        s = (x + y) % self.p
        logits = torch.nn.functional.one_hot(s, self.p).to(torch.float64)
        logits[torch.arange(len(s)), (s + 1) % self.p] = 1.0
        return logits


def test_network_all_pairs_counts_wrong_pairs_over_every_chunk(monkeypatch):
    """p = 5: the five pairs with a + b = 4 are wrong; chunks of 7 put none of them in the last
    chunk (pairs 21..24), so the count must add up over chunks. The chunk size is passed on."""
    seen = []
    original = adder_pairs.pair_chunks

    def spy(p, chunk=None):
        seen.append(chunk)
        return original(p, chunk)
    monkeypatch.setattr(adder_pairs, "pair_chunks", spy)
    out = adder_pairs.network_all_pairs(_WrongAtTop(5), chunk=7)
    assert out["wrong"] == 5 and out["min_margin"] == 0 and not out["correct"]
    assert seen == [7]


def test_ties_exactly_lists_every_tying_shift():
    assert adder_pairs.ties_exactly(12, (4, 8)) == [3, 6, 9]
    assert adder_pairs.ties_exactly(7, (1,)) == []
    assert adder_pairs.ties_exactly(2, (1,)) == []
    assert adder_pairs.ties_exactly(4, (4,)) == [1, 2, 3]     # k = p: every shift ties, d = 1 too


# --- trig_identities: the Dirichlet statements as written ---------------------------------------


def test_dirichlet_table_rows_are_the_stated_identities():
    """The rows are pinned as written: a changed row can still be a true identity (sin of another
    integer multiple of pi is still 0), which `table_holds` alone would not notice."""
    n, d, k, th, half = ti.N_SYM, ti.D_SYM, ti.K_SYM, ti.TH, sp.Rational(1, 2)
    want = [
        ("dirichlet_telescoping", 2 * sp.sin(th / 2) * sp.cos(k * th),
         sp.sin((k + half) * th) - sp.sin((k - half) * th)),
        ("dirichlet_odd_angle", (n + half) * 2 * sp.pi * d / (2 * n + 1), sp.pi * d),
        ("dirichlet_even_sign", sp.sin((n - half) * sp.pi * d / n),
         -(-1) ** d * sp.sin(sp.pi * d / (2 * n))),
    ]
    assert ti.dirichlet_table() == want


def test_dirichlet_odd_row_can_fail():
    """The odd-p row is a real identity: a wrong denominator makes it false."""
    n, d = ti.N_SYM, ti.D_SYM
    rows = {name: (lhs, rhs) for name, lhs, rhs in ti.dirichlet_table()}
    lhs, rhs = rows["dirichlet_odd_angle"]
    assert lhs != 0 and ti.identity_holds(lhs, rhs)
    assert not ti.identity_holds((n + sp.Rational(1, 2)) * 2 * sp.pi * d / (2 * n - 1), rhs)


@pytest.mark.parametrize("p, freqs", [
    (2, (1, 1)),       # T(1) = -2, not -1: the only d is 1
    (5, (1,)),         # K = {1} alone is not the full set
    (6, (1, 2, 3)),    # the full set is 1..2 for p = 6
])
def test_dirichlet_values_fail_for_a_set_the_closed_form_does_not_describe(p, freqs):
    assert ti.dirichlet_values_exact(p)
    assert not ti.dirichlet_values_exact(p, freqs)


def test_dirichlet_values_validate_p():
    for bad, error in ((1, ValueError), (2.0, TypeError)):
        with pytest.raises(error, match="p must"):
            ti.dirichlet_values_exact(bad, (1,))


# --- the evidence a reader sees, pinned on the default inputs -----------------------------------


def test_trig_and_mod5_evidence_values():
    lit = claims.trig_literal()
    assert lit.evidence["readout_input"] == "cosine_identity_features" and lit.evidence["p"] == 5
    res = claims.trig_restated()
    assert res.evidence["identities"] == 7 and res.evidence["failed"] == []
    assert res.evidence["network_forward_symbolic"] is True and res.evidence["p"] == 5
    assert res.evidence["cos_and_sin_determine_sum"] is True
    five = claims.mod5_literal()
    assert five.evidence["readout_input"] == "product_feature" and five.evidence["p"] == 5
    assert five.evidence["clash"] is not None
    assert claims.mod5_literal(features=ti.angle_addition_features).evidence["clash"] is None
    res = claims.mod5_restated()
    margin = (5 - sp.sqrt(5)) / 4
    assert res.evidence["p"] == 5 and res.evidence["K"] == [1]
    assert res.evidence["stated_margin"] == str(margin) and res.evidence["margin_equal"] is True
    assert res.evidence["margin_float"] == float(margin) and res.evidence["certified"] is True
    cert = claims.certify(modular.build_adder(5, (1,)))
    assert res.evidence["certified_margin"] == cert["min_margin"]
    assert res.evidence["error_bound"] == cert["error_bound"]


def test_exact_margin_reads_every_shift():
    """d runs over 1..p-1: for p = 2 that is d = 1 alone (margin 1 - cos pi = 2); for K = {3},
    p = 7 the smallest term is at d = 2 and 5 (3 d = -1 mod 7), not at the ends."""
    assert claims.exact_margin(2, (1,)) == 2
    assert claims.exact_margin(6, (2, 4)) == 0       # inadmissible sets too: d = 3 ties exactly
    values = {d: 1 - sp.cos(2 * sp.pi * 3 * d / 7) for d in range(1, 7)}
    got = claims.exact_margin(7, (3,))
    assert sp.simplify(got - values[2]) == 0
    assert float(got) < min(float(values[1]), float(values[6]))


# --- modular.adder_exact: the restated check's parts and evidence -------------------------------

RECORD = {"d": 4, "certified_every_p_from_to": [[2, 17]], "command": "python -m ... (test)"}
NO_SUBSETS = dict(subset_ps=(), pizza_cases=[(9, 4, None, True)], record=RECORD, record_ps=())


def test_adder_restated_certified_evidence():
    """Moduli are reported as handed (first..last), the worst margin/error ratio over them, and
    the Dirichlet margins at fixed moduli."""
    found = claims.adder_restated(certified_ps=(5, 7, 4), **NO_SUBSETS)
    assert found.holds
    certs = [claims.certify(modular.build_adder(p)) for p in (5, 7, 4)]
    assert found.evidence["certified"] == {
        "moduli": "5..4", "failures": [],
        "min_margin_over_error": min(c["min_margin"] / c["error_bound"] for c in certs)}
    assert found.evidence["dirichlet_margin"] == {"2": 2.0, "3": 1.5, "4": 1.0, "5": 2.5,
                                                  "97": 48.5, "100": 49.0}
    none = claims.adder_restated(certified_ps=(), **NO_SUBSETS)
    assert none.holds and none.evidence["certified"]["moduli"] == "none"
    assert none.evidence["certified"]["min_margin_over_error"] == float("inf")


def test_adder_restated_lists_five_failures_with_their_reason():
    found = claims.adder_restated(certified_ps=range(2, 9), expected_margin=lambda p: 100.0,
                                  **NO_SUBSETS)
    failures = found.evidence["certified"]["failures"]
    assert not found.holds and [f[0] for f in failures] == [2, 3, 4, 5, 6]
    cert = claims.certify(modular.build_adder(2))
    assert failures[0][1] == f"margin {cert['min_margin']} != 100.0"

    def refused(p):
        return modular.build_unchecked(6, (2, 4))                    # gcd 2: not certified
    found = claims.adder_restated(certified_ps=(6,), build=refused, **NO_SUBSETS)
    assert found.evidence["certified"]["failures"] == [(6, "margin <= 2 x error bound")]


def test_pizza_cases_evidence():
    """The first case is the demo reported; moduli sorted and unique; five failures at most."""
    ok, evidence = claims._pizza_cases([(9, 4, None, True), (5, 4, "min", False),
                                        (9, 4, 10, False)], pizza.build_pizza)
    assert ok and evidence["moduli"] == [5, 9] and evidence["failures"] == []
    demo = claims.certify_pizza(pizza.build_pizza(9, 4, None), all_pairs=True)
    for key in ("p", "m", "min_margin", "margin_lower_bound", "delta_R", "delta_W"):
        assert evidence["demo"][key] == demo[key]
    assert evidence["demo"]["seconds"] >= 0

    def unrotated(p, d, hidden):
        return pizza.build_unchecked(p, d, hidden, rotation=1)       # odd p rotated: ties
    bad, evidence = claims._pizza_cases([(p, 4, None, False) for p in (3, 5, 7, 9, 11, 13)],
                                        unrotated)
    assert not bad and [f[0] for f in evidence["failures"]] == [3, 5, 7, 9, 11]
    assert all(f[1] is None and f[2] == "margin not above the error bound"
               for f in evidence["failures"])
    assert evidence["demo"]["p"] == 3


def test_record_evidence_and_each_side_of_a_run():
    ok, evidence = claims._agrees_with_record(RECORD, (2, 17, 18))
    assert ok and evidence == {"command": RECORD["command"], "certified_every_p_from_to": [[2, 17]],
                               "rechecked": [2, 17, 18], "disagreements": []}
    ok, evidence = claims._agrees_with_record({"d": 4, "certified_every_p_from_to": [[3, 16]]},
                                              (2, 17))
    assert not ok and evidence["disagreements"] == [{"p": 2, "recorded": False, "now": True},
                                                    {"p": 17, "recorded": False, "now": True}]
    assert evidence["command"] is None


class _Product:
    """The product feature as a callable object (no __name__): the evidence names it by str()."""

    def __call__(self, a, b, p):
        return ti.product_feature(a, b, p)

    def __str__(self):
        return "the product cos(wx) cos(wy)"


def test_literal_evidence_names_any_callable_and_both_clash_pairs():
    clash = ti.sum_clash(5, ti.product_feature)
    assert clash is not None and clash[0] != clash[1]
    for check in (claims.mod5_literal, claims.trig_literal):
        found = check(features=_Product())
        assert found.evidence["readout_input"] == "the product cos(wx) cos(wy)"
        assert found.evidence["clash"] == [list(clash[0]), list(clash[1])]


def _shrunk_row(p: int) -> modular.ModularAdder:
    """|e_0| = 7/8 for p = 7: still certified, with margin M between 2 and 4 times its error E,
    so M - 2E is exact (Sterbenz) and the tolerance |M - expected| <= 2E can be met with equality."""
    adder = modular.build_adder(7)
    with torch.no_grad():
        adder.transformer.embed.W_E[0, :2] *= 0.875
    return adder


def test_adder_restated_margin_tolerance_at_its_exact_edge():
    cert = claims.certify(_shrunk_row(7))
    margin, error = cert["min_margin"], cert["error_bound"]
    assert cert["certified"] and 2 * error < margin < 4 * error
    edge = margin - 2 * error
    assert abs(margin - edge) == 2 * error                           # exactly at the tolerance
    kwargs = dict(certified_ps=(7,), build=_shrunk_row, **NO_SUBSETS)
    assert claims.adder_restated(expected_margin=lambda p: edge, **kwargs).holds
    beyond = margin - math.nextafter(2 * error, math.inf)            # one ulp of 2E further
    assert abs(margin - beyond) > 2 * error
    past = claims.adder_restated(expected_margin=lambda p: beyond, **kwargs)
    assert not past.holds and past.evidence["certified"]["failures"][0][0] == 7


def test_adder_restated_reports_a_structure_refusal_by_its_reason():
    def refused(p):
        adder = modular.build_adder(p)
        with torch.no_grad():
            adder.transformer.blocks[0].attn.W_Q[0, 0, 0] = 0.5
        return adder
    found = claims.adder_restated(certified_ps=(5,), build=refused, **NO_SUBSETS)
    assert found.evidence["certified"]["failures"] == [(5, "blocks.0.attn.W_Q is not zero")]


def test_pair_loops_validate_and_time_themselves():
    with pytest.raises(ValueError, match="ps entry must be >= 2"):
        adder_pairs.condition_all_subsets((1,))
    out = adder_pairs.network_all_pairs(modular.build_adder(5))
    assert set(out) == {"correct", "wrong", "min_margin", "seconds"} and out["seconds"] >= 0
