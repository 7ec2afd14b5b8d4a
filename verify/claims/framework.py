"""Section 1's framework claims, checked in SymPy (symbolic matrices) and on random models.

- framework.qk_ov_factorization: a head sees W_Q, W_K only through W_QK = W_Q W_K^T / scale and
  W_V, W_O only through W_OV = W_V W_O: the logits are unchanged under
  (W_Q, W_K) -> (W_Q M, W_K M^-T) and (W_V, W_O) -> (W_V N, N^-1 W_O) for invertible M, N
  (zero b_Q, b_K, b_V: with biases the invariance needs b_Q M, b_K M^-T, b_V N too), and
  the scores are exactly x W_QK x^T.
- framework.heads_additive: concatenating the heads' z and projecting with the stacked W_O
  equals the sum of the per-head outputs z_h W_O[h].
- framework.path_expansion: the formula the section lost; see constructions/circuits.py.

Proofs: proofs/framework.md.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp
import torch
from torch import Tensor

from constructions import circuits, transformer
from verify.registry import Outcome, claim

FLOAT_TOL = 1e-9  # float64 agreement demanded of identities that hold exactly in real arithmetic
CHECK_SEEDS = tuple(range(6))  # random models the command line checks (tests use Hypothesis)

# A few shapes the command line always covers: (n_layers, n_heads, d_model, d_head, vocab, n_ctx)
CHECK_SHAPES = ((1, 1, 4, 2, 5, 6), (1, 3, 6, 2, 7, 8), (2, 2, 5, 3, 6, 7), (2, 4, 8, 2, 9, 10))


# --- shared helpers -------------------------------------------------------------------------


def random_model(shape: tuple[int, ...], seed: int, *, attention: str = "softmax",
                 biases: bool = True, attn_scale: float = 1.0) -> transformer.Transformer:
    n_layers, n_heads, d_model, d_head, d_vocab, n_ctx = shape
    cfg = transformer.Config(n_layers=n_layers, n_heads=n_heads, d_model=d_model, d_head=d_head,
                             d_vocab=d_vocab, n_ctx=n_ctx, attention=attention,
                             attn_scale=attn_scale)
    return transformer.Transformer.from_weights(
        cfg, transformer.random_weights(cfg, seed=seed, scale=1.5, biases=biases))


def random_tokens(cfg: transformer.Config, seed: int, batch: int = 4) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, cfg.d_vocab, (batch, cfg.n_ctx), generator=gen)


def well_conditioned(n: int, gen: torch.Generator, dtype: torch.dtype = torch.float64) -> Tensor:
    """Q diag(s) with Q orthogonal and s in [0.5, 2]: invertible, condition number <= 4."""
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=dtype))
    s = 0.5 + 1.5 * torch.rand(n, generator=gen, dtype=dtype)
    return q * s


Runner = Callable[[transformer.Config, dict[str, Tensor], Tensor], tuple[Tensor, dict[str, Tensor]]]


def run_model(cfg: transformer.Config, weights: dict[str, Tensor], tokens: Tensor
              ) -> tuple[Tensor, dict[str, Tensor]]:
    """The reference runner: our Transformer on these weights."""
    return transformer.Transformer.from_weights(cfg, weights).run_with_cache(tokens)


# --- framework.qk_ov_factorization ----------------------------------------------------------


def reparametrize(weights: dict[str, Tensor], layer: int, head: int, M: Tensor, N: Tensor
                  ) -> dict[str, Tensor]:
    """(W_Q, W_K, W_V, W_O) -> (W_Q M, W_K M^-T, W_V N, N^-1 W_O) for one head."""
    out = {k: v.clone() for k, v in weights.items()}
    a = f"blocks.{layer}.attn."
    out[a + "W_Q"][head] = weights[a + "W_Q"][head] @ M
    out[a + "W_K"][head] = weights[a + "W_K"][head] @ torch.linalg.inv(M).T
    out[a + "W_V"][head] = weights[a + "W_V"][head] @ N
    out[a + "W_O"][head] = torch.linalg.inv(N) @ weights[a + "W_O"][head]
    return out


def factorization_gaps(cfg: transformer.Config, weights: dict[str, Tensor], tokens: Tensor,
                       seed: int, run: Runner = run_model) -> dict[str, float]:
    """Max |change in logits| under a random reparametrization of every head (with the logits'
    scale), and max |scores - x W_QK x^T| relative to the rounding scale of the two products,
    max(1, |x| |W_Q| |W_K|^T |x|^T / attn_scale) entrywise (Higham's bound for a product is
    proportional to it; weights must have zero Q/K/V biases)."""
    gen = torch.Generator().manual_seed(seed)
    changed = weights
    for layer in range(cfg.n_layers):
        for head in range(cfg.n_heads):
            changed = reparametrize(changed, layer, head, well_conditioned(cfg.d_head, gen),
                                    well_conditioned(cfg.d_head, gen))
    logits, cache = run(cfg, weights, tokens)
    logits2, _ = run(cfg, changed, tokens)
    model = transformer.Transformer.from_weights(cfg, weights)
    score_gap = 0.0
    n = tokens.shape[1]
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    for layer in range(cfg.n_layers):
        x = cache[f"blocks.{layer}.hook_resid_pre"]  # [batch, pos, d_model]
        scores = cache[f"blocks.{layer}.attn.hook_attn_scores"]  # [batch, head, q, k]
        attn = model.attention(layer)
        for head in range(cfg.n_heads):
            bilinear = x @ circuits.qk(model, layer, head) @ x.transpose(1, 2)
            scale = (x.abs() @ attn.W_Q[head].abs() @ attn.W_K[head].abs().T
                     @ x.abs().transpose(1, 2)) / cfg.attn_scale
            gap = ((scores[:, head] - bilinear).abs() / scale.clamp(min=1.0))[:, causal].max()
            score_gap = max(score_gap, float(gap))
    return {"logit_change": float((logits - logits2).abs().max()), "score_gap": score_gap,
            "logit_scale": float(logits.abs().max())}


def symbolic_factorization() -> dict[str, bool]:
    """SymPy: for a 2-token sequence, d_model = 3, d_head = 2, generic symbolic W_Q, W_K, W_V,
    W_O, x and generic invertible M, N, the scores and the value-output are unchanged and the
    scores equal x W_Q W_K^T x^T."""
    x = sp.Matrix(2, 3, sp.symbols("x0:6"))
    W_Q, W_K = sp.Matrix(3, 2, sp.symbols("q0:6")), sp.Matrix(3, 2, sp.symbols("k0:6"))
    W_V, W_O = sp.Matrix(3, 2, sp.symbols("v0:6")), sp.Matrix(2, 3, sp.symbols("o0:6"))
    M, N = sp.Matrix(2, 2, sp.symbols("m0:4")), sp.Matrix(2, 2, sp.symbols("n0:4"))
    A = sp.Matrix(2, 2, sp.symbols("a0:4"))  # any attention pattern
    scores = (x * W_Q) * (x * W_K).T
    scores_m = (x * W_Q * M) * (x * W_K * M.inv().T).T
    moved = A * x * W_V * W_O
    moved_n = A * x * W_V * N * N.inv() * W_O
    return {
        "scores_invariant": sp.simplify(scores_m - scores) == sp.zeros(2, 2),
        "scores_bilinear": sp.expand(scores - x * (W_Q * W_K.T) * x.T) == sp.zeros(2, 2),
        "ov_invariant": sp.simplify(moved_n - moved) == sp.zeros(2, 3),
    }


def check_factorization(run: Runner = run_model) -> Outcome:
    symbolic = symbolic_factorization()
    worst: dict[str, float] = {"logit_change": 0.0, "score_gap": 0.0}
    for i, shape in enumerate(CHECK_SHAPES):
        for seed in CHECK_SEEDS[:3]:
            m = random_model(shape, seed, biases=False, attn_scale=[1.0, 2.0][seed % 2])
            gaps = factorization_gaps(m.cfg, m.weights(), random_tokens(m.cfg, seed), 100 + i,
                                      run)
            relative = {"logit_change": gaps["logit_change"] / max(1.0, gaps["logit_scale"]),
                        "score_gap": gaps["score_gap"]}
            worst = {key: max(worst[key], relative[key]) for key in worst}
    passed = all(symbolic.values()) and max(worst.values()) < FLOAT_TOL
    return Outcome("confirmed", passed, {"sympy": symbolic, "max_rel_logit_change": worst[
        "logit_change"], "max_rel_score_minus_xWQKx": worst["score_gap"], "tolerance": FLOAT_TOL,
        "random_models": len(CHECK_SHAPES) * 3})


@claim("framework.qk_ov_factorization", source="section 1",
       statement="a head depends on W_Q, W_K only via W_QK = W_Q W_K^T/sqrt(d_k) and on "
                 "W_V, W_O only via W_OV = W_V W_O")
def _qk_ov_factorization() -> Outcome:
    return check_factorization()


# --- framework.heads_additive ---------------------------------------------------------------


LayerOutput = Callable[[transformer.Transformer, dict[str, Tensor], int], Tensor]


def model_attn_out(model: transformer.Transformer, cache: dict[str, Tensor], layer: int) -> Tensor:
    return cache[f"blocks.{layer}.hook_attn_out"]


def heads_additive_gaps(model: transformer.Transformer, tokens: Tensor,
                        layer_output: LayerOutput = model_attn_out) -> dict[str, float]:
    """|concat(z) W_O_stacked + b_O - sum_h (z_h W_O[h]) - b_O| and |layer output - that sum|."""
    _, cache = model.run_with_cache(tokens)
    concat_gap = layer_gap = 0.0
    for layer in range(model.cfg.n_layers):
        z = cache[f"blocks.{layer}.attn.hook_z"]  # [batch, pos, head, d_head]
        attn = model.attention(layer)
        W_O, b_O = attn.W_O.detach(), attn.b_O.detach()  # [head, d_head, d_model]
        concat = z.flatten(2) @ W_O.flatten(0, 1) + b_O  # [batch, pos, head*d_head] @ [h*e, d]
        per_head = sum(z[:, :, h] @ W_O[h] for h in range(model.cfg.n_heads)) + b_O
        concat_gap = max(concat_gap, float((concat - per_head).abs().max()))
        layer_gap = max(layer_gap, float((layer_output(model, cache, layer) - per_head).abs().max()))
    return {"concat_vs_sum": concat_gap, "layer_vs_sum": layer_gap}


def symbolic_heads_additive(n_heads: int = 3) -> bool:
    """SymPy: [z_1 ... z_H] [W_O1; ...; W_OH] = sum_h z_h W_Oh for symbolic 2x2 blocks."""
    zs = [sp.Matrix(2, 2, sp.symbols(f"z{h}_0:4")) for h in range(n_heads)]
    os_ = [sp.Matrix(2, 3, sp.symbols(f"o{h}_0:6")) for h in range(n_heads)]
    lhs = sp.Matrix.hstack(*zs) * sp.Matrix.vstack(*os_)
    rhs = sum((z * o for z, o in zip(zs, os_)), sp.zeros(2, 3))
    return sp.expand(lhs - rhs) == sp.zeros(2, 3)


def check_heads_additive(layer_output: LayerOutput = model_attn_out) -> Outcome:
    symbolic = symbolic_heads_additive()
    worst = {"concat_vs_sum": 0.0, "layer_vs_sum": 0.0}
    for shape in CHECK_SHAPES:
        for seed in CHECK_SEEDS:
            attention = "hard" if seed % 3 == 2 else "softmax"
            m = random_model(shape, seed, attention=attention)
            gaps = heads_additive_gaps(m, random_tokens(m.cfg, seed), layer_output)
            worst = {k: max(worst[k], gaps[k]) for k in worst}
    passed = symbolic and max(worst.values()) < FLOAT_TOL
    return Outcome("confirmed", passed, {"sympy_block_identity": symbolic, **{
        f"max_abs_{k}": v for k, v in worst.items()}, "tolerance": FLOAT_TOL,
        "random_models": len(CHECK_SHAPES) * len(CHECK_SEEDS)})


@claim("framework.heads_additive", source="section 1",
       statement="the attention layer is the sum of its heads (attention and MLP are additive "
                 "operations on the residual stream)")
def _heads_additive() -> Outcome:
    return check_heads_additive()


# --- framework.path_expansion ---------------------------------------------------------------


Expansion = Callable[[transformer.Transformer, Tensor], circuits.PathTerms]


def symbolic_two_layer_expansion() -> bool:
    """SymPy (non-commuting matrix symbols): X2 = X1 + A2 X1 W2, X1 = X0 + A1 X0 W1 expands to
    X0 + A1 X0 W1 + A2 X0 W2 + A2 A1 X0 W1 W2 (direct, two head terms, one virtual head)."""
    n, d = sp.symbols("n d", integer=True, positive=True)
    X0, W1, W2 = sp.MatrixSymbol("X0", n, d), sp.MatrixSymbol("W1", d, d), sp.MatrixSymbol("W2", d, d)
    A1, A2 = sp.MatrixSymbol("A1", n, n), sp.MatrixSymbol("A2", n, n)
    X1 = X0 + A1 * X0 * W1
    X2 = X1 + A2 * X1 * W2
    terms = X0 + A1 * X0 * W1 + A2 * X0 * W2 + A2 * A1 * X0 * W1 * W2
    return sp.expand(X2 - terms) == sp.ZeroMatrix(n, d) or sp.simplify(
        sp.expand(X2 - terms)).is_ZeroMatrix is True


def expansion_gap(model: transformer.Transformer, tokens: Tensor,
                  expansion: Expansion = circuits.path_expansion) -> float:
    return float((expansion(model, tokens).total() - model(tokens)).abs().max())


def check_path_expansion(expansion: Expansion = circuits.path_expansion) -> Outcome:
    symbolic = symbolic_two_layer_expansion()
    worst = {1: 0.0, 2: 0.0}
    virtual_size = 0.0
    for shape in CHECK_SHAPES:
        for seed in CHECK_SEEDS:
            m = random_model(shape, seed, attention="hard" if seed % 3 == 2 else "softmax")
            tokens = random_tokens(m.cfg, seed)
            worst[m.cfg.n_layers] = max(worst[m.cfg.n_layers], expansion_gap(m, tokens, expansion))
            if m.cfg.n_layers == 2:
                terms = circuits.path_expansion(m, tokens)
                virtual_size = max(virtual_size, max(float(t.abs().max())
                                                     for t in terms.virtual.values()))
    passed = symbolic and max(worst.values()) < FLOAT_TOL
    return Outcome("corrected", passed, {
        "restored_formula_1_layer": "T(X) = X0 W_U + sum_h A_h X0 W_OV_h W_U (+ bias row)",
        "restored_formula_2_layers": "X0 W_U + sum_h A1_h X0 W_OV1_h W_U + sum_g A2_g X0 W_OV2_g "
                                     "W_U + sum_{g,h} A2_g A1_h X0 W_OV1_h W_OV2_g W_U (+ bias), "
                                     "A2 computed from X1 (Q/K-composition)",
        "sympy_two_layer_expansion": symbolic, "max_abs_gap_1_layer": worst[1],
        "max_abs_gap_2_layers": worst[2], "largest_virtual_head_term": virtual_size,
        "tolerance": FLOAT_TOL})


@claim("framework.path_expansion", source="section 1",
       statement="'the output for a sequence X is:' (the formula is lost from the text)")
def _path_expansion() -> Outcome:
    return check_path_expansion()
