"""Section 1's framework claims, each with a literal and a restated check (proofs/framework.md).

- framework.qk_ov_factorization. The section: W_QK = W_Q W_K^T / sqrt(d_k) "determines which
  tokens attend to which" and W_OV = W_V W_O "what information is moved". Literal ("determines"
  made precise as: the logits are unchanged by every reparametrization (W_Q, W_K, W_V, W_O) ->
  (W_Q M, W_K M^-T, W_V N, N^-1 W_O) that keeps W_QK and W_OV), judged on the models given
  (default: random models with the Q/K/V biases that standard transformers have). Restated: the
  same holds once the biases are moved too (b_Q M, b_K M^-T, b_V N), and with zero Q/K/V biases
  the scores are exactly x W_QK x^T.
- framework.heads_additive. The section: a layer "can be decomposed into two distinct, additive
  operations", the heads and the MLPs. Literal (a decomposition into a sum): the block's update
  equals sum_h head_h(x) + b_O + MLP(x), every term read from the stream x entering the block,
  judged on models with MLPs by default. Restated: the attention output is exactly the sum of its
  heads, and the block is sequential: x + Attn(x) + MLP(x + Attn(x)).
- framework.path_expansion. The section announces "the output for a sequence X is:" and gives no
  formula. Literal: the stated formula (none: ``STATED_FORMULA``) equals the logits. Restated: our
  restored path expansion (constructions/circuits.py) equals the logits.

The SymPy identities behind these (associativity, block multiplication, the two-layer
expansion) are theorems about fixed symbols: they are in tests/test_framework.py, not in checks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from constructions import circuits, transformer
from verify.registry import Finding, claim
from verify.reparametrization import (  # noqa: F401 - the reparametrization mathematics
    Runner,
    logit_change,
    reparametrize,
    run_model,
    score_gap,
    well_conditioned,
    without_qkv_biases,
)

FLOAT_TOL = 1e-9  # float64 agreement demanded of identities that hold exactly in real arithmetic
CHECK_SEEDS = tuple(range(3))  # random models per shape in the default inputs

# Shapes the command line covers: (n_layers, n_heads, d_model, d_head, d_vocab, n_ctx, d_mlp)
CHECK_SHAPES = ((1, 1, 4, 2, 5, 6, None), (1, 3, 6, 2, 7, 8, 5), (2, 2, 5, 3, 6, 7, None),
                (2, 4, 8, 2, 9, 10, 6))

Model = transformer.Transformer


# --- inputs ---------------------------------------------------------------------------------


Shape = tuple[int, int, int, int, int, int, int | None]


def random_model(shape: Shape, seed: int, *, attention: str = "softmax",
                 biases: bool = True, attn_scale: float = 1.0, mlp: bool = True) -> Model:
    n_layers, n_heads, d_model, d_head, d_vocab, n_ctx, d_mlp = shape
    with_mlp = mlp and d_mlp is not None
    cfg = transformer.Config(n_layers=n_layers, n_heads=n_heads, d_model=d_model, d_head=d_head,
                             d_vocab=d_vocab, n_ctx=n_ctx, attention=attention,
                             attn_scale=attn_scale, d_mlp=d_mlp if with_mlp else None,
                             act_fn=["relu", "quadratic"][seed % 2] if with_mlp else None)
    return Model.from_weights(cfg, transformer.random_weights(cfg, seed=seed, scale=1.5,
                                                              biases=biases))


def random_models(*, biases: bool = True, mlp: bool = True, hard: bool = True) -> list[Model]:
    """The default inputs: every CHECK_SHAPE x CHECK_SEED, attn_scale 1 and 2 alternating."""
    return [random_model(shape, seed, biases=biases, mlp=mlp, attn_scale=[1.0, 2.0][seed % 2],
                         attention="hard" if hard and seed == 2 else "softmax")
            for shape in CHECK_SHAPES for seed in CHECK_SEEDS]


def random_tokens(cfg: transformer.Config, seed: int, batch: int = 4) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, cfg.d_vocab, (batch, cfg.n_ctx), generator=gen)


def _models(models: Sequence[Model] | None, **defaults: bool) -> list[Model]:
    models = random_models(**defaults) if models is None else list(models)
    if not models:
        raise ValueError("models must hold at least one model")
    return models


# --- framework.qk_ov_factorization ----------------------------------------------------------


def check_factorization_literal(models: Sequence[Model] | None = None,
                                run: Runner = run_model) -> Finding:
    """W_QK and W_OV determine the head: the logits do not move under any reparametrization that
    keeps both, for the models given (default: random models with Q/K/V biases)."""
    models = _models(models)
    changes = [logit_change(m, random_tokens(m.cfg, i), 100 + i, move_biases=False, run=run)
               for i, m in enumerate(models)]
    with_bias = sum(any(float(v.abs().max()) > 0 for k, v in m.weights().items()
                        if k.endswith(("b_Q", "b_K", "b_V"))) for m in models)
    return Finding(max(changes) < FLOAT_TOL, {
        "max_rel_logit_change": max(changes), "tolerance": FLOAT_TOL, "models": len(models),
        "models_with_qkv_biases": with_bias,
        "reading": "'determines' = every reparametrization keeping W_QK and W_OV keeps the logits"})


def check_factorization_restated(models: Sequence[Model] | None = None,
                                 run: Runner = run_model) -> Finding:
    """With the biases moved along (b_Q M, b_K M^-T, b_V N) the logits do not move; with zero
    Q/K/V biases they do not move under the plain reparametrization and the scores are
    x W_QK x^T."""
    models = _models(models)
    moved = max(logit_change(m, random_tokens(m.cfg, i), 100 + i, move_biases=True, run=run)
                for i, m in enumerate(models))
    bias_free = [without_qkv_biases(m) for m in models]
    plain = max(logit_change(m, random_tokens(m.cfg, i), 200 + i, move_biases=False, run=run)
                for i, m in enumerate(bias_free))
    scores = max(score_gap(m, random_tokens(m.cfg, i), run) for i, m in enumerate(bias_free))
    holds = moved < FLOAT_TOL and plain < FLOAT_TOL and scores < FLOAT_TOL
    return Finding(holds, {"max_rel_logit_change_biases_moved": moved,
                           "max_rel_logit_change_zero_qkv_biases": plain,
                           "max_rel_score_minus_xWQKx": scores, "tolerance": FLOAT_TOL,
                           "models": len(models)})


qk_ov_factorization = claim(
    "framework.qk_ov_factorization", source="section 1",
    statement="a head depends on W_Q, W_K only via W_QK = W_Q W_K^T/sqrt(d_k) and on W_V, W_O "
              "only via W_OV = W_V W_O")
qk_ov_factorization.literal(check_factorization_literal)
qk_ov_factorization.restated(check_factorization_restated)


# --- framework.heads_additive ---------------------------------------------------------------


LayerOutput = Callable[[Model, dict[str, Tensor], int], Tensor]


def model_attn_out(model: Model, cache: dict[str, Tensor], layer: int) -> Tensor:
    return cache[f"blocks.{layer}.hook_attn_out"]


def head_sum(model: Model, cache: dict[str, Tensor], layer: int) -> Tensor:
    """sum_h z_h W_O[h] + b_O from the cached per-head z."""
    z = cache[f"blocks.{layer}.attn.hook_z"]  # [batch, pos, head, d_head]
    attn = model.attention(layer)
    W_O, b_O = attn.W_O.detach(), attn.b_O.detach()  # [head, d_head, d_model], [d_model]
    return sum(z[:, :, h] @ W_O[h] for h in range(model.cfg.n_heads)) + b_O


def mlp_of(model: Model, layer: int, x: Tensor) -> Tensor:
    """The layer's MLP applied to ``x`` (zero for attention-only blocks)."""
    mlp = model.blocks[layer].mlp
    if not isinstance(mlp, transformer.MLP):
        return torch.zeros_like(x)
    return mlp(x, None, "")


def _relative(a: Tensor, b: Tensor) -> float:
    return float((a - b).abs().max()) / max(1.0, float(b.abs().max()))


def parallel_gap(model: Model, tokens: Tensor) -> float:
    """The literal decomposition's error: block update vs sum_h head_h(x) + b_O + MLP(x), every
    term read from the block's input x (relative to the update's size)."""
    _, cache = model.run_with_cache(tokens)
    worst = 0.0
    for layer in range(model.cfg.n_layers):
        x = cache[f"blocks.{layer}.hook_resid_pre"]
        update = cache[f"blocks.{layer}.hook_resid_post"] - x
        worst = max(worst, _relative(head_sum(model, cache, layer) + mlp_of(model, layer, x), update))
    return worst


def sequential_gaps(model: Model, tokens: Tensor, layer_output: LayerOutput = model_attn_out
                    ) -> dict[str, float]:
    """The restatement's errors: the layer's attention output vs the sum of its heads, and the
    block's output vs x + Attn(x) + MLP(x + Attn(x))."""
    _, cache = model.run_with_cache(tokens)
    heads = block = 0.0
    for layer in range(model.cfg.n_layers):
        x = cache[f"blocks.{layer}.hook_resid_pre"]
        attn_out = layer_output(model, cache, layer)
        heads = max(heads, _relative(attn_out, head_sum(model, cache, layer)))
        expected = x + attn_out + mlp_of(model, layer, x + attn_out)
        block = max(block, _relative(cache[f"blocks.{layer}.hook_resid_post"], expected))
    return {"attn_out_vs_head_sum": heads, "block_vs_sequential": block}


def check_heads_additive_literal(models: Sequence[Model] | None = None) -> Finding:
    """A layer is a sum of two additive operations, heads and MLP, each a function of the stream
    entering the layer (default: random models, some with MLPs)."""
    models = _models(models)
    gaps = [parallel_gap(m, random_tokens(m.cfg, i)) for i, m in enumerate(models)]
    with_mlp = sum(m.cfg.d_mlp is not None for m in models)
    return Finding(max(gaps) < FLOAT_TOL, {
        "max_rel_gap_parallel_decomposition": max(gaps), "tolerance": FLOAT_TOL,
        "models": len(models), "models_with_mlp": with_mlp,
        "reading": "'decomposed into two additive operations' = update = Attn(x) + MLP(x)"})


def check_heads_additive_restated(models: Sequence[Model] | None = None,
                                  layer_output: LayerOutput = model_attn_out) -> Finding:
    """The attention output is the sum of the heads' outputs, and the block is sequential."""
    models = _models(models)
    worst = {"attn_out_vs_head_sum": 0.0, "block_vs_sequential": 0.0}
    for i, m in enumerate(models):
        gaps = sequential_gaps(m, random_tokens(m.cfg, i), layer_output)
        worst = {k: max(worst[k], gaps[k]) for k in worst}
    return Finding(max(worst.values()) < FLOAT_TOL, {
        **{f"max_rel_{k}": v for k, v in worst.items()}, "tolerance": FLOAT_TOL,
        "models": len(models)})


heads_additive = claim(
    "framework.heads_additive", source="section 1",
    statement="a layer decomposes into two distinct, additive operations: attention heads and "
              "MLPs")
heads_additive.literal(check_heads_additive_literal)
heads_additive.restated(check_heads_additive_restated)


# --- framework.path_expansion ---------------------------------------------------------------


Expansion = Callable[[Model, Tensor], circuits.PathTerms]
STATED_FORMULA: Expansion | None = None  # the section gives no formula after "X is:"


def expansion_gap(model: Model, tokens: Tensor, expansion: Expansion = circuits.path_expansion
                  ) -> float:
    """max |sum of the expansion's terms - logits|, relative to the logits' size."""
    return _relative(expansion(model, tokens).total(), model(tokens))


def check_path_expansion_literal(stated: Expansion | None = STATED_FORMULA,
                                 models: Sequence[Model] | None = None) -> Finding:
    """The section's formula for the output of a one-layer attention-only transformer equals its
    logits; with no formula stated, there is nothing that could hold."""
    if stated is None:
        return Finding(False, {"stated_formula": None,
                               "why": "the text announces the formula and gives none"})
    models = [m for m in _models(models, mlp=False) if m.cfg.n_layers == 1]
    gap = max(expansion_gap(m, random_tokens(m.cfg, i), stated) for i, m in enumerate(models))
    return Finding(gap < FLOAT_TOL, {"max_rel_gap": gap, "tolerance": FLOAT_TOL,
                                     "models": len(models)})


def check_path_expansion_restated(expansion: Expansion = circuits.path_expansion,
                                  models: Sequence[Model] | None = None) -> Finding:
    """Our restored formula (direct path + one term per head, and for two layers the virtual
    heads W_OV1 W_OV2) sums to the logits of one- and two-layer attention-only models."""
    models = _models(models, mlp=False)
    worst = {1: 0.0, 2: 0.0}
    virtual_size = 0.0
    for i, m in enumerate(models):
        tokens = random_tokens(m.cfg, i)
        worst[m.cfg.n_layers] = max(worst[m.cfg.n_layers], expansion_gap(m, tokens, expansion))
        if m.cfg.n_layers == 2:
            terms = circuits.path_expansion(m, tokens)
            virtual_size = max(virtual_size, max(float(t.abs().max())
                                                 for t in terms.virtual.values()))
    return Finding(max(worst.values()) < FLOAT_TOL, {
        "restored_formula_1_layer": "T(X) = X0 W_U + sum_h A_h X0 W_OV_h W_U (+ bias row)",
        "restored_formula_2_layers": "X0 W_U + sum_h A1_h X0 W_OV1_h W_U + sum_g A2_g X0 W_OV2_g "
                                     "W_U + sum_{g,h} A2_g A1_h X0 W_OV1_h W_OV2_g W_U (+ bias), "
                                     "A2 computed from X1 (Q/K-composition)",
        "max_rel_gap_1_layer": worst[1], "max_rel_gap_2_layers": worst[2],
        "largest_virtual_head_term": virtual_size, "tolerance": FLOAT_TOL})


path_expansion = claim("framework.path_expansion", source="section 1",
                       statement="'the output for a sequence X is:' (the formula is lost from "
                                 "the text)")
path_expansion.literal(check_path_expansion_literal)
path_expansion.restated(check_path_expansion_restated)
