"""The trig-identity adder's float64 certificates (verify/adder_certificate.py, the all-pairs
`brute_force` of verify/adder_pairs.py) and the rounding bounds they share (verify/rounding.py):
each error term recomputed from its stated formula, each refusal's reason, the chunking and the
reported numbers pinned (mutation testing, issue 13)."""

from __future__ import annotations

import math
import time
from fractions import Fraction as Fr

import pytest
import torch

from constructions import modular
from verify import adder_certificate as ac
from verify import adder_pairs, rounding

U = Fr(1, 2**53)


def gam(n: int) -> Fr:
    return n * U / (1 - n * U)


def timed(fn, *args, **kwargs):
    """fn's result and the wall time around the call: a reported "seconds" must lie in [0, it]."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def two_structure_errors(p: int = 7) -> modular.ModularAdder:
    """W_Q and b_in nonzero: two refusals, W_Q's first (parameter order)."""
    adder = modular.build_adder(p)
    with torch.no_grad():
        adder.transformer.blocks[0].attn.W_Q[0, 0, 0] = 0.5
        adder.transformer.blocks[0].mlp.b_in[0] = 0.5
    return adder


# --- brute_force -----------------------------------------------------------------------------


def test_brute_force_refuses_with_the_first_structure_error():
    """brute_force reads W_E and W_U only, so without the guard a nonzero W_Q would pass."""
    adder = two_structure_errors()
    errors = ac.structure_errors(adder)
    assert len(errors) == 2 and "W_Q" in errors[0] and "b_in" in errors[1]
    out, elapsed = timed(adder_pairs.brute_force, adder)
    assert set(out) == {"certified", "reason", "seconds"}
    assert out["certified"] is False and out["reason"] == errors[0]
    assert 0 <= out["seconds"] <= elapsed
    # a refused certificate carries no bounds: brute_force runs the guard itself
    assert adder_pairs.brute_force(adder, cert=ac.certify(adder))["reason"] == errors[0]


@pytest.mark.parametrize("eps_e, rho_u, delta_r", [(0.01, 1.5, 0.0), (0.25, 0.5, 1e-12)])
def test_brute_force_error_is_the_stated_formula(eps_e, rho_u, delta_r):
    """error = delta_R + m rho_U (e_prod + gamma_2m (amp^2 + e_prod)) SLACK, amp = 1 + eps_E,
    e_prod = sqrt(2) gamma_2 amp^2 (one complex product of two entries of modulus <= amp)."""
    adder = modular.build_adder(11)                                  # m = 5
    out, elapsed = timed(adder_pairs.brute_force, adder,
                         cert={"eps_E": eps_e, "rho_U": rho_u, "delta_R": delta_r})
    m, amp = 5, 1 + Fr(eps_e)
    prod = Fr(math.sqrt(2)) * gam(2) * amp**2
    want = Fr(delta_r) + m * Fr(rho_u) * (prod + gam(2 * m) * (amp**2 + prod)) * Fr(rounding.SLACK)
    assert out["error_bound"] == pytest.approx(float(want), rel=1e-13, abs=0)
    assert out["p"] == 11 and out["flops"] == 2 * 11**3 * 2 * 5
    assert 0 <= out["seconds"] <= elapsed
    assert set(out) == {"certified", "p", "min_margin", "error_bound", "seconds", "flops"}


def test_brute_force_computes_the_bounds_it_is_not_handed():
    adder = modular.build_adder(13)
    cert = ac.certify(adder)
    mine = adder_pairs.brute_force(adder)
    assert mine == {**adder_pairs.brute_force(adder, cert=cert), "seconds": mine["seconds"]}


def test_brute_force_passes_its_chunk_on(monkeypatch):
    seen = []
    original = adder_pairs.pair_chunks

    def spy(p, chunk=None):
        seen.append(chunk)
        return original(p, chunk)
    monkeypatch.setattr(adder_pairs, "pair_chunks", spy)
    adder = modular.build_adder(7)
    chunked = adder_pairs.brute_force(adder, chunk=5)
    assert seen == [5]
    assert chunked["min_margin"] == adder_pairs.brute_force(adder)["min_margin"]


# --- the running rounding bound, recomputed in exact rationals ----------------------------------


def _abs_rows(t: torch.Tensor) -> list[list[Fr]]:
    return [[abs(Fr(float(v))) for v in row] for row in t.detach().to(torch.float64).reshape(
        t.shape[0], -1).tolist()]


def _affine(M: list[Fr], e: list[Fr], W: torch.Tensor, b: torch.Tensor) -> tuple[list, list]:
    """M' = M|W| + |b|, e' = e|W| + gamma_{n+1}((M + e)|W| + |b|), n = d_in (Higham, ch. 3)."""
    w, bias = _abs_rows(W), [abs(Fr(float(v))) for v in b.detach().reshape(-1).tolist()]
    g = gam(len(w) + 1)
    cols = range(len(w[0]))
    Mw = [sum(M[i] * w[i][j] for i in range(len(w))) for j in cols]
    ew = [sum(e[i] * w[i][j] for i in range(len(w))) for j in cols]
    Ew = [sum((M[i] + e[i]) * w[i][j] for i in range(len(w))) for j in cols]
    return ([Mw[j] + bias[j] for j in cols], [ew[j] + g * (Ew[j] + bias[j]) for j in cols])


def _add(M1, e1, M2, e2):
    return ([a + b for a, b in zip(M1, M2)],
            [x + y + U * (a + x + b + y) for a, x, b, y in zip(M1, e1, M2, e2)])


def rounding_bound_exact(adder: modular.ModularAdder) -> Fr:
    """`ac.rounding_bound`'s docstring, stage by stage, in Fractions (alpha as the float it is)."""
    model = adder.transformer
    blk = model.blocks[0]
    alpha = Fr(rounding.equal_softmax_error(2))
    w_e = [max(col) for col in zip(*_abs_rows(model.embed.W_E))]
    w_pos = [max(col) for col in zip(*_abs_rows(model.pos_embed.W_pos))]
    zero = [Fr(0)] * len(w_e)
    M_x, e_x = _add(w_e, zero, w_pos, zero)
    M_v, e_v = _affine(M_x, e_x, blk.attn.W_V[0], blk.attn.b_V[0])
    e_z = [e + 2 * alpha * (M + e) + gam(2) * (1 + 2 * alpha) * (M + e) for M, e in zip(M_v, e_v)]
    M_o, e_o = _affine(M_v, e_z, blk.attn.W_O[0], blk.attn.b_O)
    M_r, e_r = _add(M_x, e_x, M_o, e_o)
    M_pre, e_pre = _affine(M_r, e_r, blk.mlp.W_in, blk.mlp.b_in)
    M_post = [M * M for M in M_pre]
    e_post = [e * (2 * M + e) + U * (M + e) ** 2 for M, e in zip(M_pre, e_pre)]
    M_m, e_m = _affine(M_post, e_post, blk.mlp.W_out, blk.mlp.b_out)
    M_f, e_f = _add(M_r, e_r, M_m, e_m)
    _, e_logit = _affine(M_f, e_f, model.unembed.W_U, model.unembed.b_U)
    return max(e_logit) * Fr(rounding.SLACK)


def _with_biases_and_positions(p: int) -> modular.ModularAdder:
    """Nonzero W_pos and biases make every stage's |b| and position term count (the certificate
    would refuse this adder; the bound itself is defined for any weights)."""
    adder = modular.build_adder(p)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, w in adder.named_parameters():
            if name.endswith(("b_V", "b_O", "b_in", "b_out", "b_U", "W_pos")):
                w.copy_(torch.rand(w.shape, generator=gen, dtype=w.dtype) - 0.5)
    return adder


@pytest.mark.parametrize("build", [lambda: modular.build_adder(5, (1, 2)),
                                   lambda: _with_biases_and_positions(5)])
def test_rounding_bound_is_the_stated_running_analysis(build):
    adder = build()
    assert ac.rounding_bound(adder) == pytest.approx(float(rounding_bound_exact(adder)),
                                                     rel=1e-13, abs=0)


def test_unembed_radius_and_embedding_error_are_the_stated_maxima():
    """rho_U = max over (k, c) of |(W_U[O_cos_k, c], W_U[O_sin_k, c])| times SLACK; eps_E =
    max |W_E[x, B_k] - (cos, sin)(2 pi k x / p)| in the 1-norm, times SLACK, + 2 REF_ERR."""
    adder = modular.build_adder(7, (1, 3))
    with torch.no_grad():
        adder.transformer.unembed.W_U[4 * 2 + 2, 5] = 3.0             # O_cos of k = 3, c = 5
        adder.transformer.unembed.W_U[4 * 2 + 3, 5] = 4.0             # O_sin: |(3, 4)| = 5
        adder.transformer.embed.W_E[4, 3] += 2.0**-20                 # B_sin of k = 3, x = 4
    assert ac.unembed_radius(adder) == 5.0 * rounding.SLACK
    cos, sin = rounding.reference_table(7)
    w_e = adder.transformer.embed.W_E
    want = max(abs(float(w_e[x, 2 * i]) - float(cos[k * x % 7]))
               + abs(float(w_e[x, 2 * i + 1]) - float(sin[k * x % 7]))
               for x in range(7) for i, k in enumerate((1, 3)))
    assert want >= 2.0**-20
    assert ac.embedding_error(adder) == want * rounding.SLACK + 2 * rounding.REF_ERR


# --- certify: every reported number, the chunked margin loop, the refusal ------------------------


def test_certify_reports_each_term_of_its_error():
    """error = delta_R + m rho_U delta SLACK + delta_G, delta = 3 eps_E + eps_E^2 (the "a + b
    alone" lemma), delta_G = gamma_2m m (1 + eps_E) rho_U SLACK (the G^ product)."""
    adder = modular.build_adder(11, (1, 2, 4))                        # m = 3
    cert, elapsed = timed(ac.certify, adder, extra_error=1e-9)
    eps, rho, m = cert["eps_E"], cert["rho_U"], 3
    assert cert["p"] == 11 and cert["K_size"] == m and cert["extra_error"] == 1e-9
    assert cert["eps_E"] == ac.embedding_error(adder) and cert["rho_U"] == ac.unembed_radius(adder)
    assert cert["delta_R"] == ac.rounding_bound(adder)
    assert cert["delta"] == 3 * eps + eps**2
    delta_g = rounding.gamma(2 * m) * m * (1 + eps) * rho * rounding.SLACK
    assert cert["error_bound"] == pytest.approx(
        cert["delta_R"] + m * rho * cert["delta"] * rounding.SLACK + delta_g, rel=1e-15, abs=0)
    assert cert["flops"] == 2 * 11 * 11 * 2 * m
    parts = (cert["seconds_structure"], cert["seconds_bounds"], cert["seconds_margins"])
    assert all(t >= 0 for t in parts) and sum(parts) <= cert["seconds"] + 1e-9
    assert 0 <= cert["seconds"] <= elapsed


def _g_hat_margin(adder: modular.ModularAdder) -> float:
    """min over s of G^(s)_s - max_{c != s} G^(s)_c, G^ = W_E[:, B] W_U[O, :], in one product."""
    m = len(adder.freqs)
    w_e = adder.transformer.embed.W_E.detach()[:, : 2 * m]
    w_u = adder.transformer.unembed.W_U.detach()[4 * m:]
    return float(rounding.row_margins(w_e @ w_u, torch.arange(adder.p)).min())


@pytest.mark.parametrize("row", [0, 3, 6])
@pytest.mark.parametrize("budget", [None, 2 * 7, 3 * 7 + 1])
def test_certify_margin_reads_every_row_in_every_chunk(monkeypatch, row, budget):
    """One input x (first, middle or last) given the smallest margin: the certificate's margin is
    that row's, whether G^ is computed at once or in chunks of 2 or 3 rows (last chunk partial)."""
    adder = modular.build_adder(7)
    with torch.no_grad():
        adder.transformer.embed.W_E[row, :2] *= 0.75                   # |e_x| = 3/4 for k = 1
    want = _g_hat_margin(adder)
    others = modular.build_adder(7)
    assert want < _g_hat_margin(others) - 0.1
    if budget is not None:
        monkeypatch.setattr(ac, "LOGIT_BUDGET", budget)
    cert = ac.certify(adder)
    assert cert["min_margin"] == want


def test_certify_refuses_with_the_first_structure_error():
    adder = two_structure_errors()
    cert, elapsed = timed(ac.certify, adder)
    assert set(cert) == {"certified", "reason", "seconds"}
    assert cert["certified"] is False and cert["reason"] == ac.structure_errors(adder)[0]
    assert 0 <= cert["seconds"] <= elapsed


@pytest.mark.parametrize("bad, error, message", [
    (True, TypeError, "extra_error must be a real number >= 0, got bool"),
    ("0", TypeError, "extra_error must be a real number >= 0, got str"),
    (-1e-9, ValueError, "extra_error must be a finite number >= 0, got -1e-09"),
    (math.inf, ValueError, "extra_error must be a finite number >= 0, got inf"),
])
def test_extra_error_messages(bad, error, message):
    with pytest.raises(error) as info:
        ac.check_extra_error(bad)
    assert str(info.value) == message


def test_extra_error_bounds():
    assert ac.check_extra_error(0) == 0.0 and isinstance(ac.check_extra_error(0), float)
    assert ac.check_extra_error(5e-324) == 5e-324
    assert ac.check_extra_error(1.7976931348623157e308) == 1.7976931348623157e308


def test_unembed_radius_is_computed_in_float64():
    """A float32 adder (which certify refuses) still gets its radius from float64 squares."""
    adder = modular.build_adder(7, (1, 3), dtype=torch.float32)
    w_u = adder.transformer.unembed.W_U.detach().to(torch.float64)[4 * 2:]
    want = float((w_u[0::2] ** 2 + w_u[1::2] ** 2).sqrt().max()) * rounding.SLACK
    w_32 = adder.transformer.unembed.W_U.detach()[4 * 2:]
    in_32 = float((w_32[0::2] ** 2 + w_32[1::2] ** 2).sqrt().max()) * rounding.SLACK
    assert in_32 != want and ac.unembed_radius(adder) == want


# --- rounding: the pair chunks and the in-place margins ----------------------------------------


def test_pair_chunks_cover_every_pair_once_in_the_chunks_asked_for():
    chunks = list(rounding.pair_chunks(5, 7))
    assert [len(x) for x, _ in chunks] == [7, 7, 7, 4]
    x = torch.cat([c[0] for c in chunks])
    y = torch.cat([c[1] for c in chunks])
    assert torch.equal(x * 5 + y, torch.arange(25))                   # (0, 0) first, each once
    assert [len(x) for x, _ in rounding.pair_chunks(5)] == [25]       # default: LOGIT_BUDGET / p
    huge = 2**23 + 1                                                  # LOGIT_BUDGET // p == 0
    x, y = next(rounding.pair_chunks(huge))
    assert x.tolist() == [0] and y.tolist() == [0]                    # at least one pair a chunk


def test_row_margins_in_place_overwrites_only_when_asked():
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]], dtype=torch.float64)
    kept = logits.clone()
    answers = torch.tensor([0, 2])
    assert rounding.row_margins(logits, answers).tolist() == [1.0, -1.0]
    assert torch.equal(logits, kept)
    assert rounding.row_margins(logits, answers, inplace=True).tolist() == [1.0, -1.0]
    assert logits[0, 0] == -math.inf and logits[1, 2] == -math.inf and logits[0, 2] == 2.0


@pytest.mark.parametrize("n", [1, 2, 3, 7])
@pytest.mark.parametrize("e", [0.0, 2.0**-51, 1e-3, 0.1, 0.4])
def test_equal_softmax_error_is_its_stated_formula_exactly(n, e):
    """alpha = max(upper - 1, 1 - lower) / n * SLACK with, in exact rationals,
    upper = (1 + e)(1 + tau) / ((1 - e)(1 - g)), lower = (1 - e)(1 - tau) / ((1 + e)(1 + g)),
    tau = 2u + u^2, g = gamma_{n-1} = (n - 1) u / (1 - (n - 1) u): recomputed here and compared
    bit for bit, so any change to a factor of either bound shows."""
    from fractions import Fraction as Q

    from verify import rounding
    u, eq = Q(1, 2**53), Q(e)
    tau = 2 * u + u * u
    g = (n - 1) * u / (1 - (n - 1) * u)
    upper = (1 + eq) * (1 + tau) / ((1 - eq) * (1 - g))
    lower = (1 - eq) * (1 - tau) / ((1 + eq) * (1 + g))
    want = float(max(upper - 1, 1 - lower) / n) * rounding.SLACK
    assert rounding.equal_softmax_error(n, e) == want
    # and the bound is a bound: the softmax of n equal scores, each exp off by e, deviates less
    worst = (1 + eq) / ((1 + eq) + (n - 1) * (1 - eq)) - Q(1, n)
    assert worst <= Q(rounding.equal_softmax_error(n, e))


@pytest.mark.parametrize("n", [1, 2, 1000, 2**30])
def test_gamma_is_n_u_over_1_minus_n_u(n):
    from fractions import Fraction as Q

    from verify import rounding
    u = Q(1, 2**53)
    assert rounding.gamma(n) == pytest.approx(float(n * u / (1 - n * u)), rel=1e-15)
    if n == 2**30:      # n u (1 - n u) or n u / (1 + n u) is 2^-22 smaller, relatively
        assert rounding.gamma(n) > float(n * u) * (1 + 2.0**-24)


def test_affine_bound_propagates_the_error_through_m_plus_e():
    from verify import rounding
    M = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    e = torch.tensor([[0.5, 0.25]], dtype=torch.float64)
    W = torch.tensor([[1.0], [-2.0]], dtype=torch.float64)
    b = torch.tensor([-3.0], dtype=torch.float64)
    M2, e2 = rounding.affine_bound(M, e, W, b)
    # |W| = [1, 2]^T, |b| = 3: M' = 1 + 4 + 3 = 8; e' = 0.5 + 0.5 + gamma_3 (1.5 + 4.5 + 3)
    assert M2.item() == 8.0
    assert e2.item() == 1.0 + rounding.gamma(3) * 9.0


def test_product_reference_error_is_its_stated_bound():
    """gamma_2 per term on values <= (1 + REF_ERR)^2, plus 2 REF_ERR + REF_ERR^2 per term
    (two terms): pinned as written, and at least the exact rational value of that bound."""
    from fractions import Fraction as Q

    from verify import rounding
    r, g2 = rounding.REF_ERR, rounding.gamma(2)
    got = rounding.product_reference_error()
    assert got == 2 * g2 * (1 + r) ** 2 + 4 * r * (1 + r)
    u, rq = Q(1, 2**53), Q(r)
    exact = 2 * (2 * u / (1 - 2 * u)) * (1 + rq) ** 2 + 4 * rq * (1 + rq)
    assert Q(got) >= exact * (1 - Q(1, 2**50))


def test_equal_softmax_error_defaults_to_two_scores():
    from verify import rounding
    assert rounding.equal_softmax_error() == rounding.equal_softmax_error(2)
    assert rounding.equal_softmax_error() != rounding.equal_softmax_error(3)
