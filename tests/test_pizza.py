"""The pizza construction on Demo 2's TinyModel: exact argmax for odd p, the proved margin and
alias bounds, broken constructions that must fail, and bad input (claim modular.adder_exact,
evidence ``demo_2_pizza``; proofs/modular-addition.md, "Demo 2's architecture")."""

from __future__ import annotations

import math

import mpmath
import pytest
import sympy as sp
import torch
from hypothesis import example, given, note
from hypothesis import strategies as st

from constructions import pizza
from constructions.tiny_mlp import TinyModel, parameter_count
from tests import strategies
from verify.claims import modular as claims

DEMO_X, DEMO_Y = torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6])   # Demo 2's inputs


def margins(logits: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    return claims.row_margins(logits, answers)


def all_pairs(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.arange(p * p)
    return idx // p, idx % p


# --- construction vs the proof -----------------------------------------------------------------


@given(data=st.data())
@example(data=None)
def test_pizza_adds_for_random_odd_p_widths_and_pairs(data):
    if data is None:  # Demo 2: p = 97, d = 64, hidden = 128, the demo's inputs
        p, hidden, (x, y) = 97, 128, (DEMO_X, DEMO_Y)
    else:
        p = data.draw(strategies.odd_moduli(max_p=301), label="p")
        hidden = data.draw(strategies.pizza_widths(p=p), label="hidden")
        x, y = data.draw(strategies.residue_pairs(p=p), label="pairs")
    model = pizza.build_pizza(p, d=64, hidden=hidden)
    m = hidden // 2
    with torch.no_grad():
        logits = model(x, y)                                          # [batch, p]
    assert logits.shape == (len(x), p)
    s = (x + y) % p
    assert torch.equal(logits.argmax(1), s)
    err = claims.pizza_rounding_bound(model) + claims.pizza_weight_bound(
        m, claims.pizza_weight_errors(model))
    want = pizza.pair_margin_lower_bound(p, m, x - y) / claims.SLACK - 2 * err
    note(f"margins {margins(logits, s)}, bounds {want}")
    assert bool((margins(logits, s) >= want).all())
    # the approximate part: logits = r (m/2) c_1 cos(2 pi (s-c)/p) up to r (m/2) A(m)
    alias = pizza.radius(p, x - y)[:, None] * (m / 2) * pizza.alias_bound(m)
    main = pizza.main_term(p, m, x, y)
    assert bool(((logits - main).abs() <= alias * claims.SLACK + err
                 + claims.MAIN_TERM_TOL * m).all())


def test_demo_2_shapes_parameters_and_answers():
    model = pizza.build_pizza(97)
    assert isinstance(model, TinyModel) and model.embed.weight.dtype == torch.float64
    assert parameter_count(model) == 35233                            # the demo's count
    with torch.no_grad():
        out = model(DEMO_X, DEMO_Y)
    assert list(out.shape) == [3, 97]
    assert out.argmax(1).tolist() == [5, 7, 9]


def test_demo_2_certified_on_all_pairs_with_sound_margins():
    cert = claims.certify_pizza(pizza.build_pizza(97))
    print(cert)
    assert cert["certified"] and cert["proof_certified"] and cert["pairs_certified"]
    assert cert["pairs_below_proved_bound"] == 0 and cert["logits_within_alias_bound"]
    bound = pizza.margin_lower_bound(97, 64)
    assert 9.05e-4 < bound < 9.06e-4
    # computed margin: above the proved bound, and the bound is within 2% of it (sharp)
    assert bound - 2 * (cert["delta_R"] + cert["delta_W"]) <= cert["min_margin"] <= 1.02 * bound
    assert cert["min_margin"] > 1e6 * 4 * cert["delta_R"]
    # the same argmax as a direct all-pairs forward pass
    x, y = all_pairs(97)
    with torch.no_grad():
        assert torch.equal(pizza.build_pizza(97)(x, y).argmax(1), (x + y) % 97)


@given(p=strategies.odd_moduli(max_p=61))
@example(p=3)
@example(p=97)
def test_minimal_width_is_certified_on_all_pairs(p):
    cert = claims.certify_pizza(pizza.build_pizza(p, hidden=pizza.min_hidden(p)))
    assert cert["certified"], cert


def test_check_pizza_passes_and_reports_the_demo():
    ok, evidence = claims.check_pizza()
    assert ok, evidence["failures"]
    assert evidence["demo"]["p"] == 97 and evidence["demo"]["m"] == 64
    assert evidence["min_hidden_p97"] == 18


def test_alias_bound_is_attained_at_psi_zero():
    """a = b = 0, c = 0 (m even): every alias term is +|c_k|, so the error equals r (m/2) A(m)."""
    p, m = 97, 64
    model = pizza.build_pizza(p)
    zero = torch.tensor([0])
    with torch.no_grad():
        err = float(model(zero, zero)[0, 0] - pizza.main_term(p, m, zero, zero)[0, 0])
    assert abs(err / (2 * (m / 2) * pizza.alias_bound(m)) - 1) < 1e-9


# --- the analysis: Fourier series, alias sum, condition ----------------------------------------


@given(y=st.floats(-10, 10), n_terms=st.integers(1, 200))
def test_abs_cos_fourier_series_with_tail_bound(y, n_terms):
    """|cos y| = 2/pi + sum c_k cos(2ky); the tail after K terms is <= 2 / (pi (2K + 1))."""
    partial = 2 / math.pi + sum(pizza.fourier_coeff(k) * math.cos(2 * k * y)
                                for k in range(1, n_terms + 1))
    assert abs(abs(math.cos(y)) - partial) <= 2 / (math.pi * (2 * n_terms + 1)) + 1e-12


@given(m=st.integers(2, 400))
@example(m=64)
def test_alias_closed_form_equals_series(m):
    with mpmath.workdps(30):
        series = mpmath.nsum(lambda t: 4 / mpmath.pi * (1 / (4 * (m * t + 1) ** 2 - 1)
                                                         + 1 / (4 * (m * t - 1) ** 2 - 1)),
                             [1, mpmath.inf])
    assert abs(pizza.alias_bound(m) - float(series)) <= 1e-14
    # asymptotics: pi/(3 m^2) < A(m) <= pi/(3 m^2) + pi^3/m^4, and A decreases
    assert math.pi / (3 * m * m) < pizza.alias_bound(m) <= math.pi / (3 * m * m) + math.pi**3 / m**4
    assert pizza.alias_bound(m + 1) < pizza.alias_bound(m)


@given(p=strategies.odd_moduli(max_p=20001))
@example(p=97)
@example(p=3)
def test_min_directions_is_the_threshold(p):
    m = pizza.min_directions(p)
    assert pizza.condition_holds(p, m) and pizza.condition_holds(p, m + 1)
    assert m == 3 or not pizza.condition_holds(p, m - 1)
    assert pizza.min_hidden(p) == 2 * m
    pizza.build_pizza(p, d=2, hidden=2 * m)                          # at the bound: accepted
    with pytest.raises(ValueError, match="hidden must be >= "):
        pizza.build_pizza(p, d=2, hidden=2 * m - 2)                  # just below: rejected


def test_condition_numbers_for_demo_and_largest_p():
    assert pizza.min_directions(97) == 9 and pizza.min_hidden(97) == 18
    assert pizza.condition_holds(5211, 64) and not pizza.condition_holds(5213, 64)
    assert pizza.condition_holds(3, 3) and not pizza.condition_holds(3, 2)   # A(2) > c_1


def test_sum_of_embeddings_is_the_pizza_identity():
    """E(a) + E(b) = 2 cos(pi(a-b)/p) (cos, sin)(pi(a+b)/p); for even p, a - b = p/2 gives 0."""
    a, b, p = sp.symbols("a b p", real=True)
    w = 2 * sp.pi / p
    half = sp.pi / p
    lhs_cos = sp.cos(w * a) + sp.cos(w * b)
    lhs_sin = sp.sin(w * a) + sp.sin(w * b)
    rhs = 2 * sp.cos(half * (a - b))
    assert claims.identity_holds(lhs_cos, rhs * sp.cos(half * (a + b)))
    assert claims.identity_holds(lhs_sin, rhs * sp.sin(half * (a + b)))
    assert sp.simplify(rhs.subs(a, b + p / 2)) == 0


# --- broken constructions must fail ------------------------------------------------------------


def broken_readout(p: int = 97, d: int = 64, hidden: int | None = None) -> TinyModel:
    model = pizza.build_pizza(p, d, hidden)
    with torch.no_grad():
        fc2 = pizza.linear_layers(model)[1]
        fc2.weight[5] = fc2.weight[6]                 # logit 5 copies logit 6
    return model


def test_wrong_readout_row_fails():
    cert = claims.certify_pizza(broken_readout())
    assert not cert["certified"] and not cert["proof_certified"] and not cert["pairs_certified"]
    ok, evidence = claims.check_pizza(cases=[(97, 64, None, True)], build=broken_readout)
    assert not ok and evidence["failures"]


def test_too_few_directions_fails():
    # m = 3 for p = 97: the argmax is wrong on some pairs
    model = pizza.build_unchecked(97, hidden=6)
    x, y = all_pairs(97)
    with torch.no_grad():
        assert not torch.equal(model(x, y).argmax(1), (x + y) % 97)
    cert = claims.certify_pizza(model)
    assert not cert["proved"] and not cert["certified"] and not cert["pairs_certified"]
    # m = 8, one below the proved 9: correct on every pair, but NOT proved (sufficient condition)
    cert = claims.certify_pizza(pizza.build_unchecked(97, hidden=16))
    assert cert["pairs_certified"] and not cert["proved"] and not cert["certified"]


@pytest.mark.parametrize("p", [4, 6, 96])
def test_even_p_forced_through_ties(p):
    model = pizza.build_unchecked(p)
    x = torch.arange(p)
    y = (x + p // 2) % p                                              # a - b = p/2: v = 0
    with torch.no_grad():
        logits = model(x, y)
    err = claims.pizza_rounding_bound(model) + claims.pizza_weight_bound(
        64, claims.pizza_weight_errors(model))
    assert float(logits.abs().max()) <= err                           # all logits 0 up to rounding
    cert = claims.certify_pizza(model)
    assert not cert["proved"] and not cert["certified"] and not cert["pairs_certified"]


def test_broken_structure_is_reported():
    model = pizza.build_pizza(9, d=4)
    with torch.no_grad():
        pizza.linear_layers(model)[0].bias[0] = 1e-3
    cert = claims.certify_pizza(model)
    assert not cert["certified"] and "bias" in cert["reason"]
    model = pizza.build_pizza(9, d=4)
    with torch.no_grad():
        pizza.linear_layers(model)[0].weight[1] *= 0.5                                  # (j,-) != -(j,+)
    assert "unit (j,-)" in claims.certify_pizza(model)["reason"]
    assert "float64" in claims.certify_pizza(pizza.build_pizza(9, d=4, dtype=torch.float32))[
        "reason"]


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "exc", "words"), [
    ({"p": 96}, ValueError, "p must be odd"),
    ({"p": 2}, ValueError, "p must be >= 3"),
    ({"p": 97.0}, TypeError, "p must be an integer"),
    ({"p": 97, "d": 1}, ValueError, "d must be >= 2"),
    ({"p": 97, "hidden": 127}, ValueError, "hidden must be even"),
    ({"p": 97, "hidden": 16}, ValueError, "hidden must be >= 18"),
    ({"p": 97, "hidden": "128"}, TypeError, "hidden must be an integer"),
    ({"p": 97, "d": 4}, ValueError, "hidden must be >= 18"),      # hidden = 2d = 8 too small
])
def test_build_pizza_bad_input(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        pizza.build_pizza(**kwargs)


def test_other_functions_bad_input():
    with pytest.raises(ValueError, match="p must be odd"):
        pizza.min_directions(10)
    with pytest.raises(ValueError, match="m must be >= 2"):
        pizza.alias_bound(1)
    with pytest.raises(ValueError, match="p must be >= 3"):
        pizza.condition_holds(2, 64)
    with pytest.raises(ValueError, match="violates"):
        pizza.margin_lower_bound(97, 8)
    with pytest.raises(ValueError, match="k must be >= 1"):
        pizza.fourier_coeff(0)
    with pytest.raises(ValueError, match="hidden must be even"):
        pizza.build_unchecked(97, hidden=7)
    model = pizza.build_pizza(5, d=3)
    with pytest.raises(ValueError, match="x must lie in"):
        model(torch.tensor([5]), torch.tensor([0]))
    with pytest.raises(TypeError, match="y must have an integer dtype"):
        model(torch.tensor([0]), torch.tensor([0.0]))
    assert not claims.certify_pizza(torch.nn.Linear(2, 2))["certified"]  # type: ignore[arg-type]
