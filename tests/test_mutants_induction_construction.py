"""constructions/induction.py pinned weight by weight and bound by bound (mutation testing,
issue 13): every weight against an independent expected tensor, every term of the proof's
bounds (`mass_bounds`) in a case where it is the one that counts, beta* at the bound and just
below, and every refusal's message."""

from __future__ import annotations

import math

import pytest
import torch

from constructions import induction
from constructions.previous_token import Layout, embeddings, previous_token_head

REL = 1e-12  # the bounds are a few float64 operations; a changed term moves them by far more


# --- beta*, the exponent cap, the default temperature ---------------------------------------

def test_beta_star_values_and_refusals():
    assert induction.beta_star(1) == 0.0 and induction.beta_star(1, 7) == 0.0
    assert induction.beta_star(2) == math.log(16)
    assert induction.beta_star(5, vocab_size=3) == math.log(40)
    with pytest.raises(ValueError, match=r"^n_ctx must be >= 1, got 0$"):
        induction.beta_star(0)
    with pytest.raises(ValueError, match=r"^vocab_size must be >= 1, got 0$"):
        induction.beta_star(3, 0)
    assert induction.beta_star(3, vocab_size=1) == math.log(24)  # V = 1 accepted


def test_exp_is_capped_at_700():
    assert induction._exp(1.5) == math.exp(1.5)
    assert induction._exp(700.0) == math.exp(700.0)
    assert induction._exp(800.0) == math.exp(700.0)


def test_default_beta():
    assert induction.default_beta(1) == 1.0 and induction.default_beta(1, "softmax") == 1.0
    assert induction.default_beta(2) == math.log(16)
    assert induction.default_beta(4, "softmax") == math.log(32)
    assert induction.default_beta(4, "hard") == induction.HARD_BETA == 1.0
    assert induction.default_beta(1, "hard") == 1.0
    with pytest.raises(ValueError, match=r"^attention must be one of 'softmax', 'hard'; got 'soft'$"):
        induction.default_beta(4, "soft")


# --- the proof's bounds ---------------------------------------------------------------------

def _reference_bounds(beta: float, n: int) -> dict[str, float]:
    """The bounds of proofs/induction.md written out again. The tail bounds sum_{d>=2}
    e^{-beta d^2} by the geometric series e^{-4 beta} sum_t e^{-5 beta t} (d^2 >= 4 + 5 (d-2))."""
    tail = math.exp(-4 * beta) / (1 - math.exp(-5 * beta))
    assert tail >= sum(math.exp(-beta * d * d) for d in range(2, 200))
    delta_1 = min(1.0, (n - 1) * math.exp(-beta), 2 * math.exp(-beta) + tail)
    eta = 2 * n * delta_1
    terms = (math.exp(min(beta * (eta - 1), 700.0)) / (1 - math.exp(-beta))
             + math.exp(-beta * (n + 1 - eta)) + (n - 1) * math.exp(-beta * (n + 2 - 2 * eta)))
    delta_2 = min(1.0, terms)
    return {"delta_1": delta_1, "eta": eta, "delta_2": delta_2, "margin": 1 - 2 * delta_2}


@pytest.mark.parametrize("beta, n, active", [
    (4.0, 2, "n-1"),          # delta_1 = (n-1) e^-beta (n = 2: e^-beta < 2 e^-beta + tail)
    (3.0, 10, "tail"),        # delta_1 = 2 e^-beta + tail
    (0.5, 10, "cap"),         # delta_1 = 1 and delta_2 = 1
    (math.log(24), 3, "n-1"),  # beta*(3): every term of delta_2 below the cap
    (6.0, 3, "n-1"),
    (math.log(64), 8, "tail"),  # beta*(8)
    (0.8, 5, "tail"),         # the tail is a visible share (4%) of delta_1
])
def test_mass_bounds_match_the_proof_term_by_term(beta, n, active):
    got = induction.mass_bounds(beta, n)
    ref = _reference_bounds(beta, n)
    assert sorted(got) == ["certified", "delta_1", "delta_2", "eta", "margin"]
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, rel=REL, abs=1e-300), key
    e = math.exp(-beta)
    if active == "n-1":
        assert got["delta_1"] == pytest.approx((n - 1) * e, rel=REL)
    elif active == "tail":
        assert got["delta_1"] < min(1.0, (n - 1) * e)
    else:
        assert got["delta_1"] == 1.0 and got["delta_2"] == 1.0 and got["margin"] == -1.0


def test_mass_bounds_each_delta_2_term_counts():
    # at n = 2, beta = 3 the three terms of delta_2 are all far above REL of the sum
    beta, n = 3.0, 2
    got = induction.mass_bounds(beta, n)
    d1 = math.exp(-beta)
    eta = 2 * n * d1
    first = math.exp(beta * (eta - 1)) / (1 - math.exp(-beta))
    second = math.exp(-beta * (n + 1 - eta))
    third = (n - 1) * math.exp(-beta * (n + 2 - 2 * eta))
    assert min(second, third) / (first + second + third) > 1e-4
    assert got["delta_2"] == pytest.approx(first + second + third, rel=REL)
    assert got["margin"] == pytest.approx(1 - 2 * (first + second + third), rel=REL)


def test_mass_bounds_certified_at_beta_star_and_not_just_below():
    for n in (2, 3, 8):
        star = induction.beta_star(n)
        assert induction.mass_bounds(star, n)["certified"] is True
        assert induction.mass_bounds(math.nextafter(star, 0.0), n)["certified"] is False
        assert induction.mass_bounds(star, n)["delta_2"] < 0.27


def test_mass_bounds_one_key_per_row_and_refusals():
    assert induction.mass_bounds(0.01, 1) == {"delta_1": 0.0, "eta": 0.0, "delta_2": 0.0,
                                              "margin": 1.0, "certified": True}
    assert induction.mass_bounds(0.01, 2)["certified"] is False
    with pytest.raises(ValueError, match=r"^beta must be a finite number > 0, got 0.0$"):
        induction.mass_bounds(0.0, 2)
    with pytest.raises(ValueError, match=r"^n_ctx must be >= 1, got 0$"):
        induction.mass_bounds(1.0, 0)


# --- the weights ------------------------------------------------------------------------------

def _expected_induction_head(lay: Layout, beta: float, dtype=torch.float64):
    d, e, V, N = lay.d_model, lay.d_head, lay.vocab_size, lay.n_ctx
    W_Q, W_K = torch.zeros(1, d, e, dtype=dtype), torch.zeros(1, d, e, dtype=dtype)
    W_V, W_O = torch.zeros(1, d, e, dtype=dtype), torch.zeros(1, e, d, dtype=dtype)
    for a in range(V):
        W_Q[0, a, a] = 2 * N * beta              # query e_tok(a), match column a
        W_K[0, V + 1 + a, a] = 1                 # key e_prev(a)
    W_Q[0, 3 * (V + 1), V] = N * beta            # the constant 1 -> sink column V
    W_K[0, V, V] = 1                             # key e_tok(BOS)
    W_Q[0, 3 * (V + 1), V + 1] = beta            # the constant 1 -> recency column V + 1
    W_K[0, 3 * (V + 1) + 1, V + 1] = 1           # key position j
    for a in range(V + 1):
        W_V[0, a, a] = 1
        W_O[0, a, 2 * (V + 1) + a] = 1
    return W_Q, W_K, W_V, W_O


@pytest.mark.parametrize("V, N, beta", [(2, 3, 0.7), (3, 5, 1.3), (1, 2, 2.0)])
def test_induction_head_weights_exactly(V, N, beta):
    lay = Layout(V, N)
    head = induction.induction_head(lay, beta)
    names = [f"blocks.1.attn.{w}" for w in ("W_Q", "W_K", "W_V", "W_O")]
    assert list(head) == names
    for name, want in zip(names, _expected_induction_head(lay, beta)):
        assert head[name].dtype == torch.float64 and head[name].shape == want.shape, name
        assert torch.equal(head[name], want), name
    other = induction.induction_head(lay, beta, layer=0, dtype=torch.float32)
    assert list(other) == [n.replace("blocks.1", "blocks.0") for n in names]
    for name, want in zip(other, _expected_induction_head(lay, beta, torch.float32)):
        assert other[name].dtype == torch.float32 and torch.equal(other[name], want), name


def test_unembedding_reads_the_output_subspace():
    lay = Layout(2, 4)
    W_U = induction.unembedding(lay)["unembed.W_U"]
    assert list(induction.unembedding(lay)) == ["unembed.W_U"]
    want = torch.zeros(lay.d_model, 3, dtype=torch.float64)
    want[6:9] = torch.eye(3, dtype=torch.float64)
    assert W_U.dtype == torch.float64 and torch.equal(W_U, want)
    W32 = induction.unembedding(lay, torch.float32)["unembed.W_U"]
    assert W32.dtype == torch.float32 and torch.equal(W32, want.float())


def test_build_induction_model_config_weights_and_attributes():
    m = induction.build_induction_model(2, 4)
    lay, beta = Layout(2, 4), math.log(32)
    cfg = m.cfg
    assert (cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_head, cfg.d_vocab, cfg.n_ctx) == (
        2, 1, lay.d_model, lay.d_head, 3, 4)
    assert (cfg.attn_scale, cfg.attention, cfg.d_vocab_out, cfg.d_mlp) == (1.0, "softmax", 3, None)
    assert m.layout == lay and m.beta == beta and m.bos == 2
    want = {**embeddings(lay), **previous_token_head(lay, beta, layer=0),
            **induction.induction_head(lay, beta, layer=1), **induction.unembedding(lay)}
    got = m.weights()
    for name, value in got.items():
        expected = want.get(name, torch.zeros_like(value))
        assert torch.equal(value, expected), name
    assert all(not p.requires_grad for p in m.parameters())
    hard = induction.build_induction_model(2, 4, "hard")
    assert hard.cfg.attention == "hard" and hard.beta == 1.0
    assert induction.build_induction_model(2, 4, beta=2.5).beta == 2.5
    assert induction.build_induction_model(1, 1).beta == 1.0


def test_build_induction_model_refusals():
    cases = [((0, 4), r"^vocab_size must be >= 1, got 0$"), ((2, 0), r"^n_ctx must be >= 1, got 0$"),
             ((2, 4, "soft"), r"^attention must be one of 'softmax', 'hard'; got 'soft'$")]
    for args, message in cases:
        with pytest.raises(ValueError, match=message):
            induction.build_induction_model(*args)
    with pytest.raises(ValueError, match=r"^beta must be a finite number > 0, got -1.0$"):
        induction.build_induction_model(2, 4, beta=-1.0)
    assert induction.build_induction_model(1, 1, "hard").cfg.n_ctx == 1  # V = N = 1 accepted


@pytest.mark.parametrize("attention", ["hard", "softmax"])
def test_model_predicts_the_reference(attention):
    m = induction.build_induction_model(3, 6, attention)
    tokens = torch.tensor([[3, 0, 1, 2, 0, 1], [3, 1, 1, 1, 2, 1], [3, 2, 0, 1, 0, 2]])
    want = induction.induction_targets(tokens, 3)
    assert torch.equal(m(tokens).argmax(-1), want)


# --- the BOS convention -----------------------------------------------------------------------

def test_check_sequences_and_the_model_refuse_a_missing_bos():
    seqs = torch.tensor([[10, 0, 1], [10, 3, 9]])
    assert torch.equal(induction.check_sequences(seqs, vocab_size=10, n_ctx=3), seqs)
    assert induction.check_sequences(torch.tensor([[10]]), vocab_size=10, n_ctx=3).shape == (1, 1)
    empty = torch.zeros(0, 2, dtype=torch.long)
    assert induction.check_sequences(empty, vocab_size=10, n_ctx=3).shape == (0, 2)
    bad = torch.tensor([[5, 1], [0, 1], [4, 1], [3, 1], [2, 1], [1, 1]])
    with pytest.raises(ValueError, match=r"^tokens: position 0 must hold BOS = vocab_size = 10, "
                                         r"got \[0, 1, 2, 3, 4\]$"):
        induction.check_sequences(bad, vocab_size=10, n_ctx=3)
    with pytest.raises(ValueError, match=r"got \[9, 10\]$"):
        induction.check_sequences(torch.tensor([[10, 1], [9, 1]]), vocab_size=10, n_ctx=3)
    with pytest.raises(ValueError, match=r"^tokens after position 0 must lie in \[0, 9\] "
                                         r"\(BOS = 10 only at position 0\)$"):
        induction.check_sequences(torch.tensor([[10, 1, 10]]), vocab_size=10, n_ctx=3)
    with pytest.raises(ValueError, match=r"^tokens length must be between 1 and n_ctx=3, got 4$"):
        induction.check_sequences(torch.full((1, 4), 10), vocab_size=10, n_ctx=3)
    with pytest.raises(ValueError, match=r"^tokens must lie in \[0, 10\] \(d_vocab=11\)"):
        induction.check_sequences(torch.tensor([[10, 11]]), vocab_size=10, n_ctx=3)
    m = induction.build_induction_model(2, 3, "hard")
    with pytest.raises(ValueError, match=r"^tokens: position 0 must hold BOS = vocab_size = 2, "):
        m(torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match=r"^tokens after position 0 must lie in \[0, 1\] "):
        m.run_with_cache(torch.tensor([[2, 2]]))
    logits, cache = m.run_with_cache(torch.tensor([[2, 0, 0]]))   # the cache reaches the model
    assert cache["blocks.1.attn.hook_pattern"].shape == (1, 1, 3, 3)
    assert torch.equal(logits, m(torch.tensor([[2, 0, 0]])))


# --- the section's variants ---------------------------------------------------------------------

def test_section_variant_identity_ov_weights():
    V, N = 2, 4
    m = induction.build_section_variant(V, N, "identity_ov")
    base = induction.build_induction_model(V, N, "hard")
    assert m.cfg.attention == "hard" and m.beta == 1.0
    w, b = m.weights(), base.weights()
    W_O = torch.zeros(1, V + 2, 3 * (V + 1) + 3, dtype=torch.float64)
    W_O[0, : V + 1, : V + 1] = torch.eye(V + 1, dtype=torch.float64)   # W_OV = identity on tok
    assert torch.equal(w["blocks.0.attn.W_O"], W_O)
    W_K = b["blocks.1.attn.W_K"].clone()
    for a in range(V):
        W_K[0, V + 1 + a, a] = 0.0
        W_K[0, a, a] = 1.0
    assert torch.equal(w["blocks.1.attn.W_K"], W_K)
    changed = {k for k in w if not torch.equal(w[k], b[k])}
    assert changed == {"blocks.0.attn.W_O", "blocks.1.attn.W_K"}
    assert all(not p.requires_grad for p in m.parameters())


def test_section_variant_match_only_weights():
    m = induction.build_section_variant(2, 4, "match_only", attention="softmax", beta=2.0)
    base = induction.build_induction_model(2, 4, "softmax", beta=2.0)
    assert m.cfg.attention == "softmax" and m.beta == 2.0
    w, b = m.weights(), base.weights()
    W_Q = b["blocks.1.attn.W_Q"].clone()
    W_Q[0, 9, 2:] = 0.0
    assert torch.equal(w["blocks.1.attn.W_Q"], W_Q) and float(W_Q[0, 0, 0]) == 16.0
    assert {k for k in w if not torch.equal(w[k], b[k])} == {"blocks.1.attn.W_Q"}
    assert all(not p.requires_grad for p in m.parameters())
    with pytest.raises(ValueError, match=r"^variant must be one of 'identity_ov', 'match_only'; "
                                         r"got 'both'$"):
        induction.build_section_variant(2, 4, "both")


# --- the reference ------------------------------------------------------------------------------

def test_induction_targets_reference():
    tokens = torch.tensor([[9, 0, 1, 0, 2, 1, 0], [9, 1, 1, 1, 0, 0, 3]])
    assert induction.induction_targets(tokens, 9).tolist() == [
        [9, 9, 9, 1, 9, 0, 2], [9, 9, 1, 1, 9, 0, 9]]
    assert induction.induction_targets(torch.tensor([[4]]), 7).tolist() == [[7]]
    assert induction.induction_targets(torch.tensor([[4, 4]], dtype=torch.int32), 0).tolist() == [
        [0, 4]]
    empty = induction.induction_targets(torch.zeros(2, 0, dtype=torch.long), 3)
    assert empty.shape == (2, 0) and empty.dtype == torch.long
    for bad in ([[1, 2]], torch.tensor([1, 2]), torch.tensor([[1.0, 2.0]])):
        with pytest.raises(TypeError, match=r"^tokens must be an integer torch tensor "
                                            r"\[batch, pos\]$"):
            induction.induction_targets(bad, 3)
    with pytest.raises(ValueError, match=r"^bos must be >= 0, got -1$"):
        induction.induction_targets(torch.tensor([[1]]), -1)
    assert induction.induction_targets(torch.tensor([[1, 1]]), 0).tolist() == [[0, 1]]


def test_layer_one_reads_the_token_and_writes_the_previous_token_subspace():
    lay = Layout(2, 4)
    w = induction.build_induction_model(2, 4).weights()
    W_V = torch.zeros(1, lay.d_model, lay.d_head, dtype=torch.float64)
    W_O = torch.zeros(1, lay.d_head, lay.d_model, dtype=torch.float64)
    for a in range(lay.n_tokens):
        W_V[0, a, a] = 1.0                     # value: e_tok(x_j), unscaled
        W_O[0, a, lay.n_tokens + a] = 1.0      # output: e_prev
    assert torch.equal(w["blocks.0.attn.W_V"], W_V) and torch.equal(w["blocks.0.attn.W_O"], W_O)
