"""The pizza construction on Demo 2's TinyModel, every p >= 2 (even p: the b-half read through a
rotation by pi/p): exact argmax, the proved margin and alias bounds, the float64 certificate with
every guard and bound at its edge, broken constructions, and bad input (claim modular.adder_exact,
evidence ``demo_2_pizza``; proofs/modular-addition.md, "Demo 2's architecture")."""

from __future__ import annotations

import json
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
from verify import pizza_certificate as pc
from verify.claims import modular as claims
from verify.rounding import SLACK, row_margins
from verify.trig_identities import identity_holds

DEMO_X, DEMO_Y = torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6])   # Demo 2's inputs
MAIN_TERM_TOL = 2.0**-40     # per unit of m: float64 evaluation error of `pizza.main_term`


def all_pairs(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.arange(p * p)
    return idx // p, idx % p


def error_of(model: TinyModel) -> float:
    return pc.rounding_bound(model) + pc.weight_bound(pizza.directions(model),
                                                      pc.weight_errors(model))


# --- construction vs the proof -----------------------------------------------------------------


@given(data=st.data())
@example(data=None)
def test_pizza_adds_for_random_p_widths_and_pairs(data):
    if data is None:  # Demo 2: p = 97, d = 64, hidden = 128, the demo's inputs
        p, hidden, (x, y) = 97, 128, (DEMO_X, DEMO_Y)
    else:
        p = data.draw(strategies.pizza_moduli(max_p=301), label="p")
        hidden = data.draw(strategies.pizza_widths(p=p), label="hidden")
        x, y = data.draw(strategies.residue_pairs(p=p), label="pairs")
    model = pizza.build_pizza(p, d=64, hidden=hidden)
    m = hidden // 2
    with torch.no_grad():
        logits = model(x, y)                                          # [batch, p]
    assert logits.shape == (len(x), p)
    s = (x + y) % p
    assert torch.equal(logits.argmax(1), s)
    err = error_of(model)
    want = pizza.pair_margin_lower_bound(p, m, x - y) / SLACK - 2 * err
    note(f"margins {row_margins(logits, s)}, bounds {want}")
    assert bool((row_margins(logits, s) >= want).all())
    # the approximate part: logits = r (m/2) c_1 cos(2 pi (s-c)/p) up to r (m/2) A(m)
    alias = pizza.radius(p, x - y)[:, None] * (m / 2) * pizza.alias_bound(m)
    assert bool(((logits - pizza.main_term(p, m, x, y)).abs()
                 <= alias * SLACK + err + MAIN_TERM_TOL * m).all())


@pytest.mark.parametrize("p", [2, 3, 4, 6, 8, 10, 96, 97, 100])
def test_every_pair_is_right_and_above_the_proved_bound(p):
    model = pizza.build_pizza(p)
    x, y = all_pairs(p)
    with torch.no_grad():
        logits = model(x, y)
    s = (x + y) % p
    assert torch.equal(logits.argmax(1), s)
    margins = row_margins(logits, s)
    assert float(margins.min()) >= pizza.margin_lower_bound(p, 64) - 2 * error_of(model)
    assert bool((margins >= pizza.pair_margin_lower_bound(p, 64, x - y) / SLACK
                 - 2 * error_of(model)).all())


def test_radius_never_vanishes_and_reaches_its_bound():
    """r = 2|cos(pi (2(a-b) - e)/(2p))| >= 2 sin(pi/2p), with equality for some a - b, every p."""
    for p in range(2, 200):
        r = pizza.radius(p, torch.arange(p))
        low = 2 * math.sin(math.pi / (2 * p))
        assert float(r.min()) >= low * (1 - 1e-12) and float(r.min()) <= low * (1 + 1e-12)
    # without the rotation, even p has r = 0 at a - b = p/2; with it, odd p has r = 0 too
    assert float(pizza.radius(96, torch.tensor([48]), rotation=0)) < 1e-15
    assert float(pizza.radius(97, torch.tensor([49]), rotation=1)) < 1e-15


def test_demo_2_shapes_parameters_and_answers():
    model = pizza.build_pizza(97)
    assert isinstance(model, TinyModel) and model.embed.weight.dtype == torch.float64
    assert parameter_count(model) == 35233                            # the demo's count
    with torch.no_grad():
        out = model(DEMO_X, DEMO_Y)
    assert list(out.shape) == [3, 97] and out.argmax(1).tolist() == [5, 7, 9]


def test_demo_2_and_even_p_certified_on_all_pairs():
    cert = pc.certify_pizza(pizza.build_pizza(97))
    assert cert["certified"] and cert["proof_certified"] and cert["pairs_certified"]
    bound = pizza.margin_lower_bound(97, 64)
    assert 9.05e-4 < bound < 9.06e-4
    assert bound - 2 * (cert["delta_R"] + cert["delta_W"]) <= cert["min_margin"] <= 1.02 * bound
    even = pc.certify_pizza(pizza.build_pizza(96))
    assert even["certified"] and even["rotation_steps"] == 1
    assert 9.5e-4 < even["min_margin"] < 9.52e-4                      # the figure
    assert pc.certify_pizza(pizza.build_pizza(2, d=2, hidden=6))["certified"]


@given(p=strategies.pizza_moduli(max_p=61))
@example(p=2)
@example(p=96)
@example(p=97)
def test_minimal_width_is_certified_and_one_less_is_not_proved(p):
    m = pizza.min_directions(p)
    cert = pc.certify_pizza(pizza.build_pizza(p, hidden=2 * m))
    assert cert["certified"], cert
    below = pc.certify_pizza(pizza.build_unchecked(p, hidden=2 * m - 2), all_pairs=False)
    assert not below["proved"] and not below["proof_certified"] and not below["certified"]


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
    assert math.pi / (3 * m * m) < pizza.alias_bound(m) <= math.pi / (3 * m * m) + math.pi**3 / m**4
    assert pizza.alias_bound(m + 1) < pizza.alias_bound(m)


def test_alias_bound_is_attained_at_psi_zero():
    """Odd p, a = b = 0, c = 0 (m even): every alias term is +|c_k|: the error is r (m/2) A(m)."""
    p, m = 97, 64
    zero = torch.tensor([0])
    with torch.no_grad():
        err = float(pizza.build_pizza(p)(zero, zero)[0, 0] - pizza.main_term(p, m, zero, zero)[0, 0])
    assert abs(err / (2 * (m / 2) * pizza.alias_bound(m)) - 1) < 1e-9


@given(p=strategies.pizza_moduli(max_p=20001))
@example(p=97)
@example(p=2)
@example(p=96)
def test_min_directions_is_the_threshold(p):
    m = pizza.min_directions(p)
    assert pizza.condition_holds(p, m) and pizza.condition_holds(p, m + 1)
    assert m == 3 or not pizza.condition_holds(p, m - 1)
    pizza.build_pizza(p, d=2, hidden=2 * m)                          # at the bound: accepted
    with pytest.raises(ValueError, match="hidden must be >= "):
        pizza.build_pizza(p, d=2, hidden=2 * m - 2)                  # just below: rejected


def test_condition_numbers():
    assert pizza.min_directions(97) == 9 and pizza.min_hidden(97) == 18
    assert pizza.min_directions(2) == 3 and pizza.min_directions(96) == 9
    assert pizza.condition_holds(5212, 64) and not pizza.condition_holds(5213, 64)
    assert pizza.condition_holds(3, 3) and not pizza.condition_holds(3, 2)   # A(2) > c_1
    assert [pizza.rotation_steps(p) for p in (2, 3, 96, 97)] == [1, 0, 1, 0]


def test_rotated_sum_of_embeddings_is_the_pizza_identity():
    """E(a) + R_theta E(b) = 2 cos(pi(a-b)/p - theta/2) (cos, sin)(pi(a+b)/p + theta/2)."""
    a, b, p, th = sp.symbols("a b p theta", real=True)
    w = 2 * sp.pi / p
    r = 2 * sp.cos(sp.pi * (a - b) / p - th / 2)
    psi = sp.pi * (a + b) / p + th / 2
    assert identity_holds(sp.cos(w * a) + sp.cos(w * b + th), r * sp.cos(psi))
    assert identity_holds(sp.sin(w * a) + sp.sin(w * b + th), r * sp.sin(psi))
    # even p: the unrotated family vanishes at a - b = p/2; the rotated one does not
    assert sp.simplify(r.subs({th: 0, a: b + p / 2})) == 0
    assert sp.simplify(r.subs({th: sp.pi / p, a: b + p / 2})) != 0


# --- the certificate: guards and bounds at their edges -----------------------------------------


def _at_edge(total_other: float, target: float) -> float:
    """x >= 0 with fl(total_other + x) == target exactly."""
    x = target - total_other
    for _ in range(8):
        if total_other + x == target:
            return x
        x = math.nextafter(x, math.inf if total_other + x < target else 0.0)
    raise AssertionError("no float x hits the edge")


def test_proof_decision_at_its_edge_through_certify():
    model = pizza.build_pizza(21, d=8)
    cert = pc.certify_pizza(model, all_pairs=False)
    bound, err = cert["margin_lower_bound"], cert["delta_R"] + cert["delta_W"]
    x = _at_edge(err, bound / 2)
    assert 2 * (err + x) == bound
    assert pc.certify_pizza(model, all_pairs=False, extra_error=x)["proof_certified"] is False
    assert pc.certify_pizza(model, all_pairs=False,
                            extra_error=math.nextafter(x, 0))["proof_certified"] is True


def test_pairs_decision_at_its_edge_and_alone():
    model = pizza.build_pizza(21, d=8)
    cert = pc.certify_pizza(model)
    worst, delta_r = cert["min_margin"], cert["delta_R"]
    x = _at_edge(delta_r, worst / 4)
    assert 4 * (delta_r + x) == worst
    at = pc.certify_pizza(model, extra_error=x)
    assert at["pairs_certified"] is False and at["certified"] is False
    assert at["proof_certified"] is True                      # L/2 > worst/4: the proof still holds
    assert pc.certify_pizza(model, extra_error=math.nextafter(x, 0))["certified"] is True
    # the other way round: pairs right, proof absent (m = 8 < m*(97) = 9)
    cert = pc.certify_pizza(pizza.build_unchecked(97, hidden=16))
    assert cert["pairs_certified"] and not cert["proved"] and not cert["certified"]


@pytest.mark.parametrize("p", [4, 6, 96])
def test_unrotated_even_p_ties_and_is_refused(p):
    model = pizza.build_unchecked(p, rotation=0)
    x = torch.arange(p)
    with torch.no_grad():
        logits = model(x, (x + p // 2) % p)                           # a - b = p/2: v = 0
    assert float(logits.abs().max()) <= pc.rounding_bound(model) + 1e-12
    cert = pc.certify_pizza(model)
    assert cert["proved"] and not cert["proof_certified"] and not cert["certified"]
    assert cert["eps_n"] > math.sin(math.pi / (2 * p))                # the b-half is not the proof's


def test_unchecked_builder_defaults_to_demo_width():
    model = pizza.build_unchecked(5, d=8)
    assert pizza.linear_layers(model)[0].weight.shape == (16, 16) and pizza.directions(model) == 8


def test_rotated_odd_p_ties_and_is_refused():
    model = pizza.build_unchecked(97, rotation=1)
    cert = pc.certify_pizza(model)
    assert not cert["certified"] and not cert["pairs_certified"]


def _model(change):
    model = pizza.build_pizza(9, d=4)
    fc1, fc2 = pizza.linear_layers(model)
    with torch.no_grad():
        change(model, fc1, fc2)
    return model


@pytest.mark.parametrize("change,reason", [
    (lambda m, f1, f2: f1.bias.__setitem__(0, 1e-3), "bias"),
    (lambda m, f1, f2: f2.bias.__setitem__(0, 1e-3), "bias"),
    (lambda m, f1, f2: f1.weight.__setitem__((1, 0), 0.5), "unit (j,-)"),
    (lambda m, f1, f2: f1.weight.__setitem__((0, 2), 0.5), "reads outside"),
    (lambda m, f1, f2: f2.weight.__setitem__((0, 1), 0.5), "two units"),
    (lambda m, f1, f2: m.embed.weight.__setitem__((0, 3), 0.5), "embed writes outside"),
])
def test_each_structure_guard_refuses(change, reason):
    cert = pc.certify_pizza(_model(change))
    assert not cert["certified"] and reason in cert["reason"]


def test_structure_guards_on_shapes_and_types():
    assert "float64" in pc.certify_pizza(pizza.build_pizza(9, d=4, dtype=torch.float32))["reason"]
    assert "TinyModel" in pc.certify_pizza(torch.nn.Linear(2, 2))["reason"]  # type: ignore[arg-type]
    odd = TinyModel(9, 4, hidden=7, dtype=torch.float64)
    assert "even number" in pc.certify_pizza(odd)["reason"]
    two = TinyModel(9, 4, hidden=2, dtype=torch.float64)             # even but below 4
    assert "even number >= 4" in pc.certify_pizza(two)["reason"]
    model = pizza.build_pizza(9, d=4)
    model.fc[2] = torch.nn.Linear(8, 10, dtype=torch.float64)
    assert "fc.2 has shape" in pc.certify_pizza(model)["reason"]


@pytest.mark.parametrize("where", ["embed", "a-half", "b-half", "readout"])
def test_weight_errors_are_measured_not_ignored(where):
    model = pizza.build_pizza(10, d=4)
    fc1, fc2 = pizza.linear_layers(model)
    with torch.no_grad():
        target = {"embed": (model.embed.weight, (3, 0)), "a-half": (fc1.weight, (2, 1)),
                  "b-half": (fc1.weight, (2, 5)), "readout": (fc2.weight, (4, 6))}[where]
        tensor, index = target
        tensor[index] += 1e-9
        if where in ("a-half", "b-half"):
            fc1.weight[3] = -fc1.weight[2]                             # keep (j,-) = -(j,+)
        if where == "readout":
            fc2.weight[4, 7] = fc2.weight[4, 6]                         # keep both units equal
    eps = pc.weight_errors(model)
    key = {"embed": "eps_E", "a-half": "eps_n", "b-half": "eps_n", "readout": "eps_W"}[where]
    assert eps[key] >= 1e-9
    assert pc.certify_pizza(model)["certified"]                        # small: still certified


# --- the recorded sweep over every p -----------------------------------------------------------


def test_certify_range_small_and_the_record():
    small = pc.certify_range(range(2, 21), d=4)
    assert small["certified"] == list(range(2, 18)) and small["condition_fails"] == [18, 19, 20]
    record = json.loads(claims.PIZZA_RECORD.read_text())
    assert record["certified_every_p_from_to"] == [[2, 5200]]
    assert record["real_arithmetic_only"] == list(range(5201, 5213))
    assert record["condition_fails"] == [5213, 5214]
    ok, evidence = claims._agrees_with_record(record, (2, 97, 5200, 5201))
    assert ok, evidence


def test_range_command_writes_the_record(tmp_path, capsys):
    out = tmp_path / "range.json"
    assert pc.main(["--first", "2", "--last", "20", "--d", "4", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["certified_every_p_from_to"] == [[2, 17]]
    assert record["condition_fails"] == [18, 19, 20] and record["real_arithmetic_only"] == []
    assert json.loads(capsys.readouterr().out) == record


def test_range_command_bad_input_is_one_line(capsys):
    assert pc.main(["--first", "2", "--last", "3", "--d", "2"]) == 0     # d = 2: at the bound
    capsys.readouterr()
    for argv in (["--first", "1"], ["--first", "9", "--last", "3"], ["--d", "1"], ["--bogus"]):
        assert pc.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "exc", "words"), [
    ({"p": 1}, ValueError, "p must be >= 2"),
    ({"p": 97.0}, TypeError, "p must be an integer"),
    ({"p": 97, "d": 1}, ValueError, "d must be >= 2"),
    ({"p": 97, "hidden": 127}, ValueError, "hidden must be even"),
    ({"p": 97, "hidden": 16}, ValueError, "hidden must be >= 18"),
    ({"p": 96, "hidden": 16}, ValueError, "hidden must be >= 18"),
    ({"p": 97, "hidden": "128"}, TypeError, "hidden must be an integer"),
    ({"p": 97, "d": 4}, ValueError, "hidden must be >= 18"),      # hidden = 2d = 8 too small
])
def test_build_pizza_bad_input(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        pizza.build_pizza(**kwargs)


def test_other_functions_bad_input():
    with pytest.raises(ValueError, match="p must be >= 2"):
        pizza.min_directions(1)
    with pytest.raises(ValueError, match="m must be >= 2"):
        pizza.alias_bound(1)
    with pytest.raises(ValueError, match="p must be >= 2"):
        pizza.condition_holds(1, 64)
    with pytest.raises(ValueError, match="violates"):
        pizza.margin_lower_bound(97, 8)
    with pytest.raises(ValueError, match="k must be >= 1"):
        pizza.fourier_coeff(0)
    with pytest.raises(ValueError, match="hidden must be even"):
        pizza.build_unchecked(97, hidden=7)
    with pytest.raises(ValueError, match="rotation must be <= 1"):
        pizza.build_unchecked(97, rotation=2)
    with pytest.raises(ValueError, match="extra_error"):
        pc.certify_pizza(pizza.build_pizza(5, d=3), extra_error=-1.0)
    model = pizza.build_pizza(5, d=3)
    with pytest.raises(ValueError, match="x must lie in"):
        model(torch.tensor([5]), torch.tensor([0]))
    with pytest.raises(TypeError, match="y must have an integer dtype"):
        model(torch.tensor([0]), torch.tensor([0.0]))


def test_weight_bound_is_the_stated_formula():
    """delta_W = m (eps_W (2 + 2 eps_E)(1 + eps_n) + eps_n (2 + 2 eps_E) + 2 eps_E), times SLACK."""
    from fractions import Fraction as Fr

    e_e, e_n, e_w, m = Fr(1, 10**3), Fr(3, 10**4), Fr(7, 10**5), 5
    want = m * (e_w * (2 + 2 * e_e) * (1 + e_n) + e_n * (2 + 2 * e_e) + 2 * e_e)
    got = pc.weight_bound(m, {"eps_E": float(e_e), "eps_n": float(e_n), "eps_W": float(e_w)})
    assert got == pytest.approx(float(want) * SLACK, rel=1e-12, abs=0)
