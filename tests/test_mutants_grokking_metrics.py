"""Progress measures of a modular-addition network (verify/grokking/metrics.py), pinned against
direct computations on small p: Fourier bases and spectra, key frequencies at their share and
cap, restricted and excluded loss, the product share, Nanda et al.'s neuron rule (mutation
testing, issue 13)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from constructions import modular
from verify.grokking import metrics as M


def test_weight_norms_count_trainable_parameters_only():
    m = nn.Linear(2, 2)
    with torch.no_grad():
        m.weight.fill_(1.5)
        m.bias.fill_(2.0)
    m.bias.requires_grad_(False)
    total, per = M.weight_norms(m)
    assert per == {"weight": 9.0} and total == 9.0
    m.bias.requires_grad_(True)
    assert M.weight_norms(m) == (17.0, {"weight": 9.0, "bias": 8.0})


def test_frequencies_and_the_fourier_basis():
    assert M.frequencies(7) == [1, 2, 3] and M.frequencies(8) == [1, 2, 3, 4]
    assert M.frequencies(2) == [1]
    cos, sin = M.fourier_basis(8)
    assert cos.shape == sin.shape == (4, 8) and cos.dtype == torch.float64
    x = torch.arange(8, dtype=torch.float64)
    assert torch.allclose(cos[1], torch.cos(2 * math.pi * 2 * x / 8) / 2, atol=1e-15)
    assert torch.allclose(sin[0], torch.sin(2 * math.pi * x / 8) / 2, atol=1e-15)
    assert torch.allclose(cos[3], torch.tensor([1.0, -1] * 4, dtype=torch.float64) / math.sqrt(8))
    assert torch.equal(sin[3], torch.zeros(8, dtype=torch.float64))    # sin at k = p/2
    assert torch.allclose(cos.norm(dim=1), torch.ones(4, dtype=torch.float64))
    assert torch.allclose(sin[:3].norm(dim=1), torch.ones(3, dtype=torch.float64))
    c32, _ = M.fourier_basis(5, dtype=torch.float32)
    assert c32.dtype == torch.float32


def test_unit_rows_threshold():
    m = torch.tensor([[3.0, 4.0], [1e-9, 0.0], [2e-9, 0.0], [0.0, 0.0]], dtype=torch.float64)
    out = M._unit_rows(m)
    assert torch.allclose(out[0], torch.tensor([0.6, 0.8], dtype=torch.float64))
    assert torch.equal(out[1], torch.zeros(2, dtype=torch.float64))      # norm 1e-9: not > 1e-9
    assert torch.allclose(out[2], torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert torch.equal(out[3], torch.zeros(2, dtype=torch.float64))
    assert not torch.isnan(out).any()


def test_embedding_spectrum_of_a_known_embedding():
    p = 7
    x = torch.arange(p, dtype=torch.float64)
    w = torch.stack([torch.cos(2 * math.pi * 2 * x / p), 2 * torch.sin(2 * math.pi * 3 * x / p),
                     torch.full((p,), 5.0)], 1).float()
    spec = M.embedding_spectrum(w)
    assert spec.dtype == torch.float64 and spec.shape == (3,)
    assert spec.tolist() == pytest.approx([0.0, p / 2, 4 * p / 2], abs=1e-5)
    wg = w.clone().requires_grad_(True)
    assert torch.allclose(M.embedding_spectrum(wg), spec)
    assert not M.embedding_spectrum(wg).requires_grad


def test_top_k_share():
    e = torch.tensor([1.0, 4.0, 3.0, 2.0], dtype=torch.float64)
    assert M.top_k_share(e, 1) == 0.4 and M.top_k_share(e, 2) == 0.7
    assert M.top_k_share(e, 4) == 1.0 and M.top_k_share(e, 9) == 1.0
    six = torch.tensor([6.0, 5.0, 4.0, 3.0, 2.0, 1.0], dtype=torch.float64)
    assert M.top_k_share(six) == 20 / 21 and M.TOP_K == 5
    assert M.top_k_share(torch.zeros(3)) == 0.0
    assert M.top_k_share(torch.tensor([0.4, 0.1], dtype=torch.float64), 1) == 0.8   # total < 1
    assert M.top_k_share(torch.tensor([-1.0, 0.5])) == 0.0
    # summed largest first these round to 1 + 2^-52 of the total: the share is capped at 1
    odd = torch.tensor([0.538225008554474, 0.46636541886786753, 0.8634864607582904,
                        0.041059375136441645], dtype=torch.float64)
    assert float(odd.sort(descending=True).values.sum()) / float(odd.sum()) > 1.0
    assert M.top_k_share(odd, 4) == 1.0


def test_gini():
    assert M.gini(torch.ones(4)) == 0.0
    assert M.gini(torch.tensor([0.0, 0.0, 0.0, 2.0])) == 0.75
    assert M.gini(torch.tensor([3.0, 1.0])) == pytest.approx(0.25)   # (-1*1 + 1*3)/(2*4)
    assert M.gini(torch.tensor([[1.0, 0.0], [0.0, 0.0]])) == 0.75
    assert M.gini(torch.tensor([])) == 0.0 and M.gini(torch.zeros(3)) == 0.0
    assert M.gini(torch.tensor([-1.0, 0.5])) == 0.0
    assert M.gini(torch.tensor([1, 2, 3], dtype=torch.float32).requires_grad_(True)) == \
        pytest.approx(2 / 9)


def test_all_pairs_and_the_sum_basis():
    a, b = M.all_pairs(3)
    assert a.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] and b.tolist() == [0, 1, 2] * 3
    c, s = M.sum_basis(5)
    assert c.shape == s.shape == (2, 25)
    assert torch.allclose(c.norm(dim=1), torch.ones(2, dtype=torch.float64))
    assert torch.allclose(s.norm(dim=1), torch.ones(2, dtype=torch.float64))
    a, b = M.all_pairs(5)
    w = 2 * math.pi * 2 * ((a + b) % 5).double() / 5
    assert torch.allclose(c[1], torch.cos(w) / c[1].new_tensor(torch.cos(w).norm().item()))
    assert torch.allclose(s[1], torch.sin(w) / torch.sin(w).norm())


def _logits(p: int, coeffs: dict[int, tuple[float, float]], const: float = 0.0) -> torch.Tensor:
    """L[(a, b), c] = const * (c + 1) + sum_k u_k cos(w_k (a + b - c)) + v_k sin(w_k (a + b))."""
    a, b = M.all_pairs(p)
    cc = torch.arange(p, dtype=torch.float64)
    s = ((a + b) % p).double()[:, None]
    L = const * (cc[None, :] + 1) + torch.zeros(p * p, 1, dtype=torch.float64)
    for k, (u, v) in coeffs.items():
        w = 2 * math.pi * k / p
        L = L + u * torch.cos(w * (s - cc[None, :])) + v * torch.sin(w * s)
    return L


def test_logit_components_and_energy():
    p = 7
    L = _logits(p, {1: (2.0, 0.0), 3: (0.0, 1.0)}, const=0.5)
    mean, C, S = M.logit_components(L.float())
    assert torch.allclose(mean, 0.5 * (torch.arange(p, dtype=torch.float64) + 1), atol=1e-6)
    assert C.shape == S.shape == (3, p)
    energy = M.logit_energy(L)
    # sum over (a, b) of u^2 cos^2: p^2 / 2 per output column, p columns
    assert energy.tolist() == pytest.approx([4 * p ** 3 / 2, 0.0, p ** 3 / 2], abs=1e-8)
    assert float(energy.sum()) == pytest.approx(float(((L - mean) ** 2).sum()), rel=1e-12)


def test_key_frequencies_share_and_cap():
    p = 11
    L = _logits(p, {1: (3.0, 0.0), 2: (2.0, 0.0), 4: (1.0, 0.0), 5: (0.5, 0.0)})
    # energies in proportion 9 : 4 : 1 : 0.25 (total 14.25); keys are added while the ones
    # taken hold less than the share
    assert M.key_frequencies(L) == [1, 2]                      # 13/14.25 = 0.912 >= 0.9
    assert M.key_frequencies(L, share=9 / 14.25 * (1 - 1e-9)) == [1]
    assert M.key_frequencies(L, share=9 / 14.25 * (1 + 1e-9)) == [1, 2]
    assert M.key_frequencies(L, share=13 / 14.25 * (1 + 1e-9)) == [1, 2, 4]
    assert M.key_frequencies(L, share=14 / 14.25 * (1 + 1e-9)) == [1, 2, 4, 5]
    assert M.key_frequencies(L, share=0.95, cap=2) == [1, 2]
    assert M.key_frequencies(L, share=0.95, cap=3) == [1, 2, 4]
    assert M.key_frequencies(L, share=0.95, cap=1) == [1]
    assert (M.KEY_ENERGY_SHARE, M.MAX_KEY_FREQS) == (0.9, 8)
    many = _logits(p, {k: (1.0, 0.0) for k in range(1, 6)})
    assert M.key_frequencies(many, cap=8) == [1, 2, 3, 4, 5]
    assert len(M.key_frequencies(torch.zeros(p * p, p), cap=3)) == 3   # no energy: the cap


def test_key_frequencies_default_cap_is_eight():
    p = 23
    L = _logits(p, {k: (1.0, 0.0) for k in range(1, 12)})
    assert len(M.key_frequencies(L)) == 8


def test_restricted_and_excluded_loss_on_the_adder():
    p, keys = 13, [2, 5]
    a, b = M.all_pairs(p)
    L = 10 * modular.build_adder(p, keys)(a, b)
    y = (a + b) % p
    full = float(torch.nn.functional.cross_entropy(L.double(), y))
    assert M.restricted_loss(L, y, keys) == pytest.approx(full, rel=1e-9)
    assert M.excluded_loss(L, y, keys, torch.arange(p * p)) == pytest.approx(math.log(p), rel=1e-9)
    assert M.restricted_loss(L, y, [2]) > full + 0.1
    # excluded loss reads only the training pairs
    train = torch.tensor([0, 5, 17])
    ex = L.double() - M._projection(L, keys)
    assert M.excluded_loss(L, y, keys, train) == pytest.approx(float(
        torch.nn.functional.cross_entropy(ex[train], y[train])), rel=1e-12)
    # restricted: P_0 keeps the per-output mean
    shifted = L + torch.arange(p, dtype=L.dtype)[None, :]
    assert M.restricted_loss(shifted, y, []) == pytest.approx(float(torch.nn.functional.cross_entropy(
        torch.arange(p, dtype=torch.float64)[None, :].expand(p * p, p) + L.double().mean(0), y)),
        rel=1e-9)


def test_projection_of_a_wide_matrix_uses_p():
    p = 5
    a, b = M.all_pairs(p)
    w = 2 * math.pi * 2 * ((a + b) % p).double() / p
    H = torch.stack([torch.cos(w), torch.sin(w), torch.ones(p * p, dtype=torch.float64),
                     (a == 0).double(), torch.cos(w), torch.sin(w), torch.cos(w)], 1)  # [25, 7]
    proj = M._projection(H, [2], p)
    assert torch.allclose(proj[:, 0], H[:, 0]) and torch.allclose(proj[:, 1], H[:, 1])
    assert torch.allclose(proj[:, 2], torch.zeros(p * p, dtype=torch.float64), atol=1e-12)


def test_product_share():
    p = 11
    a, b = (t.double() for t in M.all_pairs(p))
    w = 2 * math.pi * 3 / p
    hidden = torch.stack([torch.cos(w * (a + b)), torch.sin(w * (a + b)),
                          torch.cos(2 * w * a)], 1)
    assert M.product_share(hidden, p, [3]) == pytest.approx(2 / 3, rel=1e-9)
    offsets = torch.tensor([7.0, -3.0, 2.0], dtype=torch.float64)          # each column centred
    assert M.product_share(hidden + offsets, p, [3]) == pytest.approx(2 / 3, rel=1e-9)
    assert M.product_share(0.01 * hidden, p, [3]) == pytest.approx(2 / 3, rel=1e-9)  # total < 1
    assert M.product_share(hidden, p, [3, 5]) == pytest.approx(2 / 3, rel=1e-9)
    assert M.product_share(hidden, p, []) == 0.0
    assert M.product_share(torch.ones(p * p, 2), p, [3]) == 0.0


def _neuron_hidden(p: int) -> torch.Tensor:
    a, b = (t.double() for t in M.all_pairs(p))
    w = 2 * math.pi / p
    return torch.stack([torch.cos(2 * w * a), torch.cos(w * a) * torch.cos(w * b),
                        torch.sin(3 * w * b), torch.full((p * p,), 2.0),
                        torch.cos(3 * w * (a + b)) + 0.1 * torch.cos(w * a)], 1).double()


def test_neuron_frequency_energy():
    p = 7
    H = _neuron_hidden(p)
    E = M.neuron_frequency_energy(H, p)
    assert E.shape == (3, 5)
    # neuron 0 = cos(2 w a): two coefficients of size p^2 / 2 at (+-2, 0): energy 2 (p^2/2)^2
    assert E[:, 0].tolist() == pytest.approx([0.0, 2 * (p * p / 2) ** 2, 0.0], abs=1e-6)
    # neuron 1 = cos(w a) cos(w b): four coefficients p^2 / 4 at (+-1, +-1)
    assert E[:, 1].tolist() == pytest.approx([4 * (p * p / 4) ** 2, 0.0, 0.0], abs=1e-6)
    assert E[:, 2].tolist() == pytest.approx([0.0, 0.0, 2 * (p * p / 2) ** 2], abs=1e-6)
    assert E[:, 3].tolist() == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)   # constant: (0, 0) left out
    assert int(E[:, 4].argmax()) == 2 and float(E[0, 4]) > 0


def test_nanda_key_frequencies():
    p = 7
    out = M.nanda_key_frequencies(_neuron_hidden(p), p)
    assert out == {"keys": [1, 2, 3], "neurons_per_key": {1: 1, 2: 1, 3: 2}, "live_neurons": 4}
    assert M.DEAD_NEURON_VAR == 1e-12
    H = _neuron_hidden(p)
    H[:, 0] = 1e-7 * H[:, 0]          # variance 1e-14 / 2: dead
    assert M.nanda_key_frequencies(H, p)["live_neurons"] == 3
    H[:, 0] = 2e-6 * _neuron_hidden(p)[:, 0]                            # variance 2e-12: live
    assert M.nanda_key_frequencies(H, p)["neurons_per_key"] == {1: 1, 2: 1, 3: 2}


def test_nanda_dead_neuron_threshold_is_strict(monkeypatch):
    """A neuron whose variance equals DEAD_NEURON_VAR exactly is dead."""
    p = 7
    H = _neuron_hidden(p)
    H[:, 0] = 1e-6 * torch.tensor([0.0, 2.0] * (p * p // 2) + [1.0], dtype=H.dtype)
    var = float(H.double().var(0)[0])               # as the function computes it
    monkeypatch.setattr(M, "DEAD_NEURON_VAR", var)
    assert M.nanda_key_frequencies(H, p)["live_neurons"] == 3
    monkeypatch.setattr(M, "DEAD_NEURON_VAR", math.nextafter(var, 0.0))
    assert M.nanda_key_frequencies(H, p)["live_neurons"] == 4


def test_key_frequencies_stop_exactly_at_the_share_whatever_the_energy_scale(monkeypatch):
    """Keys are added while those taken hold less than share * total: a share reached exactly
    stops the list, and so it does when the total energy is below 1."""
    monkeypatch.setattr(M, "logit_energy", lambda L: torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64))
    assert M.key_frequencies(torch.zeros(1), share=0.5) == [1]
    monkeypatch.setattr(M, "logit_energy", lambda L: torch.tensor([0.25, 0.25], dtype=torch.float64))
    assert M.key_frequencies(torch.zeros(1), share=0.5) == [1]
    assert M.key_frequencies(torch.zeros(1), share=0.75) == [1, 2]
