"""The reparametrizations that keep a head's W_QK = W_Q W_K^T / s and W_OV = W_V W_O, and what
they change: (W_Q, W_K, W_V, W_O) -> (W_Q M, W_K M^-T, W_V N, N^-1 W_O) with random
well-conditioned M, N (optionally moving b_Q, b_K, b_V along), the largest relative change of
the logits they cause, and the gap between the cached scores and x W_QK x^T (proofs/framework.md,
framework.qk_ov_factorization)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from constructions import circuits, transformer

Model = transformer.Transformer
Runner = Callable[[transformer.Config, dict[str, Tensor], Tensor], tuple[Tensor, dict[str, Tensor]]]


def well_conditioned(n: int, gen: torch.Generator, dtype: torch.dtype = torch.float64) -> Tensor:
    """Q diag(s) with Q orthogonal and s in [0.5, 2]: invertible, condition number <= 4."""
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=dtype))
    s = 0.5 + 1.5 * torch.rand(n, generator=gen, dtype=dtype)
    return q * s


def run_model(cfg: transformer.Config, weights: dict[str, Tensor], tokens: Tensor
              ) -> tuple[Tensor, dict[str, Tensor]]:
    """The reference runner: our Transformer on these weights."""
    return Model.from_weights(cfg, weights).run_with_cache(tokens)


def reparametrize(weights: dict[str, Tensor], layer: int, head: int, M: Tensor, N: Tensor, *,
                  move_biases: bool = False) -> dict[str, Tensor]:
    """(W_Q, W_K, W_V, W_O) -> (W_Q M, W_K M^-T, W_V N, N^-1 W_O) for one head; with
    ``move_biases`` also (b_Q, b_K, b_V) -> (b_Q M, b_K M^-T, b_V N)."""
    out = {k: v.clone() for k, v in weights.items()}
    a = f"blocks.{layer}.attn."
    M_inv_T = torch.linalg.inv(M).T
    out[a + "W_Q"][head] = weights[a + "W_Q"][head] @ M
    out[a + "W_K"][head] = weights[a + "W_K"][head] @ M_inv_T
    out[a + "W_V"][head] = weights[a + "W_V"][head] @ N
    out[a + "W_O"][head] = torch.linalg.inv(N) @ weights[a + "W_O"][head]
    if move_biases:
        for name, T in (("b_Q", M), ("b_K", M_inv_T), ("b_V", N)):
            if a + name in weights:
                out[a + name][head] = weights[a + name][head] @ T
    return out


def logit_change(model: Model, tokens: Tensor, seed: int, *, move_biases: bool,
                 run: Runner = run_model) -> float:
    """max |logits(reparametrized) - logits| / max(1, max |logits|), every head reparametrized
    by random well-conditioned M, N."""
    cfg, weights = model.cfg, model.weights()
    gen = torch.Generator().manual_seed(seed)
    changed = weights
    for layer in range(cfg.n_layers):
        for head in range(cfg.n_heads):
            changed = reparametrize(changed, layer, head, well_conditioned(cfg.d_head, gen),
                                    well_conditioned(cfg.d_head, gen), move_biases=move_biases)
    logits, _ = run(cfg, weights, tokens)
    logits2, _ = run(cfg, changed, tokens)
    return float((logits - logits2).abs().max()) / max(1.0, float(logits.abs().max()))


def without_qkv_biases(model: Model) -> Model:
    weights = {k: (torch.zeros_like(v) if k.endswith(("b_Q", "b_K", "b_V")) else v)
               for k, v in model.weights().items()}
    return Model.from_weights(model.cfg, weights)


def score_gap(model: Model, tokens: Tensor, run: Runner = run_model) -> float:
    """max |scores - x W_QK x^T| over heads and causal entries, relative to the rounding scale
    of the two products, max(1, |x| |W_Q| |W_K|^T |x|^T / attn_scale) entrywise (Higham's bound
    for a product is proportional to it). Meaningful for zero Q/K biases."""
    cfg = model.cfg
    _, cache = run(cfg, model.weights(), tokens)
    n = tokens.shape[1]
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    worst = 0.0
    for layer in range(cfg.n_layers):
        x = cache[f"blocks.{layer}.hook_resid_pre"]                # [batch, pos, d_model]
        scores = cache[f"blocks.{layer}.attn.hook_attn_scores"]     # [batch, head, q, k]
        attn = model.attention(layer)
        for head in range(cfg.n_heads):
            bilinear = x @ circuits.qk(model, layer, head) @ x.transpose(1, 2)
            scale = (x.abs() @ attn.W_Q[head].abs() @ attn.W_K[head].abs().T
                     @ x.abs().transpose(1, 2)) / cfg.attn_scale
            gap = ((scores[:, head] - bilinear).abs() / scale.clamp(min=1.0))[:, causal].max()
            worst = max(worst, float(gap))
    return worst
