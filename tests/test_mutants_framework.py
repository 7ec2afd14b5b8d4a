"""The framework, Worked Example 1 and Demo 2 checks: every tolerance at its edge, every filter
and default seen to matter, the evidence values pinned (mutation testing, issue 13).

Tolerance edges use the all-zero model: its logits, scores and stream are exactly 0, so a
perturbation of exactly ``FLOAT_TOL`` (or half of it) reaches the compared quantity without
rounding, and each check must reject the first and accept the second."""

from __future__ import annotations

import pytest
import sympy as sp
import torch

from constructions import circuits, transformer
from constructions.tiny_mlp import TinyModel
from verify import reparametrization
from verify.claims import demo_2, framework, worked_example_1
from verify.claims.framework import FLOAT_TOL

F, W1 = framework, worked_example_1
EDGE, BELOW = FLOAT_TOL, FLOAT_TOL / 2


def zero_model(layers: int = 1, d_mlp: int | None = None) -> transformer.Transformer:
    cfg = transformer.Config(n_layers=layers, n_heads=2, d_model=3, d_head=2, d_vocab=4, n_ctx=4,
                             d_mlp=d_mlp, act_fn="relu" if d_mlp else None)
    return transformer.Transformer(cfg).requires_grad_(False)  # every parameter zero


def at_call(n: int, delta: float, *, scores: bool = False):
    """A runner that adds ``delta`` to the logits (or to layer 0's scores) at its n-th call."""
    calls = {"n": 0}

    def run(cfg, weights, tokens):
        logits, cache = F.run_model(cfg, weights, tokens)
        calls["n"] += 1
        if calls["n"] == n:
            if scores:
                cache["blocks.0.attn.hook_attn_scores"] = cache["blocks.0.attn.hook_attn_scores"] + delta
            else:
                logits = logits + delta
        return logits, cache
    return run


# --- framework.qk_ov_factorization ----------------------------------------------------------


@pytest.mark.parametrize("delta, holds", [(EDGE, False), (BELOW, True)])
def test_factorization_literal_at_its_tolerance(delta, holds):
    found = F.check_factorization_literal([zero_model()], run=at_call(2, delta))
    assert found.holds is holds and found.evidence["max_rel_logit_change"] == delta
    assert found.evidence["models"] == 1 and found.evidence["models_with_qkv_biases"] == 0


@pytest.mark.parametrize("call, scores, key", [
    (2, False, "max_rel_logit_change_biases_moved"),     # the first pair of runs: biases moved
    (4, False, "max_rel_logit_change_zero_qkv_biases"),  # the second pair: biases zeroed
    (5, True, "max_rel_score_minus_xWQKx")])             # the last run: the bilinear form
@pytest.mark.parametrize("delta, holds", [(EDGE, False), (BELOW, True)])
def test_factorization_restated_each_conjunct_at_its_tolerance(call, scores, key, delta, holds):
    found = F.check_factorization_restated([zero_model()], run=at_call(call, delta, scores=scores))
    assert found.holds is holds and found.evidence[key] == delta
    others = [v for k, v in found.evidence.items() if k.startswith("max_rel") and k != key]
    assert others == [0.0, 0.0] and found.evidence["models"] == 1


def test_factorization_counts_biased_models():
    models = F.random_models()
    found = F.check_factorization_literal(models[:2])
    assert found.evidence["models_with_qkv_biases"] == 2 and found.evidence["models"] == 2
    assert F.check_factorization_literal(
        [F.without_qkv_biases(models[0]), models[1]]).evidence["models_with_qkv_biases"] == 1


# --- framework.heads_additive ---------------------------------------------------------------


class ShiftedUpdate(transformer.Transformer):
    """Reports a block output ``delta`` away from the true one (layer 0)."""

    delta = 0.0

    def run_with_cache(self, tokens):
        logits, cache = super().run_with_cache(tokens)
        cache["blocks.0.hook_resid_post"] = cache["blocks.0.hook_resid_post"] + self.delta
        return logits, cache


@pytest.mark.parametrize("delta, holds", [(EDGE, False), (BELOW, True)])
def test_heads_additive_literal_at_its_tolerance(delta, holds):
    model = ShiftedUpdate(zero_model(d_mlp=3).cfg).requires_grad_(False)
    model.delta = delta
    found = F.check_heads_additive_literal([model])
    assert found.holds is holds
    assert found.evidence["max_rel_gap_parallel_decomposition"] == delta
    assert found.evidence["models"] == 1 and found.evidence["models_with_mlp"] == 1


def test_heads_additive_literal_counts_models_with_mlps():
    found = F.check_heads_additive_literal(F.random_models())
    with_mlp = sum(shape[-1] is not None for shape in F.CHECK_SHAPES) * len(F.CHECK_SEEDS)
    assert found.evidence["models_with_mlp"] == with_mlp == 6
    assert F.check_heads_additive_literal([zero_model()]).evidence["models_with_mlp"] == 0


@pytest.mark.parametrize("delta, holds", [(EDGE, False), (BELOW, True)])
def test_heads_additive_restated_at_its_tolerance(delta, holds):
    def shifted(model, cache, layer):
        return F.model_attn_out(model, cache, layer) + delta
    found = F.check_heads_additive_restated([zero_model(d_mlp=3)], layer_output=shifted)
    assert found.holds is holds
    assert found.evidence["max_rel_attn_out_vs_head_sum"] == delta
    assert found.evidence["max_rel_block_vs_sequential"] == delta
    assert found.evidence["models"] == 1


# --- framework.path_expansion ---------------------------------------------------------------


def shifted_expansion(delta: float):
    def expansion(model, tokens):
        terms = circuits.path_expansion(model, tokens)
        terms.direct = terms.direct + delta
        return terms
    return expansion


@pytest.mark.parametrize("delta, holds", [(EDGE, False), (BELOW, True)])
def test_path_expansion_at_its_tolerance(delta, holds):
    lit = F.check_path_expansion_literal(shifted_expansion(delta), [zero_model()])
    assert lit.holds is holds and lit.evidence == {"max_rel_gap": delta, "tolerance": FLOAT_TOL,
                                                   "models": 1}
    res = F.check_path_expansion_restated(shifted_expansion(delta), [zero_model(layers=2)])
    assert res.holds is holds and res.evidence["max_rel_gap_2_layers"] == delta
    assert res.evidence["max_rel_gap_1_layer"] == 0.0
    assert res.evidence["largest_virtual_head_term"] == 0.0


def _no_virtual(model, tokens):
    terms = circuits.path_expansion(model, tokens)
    terms.virtual = {}
    return terms


def test_path_expansion_literal_judges_one_layer_models_only():
    """A formula without virtual heads is right for one layer: the literal check (one-layer
    models) accepts it; handed two-layer models it has none to judge."""
    found = F.check_path_expansion_literal(_no_virtual)
    assert found.holds and found.evidence["models"] == 2 * len(F.CHECK_SEEDS)
    with pytest.raises(ValueError):  # max() of nothing: no one-layer model among those given
        F.check_path_expansion_literal(_no_virtual, [zero_model(layers=2)])


def test_path_expansion_literal_without_a_formula():
    found = F.check_path_expansion_literal()
    assert found.holds is False
    assert found.evidence == {"stated_formula": None,
                              "why": "the text announces the formula and gives none"}


def test_path_expansion_restated_reports_the_largest_virtual_term():
    cfg = zero_model(layers=2).cfg
    models = [transformer.Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=1,
                                                                                  scale=0.3))]
    found = F.check_path_expansion_restated(models=models)
    largest = 0.0
    for i, m in enumerate(models):
        if m.cfg.n_layers == 2:
            terms = circuits.path_expansion(m, F.random_tokens(m.cfg, i))
            largest = max(largest, max(float(t.abs().max()) for t in terms.virtual.values()))
    assert 0 < largest < 1  # small terms: a maximum that starts at 1 would show
    assert found.evidence["largest_virtual_head_term"] == largest
    mine = F.check_path_expansion_restated(models=[zero_model()])
    assert mine.evidence["max_rel_gap_1_layer"] == 0.0 and mine.evidence["max_rel_gap_2_layers"] == 0.0


# --- worked_example_1.qk_matrix --------------------------------------------------------------


def test_worked_example_1_literal_evidence():
    found = W1.check_literal()
    assert found.evidence == {
        "W_Q_W_K^T": W1.STATED_QK.tolist(), "equals_stated": True, "query": [1, 0, 0, 0],
        "keys": [[0, 0, 1, 0], [0, 0, 2, 1]], "matches": [True, False], "scores": ["1", "2"],
        "argmax": [1]}
    assert W1.check_literal(stated=sp.eye(4)).evidence["equals_stated"] is False


def test_worked_example_1_restated_evidence():
    found = W1.check_restated()
    ev = found.evidence
    assert ev["equals_stated"] is True and ev["rank"] == 2 and ev["equal_norm_keys"] == 12
    assert ev["bilinear_form"] == "x0*y2 + x1*y3" and ev["bilinear_form_is_dot_product"] is True
    assert ev["equal_norms"] is True and ev["aligned_key_is_unique_argmax"] is True
    assert ev["counterexample"] == {
        "query": [1, 0, 0, 0], "matching_key": [0, 0, 1, 0], "matching_score": 1,
        "non_matching_longer_key": [0, 0, 2, 1], "longer_key_score": 2,
        "softmax_weight_on_longer_key": pytest.approx(1 / (1 + float(sp.exp(-1 / sp.sqrt(2)))))}
    assert ev["with_section_1_scaling"] == {"d_k": 2,
                                           "W_QK": str((W1.STATED_QK / sp.sqrt(2)).tolist())}
    swapped = sp.Matrix([[0, 0], [0, 0], [0, 1], [1, 0]])
    broken = W1.check_restated(w_k=swapped, stated=W1.W_Q * swapped.T).evidence
    assert broken["bilinear_form_is_dot_product"] is False and broken["equals_stated"] is True


def test_worked_example_1_aligned_key_must_point_the_same_way():
    """The key opposite the query is parallel but not aligned: with it as the only candidate
    on the line, the check fails."""
    opposite = [k for k in W1.unit_keys(W1.QUERY) if k[0, 2] == -1]
    others = [k for k in W1.unit_keys(W1.QUERY) if k[0, 2] != 1]
    assert len(opposite) == 1
    assert not W1.check_restated(keys=others).holds
    assert W1.check_restated(keys=W1.unit_keys(W1.QUERY, n=4)).holds


def test_unit_keys_start_at_the_query_direction():
    keys = W1.unit_keys(sp.Matrix([[0, 3, 0, 0]]), n=4)
    assert [list(k) for k in keys] == [[0, 0, 0, 1], [0, 0, -1, 0], [0, 0, 0, -1], [0, 0, 1, 0]]


# --- demo_2.param_count ---------------------------------------------------------------------


def test_demo_2_evidence():
    lit, res = demo_2.check_literal(), demo_2.check_restated()
    per_module = {name: sum(p.numel() for p in m.parameters())
                  for name, m in TinyModel(97, 64).named_children()}
    assert sum(per_module.values()) == 35233 and len(per_module) >= 2
    assert lit.evidence == {"parameters": 35233, "output_shape": [3, 97], "per_module": per_module,
                            "stated_count": 35233, "stated_shape": [3, 97]}
    assert res.evidence == {"parameters": 35233, "output_shape": [3, 97], "per_module": per_module,
                            "formula_p97_d64": 35233}
    assert demo_2.measure(TinyModel(7, 2))["per_module"] == {
        name: sum(p.numel() for p in m.parameters()) for name, m in TinyModel(7, 2).named_children()}


def test_demo_2_output_shape_is_measured_on_the_demo_inputs():
    class EchoBatch(torch.nn.Module):
        def forward(self, x, y):
            return torch.zeros(len(x) + len(y), 97)
    assert demo_2.measure(EchoBatch())["output_shape"] == [6, 97]


# --- what counts as a biased model; seeds and flags that matter -----------------------------


@pytest.mark.parametrize("name", ["b_Q", "b_K", "b_V"])
def test_a_single_small_bias_makes_a_biased_model(name):
    """Each of b_Q, b_K, b_V alone, and a bias far below 1, counts."""
    model = zero_model()
    weights = model.weights()
    weights[f"blocks.0.attn.{name}"] = torch.full_like(weights[f"blocks.0.attn.{name}"], 0.25)
    biased = transformer.Transformer.from_weights(model.cfg, weights)
    found = F.check_factorization_literal([biased, model])
    assert found.evidence["models_with_qkv_biases"] == 1
    weights = model.weights()
    weights["blocks.0.attn.b_O"] = torch.ones_like(weights["blocks.0.attn.b_O"])  # not Q/K/V
    assert F.check_factorization_literal(
        [transformer.Transformer.from_weights(model.cfg, weights)]
    ).evidence["models_with_qkv_biases"] == 0


# --- constructions/circuits.py --------------------------------------------------------------


def test_path_expansion_names_what_it_needs():
    cfg = transformer.Config(n_layers=1, n_heads=1, d_model=2, d_head=2, d_vocab=2, n_ctx=2,
                             d_mlp=2, act_fn="relu")
    with pytest.raises(ValueError, match=r"^path_expansion needs an attention-only model with 1 "
                                         r"or 2 layers, got n_layers=1, d_mlp=2$"):
        circuits.path_expansion(transformer.Transformer(cfg), torch.tensor([[0, 1]]))


def test_path_terms_are_keyed_and_shaped_as_documented():
    cfg = transformer.Config(n_layers=2, n_heads=2, d_model=3, d_head=2, d_vocab=4, n_ctx=3)
    model = transformer.Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=2))
    tokens = torch.tensor([[0, 1, 2], [3, 2, 1]])
    terms = circuits.path_expansion(model, tokens)
    assert sorted(terms.heads) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert sorted(terms.virtual) == [(0, a, 1, b) for a in range(2) for b in range(2)]
    for term in [terms.direct, terms.bias, *terms.heads.values(), *terms.virtual.values()]:
        assert term.shape == (2, 3, 4)
    torch.testing.assert_close(terms.total(), model(tokens))


def test_circuit_accessors_validate_layer_and_head():
    cfg = transformer.Config(n_layers=2, n_heads=3, d_model=2, d_head=2, d_vocab=2, n_ctx=2)
    model = transformer.Transformer(cfg)
    for layer, head, message in [(-1, 0, r"^layer must be in \[0, 1\], got -1$"),
                                 (2, 0, r"^layer must be in \[0, 1\], got 2$"),
                                 (0, -1, r"^head must be in \[0, 2\], got -1$"),
                                 (0, 3, r"^head must be in \[0, 2\], got 3$")]:
        with pytest.raises(ValueError, match=message):
            circuits.qk(model, layer, head)
        with pytest.raises(ValueError, match=message):
            circuits.ov(model, layer, head)
    assert circuits.qk(model, 1, 2).shape == (2, 2) and circuits.ov(model, 0, 0).shape == (2, 2)


def test_full_qk_sides():
    cfg = transformer.Config(n_layers=1, n_heads=1, d_model=3, d_head=2, d_vocab=4, n_ctx=5)
    model = transformer.Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=4))
    E, P = model.embed.W_E.detach(), model.pos_embed.W_pos.detach()
    QK = circuits.qk(model, 0, 0)
    torch.testing.assert_close(circuits.full_qk(model, 0, 0), E @ QK @ E.T)
    torch.testing.assert_close(circuits.full_qk(model, 0, 0, query="pos", key="pos"), P @ QK @ P.T)
    torch.testing.assert_close(circuits.full_qk(model, 0, 0, query="embed", key="pos"), E @ QK @ P.T)
    torch.testing.assert_close(circuits.full_qk(model, 0, 0, query="pos", key="embed"), P @ QK @ E.T)
    with pytest.raises(ValueError, match=r"^query and key must be 'embed' or 'pos', got 'tok', "
                                         r"'pos'$"):
        circuits.full_qk(model, 0, 0, query="tok", key="pos")
    with pytest.raises(ValueError, match="got 'embed', 'x'"):
        circuits.full_qk(model, 0, 0, key="x")


# --- `python -m verify inspect worked_example_1` ----------------------------------------------

INSPECT_WE1 = """W_Q  [4 x 2]
   h0 h1
d0  1  0
d1  0  1
d2  0  0
d3  0  0

W_K  [4 x 2]
   h0 h1
d0  0  0
d1  0  0
d2  1  0
d3  0  1

W_Q W_K^T (query rows, key columns)  [4 x 4]
   d0 d1 d2 d3
d0  0  0  1  0
d1  0  0  0  1
d2  0  0  0  0
d3  0  0  0  0

score(i, j) = x_i[0] x_j[2] + x_i[1] x_j[3]; section 1's W_QK is this / sqrt(2)
"""


def test_inspect_worked_example_1_prints_the_matrices(capsys):
    assert W1.inspect_worked_example_1([]) == 0
    assert capsys.readouterr().out == INSPECT_WE1
    from verify.cli_util import UsageError
    with pytest.raises(UsageError, match=r"^python -m verify inspect worked_example_1: "
                                         r"unrecognized arguments: --nope$"):
        W1.inspect_worked_example_1(["--nope"])
    assert W1.INSPECT == {"worked_example_1": W1.inspect_worked_example_1}


def test_score_gap_is_relative_to_the_products_scale():
    """One token, d_model = d_head = 1, x = 2, W_Q = W_K = 2, attn_scale 2: the products'
    scale is |x| |W_Q| |W_K| |x| / attn_scale = 8, so a score off by 1 is a gap of 1/8."""
    cfg = transformer.Config(n_layers=1, n_heads=1, d_model=1, d_head=1, d_vocab=1, n_ctx=1,
                             attn_scale=2.0)
    weights = transformer.Transformer(cfg).weights()
    weights["embed.W_E"] = torch.full((1, 1), 2.0, dtype=torch.float64)
    weights["blocks.0.attn.W_Q"] = torch.full((1, 1, 1), 2.0, dtype=torch.float64)
    weights["blocks.0.attn.W_K"] = torch.full((1, 1, 1), 2.0, dtype=torch.float64)
    model = transformer.Transformer.from_weights(cfg, weights)
    tokens = torch.zeros(1, 1, dtype=torch.long)
    assert F.score_gap(model, tokens) == 0.0
    assert F.score_gap(model, tokens, run=at_call(1, 1.0, scores=True)) == 0.125


def test_well_conditioned_is_seeded_orthogonal_times_a_scale_in_half_to_two():
    m = F.well_conditioned(200, torch.Generator().manual_seed(5))
    assert m.dtype == torch.float64 and m.shape == (200, 200)
    assert F.well_conditioned(3, torch.Generator().manual_seed(5), torch.float32).dtype == torch.float32
    torch.testing.assert_close(m, F.well_conditioned(200, torch.Generator().manual_seed(5)))
    scales = m.norm(dim=0)  # Q diag(s): column k has norm s_k
    assert 0.5 <= float(scales.min()) < 0.55 and 1.95 < float(scales.max()) <= 2.0
    q = m / scales
    torch.testing.assert_close(q.T @ q, torch.eye(200, dtype=torch.float64))


def test_well_conditioned_pins_its_draws():
    g = torch.Generator().manual_seed(9)
    torch.randn(1, 1, generator=g, dtype=torch.float64)  # the orthogonal factor's draw
    s = 0.5 + 1.5 * torch.rand(1, generator=g, dtype=torch.float64)
    m = F.well_conditioned(1, torch.Generator().manual_seed(9))
    assert float(m.abs()) == float(s)


def test_reparametrize_moves_exactly_the_documented_weights():
    cfg = transformer.Config(n_layers=2, n_heads=2, d_model=3, d_head=2, d_vocab=4, n_ctx=3)
    weights = transformer.random_weights(cfg, seed=6, biases=True)
    g = torch.Generator().manual_seed(1)
    M, N = F.well_conditioned(2, g), F.well_conditioned(2, g)
    a = "blocks.1.attn."
    plain = F.reparametrize(weights, 1, 0, M, N)
    moved = F.reparametrize(weights, 1, 0, M, N, move_biases=True)
    for name in ("b_Q", "b_K", "b_V"):
        torch.testing.assert_close(plain[a + name], weights[a + name])  # not by default
    torch.testing.assert_close(moved[a + "b_Q"][0], weights[a + "b_Q"][0] @ M)
    torch.testing.assert_close(moved[a + "b_K"][0], weights[a + "b_K"][0] @ torch.linalg.inv(M).T)
    torch.testing.assert_close(moved[a + "b_V"][0], weights[a + "b_V"][0] @ N)
    for out in (plain, moved):
        torch.testing.assert_close(out[a + "W_Q"][0], weights[a + "W_Q"][0] @ M)
        torch.testing.assert_close(out[a + "W_K"][0], weights[a + "W_K"][0] @ torch.linalg.inv(M).T)
        torch.testing.assert_close(out[a + "W_V"][0], weights[a + "W_V"][0] @ N)
        torch.testing.assert_close(out[a + "W_O"][0], torch.linalg.inv(N) @ weights[a + "W_O"][0])
        for name, value in weights.items():  # every other head and layer untouched
            if not (name.startswith(a) and name.split(".")[-1] in
                    ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V")):
                torch.testing.assert_close(out[name], value)
            else:
                torch.testing.assert_close(out[name][1], value[1])
        assert out[a + "W_Q"] is not weights[a + "W_Q"]  # a copy: the input is not changed


def test_logit_change_is_seeded_and_reparametrizes_every_head_separately(monkeypatch):
    model = F.random_model((2, 2, 5, 3, 6, 7, None), seed=1, biases=False)
    tokens = F.random_tokens(model.cfg, 0)
    first = F.logit_change(model, tokens, 7, move_biases=False)
    assert first == F.logit_change(model, tokens, 7, move_biases=False) and 0 < first < FLOAT_TOL
    seen = []
    original = F.reparametrize

    def spy(weights, layer, head, M, N, *, move_biases=False):
        seen.append((layer, head))
        return original(weights, layer, head, M, N, move_biases=move_biases)
    monkeypatch.setattr(reparametrization, "reparametrize", spy)  # where logit_change finds it
    F.logit_change(model, tokens, 7, move_biases=False)
    assert seen == [(0, 0), (0, 1), (1, 0), (1, 1)]


@pytest.mark.parametrize("query", [[1, 1, 0, 0], [2, -1, 0, 0], [0, 1, 0, 0]])
def test_worked_example_1_restated_for_oblique_queries(query):
    """The aligned key is found for a query with two non-zero coordinates (the cross product
    x0 k3 - x1 k2 must vanish, not the sum)."""
    assert W1.check_restated(query=sp.Matrix([query])).holds


def test_worked_example_1_a_zero_key_is_not_aligned():
    """The aligned key must point along the query (a positive dot product): a lone zero key
    ties with itself but is not aligned."""
    found = W1.check_restated(keys=[sp.zeros(1, 4)])
    assert not found.holds and found.evidence["equal_norms"] is True


def test_default_models_cover_both_scales_hard_attention_biases_and_mlps():
    models = F.random_models()
    n = len(F.CHECK_SHAPES)
    assert [m.cfg.attn_scale for m in models] == [1.0, 2.0, 1.0] * n
    assert [m.cfg.attention for m in models] == ["softmax", "softmax", "hard"] * n
    assert all(m.cfg.attention == "softmax" for m in F.random_models(hard=False))

    def biased(m):
        return any(float(v.abs().max()) > 0 for k, v in m.weights().items()
                   if k.endswith(("b_Q", "b_K", "b_V")))
    assert all(biased(m) for m in models)
    assert not any(biased(m) for m in F.random_models(biases=False))
    assert [m.cfg.d_mlp for m in F.random_models(mlp=False)] == [None] * (3 * n)


def test_unit_keys_for_a_query_on_the_negative_axis():
    keys = W1.unit_keys(sp.Matrix([[-2, 0, 0, 0]]), n=2)
    assert [list(k) for k in keys] == [[0, 0, -1, 0], [0, 0, 1, 0]]


def test_random_model_passes_every_option_and_documents_its_defaults():
    shape = (1, 2, 5, 3, 6, 7, 4)
    m = F.random_model(shape, seed=3)
    assert m.cfg.attn_scale == 1.0 and m.cfg.attention == "softmax" and m.cfg.d_mlp == 4
    assert m.cfg.act_fn == "quadratic" and F.random_model(shape, seed=2).cfg.act_fn == "relu"
    expected = transformer.random_weights(m.cfg, seed=3, scale=1.5, biases=True)
    for name, value in m.weights().items():
        torch.testing.assert_close(value, expected[name])
    other = F.random_model(shape, seed=3, attention="hard", attn_scale=2.0, biases=False, mlp=False)
    assert other.cfg.attention == "hard" and other.cfg.attn_scale == 2.0
    assert other.cfg.d_mlp is None and other.cfg.act_fn is None
    assert float(other.weights()["blocks.0.attn.b_Q"].abs().max()) == 0.0


def test_random_tokens_defaults():
    cfg = transformer.Config(n_layers=1, n_heads=1, d_model=2, d_head=1, d_vocab=2, n_ctx=10)
    tokens = F.random_tokens(cfg, 0)
    assert tokens.shape == (4, 10) and set(tokens.unique().tolist()) == {0, 1}
    assert torch.equal(tokens, F.random_tokens(cfg, 0)) and F.random_tokens(cfg, 0, 2).shape == (2, 10)


def test_empty_model_list_message():
    with pytest.raises(ValueError, match="^models must hold at least one model$"):
        F.check_heads_additive_restated([])
