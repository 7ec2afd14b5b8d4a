"""Section 1's framework claims on random shapes and weights, and each check fed a broken input."""

from __future__ import annotations

import sympy as sp
import torch
from hypothesis import given
from hypothesis import strategies as st

from constructions import circuits, transformer
from tests import strategies as S
from verify.claims import demo_2, framework, worked_example_1
from verify.claims.framework import FLOAT_TOL

# --- framework.qk_ov_factorization ----------------------------------------------------------


@given(cfg=S.configs(attention="softmax", mlp=None), seed=S.seeds, data=st.data())
def test_logits_invariant_under_qk_and_ov_reparametrization(cfg, seed, data):
    weights = transformer.random_weights(cfg, seed=seed, scale=1.5)
    for name in list(weights):  # the invariance of the claim is for zero Q/K/V biases
        if name.endswith(("b_Q", "b_K", "b_V")):
            weights[name].zero_()
    tokens = data.draw(S.token_batches(d_vocab=cfg.d_vocab, n_ctx=cfg.n_ctx))
    gaps = framework.factorization_gaps(cfg, weights, tokens, seed)
    assert gaps["logit_change"] < FLOAT_TOL * max(1.0, gaps["logit_scale"])
    assert gaps["score_gap"] < FLOAT_TOL  # relative to the products' rounding scale


def test_qk_and_ov_circuits_are_the_products():
    cfg = transformer.Config(n_layers=1, n_heads=2, d_model=4, d_head=3, d_vocab=5, n_ctx=3,
                             attn_scale=2.0)
    model = transformer.Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=7))
    attn = model.blocks[0].attn
    torch.testing.assert_close(circuits.qk(model, 0, 1), attn.W_Q[1] @ attn.W_K[1].T / 2.0)
    torch.testing.assert_close(circuits.ov(model, 0, 0), attn.W_V[0] @ attn.W_O[0])
    torch.testing.assert_close(circuits.full_ov(model, 0, 0),
                               model.embed.W_E @ attn.W_V[0] @ attn.W_O[0] @ model.unembed.W_U)
    torch.testing.assert_close(circuits.full_qk(model, 0, 1, query="pos", key="embed"),
                               model.pos_embed.W_pos @ circuits.qk(model, 0, 1) @ model.embed.W_E.T)


def test_symbolic_factorization_holds():
    assert framework.symbolic_factorization() == {
        "scores_invariant": True, "scores_bilinear": True, "ov_invariant": True}


def test_factorization_check_passes():
    outcome = framework.check_factorization()
    assert outcome.passed and outcome.verdict == "confirmed"


def test_factorization_check_fails_for_a_forward_that_sees_w_q_alone():
    def broken(cfg, weights, tokens):
        # a "head" whose output also depends on ||W_Q||: not a function of W_QK alone
        logits, cache = framework.run_model(cfg, weights, tokens)
        return logits + weights["blocks.0.attn.W_Q"].norm(), cache

    assert not framework.check_factorization(run=broken).passed


# --- framework.heads_additive ---------------------------------------------------------------


@given(cfg=S.configs(mlp=None), seed=S.seeds, data=st.data())
def test_layer_output_is_the_sum_of_head_outputs(cfg, seed, data):
    model = transformer.Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=seed))
    tokens = data.draw(S.token_batches(d_vocab=cfg.d_vocab, n_ctx=cfg.n_ctx))
    gaps = framework.heads_additive_gaps(model, tokens)
    assert max(gaps.values()) < FLOAT_TOL


def test_heads_additive_check_passes_and_fails_when_a_head_is_dropped():
    assert framework.check_heads_additive().passed

    def drop_last_head(model, cache, layer):
        z = cache[f"blocks.{layer}.attn.hook_z"]
        W_O = model.blocks[layer].attn.W_O
        return cache[f"blocks.{layer}.hook_attn_out"] - z[:, :, -1] @ W_O[-1]

    assert not framework.check_heads_additive(layer_output=drop_last_head).passed
    assert framework.symbolic_heads_additive(1) and framework.symbolic_heads_additive(4)


# --- framework.path_expansion ---------------------------------------------------------------


@given(cfg=S.configs(mlp=False), seed=S.seeds, data=st.data())
def test_path_terms_sum_to_the_logits(cfg, seed, data):
    model = transformer.Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=seed))
    tokens = data.draw(S.token_batches(d_vocab=cfg.d_vocab, n_ctx=cfg.n_ctx))
    terms = circuits.path_expansion(model, tokens)
    assert len(terms.heads) == cfg.n_layers * cfg.n_heads
    assert len(terms.virtual) == (cfg.n_heads**2 if cfg.n_layers == 2 else 0)
    scale = max(1.0, float(model(tokens).abs().max()))
    assert framework.expansion_gap(model, tokens) < FLOAT_TOL * scale


def test_path_expansion_check_fails_without_virtual_heads():
    assert framework.check_path_expansion().passed

    def no_virtual(model, tokens):
        terms = circuits.path_expansion(model, tokens)
        terms.virtual = {}
        return terms

    outcome = framework.check_path_expansion(expansion=no_virtual)
    assert not outcome.passed and outcome.evidence["max_abs_gap_2_layers"] > 1e-3


def test_path_expansion_rejects_models_it_does_not_cover():
    cfg = transformer.Config(n_layers=3, n_heads=1, d_model=2, d_head=2, d_vocab=2, n_ctx=2)
    import pytest
    with pytest.raises(ValueError, match="n_layers=3"):
        circuits.path_expansion(transformer.Transformer(cfg), torch.tensor([[0, 1]]))


# --- worked_example_1.qk_matrix --------------------------------------------------------------


def test_worked_example_1_evidence():
    outcome = worked_example_1.check_qk_matrix()
    assert outcome.passed and outcome.verdict == "corrected"
    ce = outcome.evidence["counterexample"]
    assert ce["longer_key_score"] > ce["matching_score"]
    assert outcome.evidence["rank"] == 2


def test_worked_example_1_fails_for_a_wrong_key_matrix_or_statement():
    swapped = sp.Matrix([[0, 0], [0, 0], [0, 1], [1, 0]])
    assert not worked_example_1.check_qk_matrix(w_k=swapped).passed
    assert not worked_example_1.check_qk_matrix(stated=sp.eye(4)).passed


# --- demo_2.param_count ---------------------------------------------------------------------


def test_demo_2_param_count_and_broken_sizes():
    assert demo_2.check_param_count().passed
    from constructions.tiny_mlp import TinyModel
    assert not demo_2.check_param_count(lambda: TinyModel(97, 63)).passed
    assert not demo_2.check_param_count(lambda: TinyModel(97, 64, hidden=127)).passed
    assert demo_2.formula_count(97, 64) == 35233
