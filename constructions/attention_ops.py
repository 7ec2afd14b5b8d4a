"""The attention arithmetic of `constructions.transformer`: the per-head projections as one fused
matrix product, and the rule that turns masked scores into a pattern (softmax, or the hard limit
in which the maximizers of a row share its weight equally)."""

from __future__ import annotations

import torch
from torch import Tensor


def _per_head(x: Tensor, W: Tensor, b: Tensor) -> Tensor:
    """x [batch, pos, d_model], W [head, d_model, d_head], b [head, d_head] -> x W[h] + b[h]
    for every head as one fused matrix product, shaped [batch, pos, head, d_head]."""
    h, d, e = W.shape
    flat = torch.nn.functional.linear(x, W.permute(0, 2, 1).reshape(h * e, d), b.reshape(h * e))
    return flat.view(*x.shape[:2], h, e)


def attention_pattern(scores: Tensor, attention: str) -> Tensor:
    """Rows of ``scores`` (-inf where masked) to attention weights; see the module docstring."""
    if attention == "softmax":
        return torch.softmax(scores, dim=-1)
    best = scores.amax(dim=-1, keepdim=True)
    winners = (scores == best).to(scores.dtype)
    return winners / winners.sum(dim=-1, keepdim=True)
