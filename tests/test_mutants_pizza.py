"""constructions/pizza.py pinned weight by weight (mutation testing, issue 13): the weights
against the module docstring's formulas written out again in plain floats, the proved
condition and margins against their closed forms, each bound at its edge, each refusal's message."""

from __future__ import annotations

import math

import mpmath
import pytest
import torch

from constructions import pizza

ATOL = 1e-13  # the builder reduces angles exactly mod 2 pi; direct math.cos differs by ~1e-15
REL = 1e-12   # closed forms evaluated in float64 against the builder's mpmath values


def _expected(p: int, d: int, hidden: int, e: int) -> dict[str, torch.Tensor]:
    """Weights of the module docstring: E(x), rows +-n_j (b-half turned by e pi/p), readout."""
    m = hidden // 2
    W_E = torch.zeros(p, d, dtype=torch.float64)
    W_1 = torch.zeros(hidden, 2 * d, dtype=torch.float64)
    W_2 = torch.zeros(p, hidden, dtype=torch.float64)
    for x in range(p):
        W_E[x, 0], W_E[x, 1] = math.cos(2 * math.pi * x / p), math.sin(2 * math.pi * x / p)
    for j in range(m):
        phi = math.pi * j / m
        for half, angle in ((0, phi), (d, phi - e * math.pi / p)):
            for unit, sign in ((2 * j, 1.0), (2 * j + 1, -1.0)):
                W_1[unit, half] = sign * math.cos(angle)
                W_1[unit, half + 1] = sign * math.sin(angle)
        for c in range(p):
            W_2[c, 2 * j] = W_2[c, 2 * j + 1] = math.cos(
                2 * phi - 2 * math.pi * c / p - e * math.pi / p)
    return {"embed.weight": W_E, "fc.0.weight": W_1, "fc.0.bias": torch.zeros(hidden),
            "fc.2.weight": W_2, "fc.2.bias": torch.zeros(p)}


def _assert_weights(model, want, dtype=torch.float64, atol=ATOL):
    got = dict(model.named_parameters())
    assert sorted(got) == sorted(want)
    for name, value in got.items():
        assert value.dtype == dtype and value.shape == want[name].shape, name
        torch.testing.assert_close(value.double(), want[name].double(), rtol=0, atol=atol,
                                   msg=name)
        assert not value.requires_grad, name


@pytest.mark.parametrize("p, d, hidden", [(5, 3, 6), (6, 2, 8), (7, 4, 10), (4, 3, None)])
def test_build_pizza_weights_are_the_formulas(p, d, hidden):
    model = pizza.build_pizza(p, d, hidden)
    h = 2 * d if hidden is None else hidden
    assert (model.p, model.d) == (p, d)
    _assert_weights(model, _expected(p, d, h, 1 - p % 2))


def test_build_pizza_float32_and_defaults():
    model = pizza.build_pizza(5, 3, dtype=torch.float32)
    _assert_weights(model, _expected(5, 3, 6, 0), torch.float32, atol=1e-6)
    demo = pizza.build_pizza(97)
    assert demo.d == 64 and pizza.directions(demo) == 64
    assert demo.embed.weight.dtype == torch.float64


@pytest.mark.parametrize("p, rotation", [(6, 0), (5, 1), (6, 1), (5, 0)])
def test_build_unchecked_forces_the_rotation(p, rotation):
    model = pizza.build_unchecked(p, 3, 6, rotation=rotation)
    _assert_weights(model, _expected(p, 3, 6, rotation))
    default = pizza.build_unchecked(p, 2, 4)  # below the proved width: accepted here
    _assert_weights(default, _expected(p, 2, 4, 1 - p % 2))
    assert pizza.build_unchecked(p, 2).fc[0].weight.shape == (4, 4)
    small = pizza.build_unchecked(p, 2, 4, dtype=torch.float32)
    _assert_weights(small, _expected(p, 2, 4, 1 - p % 2), torch.float32, atol=1e-6)


def test_build_unchecked_refusals():
    for kwargs, message in (
            (dict(p=1), r"^p must be >= 2, got 1$"), (dict(p=5, d=1), r"^d must be >= 2, got 1$"),
            (dict(p=5, d=2, hidden=1), r"^hidden must be >= 2, got 1$"),
            (dict(p=5, d=2, hidden=5), r"^hidden must be even \(two ReLU units per direction\), "
                                       r"got 5$"),
            (dict(p=5, d=2, rotation=2), r"^rotation must be <= 1, got 2$"),
            (dict(p=5, d=2, rotation=-1), r"^rotation must be >= 0 and <= 1, got -1$")):
        with pytest.raises(ValueError, match=message):
            pizza.build_unchecked(**kwargs)
    assert pizza.directions(pizza.build_unchecked(5, 2, 2)) == 1
    with pytest.raises(ValueError, match=r"^p must be >= 2, got 1$"):  # p is checked before d
        pizza.build_unchecked(1, 1)
    demo = pizza.build_unchecked(5)  # Demo 2's d = 64 and hidden = 2d by default
    assert demo.d == 64 and demo.fc[0].weight.shape == (128, 128)


def test_check_pizza_args_and_build_pizza_refusals():
    assert pizza.check_pizza_args(5, 3, None) == (5, 3, 6)
    assert pizza.check_pizza_args(5, 2, 6) == (5, 2, 6)       # hidden = min_hidden(5): accepted
    assert pizza.check_pizza_args(96, 2, 18) == (96, 2, 18)   # hidden = min_hidden(96)
    for args, message in (
            ((1, 3, 6), r"^p must be >= 2, got 1$"), ((5, 1, 6), r"^d must be >= 2, got 1$"),
            ((5, 3, 1), r"^hidden must be >= 2, got 1$"),
            ((5, 3, 7), r"^hidden must be even \(two ReLU units per direction\), got 7$"),
            ((5, 3, 4), r"^hidden must be >= 6 for p=5 \(got 4\): the proof needs m = hidden/2 "
                        r"directions with c_1 sin\(pi/p\) > A\(m\), i.e. m >= 3$"),
            ((96, 2, 16), r"^hidden must be >= 18 for p=96 \(got 16\): .* i.e. m >= 9$")):
        with pytest.raises(ValueError, match=message):
            pizza.check_pizza_args(*args)
        with pytest.raises(ValueError, match=message):
            pizza.build_pizza(*args)
    assert pizza.check_pizza_args(5, 2, 2 * 3) == (5, 2, 6)
    with pytest.raises(ValueError, match=r"^p must be >= 2, got 1$"):  # p is checked before d
        pizza.check_pizza_args(1, 1, 6)


def test_linear_layers_and_directions():
    model = pizza.build_pizza(5, 3, 8)
    fc1, fc2 = pizza.linear_layers(model)
    assert fc1 is model.fc[0] and fc2 is model.fc[2]
    m = pizza.directions(model)
    assert m == 4 and type(m) is int


# --- the proved condition, the margins, the main term ----------------------------------------

def test_fourier_coeff_values():
    for k in (1, 2, 3, 6):
        assert pizza.fourier_coeff(k) == pytest.approx(
            4 / math.pi * (1 if k % 2 else -1) / (4 * k * k - 1), rel=1e-15)


@pytest.mark.parametrize("m", [2, 3, 9, 40])
def test_alias_bound_closed_form(m):
    want = (1 / math.tan(math.pi / (2 * m)) - 1 / math.tan(3 * math.pi / (2 * m))) / m \
        - 4 / (3 * math.pi)
    assert pizza.alias_bound(m) == pytest.approx(want, rel=REL)
    # the series it sums, truncated (terms ~ 1/t^2; the tail past T is below 1/(m^2 T))
    series = sum(abs(pizza.fourier_coeff(m * t + 1)) + abs(pizza.fourier_coeff(m * t - 1))
                 for t in range(1, 3000))
    assert 0 <= want - series < 1 / (m * m * 2999)


def test_alias_bound_refuses_m_below_2():
    with pytest.raises(ValueError, match=r"^m must be >= 2, got 1$"):
        pizza.alias_bound(1)


@pytest.mark.parametrize("p, m", [(5, 3), (96, 9), (2, 7), (97, 20)])
def test_gap_and_margin_closed_forms(p, m):
    gap = pizza.C1 * math.sin(math.pi / p) - pizza.alias_bound(m)
    assert float(pizza._gap_mp(p, m)) == pytest.approx(gap, rel=REL)
    assert pizza.condition_holds(p, m) is True
    want = 2 * math.sin(math.pi / (2 * p)) * m * math.sin(math.pi / p) * gap
    assert pizza.margin_lower_bound(p, m) == pytest.approx(want, rel=REL)
    diff = torch.arange(-p + 1, p)
    r = 2 * torch.cos(math.pi * (2 * diff.double() - (1 - p % 2)) / (2 * p)).abs()
    torch.testing.assert_close(pizza.pair_margin_lower_bound(p, m, diff),
                               r * m * math.sin(math.pi / p) * gap, rtol=REL, atol=0)


@pytest.mark.parametrize("p, m", [(96, 8), (5, 2), (97, 3)])
def test_condition_fails_and_margin_is_refused(p, m):
    assert pizza.condition_holds(p, m) is False
    with pytest.raises(ValueError, match=rf"^\(p, m\) = \({p}, {m}\) violates c_1 sin\(pi/p\) > "
                                         rf"A\(m\): no margin is proved$"):
        pizza.margin_lower_bound(p, m)


def test_condition_is_strict(monkeypatch):
    monkeypatch.setattr(pizza, "_gap_mp", lambda p, m: mpmath.mpf(0))
    assert pizza.condition_holds(5, 3) is False
    monkeypatch.setattr(pizza, "_gap_mp", lambda p, m: mpmath.mpf("1e-30"))
    assert pizza.condition_holds(5, 3) is True


def test_condition_refusals():
    with pytest.raises(ValueError, match=r"^p must be >= 2, got 1$"):
        pizza.condition_holds(1, 3)
    with pytest.raises(ValueError, match=r"^m must be >= 2, got 1$"):
        pizza.condition_holds(5, 1)
    assert pizza.condition_holds(2, 3) is True  # p = 2 accepted


def test_min_hidden_and_rotation_steps():
    assert [pizza.min_hidden(p) for p in (2, 5, 96, 97)] == [6, 6, 18, 18]
    assert [pizza.rotation_steps(p) for p in (2, 3, 96, 97)] == [1, 0, 1, 0]
    with pytest.raises(ValueError, match=r"^p must be >= 2, got 1$"):
        pizza.rotation_steps(1)


@pytest.mark.parametrize("p", [5, 6])
def test_radius_is_the_documented_formula(p):
    diff = torch.arange(-p + 1, p)
    for e in (0, 1):
        want = torch.tensor([2 * abs(math.cos(math.pi * (2 * int(t) - e) / (2 * p))) for t in diff],
                            dtype=torch.float64)
        got = pizza.radius(p, diff, rotation=e)
        assert got.dtype == torch.float64
        torch.testing.assert_close(got, want, rtol=0, atol=ATOL)
    torch.testing.assert_close(pizza.radius(p, diff), pizza.radius(p, diff, 1 - p % 2),
                               rtol=0, atol=0)


@pytest.mark.parametrize("p, m", [(5, 3), (6, 4)])
def test_main_term_is_the_documented_formula(p, m):
    x = torch.tensor([0, 1, 4, 3, 2])
    y = torch.tensor([0, 4, 4, 1, 3])
    got = pizza.main_term(p, m, x, y)
    e = 1 - p % 2
    want = torch.tensor([[2 * abs(math.cos(math.pi * (2 * (a - b) - e) / (2 * p))) * (m / 2)
                          * pizza.C1 * math.cos(2 * math.pi * (a + b - c) / p)
                          for c in range(p)] for a, b in zip(x.tolist(), y.tolist())],
                        dtype=torch.float64)
    assert got.shape == (5, p) and got.dtype == torch.float64
    torch.testing.assert_close(got, want.double(), rtol=0, atol=ATOL)
