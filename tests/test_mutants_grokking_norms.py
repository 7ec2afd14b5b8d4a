"""The explicit circuits' norms behind grokking.memorization_norm and grokking.generalization_norm
(verify/grokking/norms.py, rescale.py, growth.py): closed forms pinned against independent
computations, each condition of the lookup check and of Lemma 3 broken alone, each tolerance at
its edge (mutation testing, issue 13). Small sizes only; the one training is a few steps."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from constructions import modular
from constructions.tiny_mlp import TinyModel
from verify.grokking import growth, metrics, norms, rescale
from verify.grokking.train import RunConfig, make_dataset

# --- norms.py ------------------------------------------------------------------------------------


def test_margin_for_loss_formula_and_refusals():
    g = norms.margin_for_loss(23)
    assert g == math.log(22 / math.expm1(0.01))
    assert math.log1p(22 * math.exp(-g)) == pytest.approx(0.01, rel=1e-12)
    assert norms.TARGET_LOSS == 0.01
    assert norms.margin_for_loss(2, 0.5) == math.log(1 / math.expm1(0.5))
    with pytest.raises(ValueError, match="^p must be >= 2"):
        norms.margin_for_loss(1)
    with pytest.raises(TypeError, match="^p must be an integer"):
        norms.margin_for_loss(5.0)
    with pytest.raises(ValueError, match="^eps must be a finite number > 0"):
        norms.margin_for_loss(5, 0.0)


def test_lookup_scales_and_least_norm():
    p, gamma = 7, 3.0
    alpha, beta = norms.lookup_scales(p, gamma)
    c = 1 - 1 / p
    assert alpha * beta == pytest.approx(gamma, rel=1e-14)
    assert alpha ** 2 == pytest.approx(gamma * math.sqrt(c / 3), rel=1e-14)
    assert beta ** 2 == pytest.approx(gamma * math.sqrt(3 / c), rel=1e-14)
    assert 3 * alpha ** 2 == pytest.approx(c * beta ** 2, rel=1e-14)       # AM-GM balance
    assert norms.lookup_min_norm2(p, 10, gamma) == pytest.approx(
        p + 2 * math.sqrt(3 * c) * gamma * 10, rel=1e-15)
    assert norms.lookup_min_norm2(p, 10, gamma) == pytest.approx(7 + 60 * math.sqrt(18 / 7))


def test_build_lookup_weights_margin_and_norm():
    p, gamma = 5, 2.0
    pairs, labels = torch.tensor([[0, 1], [3, 3], [4, 0]]), torch.tensor([2, 0, 4])
    m = norms.build_lookup(p, pairs, labels, gamma)
    alpha, beta = norms.lookup_scales(p, gamma)
    assert m.embed.weight.dtype == torch.float64
    assert torch.equal(m.embed.weight, torch.eye(p, dtype=torch.float64))
    w0, b0, w2, b2 = m.fc[0].weight, m.fc[0].bias, m.fc[2].weight, m.fc[2].bias
    assert w0.shape == (3, 2 * p) and w2.shape == (p, 3)
    expect0 = torch.zeros(3, 2 * p, dtype=torch.float64)
    for i, (a, b) in enumerate(pairs.tolist()):
        expect0[i, a], expect0[i, p + b] = alpha, alpha
    assert torch.equal(w0, expect0)
    assert torch.equal(b0, torch.full((3,), -alpha, dtype=torch.float64))
    expect2 = torch.full((p, 3), -beta / p, dtype=torch.float64)
    expect2[labels, torch.arange(3)] += beta
    assert torch.equal(w2, expect2) and torch.equal(b2, torch.zeros(p, dtype=torch.float64))
    assert not any(q.requires_grad for q in m.parameters())
    logits = m(pairs[:, 0], pairs[:, 1])
    correct = logits.gather(1, labels[:, None])[:, 0]
    other = logits.scatter(1, labels[:, None], -math.inf).amax(1)
    assert torch.allclose(correct - other, torch.full((3,), gamma, dtype=torch.float64))
    assert norms.squared_norm(m) == pytest.approx(norms.lookup_min_norm2(p, 3, gamma), rel=1e-12)
    # an unstored pair: no unit fires, every logit 0
    assert torch.equal(m(torch.tensor([1]), torch.tensor([2])), torch.zeros(1, p, dtype=torch.float64))
    off = norms.build_lookup(p, pairs, labels, gamma, alpha=2 * alpha)
    assert off.fc[0].bias[0] == -2 * alpha and off.fc[2].weight[2, 0] == pytest.approx(
        (gamma / (2 * alpha)) * (1 - 1 / p))
    assert norms.build_lookup(p, pairs[:1], labels[:1], gamma).fc[0].weight.shape == (1, 2 * p)


@pytest.mark.parametrize("pairs, labels, kwargs, error, match", [
    (torch.tensor([0, 1]), torch.tensor([1]), {}, ValueError, r"pairs must be \[N, 2\]"),
    (torch.tensor([[0, 1, 2]]), torch.tensor([1]), {}, ValueError, r"pairs must be \[N, 2\]"),
    (torch.tensor([[0, 1]]), torch.tensor([1, 2]), {}, ValueError, r"labels \[N\]"),
    (torch.zeros(0, 2, dtype=torch.long), torch.zeros(0, dtype=torch.long), {}, ValueError,
     "N >= 1"),
    (torch.tensor([[0, 1], [0, 1]]), torch.tensor([1, 2]), {}, ValueError, "distinct"),
    (torch.tensor([[0, 1]]), torch.tensor([1]), {"alpha": 0.0}, ValueError, "^alpha must be"),
    (torch.tensor([[0, 1]]), torch.tensor([1]), {"p": 1}, ValueError, "^p must be >= 2"),
])
def test_build_lookup_refuses(pairs, labels, kwargs, error, match):
    kwargs = dict(kwargs)              # the parameter's dict is shared between runs
    p = kwargs.pop("p", 5)
    with pytest.raises(error, match=match):
        norms.build_lookup(p, pairs, labels, 2.0, **kwargs)


def test_squared_norm_counts_every_parameter():
    m = nn.Linear(2, 3)
    with torch.no_grad():
        m.weight.fill_(2.0)
        m.bias.fill_(-1.0)
    assert norms.squared_norm(m) == 6 * 4 + 3


def test_min_norm2_rescaled_against_a_grid():
    # degrees (2, 1), norms (3, 5), ratio 4: least 3 s^2 + 5 t^2 with s^2 t = 4
    got = norms.min_norm2_rescaled({"a": 3.0, "b": 5.0}, {"a": 2, "b": 1}, 4.0)
    grid = min(3 * s * s + 5 * (4 / (s * s)) ** 2 for s in (1 + i / 10000 for i in range(20000)))
    assert got == pytest.approx(grid, rel=1e-6)
    assert got == pytest.approx(3 * 4 ** (2 / 3) * (3 / 2) ** (2 / 3) * 5 ** (1 / 3), rel=1e-14)
    assert norms.min_norm2_rescaled({"a": 4.0}, {"a": 1}, 3.0) == pytest.approx(36.0)
    with pytest.raises(ValueError, match="^ratio must be a finite number > 0"):
        norms.min_norm2_rescaled({"a": 4.0}, {"a": 1}, 0.0)


def test_fit_exponent_and_its_refusals():
    assert norms.fit_exponent([1.0, 2.0, 4.0], [3.0, 12.0, 48.0]) == pytest.approx(2.0)
    assert norms.fit_exponent([1.0, 2.0], [5.0, 5.0]) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="two equal-length lists of >= 2 points"):
        norms.fit_exponent([1.0], [1.0])
    with pytest.raises(ValueError, match="equal-length"):
        norms.fit_exponent([1.0, 2.0], [1.0, 2.0, 3.0])


# --- rescale.py ----------------------------------------------------------------------------------

P = 5


def lookup_all(p: int = P, gamma: float = 3.0) -> TinyModel:
    """The lookup memorizer of (a + b) mod p on every pair: classifies them all."""
    a, b = metrics.all_pairs(p)
    return norms.build_lookup(p, torch.stack([a, b], 1), (a + b) % p, gamma)


def test_loss_is_the_scaled_model_s_cross_entropy():
    torch.manual_seed(0)
    m = TinyModel(P, 3, dtype=torch.float64)
    a, b = metrics.all_pairs(P)
    y = (a + b) % P
    st = m.state_dict()
    assert rescale._loss(st, a, b, y, 2.5) == pytest.approx(float(F.cross_entropy(2.5 * m(a, b).detach(), y)),
                                                            rel=1e-12)


def test_logit_scale_for_loss_reaches_the_target():
    m = lookup_all()
    a, b = metrics.all_pairs(P)
    y = (a + b) % P
    st = m.state_dict()
    for target in (0.01, 0.3):
        R = rescale.logit_scale_for_loss(st, a, b, y, target)
        assert rescale._loss(st, a, b, y, R) == pytest.approx(target, rel=1e-9)
    assert rescale.logit_scale_for_loss(st, a, b, y) == rescale.logit_scale_for_loss(st, a, b, y, 0.01)
    assert rescale.TARGET_LOSS == 0.01
    # at R = e^-20 the loss is ln p to 1e-8: a target above it is out of reach
    assert rescale.logit_scale_for_loss(st, a, b, y, math.log(P) + 1e-3) is None
    assert rescale.logit_scale_for_loss(st, a, b, y, math.log(P) - 1e-3) is not None
    # a margin of 3e-9: even at R = e^20 the loss stays above the target
    faint = {**st, "fc.2.weight": st["fc.2.weight"] * 1e-9}
    assert rescale._loss(faint, a, b, y, math.exp(20)) > 0.01
    assert rescale.logit_scale_for_loss(faint, a, b, y) is None
    assert rescale.logit_scale_for_loss({**st, "fc.2.weight": st["fc.2.weight"] * 1e-7}, a, b, y)
    wrong = (y + 1) % P
    assert rescale.logit_scale_for_loss(st, a, b, wrong) is None
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="target must be > 0"):
            rescale.logit_scale_for_loss(st, a, b, y, bad)


def test_logit_scale_for_loss_accepts_float32_weights():
    m = lookup_all().float()
    a, b = metrics.all_pairs(P)
    R = rescale.logit_scale_for_loss(m.state_dict(), a, b, (a + b) % P)
    R64 = rescale.logit_scale_for_loss(lookup_all().state_dict(), a, b, (a + b) % P)
    assert R == pytest.approx(R64, rel=1e-6)


def _cost_grid(state, R):
    """The rescaled squared norm minimized on a grid of log s (each unit at its AM-GM best)."""
    st = {k: v.double() for k, v in state.items()}
    e2 = float((st["embed.weight"] ** 2).sum())
    w1, c1 = (st["fc.0.weight"] ** 2).sum(1), st["fc.0.bias"] ** 2
    w2 = R ** 2 * (st["fc.2.weight"] ** 2).sum(0)
    best = math.inf
    for i in range(-3000, 3001):
        s2 = math.exp(2 * i / 1000)
        best = min(best, s2 * e2 + float((2 * torch.sqrt((w1 / s2 + c1) * w2)).sum())
                   + R ** 2 * float((st["fc.2.bias"] ** 2).sum()))
    return best


def test_least_norm2_at_scale_against_a_grid_and_the_raw_norm():
    torch.manual_seed(1)
    m = TinyModel(P, 3, dtype=torch.float64)
    st = m.state_dict()
    out = rescale.least_norm2_at_scale(st, 1.7)
    assert out["least_norm2"] == pytest.approx(_cost_grid(st, 1.7), rel=1e-6)
    assert out["least_norm2"] <= _cost_grid(st, 1.7) * (1 + 1e-12)
    assert out["raw_norm2"] == pytest.approx(norms.squared_norm(m), rel=1e-12)
    s = out["embed_scale"]
    assert 0.05 < s < 20
    # at the embedding scale found, the cost equals the least norm
    st2 = {**st, "embed.weight": st["embed.weight"] * s, "fc.0.weight": st["fc.0.weight"] / s}
    assert rescale.least_norm2_at_scale(st2, 1.7)["embed_scale"] == pytest.approx(1.0, rel=1e-4)
    assert (rescale.LOG_R_RANGE, rescale.LOG_S_RANGE, rescale.SEARCH_ITERS) == \
        ((-20.0, 20.0), (-12.0, 12.0), 200)


def test_least_norm2_at_scale_with_an_output_bias():
    st = lookup_all().state_dict()
    st = {**st, "fc.2.bias": torch.full((P,), 0.5, dtype=torch.float64)}
    out = rescale.least_norm2_at_scale(st, 2.0)
    assert out["least_norm2"] == pytest.approx(_cost_grid(st, 2.0), rel=1e-6)
    plain = rescale.least_norm2_at_scale(lookup_all().state_dict(), 2.0)
    assert out["least_norm2"] - plain["least_norm2"] == pytest.approx(4.0 * P * 0.25, rel=1e-9)
    assert out["raw_norm2"] - plain["raw_norm2"] == pytest.approx(P * 0.25, rel=1e-9)


def test_least_norm2_at_loss_of_the_lookup_is_its_closed_form():
    p, n = 23, 40
    gamma = norms.margin_for_loss(p)
    gen = torch.Generator().manual_seed(3)
    flat = torch.randperm(p * p, generator=gen)[:n]
    pairs = torch.stack([flat // p, flat % p], 1)
    labels = torch.randint(0, p, (n,), generator=gen)
    m = norms.build_lookup(p, pairs, labels, gamma)
    out = rescale.least_norm2_at_loss(m.state_dict(), pairs[:, 0], pairs[:, 1], labels)
    assert out["least_norm2"] == pytest.approx(growth.lookup_least(p, n, gamma), rel=1e-7)
    assert out["target_loss"] == 0.01 and out["R"] == pytest.approx(1.0, rel=1e-6)
    assert set(out) == {"R", "target_loss", "least_norm2", "embed_scale", "raw_norm2"}
    bad = rescale.least_norm2_at_loss(m.state_dict(), pairs[:, 0], pairs[:, 1], (labels + 1) % p)
    assert bad == {"R": None, "least_norm2": None, "target_loss": 0.01}
    half = rescale.least_norm2_at_loss(m.state_dict(), pairs[:, 0], pairs[:, 1], labels, 0.5)
    assert half["target_loss"] == 0.5 and half["R"] < out["R"]


# --- growth.py: the lookup ---------------------------------------------------------------------

def test_growth_constants_are_the_recorded_settings():
    assert (growth.LINEAR_EXPONENT_TOL, growth.TRAINED_EXPONENT_BAND, growth.CONSTANT_EXPONENT_TOL,
            growth.ADDER_EXPONENT_BAND, growth.REL_TOL, growth.RESCALE_REL_TOL) == \
        (0.1, (0.2, 0.9), 0.1, (1.1, 1.3), 1e-9, 1e-6)
    assert (growth.MEM_P, growth.MEM_NS, growth.MEM_SEEDS, growth.MEM_STEPS) == \
        (23, (50, 100, 200, 400), (0, 1), 3000)
    assert growth.MEMORIZER_SETTING == {"model": "tiny", "p": 23, "d": 64, "labels": "random",
                                        "lr": 1e-2, "wd": 1.0, "beta1": 0.9, "beta2": 0.98,
                                        "log_every": 10}
    assert growth.GEN_PS == (11, 23, 47, 97, 199, 401, 1009) and growth.FEW_FREQS == (1, 2, 3)
    assert growth.HOMOGENEOUS_DEGREES == {"embed.W_E": 2, "blocks.0.mlp.W_in": 2,
                                          "blocks.0.mlp.W_out": 1, "unembed.W_U": 1}


def test_exponent_of_points():
    assert growth.exponent([(2, 8.0), (4, 64.0)]) == pytest.approx(3.0)


def test_lookup_least_against_a_grid():
    p, n, gamma = 23, 100, norms.margin_for_loss(23)
    c = 1 - 1 / p
    grid = min(2 * a * math.sqrt(2 * p * n) + n * a * a + n * c * gamma ** 2 / (a * a)
               for a in (0.5 + i / 20000 for i in range(60000)))
    assert growth.lookup_least(p, n, gamma) == pytest.approx(grid, rel=1e-8)
    assert growth.lookup_least(p, n, gamma) == pytest.approx(1865.6, abs=0.05)
    assert growth.lookup_least(p, n, gamma) <= grid


class Broken(TinyModel):
    """A lookup memorizer with one thing changed: its forward (``shift``: the stored label's
    logit lowered), an extra parameter (``extra``: counted by the norm only) or its state dict
    (``state``: what the rescaling measures)."""

    def __init__(self, base: TinyModel, *, shift=0.0, extra=0.0, state=None):
        super().__init__(base.p, base.d, hidden=base.fc[0].out_features, dtype=torch.float64)
        self.load_state_dict(base.state_dict())
        self.requires_grad_(False)
        self.shift, self._state = shift, state
        if extra:
            self.extra = nn.Parameter(torch.tensor([extra], dtype=torch.float64),
                                      requires_grad=False)
        self.labels = None

    def forward(self, x, y):
        out = super().forward(x, y)
        return out - self.shift * nn.functional.one_hot(self.labels, self.p).double()

    def state_dict(self, *args, **kwargs):
        st = super().state_dict(*args, **kwargs)
        st.pop("extra", None)
        return st if self._state is None else self._state(st)


def broken_builder(**kw):
    def build(p, pairs, labels, gamma):
        m = Broken(norms.build_lookup(p, pairs, labels, gamma), **kw)
        m.labels = labels
        return m
    return build


NS = (5, 10)


@pytest.fixture(scope="module")
def lookup():
    return growth.check_lookup(ns=NS)


def test_check_lookup_rows(lookup):
    gamma = norms.margin_for_loss(23)
    assert lookup["ok"] is True and lookup["p"] == 23 and lookup["gamma"] == gamma
    assert [r["N"] for r in lookup["rows"]] == [5, 10]
    for r in lookup["rows"]:
        assert r["ok"] is True and r["margin"] == pytest.approx(gamma, rel=1e-12)
        assert r["formula"] == norms.lookup_min_norm2(23, r["N"], gamma)
        assert r["norm2"] == pytest.approx(r["formula"], rel=1e-12)
        assert r["closed_form"] == growth.lookup_least(23, r["N"], gamma)
        assert r["least_rescaled"] == pytest.approx(r["closed_form"], rel=1e-7)
    assert lookup["exponent_least"] == growth.exponent([(5, lookup["rows"][0]["closed_form"]),
                                                        (10, lookup["rows"][1]["closed_form"])])
    assert growth.check_lookup(ns=NS, p=11)["p"] == 11


def test_check_lookup_default_builder_is_build_lookup(monkeypatch, lookup):
    seen, real = [], norms.build_lookup

    def spy(*args):
        seen.append(args[0])
        return real(*args)

    monkeypatch.setattr(norms, "build_lookup", spy)
    assert growth.check_lookup(ns=NS)["rows"] == lookup["rows"] and seen == [23, 23]


@pytest.mark.parametrize("kw, ok", [
    ({"shift": 0.5e-9}, True), ({"shift": 2e-9}, False),                  # the margin, relative
])
def test_check_lookup_margin_at_its_tolerance(kw, ok):
    gamma = norms.margin_for_loss(23)
    kw = {"shift": kw["shift"] * gamma}
    out = growth.check_lookup(broken_builder(**kw), ns=NS)
    assert out["ok"] is ok and [r["ok"] for r in out["rows"]] == [ok, ok]
    assert out["rows"][0]["margin"] == pytest.approx(gamma - kw["shift"], rel=1e-13)


@pytest.mark.parametrize("share, ok", [(0.5e-9, True), (2e-9, False)])
def test_check_lookup_norm_formula_at_its_tolerance(share, ok):
    formula = norms.lookup_min_norm2(23, 5, norms.margin_for_loss(23))
    out = growth.check_lookup(broken_builder(extra=math.sqrt(share * formula)), ns=NS)
    assert out["ok"] is ok
    assert out["rows"][0]["norm2"] == pytest.approx(formula * (1 + share), rel=1e-12)


def test_check_lookup_needs_a_measurable_least_norm():
    def zero_out(st):
        return {**st, "fc.2.weight": torch.zeros_like(st["fc.2.weight"])}

    out = growth.check_lookup(broken_builder(state=zero_out), ns=NS)
    assert out["ok"] is False and out["rows"][0]["least_rescaled"] is None


@pytest.mark.parametrize("share, ok", [(0.5e-6, True), (2e-6, False)])
def test_check_lookup_closed_form_at_its_tolerance(lookup, share, ok):
    # a constant output bias c changes no prediction and no loss; the least norm grows by
    # R^2 p c^2 (R = 1 at the lookup's own margin)
    closed = lookup["rows"][0]["closed_form"]
    c = math.sqrt(share * closed / 23)

    def bias(st):
        return {**st, "fc.2.bias": torch.full((23,), c, dtype=torch.float64)}

    out = growth.check_lookup(broken_builder(state=bias), ns=NS)
    assert out["ok"] is ok
    assert out["rows"][0]["least_rescaled"] == pytest.approx(closed * (1 + share), rel=1e-8)
    assert out["rows"][0]["norm2"] == pytest.approx(lookup["rows"][0]["norm2"], rel=1e-12)


def test_check_lookup_is_not_ok_when_one_row_fails(lookup):
    calls = []

    def second_wrong(p, pairs, labels, gamma):
        calls.append(1)
        m = norms.build_lookup(p, pairs, labels, gamma)
        if len(calls) == 2:
            with torch.no_grad():
                m.fc[0].bias.zero_()
        return m

    out = growth.check_lookup(second_wrong, ns=NS)
    assert [r["ok"] for r in out["rows"]] == [True, False] and out["ok"] is False


# --- growth.py: the adder ------------------------------------------------------------------------

def test_adder_norms_at_p11():
    row = growth.adder_norms(modular.build_adder, 11, (1, 2, 3))
    per = row["per_layer"]
    assert row["p"] == 11 and row["m"] == 3
    assert per["embed.W_E"] == pytest.approx(33.0) and per["unembed.W_U"] == pytest.approx(33.0)
    assert row["total"] == pytest.approx(66 + 46.3125 * 3)
    t = modular.ideal_logits(11, (1, 2, 3), torch.arange(11))
    assert row["margin"] == float(t[0] - t[1:].max())
    vo = 2 * math.sqrt(per["blocks.0.attn.W_V"] * per["blocks.0.attn.W_O"])
    deg = growth.HOMOGENEOUS_DEGREES
    least = norms.min_norm2_rescaled({k: per[k] for k in deg}, deg,
                                     norms.margin_for_loss(11) / row["margin"])
    assert row["rescaled_to_loss"] == pytest.approx(vo + least, rel=1e-14)
    assert vo > 0 and least > 0
    assert growth.adder_norms(modular.build_adder, 11, None)["m"] == 5


def _scaled(name, factor):
    """The adder with one parameter's squared norm multiplied by ``factor``."""
    def build(p, freqs):
        adder = modular.build_adder(p, freqs)
        with torch.no_grad():
            dict(adder.named_parameters())[name].mul_(math.sqrt(factor))
        return adder
    return build


def test_adder_table_lemma3_and_exponents():
    table = growth.adder_table(ps=(11, 23))
    assert table["lemma3_ok"] is True
    for label, m in (("few", lambda p: 3), ("all", lambda p: (p - 1) // 2)):
        rows = table[label]["table"]
        assert [r["p"] for r in rows] == [11, 23] and [r["m"] for r in rows] == [m(11), m(23)]
        assert table[label]["exponent_total"] == growth.exponent([(r["p"], r["total"])
                                                                  for r in rows])
        assert table[label]["exponent_rescaled_to_loss"] == growth.exponent(
            [(r["p"], r["rescaled_to_loss"]) for r in rows])
        assert set(rows[0]) == {"p", "m", "total", "margin", "rescaled_to_loss"}
        one = growth.adder_norms(modular.build_adder, 11, growth.FEW_FREQS if label == "few"
                                 else None)
        assert rows[0]["rescaled_to_loss"] == one["rescaled_to_loss"]
        assert rows[0]["margin"] == one["margin"]


@pytest.mark.parametrize("name", ["embed.W_E", "unembed.W_U", "blocks.0.mlp.W_in"])
@pytest.mark.parametrize("share, ok", [(0.5e-9, True), (3e-9, False)])
def test_adder_table_lemma3_each_layer_at_its_tolerance(name, share, ok):
    table = growth.adder_table(_scaled(name, 1 + share), ps=(11, 23))
    assert table["lemma3_ok"] is ok


@pytest.mark.parametrize("name", ["embed.W_E", "blocks.0.mlp.W_in"])
def test_adder_table_remembers_a_failure_in_the_first_row(name):
    calls = []

    def first_broken(p, freqs):
        calls.append(p)
        return (_scaled(name, 1.01) if len(calls) == 1 else modular.build_adder)(p, freqs)

    table = growth.adder_table(first_broken, ps=(11, 23))
    assert calls == [11, 23, 11, 23] and table["lemma3_ok"] is False
    assert set(table) == {"lemma3_ok", "few", "all"}
    assert set(table["few"]) == {"table", "exponent_total", "exponent_rescaled_to_loss"}


def test_adder_table_default_build_and_moduli(monkeypatch):
    seen = []
    real = modular.build_adder
    monkeypatch.setattr(modular, "build_adder", lambda p, f: seen.append(p) or real(p, f))
    monkeypatch.setattr(growth, "GEN_PS", (11,))
    table = growth.adder_table(ps=(11, 23))
    assert seen == [11, 23, 11, 23] and table["lemma3_ok"]
    with pytest.raises(TypeError):
        growth.adder_table(ps=(11,), build=lambda p: None)


# --- growth.py: trained memorizers and memorizer vs generalizer --------------------------------

def test_memorizer_points_of_a_short_run():
    pts = growth.memorizer_points(ns=(5, 10), seeds=(0,), steps=300)
    assert list(pts) == [0] and [n for n, _ in pts[0]] == [5, 10]
    assert all(v > 0 for _, v in pts[0])
    with pytest.raises(ValueError, match=r"random-label memorizer N=50 seed=0 did not reach "
                                         r"train accuracy 1 in 1 steps"):
        growth.memorizer_points(ns=(50,), seeds=(0,), steps=1)


def test_memorizer_points_measure_the_memorizer_on_its_own_training_pairs(monkeypatch):
    from verify.grokking import evidence
    seen = {}

    def fake_train(cfg, seeds, steps, until):
        seen["args"] = (cfg, tuple(seeds), steps, until)
        return {s: {"memorizer": lookup_all(23).state_dict()} for s in seeds}

    def fake_least(state, a, b, y):
        seen.setdefault("n", []).append(len(a))
        return {"least_norm2": float(len(a))}

    monkeypatch.setattr(evidence, "train_seeds", fake_train)
    monkeypatch.setattr(rescale, "least_norm2_at_loss", fake_least)
    pts = growth.memorizer_points(ns=(7,), seeds=(2, 3), steps=9)
    cfg, seeds, steps, until = seen["args"]
    assert (seeds, steps, until) == ((2, 3), 9, "memorized")
    assert cfg == RunConfig(**growth.MEMORIZER_SETTING, n_train=7, steps=9)
    assert seen["n"] == [7, 7] and pts == {2: [(7, 7.0)], 3: [(7, 7.0)]}


SETTING = {**RunConfig(p=P, frac=0.6, d=4).__dict__}


def test_mem_vs_gen_rows_from_the_record_and_fresh_runs():
    rec = {"settings": {"s": SETTING},
           "entries": [{"setting": "s", "seed": 0, "least_norm2_memorizer": 9.0,
                        "least_norm2_generalizer": 4.0},
                       {"setting": "s", "seed": 1, "least_norm2_memorizer": 9.0,
                        "least_norm2_generalizer": None},
                       {"setting": "s", "seed": 2, "least_norm2_generalizer": 4.0}]}
    good = lookup_all().state_dict()
    bad = {k: torch.zeros_like(v) for k, v in good.items()}
    fresh = {"s": {0: {"log": [{"test_acc": 0.99}], "memorizer": good, "final": good},
                   1: {"log": [{"test_acc": 0.989}], "memorizer": good, "final": good},
                   2: {"log": [{"test_acc": 1.0}], "memorizer": None, "final": good},
                   3: {"log": [{"test_acc": 1.0}], "memorizer": bad, "final": good},
                   4: {"log": [{"test_acc": 1.0}], "memorizer": good, "final": bad},
                   5: {"log": [{"test_acc": 1.0}], "memorizer": good, "final": good}}}
    rows = growth.mem_vs_gen(rec, fresh)
    assert [(r["source"], r["seed"]) for r in rows] == [("record", 0), ("fresh", 0),
                                                         ("fresh", 5)]
    rows = rows[:2]
    assert rows[0] == {"source": "record", "setting": "s", "seed": 0, "mem": 9.0, "gen": 4.0}
    assert len(rows) == 2
    data = make_dataset(RunConfig(**{**SETTING, "seed": 0}))
    tr = data.train
    least = rescale.least_norm2_at_loss(good, data.a[tr], data.b[tr], data.labels[tr])
    assert rows[1] == {"source": "fresh", "setting": "s", "seed": 0, "p": P,
                       "mem": least["least_norm2"], "gen": least["least_norm2"]}
    other = make_dataset(RunConfig(**{**SETTING, "seed": 1})).train
    assert not torch.equal(other, tr)          # the seed's own split is the one measured
    assert growth.mem_vs_gen({"settings": {}, "entries": []}, {}) == []


# --- edges left by the full run of the grokking group (helper GK) --------------------------------


@pytest.mark.parametrize("pairs, labels, message", [
    (torch.tensor([0, 1]), torch.tensor([1]),
     r"pairs must be \[N, 2\] and labels \[N\] with N >= 1"),
    (torch.tensor([[0, 1], [0, 1]]), torch.tensor([1, 2]), "pairs must be distinct"),
])
def test_build_lookup_refusals_are_the_whole_message(pairs, labels, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        norms.build_lookup(5, pairs, labels, 2.0)


def test_fit_exponent_refusal_is_the_whole_message():
    with pytest.raises(ValueError, match="^fit_exponent needs two equal-length lists of >= 2 "
                                         "points$"):
        norms.fit_exponent([1.0], [1.0])


def _double(st):
    return {k: v.double() for k, v in st.items()}


def test_logit_scale_for_loss_with_the_target_at_either_end_of_the_range():
    # a faint lookup (margin 1e-8): the loss at R = e^20 is still about 0.5, above 0
    a, b = metrics.all_pairs(P)
    y = (a + b) % P
    st = _double(lookup_all(gamma=1e-8).state_dict())
    lo, hi = rescale.LOG_R_RANGE
    at_hi, at_lo = (rescale._loss(st, a, b, y, math.exp(t)) for t in (hi, lo))
    assert 0 < at_hi < at_lo < math.log(P)
    # the target reached exactly at an end is in reach, and the search ends at that end
    assert rescale.logit_scale_for_loss(st, a, b, y, at_hi) == pytest.approx(math.exp(hi),
                                                                               rel=1e-9)
    assert rescale.logit_scale_for_loss(st, a, b, y, at_lo) == pytest.approx(math.exp(lo),
                                                                              rel=1e-9)


def test_logit_scale_for_loss_of_constant_logits_keeps_the_smallest_scale():
    # zero output weights: every R gives logits 0 and loss ln p exactly; with target ln p
    # neither end is out of reach, and the bisection (loss > target moves up) ends at e^-20
    a, b = metrics.all_pairs(P)
    y = (a + b) % P
    st = _double(lookup_all().state_dict())
    st["fc.2.weight"] = torch.zeros_like(st["fc.2.weight"])
    target = rescale._loss(st, a, b, y, 1.0)
    assert target == pytest.approx(math.log(P), rel=1e-15)
    assert all(rescale._loss(st, a, b, y, math.exp(t)) == target for t in (-20, 0, 20))
    R = rescale.logit_scale_for_loss(st, a, b, y, target)
    assert R == pytest.approx(math.exp(rescale.LOG_R_RANGE[0]), rel=1e-9)


def test_least_norm2_at_scale_of_a_cost_flat_in_the_embedding_scale():
    # zero embedding and zero fc.0 weights: the cost does not depend on s; the golden-section
    # search keeps its left part on ties, so it ends at the smallest scale e^-12
    st = {"embed.weight": torch.zeros(P, 2, dtype=torch.float64),
          "fc.0.weight": torch.zeros(3, 4, dtype=torch.float64),
          "fc.0.bias": torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64),
          "fc.2.weight": torch.ones(P, 3, dtype=torch.float64),
          "fc.2.bias": torch.zeros(P, dtype=torch.float64)}
    out = rescale.least_norm2_at_scale(st, 1.0)
    # unit i costs 2 sqrt(b1_i^2 |W2_:,i|^2) = 2 |b1_i| sqrt(P)
    assert out["least_norm2"] == pytest.approx(6 * math.sqrt(P), rel=1e-12)
    assert out["embed_scale"] == pytest.approx(math.exp(rescale.LOG_S_RANGE[0]), rel=1e-9)
    assert out["raw_norm2"] == pytest.approx(5.0 + 3 * P, rel=1e-12)


def test_memorizer_points_use_each_seed_s_own_training_pairs(monkeypatch):
    from verify.grokking import evidence
    seen = {}

    def fake_train(cfg, seeds, steps, until):
        return {s: {"memorizer": {"seed": s}} for s in seeds}

    def fake_least(state, a, b, y):
        seen[state["seed"]] = (a, b, y)
        return {"least_norm2": 1.0}

    monkeypatch.setattr(evidence, "train_seeds", fake_train)
    monkeypatch.setattr(rescale, "least_norm2_at_loss", fake_least)
    growth.memorizer_points(ns=(7,), seeds=(0, 3), steps=9)
    for seed in (0, 3):
        data = make_dataset(RunConfig(**growth.MEMORIZER_SETTING, n_train=7, seed=seed))
        tr = data.train
        for got, want in zip(seen[seed], (data.a[tr], data.b[tr], data.labels[tr])):
            assert torch.equal(got, want)
    assert not torch.equal(torch.stack(seen[0][:2]), torch.stack(seen[3][:2]))


def recording(tables):
    def build(p, pairs, labels, gamma):
        tables.append((pairs.clone(), labels.clone()))
        return norms.build_lookup(p, pairs, labels, gamma)
    return build


def test_check_lookup_tables_are_seeded_draws_whatever_the_global_generator(lookup):
    first: list[tuple[torch.Tensor, torch.Tensor]] = []
    second: list[tuple[torch.Tensor, torch.Tensor]] = []
    with torch.random.fork_rng():
        torch.manual_seed(12345)
        assert growth.check_lookup(recording(first), ns=NS)["rows"] == lookup["rows"]
        torch.manual_seed(54321)
        growth.check_lookup(recording(second), ns=NS)
    p = 23
    gen = torch.Generator().manual_seed(0)
    for n, (pairs, labels), (pairs2, labels2) in zip(NS, first, second):
        flat = torch.randperm(p * p, generator=gen)[:n]
        assert torch.equal(pairs, torch.stack([flat // p, flat % p], dim=1))
        assert torch.equal(labels, torch.randint(0, p, (n,), generator=gen))
        assert torch.equal(pairs, pairs2) and torch.equal(labels, labels2)
    # labels range over every class, 0 included (400 draws of 23 classes)
    gen = torch.Generator().manual_seed(0)
    torch.randperm(p * p, generator=gen)
    assert set(torch.randint(0, p, (400,), generator=gen).tolist()) == set(range(p))


def test_check_lookup_margin_is_per_stored_pair():
    # adding i to every logit of stored pair i (column i of fc.2 raised by i / alpha) changes
    # no pair's margin; a margin taken against the largest wrong logit of all pairs would
    def shifted(p, pairs, labels, gamma):
        m = norms.build_lookup(p, pairs, labels, gamma)
        alpha, _ = norms.lookup_scales(p, gamma)
        fc2 = m.fc[2]
        assert isinstance(fc2, nn.Linear)
        with torch.no_grad():
            fc2.weight += torch.arange(len(labels), dtype=torch.float64) / alpha
        return m

    gamma = norms.margin_for_loss(23)
    out = growth.check_lookup(shifted, ns=NS)
    assert [r["margin"] for r in out["rows"]] == [pytest.approx(gamma, rel=1e-9)] * 2


class Crafted(Broken):
    """The lookup's weights, with logits ``margin`` on each stored label and 0 elsewhere."""

    margin = 0.0

    def forward(self, x, y):
        assert self.labels is not None
        return self.margin * nn.functional.one_hot(self.labels, self.p).double()


def crafted_builder(margin):
    def build(p, pairs, labels, gamma):
        m = Crafted(norms.build_lookup(p, pairs, labels, gamma))
        m.labels, m.margin = labels, margin
        return m
    return build


def test_check_lookup_margin_exactly_at_its_tolerance():
    edge = norms.margin_for_loss(23) * (1 - growth.REL_TOL)
    out = growth.check_lookup(crafted_builder(edge), ns=NS)
    assert [r["margin"] for r in out["rows"]] == [edge, edge] and out["ok"] is True
    below = math.nextafter(edge, 0.0)
    assert growth.check_lookup(crafted_builder(below), ns=NS)["ok"] is False


@pytest.mark.parametrize("raw, ok", [(1e9 + 1, True), (math.nextafter(1e9 + 1, math.inf), False),
                                     (1e9 - 1, True), (math.nextafter(1e9 - 1, 0.0), False)])
def test_check_lookup_norm_formula_exactly_at_its_tolerance(monkeypatch, raw, ok):
    # formula 1e9: REL_TOL * 1e9 is exactly 1.0 in float64, and 1e9 +- 1 are exact
    assert growth.REL_TOL * 1e9 == 1.0
    monkeypatch.setattr(norms, "lookup_min_norm2", lambda p, n, gamma: 1e9)
    monkeypatch.setattr(norms, "squared_norm", lambda model: raw)
    out = growth.check_lookup(ns=NS)
    assert out["ok"] is ok and [(r["norm2"], r["formula"]) for r in out["rows"]] == [(raw, 1e9)] * 2


@pytest.mark.parametrize("least, ok", [(1e6 + 1, True), (math.nextafter(1e6 + 1, math.inf), False),
                                       (1e6 - 1, True), (math.nextafter(1e6 - 1, 0.0), False)])
def test_check_lookup_closed_form_exactly_at_its_tolerance(monkeypatch, least, ok):
    # closed form 1e6: RESCALE_REL_TOL * 1e6 is exactly 1.0 in float64
    assert growth.RESCALE_REL_TOL * 1e6 == 1.0
    monkeypatch.setattr(growth, "lookup_least", lambda p, n, gamma: 1e6)
    monkeypatch.setattr(rescale, "least_norm2_at_loss", lambda *args: {"least_norm2": least})
    out = growth.check_lookup(ns=NS)
    assert out["ok"] is ok
    assert [(r["least_rescaled"], r["closed_form"]) for r in out["rows"]] == [(least, 1e6)] * 2


def test_check_lookup_remembers_a_failure_in_the_first_row():
    calls = []

    def first_wrong(p, pairs, labels, gamma):
        calls.append(1)
        m = norms.build_lookup(p, pairs, labels, gamma)
        fc0 = m.fc[0]
        assert isinstance(fc0, nn.Linear)
        if len(calls) == 1:
            with torch.no_grad():
                fc0.bias.zero_()
        return m

    out = growth.check_lookup(first_wrong, ns=NS)
    assert [r["ok"] for r in out["rows"]] == [False, True] and out["ok"] is False


def test_least_norm2_at_loss_of_one_pair_given_as_scalars():
    # a single training pair as 0-d index tensors is the same as a batch of one
    st = lookup_all().state_dict()
    one = [torch.tensor(v) for v in (1, 2, 3)]
    batch = [torch.tensor([v]) for v in (1, 2, 3)]
    assert rescale._loss(st, *one, 2.0) == rescale._loss(st, *batch, 2.0)
    assert rescale.least_norm2_at_loss(st, *one) == rescale.least_norm2_at_loss(st, *batch)
