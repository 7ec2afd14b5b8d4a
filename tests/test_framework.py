"""Section 1's framework claims, Worked Example 1 and Demo 2's count: the identities behind them
(SymPy, Hypothesis), their literal and restated checks, and each condition of each check broken
on purpose."""

from __future__ import annotations

import pytest
import sympy as sp
import torch
from hypothesis import given
from hypothesis import strategies as st

from constructions import circuits, transformer
from constructions.tiny_mlp import TinyModel
from tests import strategies as S
from verify.claims import demo_2, framework, worked_example_1
from verify.claims.framework import FLOAT_TOL
from verify.registry import derive_verdict

F = framework


def verdict(literal, restated) -> str:
    return derive_verdict(literal.holds, restated.holds)


def one_model(*, biases=True, mlp=False, layers=1) -> transformer.Transformer:
    return F.random_model((layers, 2, 5, 3, 6, 7, 4), seed=3, biases=biases, mlp=mlp)


# --- the theorems (SymPy): associativity, block multiplication, the two-layer expansion ----


def test_symbolic_factorization():
    """Scores and head outputs are unchanged under (W_Q M, W_K M^-T, W_V N, N^-1 W_O), and the
    scores are x W_Q W_K^T x^T, for generic symbols (2 tokens, d_model 3, d_head 2)."""
    x = sp.Matrix(2, 3, sp.symbols("x0:6"))
    W_Q, W_K = sp.Matrix(3, 2, sp.symbols("q0:6")), sp.Matrix(3, 2, sp.symbols("k0:6"))
    W_V, W_O = sp.Matrix(3, 2, sp.symbols("v0:6")), sp.Matrix(2, 3, sp.symbols("o0:6"))
    M, N = sp.Matrix(2, 2, sp.symbols("m0:4")), sp.Matrix(2, 2, sp.symbols("n0:4"))
    A = sp.Matrix(2, 2, sp.symbols("a0:4"))
    scores = (x * W_Q) * (x * W_K).T
    moved = (x * W_Q * M) * (x * W_K * M.inv().T).T
    assert sp.simplify(moved - scores) == sp.zeros(2, 2)
    assert sp.expand(scores - x * (W_Q * W_K.T) * x.T) == sp.zeros(2, 2)
    assert sp.simplify(A * x * W_V * N * N.inv() * W_O - A * x * W_V * W_O) == sp.zeros(2, 3)


@pytest.mark.parametrize("n_heads", [1, 3, 4])
def test_symbolic_concat_then_project_is_the_sum_of_heads(n_heads):
    zs = [sp.Matrix(2, 2, sp.symbols(f"z{h}_0:4")) for h in range(n_heads)]
    os_ = [sp.Matrix(2, 3, sp.symbols(f"o{h}_0:6")) for h in range(n_heads)]
    lhs = sp.Matrix.hstack(*zs) * sp.Matrix.vstack(*os_)
    rhs = sum((z * o for z, o in zip(zs, os_)), sp.zeros(2, 3))
    assert sp.expand(lhs - rhs) == sp.zeros(2, 3)


def test_symbolic_two_layer_expansion_has_a_virtual_head():
    n, d = sp.symbols("n d", integer=True, positive=True)
    X0, W1, W2 = (sp.MatrixSymbol("X0", n, d), sp.MatrixSymbol("W1", d, d),
                  sp.MatrixSymbol("W2", d, d))
    A1, A2 = sp.MatrixSymbol("A1", n, n), sp.MatrixSymbol("A2", n, n)
    X1 = X0 + A1 * X0 * W1
    X2 = X1 + A2 * X1 * W2
    terms = X0 + A1 * X0 * W1 + A2 * X0 * W2 + A2 * A1 * X0 * W1 * W2
    assert sp.expand(X2 - terms) == sp.ZeroMatrix(n, d)


# --- framework.qk_ov_factorization ----------------------------------------------------------


@given(cfg=S.configs(attention="softmax", mlp=None), seed=S.seeds, data=st.data())
def test_logits_invariant_under_reparametrization_with_biases_moved(cfg, seed, data):
    model = transformer.Transformer.from_weights(
        cfg, transformer.random_weights(cfg, seed=seed, scale=1.5))
    tokens = data.draw(S.token_batches(d_vocab=cfg.d_vocab, n_ctx=cfg.n_ctx))
    assert F.logit_change(model, tokens, seed, move_biases=True) < FLOAT_TOL
    bias_free = F.without_qkv_biases(model)
    assert F.logit_change(bias_free, tokens, seed, move_biases=False) < FLOAT_TOL
    assert F.score_gap(bias_free, tokens) < FLOAT_TOL


def test_qk_and_ov_circuits_are_the_products():
    cfg = transformer.Config(n_layers=1, n_heads=2, d_model=4, d_head=3, d_vocab=5, n_ctx=3,
                             attn_scale=2.0)
    model = transformer.Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=7))
    attn = model.blocks[0].attn
    torch.testing.assert_close(circuits.qk(model, 0, 1), attn.W_Q[1] @ attn.W_K[1].T / 2.0)
    torch.testing.assert_close(circuits.ov(model, 0, 0), attn.W_V[0] @ attn.W_O[0])
    torch.testing.assert_close(circuits.full_ov(model, 0, 0),
                               model.embed.W_E @ attn.W_V[0] @ attn.W_O[0] @ model.unembed.W_U)


def test_factorization_verdict_follows_the_biases():
    literal, restated = F.check_factorization_literal(), F.check_factorization_restated()
    assert (literal.holds, restated.holds) == (False, True)
    assert literal.evidence["models_with_qkv_biases"] > 0
    bias_free = [F.without_qkv_biases(m) for m in F.random_models()]
    assert verdict(F.check_factorization_literal(bias_free), restated) == "confirmed"
    assert verdict(literal, F.check_factorization_restated()) == "corrected"


def _shifting_runner(delta: float):
    """A forward that adds ``delta`` to every logit on every second call: a change of exactly
    delta between the original and the reparametrized model."""
    calls = {"n": 0}

    def run(cfg, weights, tokens):
        logits, cache = F.run_model(cfg, weights, tokens)
        calls["n"] += 1
        return (logits + delta if calls["n"] % 2 == 0 else logits), cache
    return run


def test_factorization_literal_tolerance_edge():
    m = F.without_qkv_biases(one_model())
    scale = max(1.0, float(m(F.random_tokens(m.cfg, 0)).abs().max()))
    assert F.check_factorization_literal([m], run=_shifting_runner(0.5 * FLOAT_TOL * scale)).holds
    assert not F.check_factorization_literal([m], run=_shifting_runner(2 * FLOAT_TOL * scale)).holds


def _perturbed_by(name: str, when_zero_biases: bool):
    def run(cfg, weights, tokens):
        logits, cache = F.run_model(cfg, weights, tokens)
        biased = any(float(v.abs().max()) > 0 for k, v in weights.items()
                     if k.endswith(("b_Q", "b_K", "b_V")))
        if biased != when_zero_biases:
            logits = logits + weights[f"blocks.0.attn.{name}"].norm()
        return logits, cache
    return run


def test_factorization_restated_each_condition_fails_alone():
    models = [one_model()]
    ok = F.check_factorization_restated(models)
    assert ok.holds
    # reads ||b_Q|| when biases are present: only the moved-biases invariance breaks
    broken = F.check_factorization_restated(models, run=_perturbed_by("b_Q", False))
    assert not broken.holds and broken.evidence["max_rel_logit_change_zero_qkv_biases"] < FLOAT_TOL
    # reads ||W_Q|| only when the Q/K/V biases are zero: only the plain invariance breaks
    broken = F.check_factorization_restated(models, run=_perturbed_by("W_Q", True))
    assert not broken.holds and broken.evidence["max_rel_logit_change_biases_moved"] < FLOAT_TOL

    def scores_off(cfg, weights, tokens):  # logits right, cached scores wrong
        logits, cache = F.run_model(cfg, weights, tokens)
        cache["blocks.0.attn.hook_attn_scores"] = cache["blocks.0.attn.hook_attn_scores"] + 1.0
        return logits, cache
    broken = F.check_factorization_restated(models, run=scores_off)
    assert not broken.holds
    assert broken.evidence["max_rel_logit_change_zero_qkv_biases"] < FLOAT_TOL
    assert broken.evidence["max_rel_logit_change_biases_moved"] < FLOAT_TOL


def test_checks_refuse_an_empty_model_list():
    with pytest.raises(ValueError, match="models"):
        F.check_factorization_literal([])


# --- framework.heads_additive ---------------------------------------------------------------


@given(cfg=S.configs(mlp=None), seed=S.seeds, data=st.data())
def test_attention_output_is_the_sum_of_heads_and_blocks_are_sequential(cfg, seed, data):
    model = transformer.Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=seed))
    tokens = data.draw(S.token_batches(d_vocab=cfg.d_vocab, n_ctx=cfg.n_ctx))
    assert max(F.sequential_gaps(model, tokens).values()) < FLOAT_TOL
    if cfg.d_mlp is None:
        assert F.parallel_gap(model, tokens) < FLOAT_TOL


def test_heads_additive_verdict_follows_the_mlp():
    literal, restated = F.check_heads_additive_literal(), F.check_heads_additive_restated()
    assert (literal.holds, restated.holds) == (False, True)
    attention_only = F.random_models(mlp=False)
    assert verdict(F.check_heads_additive_literal(attention_only), restated) == "confirmed"


def test_heads_additive_restated_each_condition_fails_alone():
    model = one_model(mlp=True)

    def drop_last_head(m, cache, layer):  # breaks both: the block uses this attention output
        z = cache[f"blocks.{layer}.attn.hook_z"]
        return cache[f"blocks.{layer}.hook_attn_out"] - z[:, :, -1] @ m.blocks[layer].attn.W_O[-1]

    broken = F.check_heads_additive_restated([model], layer_output=drop_last_head)
    assert not broken.holds and broken.evidence["max_rel_attn_out_vs_head_sum"] > 1e-3

    class ZOff(transformer.Transformer):  # per-head z misreported: only the head sum breaks
        def run_with_cache(self, tokens):
            logits, cache = super().run_with_cache(tokens)
            cache["blocks.0.attn.hook_z"] = cache["blocks.0.attn.hook_z"] * 1.5
            return logits, cache

    zoff = ZOff.from_weights(model.cfg, model.weights())
    broken = F.check_heads_additive_restated([zoff])
    assert not broken.holds and broken.evidence["max_rel_block_vs_sequential"] < FLOAT_TOL

    class Parallel(transformer.Transformer):  # MLP reads the block input: only the block breaks
        def run_with_cache(self, tokens):
            logits, cache = super().run_with_cache(tokens)
            x = cache["blocks.0.hook_resid_pre"]
            cache["blocks.0.hook_resid_post"] = (x + cache["blocks.0.hook_attn_out"]
                                                 + F.mlp_of(self, 0, x))
            return logits, cache

    par = Parallel.from_weights(model.cfg, model.weights())
    broken = F.check_heads_additive_restated([par])
    assert not broken.holds and broken.evidence["max_rel_attn_out_vs_head_sum"] < FLOAT_TOL
    assert F.check_heads_additive_literal([par]).holds  # the literal reading fits a parallel block


# --- framework.path_expansion ---------------------------------------------------------------


@given(cfg=S.configs(mlp=False), seed=S.seeds, data=st.data())
def test_path_terms_sum_to_the_logits(cfg, seed, data):
    model = transformer.Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=seed))
    tokens = data.draw(S.token_batches(d_vocab=cfg.d_vocab, n_ctx=cfg.n_ctx))
    terms = circuits.path_expansion(model, tokens)
    assert len(terms.heads) == cfg.n_layers * cfg.n_heads
    assert len(terms.virtual) == (cfg.n_heads**2 if cfg.n_layers == 2 else 0)
    assert F.expansion_gap(model, tokens) < FLOAT_TOL


def _no_virtual(model, tokens):
    terms = circuits.path_expansion(model, tokens)
    terms.virtual = {}
    return terms


def _no_heads(model, tokens):
    terms = circuits.path_expansion(model, tokens)
    terms.heads = {}
    terms.virtual = {}
    return terms


def test_path_expansion_verdict_follows_the_stated_formula():
    literal, restated = F.check_path_expansion_literal(), F.check_path_expansion_restated()
    assert (literal.holds, restated.holds) == (False, True)
    assert literal.evidence["stated_formula"] is None
    stated = F.check_path_expansion_literal(stated=circuits.path_expansion)
    assert verdict(stated, restated) == "confirmed"
    wrong = F.check_path_expansion_literal(stated=_no_heads)
    assert not wrong.holds and wrong.evidence["max_rel_gap"] > 1e-3


def test_path_expansion_restated_fails_without_virtual_heads_or_head_terms():
    broken = F.check_path_expansion_restated(expansion=_no_virtual)
    assert not broken.holds and broken.evidence["max_rel_gap_2_layers"] > 1e-3
    assert broken.evidence["max_rel_gap_1_layer"] < FLOAT_TOL
    one_layer = [m for m in F.random_models(mlp=False) if m.cfg.n_layers == 1]
    broken = F.check_path_expansion_restated(expansion=_no_heads, models=one_layer)
    assert not broken.holds and broken.evidence["max_rel_gap_1_layer"] > 1e-3


def test_path_expansion_rejects_models_it_does_not_cover():
    cfg = transformer.Config(n_layers=3, n_heads=1, d_model=2, d_head=2, d_vocab=2, n_ctx=2)
    with pytest.raises(ValueError, match="n_layers=3"):
        circuits.path_expansion(transformer.Transformer(cfg), torch.tensor([[0, 1]]))


# --- worked_example_1.qk_matrix --------------------------------------------------------------

W1 = worked_example_1


def test_worked_example_1_verdict_follows_the_keys():
    literal, restated = W1.check_literal(), W1.check_restated()
    assert (literal.holds, restated.holds) == (False, True)
    assert restated.evidence["rank"] == 2
    ce = restated.evidence["counterexample"]
    assert ce["longer_key_score"] > ce["matching_score"]
    assert ce["softmax_weight_on_longer_key"] > 0.5
    equal_norm = (W1.MATCHING_KEY, sp.Matrix([[0, 0, 0, 1]]))
    assert verdict(W1.check_literal(keys=equal_norm), restated) == "confirmed"


def test_worked_example_1_literal_each_condition_fails_alone():
    equal_norm = (W1.MATCHING_KEY, sp.Matrix([[0, 0, 0, 1]]))
    assert not W1.check_literal(stated=sp.eye(4), keys=equal_norm).holds       # the matrix
    tie = (W1.MATCHING_KEY, sp.Matrix([[5, 5, 1, 0]]))                          # a tie
    assert not W1.check_literal(keys=tie).holds
    no_match_wins = (sp.Matrix([[0, 0, 0, 1]]), sp.Matrix([[0, 0, 3, 0]]))      # best ≠ match
    assert not W1.check_literal(keys=no_match_wins).holds


def test_worked_example_1_restated_each_condition_fails_alone():
    assert not W1.check_restated(stated=sp.eye(4)).holds
    unequal = W1.unit_keys(W1.QUERY)[:5] + [W1.LONGER_KEY]
    assert not W1.check_restated(keys=unequal).holds
    no_aligned = W1.unit_keys(W1.QUERY)[1:]
    assert not W1.check_restated(keys=no_aligned).holds
    swapped = sp.Matrix([[0, 0], [0, 0], [0, 1], [1, 0]])  # scores <x[0:2], swap(y[2:4])>
    assert not W1.check_restated(w_k=swapped, stated=W1.W_Q * swapped.T).holds
    assert W1.check_restated(w_k=2 * W1.W_K, stated=2 * W1.STATED_QK).holds  # a scale is fine


# --- demo_2.param_count ---------------------------------------------------------------------


class Transposed(TinyModel):
    def forward(self, x, y):
        return super().forward(x, y).T


def test_demo_2_verdict_and_each_condition():
    literal, restated = demo_2.check_literal(), demo_2.check_restated()
    assert (literal.holds, restated.holds) == (True, True)
    assert demo_2.formula_count(97, 64) == 35233
    assert not demo_2.check_literal(lambda: TinyModel(97, 63)).holds           # the count
    assert not demo_2.check_literal(stated_shape=[3, 96]).holds                 # the shape
    assert verdict(demo_2.check_literal(stated_count=35232), restated) == "corrected"
    assert not demo_2.check_restated(lambda: TinyModel(97, 64, hidden=127)).holds
    assert not demo_2.check_restated(lambda: Transposed(97, 64)).holds         # shape only
    assert demo_2.measure(Transposed(97, 64))["parameters"] == 35233
