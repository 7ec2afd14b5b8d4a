"""The modular checks' remaining edges (mutation testing, issue 13): the messages and evidence
keys a user reads from the adder and pizza certificates, the exact formulas of their error
bounds (restated here term by term, compared bit for bit), the frequency-set sweep's report, the
identity table's names and symbols, and what the claim checks pass to the certificates."""

from __future__ import annotations

import math
import time

import pytest
import sympy as sp
import torch

from constructions import modular, pizza
from verify import adder_certificate as ac
from verify import adder_pairs as ap
from verify import pizza_certificate as pc
from verify import rounding
from verify import trig_identities as ti
from verify.claims import modular as claims
from verify.registry import single_thread


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


def timed(fn, *args, **kwargs):
    """fn's result and the wall time around the call: a reported "seconds" must lie in [0, it]."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


# --- verify/claims/modular.py -------------------------------------------------------------------

def restated_pizza_only(**kwargs):
    """adder_restated with nothing but the pizza parts it is handed (no sets, no certified p)."""
    kwargs.setdefault("pizza_cases", [])
    kwargs.setdefault("record_ps", ())
    return claims.adder_restated(subset_ps=(), certified_ps=(), **kwargs)


def test_a_min_width_case_builds_the_model_at_that_width():
    """(p, d, "min", pairs): the model handed to the certificate has hidden = min_hidden(p)."""
    seen = []

    def build(p, d, hidden):
        seen.append(hidden)
        return pizza.build_pizza(p, d, hidden)

    res = restated_pizza_only(pizza_cases=[(5, 64, "min", False)], build_pizza=build)
    assert seen == [pizza.min_hidden(5)]
    demo = res.evidence["demo_2_pizza"]["demo"]
    assert demo["m"] == pizza.min_hidden(5) // 2 < 64
    assert res.holds


def test_a_failed_case_reports_the_certificate_reason():
    def broken(p, d, hidden):
        model = pizza.build_pizza(p, d, hidden)
        with torch.no_grad():
            pizza.linear_layers(model)[0].bias[0] = 1.0
        return model

    res = restated_pizza_only(pizza_cases=[(5, 8, 16, False)], build_pizza=broken)
    assert not res.holds
    assert res.evidence["demo_2_pizza"]["failures"] == [(5, 16, "a bias is not zero")]


def test_the_record_is_rechecked_at_the_record_width():
    """d = 65 certifies p = 5201 (d = 64 does not, in float64): the recheck must build at d."""
    record = {"certified_every_p_from_to": [[2, 5201]], "d": 65, "command": "by hand"}
    res = restated_pizza_only(record=record, record_ps=(5201,))
    assert res.evidence["pizza_record"]["disagreements"] == []
    assert res.holds
    assert not pc.certify_pizza(pizza.build_pizza(5201, 64), all_pairs=False)["proof_certified"]


# --- verify/adder_certificate.py ----------------------------------------------------------------

def test_the_adder_structure_messages():
    adder = modular.build_adder(5)
    m = len(adder.freqs)
    with torch.no_grad():
        adder.transformer.embed.W_E[0, 2 * m] = 1.0
    assert ac.structure_errors(adder) == ["W_E writes outside slot B"]
    adder = modular.build_adder(5)
    with torch.no_grad():
        adder.transformer.unembed.W_U[0, 0] = 1.0
    assert ac.structure_errors(adder) == ["W_U reads slots B or S"]
    assert ac.certify(adder)["reason"] == "W_U reads slots B or S"


def random_adder(seed: int, scale: float):
    """The adder's shapes with Gaussian weights: `rounding_bound` reads only magnitudes."""
    adder = modular.build_adder(7)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, prm in adder.transformer.named_parameters():
            prm.copy_(torch.randn(prm.shape, generator=g, dtype=prm.dtype) * scale)
    return adder


def restated_rounding_bound(adder) -> float:
    """`ac.rounding_bound`'s docstring, stage by stage, in the same float64 operations."""
    u, model = rounding.U, adder.transformer
    blk = model.blocks[0]
    alpha = rounding.equal_softmax_error(2)
    a = rounding.as_abs

    def add(M1, e1, M2, e2):                    # e' = e1 + e2 + u (M1 + e1 + M2 + e2)
        return M1 + M2, e1 + e2 + u * (M1 + e1 + M2 + e2)

    w_pos = a(model.pos_embed.W_pos).max(0).values
    M, e = add(a(model.embed.W_E).max(0).values, 0 * w_pos, w_pos, 0 * w_pos)
    M_x, e_x = M, e
    M, e = rounding.affine_bound(M, e, blk.attn.W_V[0], blk.attn.b_V[0])
    e = e + 2 * alpha * (M + e) + rounding.gamma(2) * (1 + 2 * alpha) * (M + e)   # the mix
    M, e = rounding.affine_bound(M, e, blk.attn.W_O[0], blk.attn.b_O)
    M_r, e_r = add(M_x, e_x, M, e)
    M, e = rounding.affine_bound(M_r, e_r, blk.mlp.W_in, blk.mlp.b_in)
    M, e = M**2, e * (2 * M + e) + u * (M + e) ** 2                                 # the square
    M, e = rounding.affine_bound(M, e, blk.mlp.W_out, blk.mlp.b_out)
    M, e = add(M_r, e_r, M, e)
    _, e = rounding.affine_bound(M, e, model.unembed.W_U, model.unembed.b_U)
    return float(e.max()) * rounding.SLACK


@pytest.mark.parametrize("seed,scale", [(2, 1.0), (0, 10.0), (4, 0.1)])
def test_the_adder_rounding_bound_is_its_stated_formula(seed, scale):
    """Every term of the running error analysis, each sign included: equal to the last bit."""
    adder = random_adder(seed, scale)
    assert ac.rounding_bound(adder) == restated_rounding_bound(adder)


def test_the_adder_rounding_bound_on_the_construction():
    adder = modular.build_adder(97)
    assert ac.rounding_bound(adder) == restated_rounding_bound(adder)


def test_the_certificate_error_is_its_stated_formula():
    """Delta = delta_R + m rho_U delta SLACK + gamma_2m m (1 + eps_E) rho_U SLACK, to the bit;
    an embedding off by 1e-13 makes the (1 + eps_E) factor visible."""
    adder = modular.build_adder(5)
    with torch.no_grad():
        adder.transformer.embed.W_E[1, 0] += 1e-13
    cert = ac.certify(adder)
    m, rho, eps = cert["K_size"], cert["rho_U"], cert["eps_E"]
    delta_g = rounding.gamma(2 * m) * m * (1 + eps) * rho * rounding.SLACK
    assert eps > 1e-13
    assert cert["error_bound"] == cert["delta_R"] + m * rho * cert["delta"] * rounding.SLACK + delta_g


# --- verify/adder_pairs.py ----------------------------------------------------------------------

@pytest.mark.parametrize("eps", [0.0, 1e-16, 1e-3])
def test_the_brute_force_error_is_its_stated_formula(eps):
    adder = modular.build_adder(5)
    m = len(adder.freqs)
    cert = {"eps_E": eps, "rho_U": 1.0, "delta_R": 0.0}
    amp = 1 + eps
    prod_err = math.sqrt(2) * rounding.gamma(2) * amp**2
    want = (0.0 + m * 1.0 * (prod_err + rounding.gamma(2 * m) * (amp**2 + prod_err))
            * rounding.SLACK)
    assert ap.brute_force(adder, cert=cert)["error_bound"] == want


def test_network_all_pairs_reports_its_seconds():
    out, elapsed = timed(ap.network_all_pairs, modular.build_adder(7))
    assert 0 <= out["seconds"] <= elapsed


def test_condition_sweep_reports_its_moduli_and_at_most_five_counterexamples():
    ok, out = ap.condition_all_subsets(range(2, 5))
    assert ok and out["moduli"] == "2..4" and out["frequency_sets"] == 1 + 3 + 7
    assert ap.condition_all_subsets([]) == (True, {"moduli": "none", "frequency_sets": 0,
                                                   "counterexamples": []})
    ok, out = ap.condition_all_subsets([2, 3, 4], condition=lambda p, ks: False)
    # gcd = 1 sets (no tie): (1,) at p = 2; (1,), (2,), (1, 2) at 3; the first one at 4
    assert not ok and out["counterexamples"] == [(2, (1,)), (3, (1,)), (3, (2,)), (3, (1, 2)),
                                                 (4, (1,))]
    ok, out = ap.condition_all_subsets([2], condition=lambda p, ks: False)
    assert out["counterexamples"] == [(2, (1,))] and out["frequency_sets"] == 1


# --- verify/pizza_certificate.py ----------------------------------------------------------------

def small_pizza():
    return pizza.build_pizza(5, 8, 16)


def broken_pizza(edit):
    model = small_pizza()
    fc1, fc2 = pizza.linear_layers(model)
    with torch.no_grad():
        edit(model, fc1, fc2)
    return model


@pytest.mark.parametrize("edit,message", [
    (lambda mo, f1, f2: mo.embed.weight[0].__setitem__(2, 1.0),
     "embed writes outside coordinates 0, 1"),
    (lambda mo, f1, f2: f1.weight[0:2, 2].copy_(torch.tensor([1.0, -1.0])),   # both units
     "fc.0 reads outside coordinates 0, 1, d, d+1"),
    (lambda mo, f1, f2: f1.weight[1].__setitem__(0, 0.5),
     "fc.0 unit (j,-) is not minus unit (j,+) (relu(h) + relu(-h) = |h| fails)"),
    (lambda mo, f1, f2: f2.weight[0].__setitem__(1, 0.5),
     "fc.2 reads the two units of a direction differently"),
    (lambda mo, f1, f2: f2.bias.__setitem__(0, 1.0), "a bias is not zero"),
])
def test_the_pizza_structure_messages(edit, message):
    model = broken_pizza(edit)
    assert pc.structure_errors(model) == [message]
    cert, elapsed = timed(pc.certify_pizza, model)
    assert cert == {"certified": False, "reason": message, "seconds": cert["seconds"]}
    assert 0 <= cert["seconds"] <= elapsed


def test_not_a_tiny_model_names_its_type():
    assert pc.structure_errors(modular.build_adder(5)) == ["not a TinyModel: ModularAdder"]


def test_weight_errors_read_the_first_unit_of_each_direction():
    """fc.2's (j,+) columns (0, 2, ...) are the ones measured: an error there shows in eps_W."""
    model = broken_pizza(lambda mo, f1, f2: f2.weight[0].__setitem__(0, f2.weight[0, 0] + 1e-3))
    assert pc.weight_errors(model)["eps_W"] > 1e-3


def test_the_pizza_bounds_carry_their_slack(monkeypatch):
    model = broken_pizza(lambda mo, f1, f2: f2.weight[0].__setitem__(0, f2.weight[0, 0] + 1e-3))
    monkeypatch.setattr(pc, "SLACK", 1.0)
    plain_r, plain_w = pc.rounding_bound(model), pc.weight_errors(model)["eps_W"]
    monkeypatch.setattr(pc, "SLACK", 2.0)
    assert pc.rounding_bound(model) == 2 * plain_r > 0
    assert pc.weight_errors(model)["eps_W"] > plain_w + 0.9e-3


def test_the_pizza_certificate_reports_width_extra_error_and_seconds():
    model = small_pizza()
    cert, elapsed = timed(pc.certify_pizza, model, extra_error=1e-9)
    assert cert["hidden"] == 2 * cert["m"] == pizza.linear_layers(model)[0].weight.shape[0] == 16
    assert cert["extra_error"] == 1e-9
    assert 0 <= cert["seconds"] <= elapsed


# --- verify/rounding.py -------------------------------------------------------------------------

def test_as_abs_is_float64():
    t = torch.tensor([-1.5, 2.0], dtype=torch.float32)
    assert rounding.as_abs(t).dtype == torch.float64
    assert rounding.as_abs(t).tolist() == [1.5, 2.0]


@pytest.mark.parametrize("which", ["cos", "sin"])
def test_pair_error_subtracts_in_float64(which):
    """float32 entries and references: 1 - 2^-30 is exact in float64, rounds to 1 in float32."""
    one = torch.tensor([1.0], dtype=torch.float32)
    ref = torch.tensor([2.0**-30], dtype=torch.float32)
    zero = torch.tensor([0.0], dtype=torch.float32)
    args = (one, zero, ref, zero) if which == "cos" else (zero, one, zero, ref)
    assert rounding.pair_error(*args, ref_err=0.0) == (1 - 2.0**-30) * rounding.SLACK


# --- verify/trig_identities.py ------------------------------------------------------------------

def test_the_identity_table_names_and_symbols():
    table = ti.identity_table()
    assert [row[0] for row in table] == [
        "cos_angle_addition", "sin_angle_addition", "cos_difference", "product_to_sum_cc",
        "product_to_sum_ss", "product_to_sum_sc", "polarization"]
    x, y = sp.symbols("x y", real=True)
    assert table[-1][1] == x * y


def test_identity_holds_rejects_a_negation_and_an_offset_by_one():
    assert not ti.identity_holds(sp.cos(ti.A), -sp.cos(ti.A))
    assert not ti.identity_holds(sp.cos(ti.A) + 1, sp.cos(ti.A))


def test_identity_holds_by_trig_expansion_alone():
    """cot(a + b) = (cot a cot b - 1)/(cot a + cot b): expand_trig proves it; neither the
    exponential rewrite nor simplify does."""
    a, b = ti.A, ti.B
    assert ti.identity_holds(sp.cot(a + b), (sp.cot(a) * sp.cot(b) - 1) / (sp.cot(a) + sp.cot(b)))


def test_symbolic_forward_uses_real_frequencies():
    adder = modular.build_adder(5, (1, 2))
    _, target = ti.symbolic_forward(adder)
    w0, w1 = sp.symbols("w0 w1", real=True)
    assert target == sp.cos(w0 * (ti.A + ti.B - ti.C)) + sp.cos(w1 * (ti.A + ti.B - ti.C))
