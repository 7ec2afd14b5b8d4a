"""QK and OV circuits of a head, full circuits through W_E / W_pos / W_U, and the path expansion.

Theorem (Elhage et al. 2021, section "Transformers as a sum of paths"; claim ids
``framework.qk_ov_factorization`` and ``framework.path_expansion``). With zero Q/K biases a
head's scores are the bilinear form ``x_q W_QK x_k^T`` with ``W_QK = W_Q W_K^T / attn_scale``,
and its output is ``A (X W_OV)`` with ``W_OV = W_V W_O`` (plus ``A 1 b_V W_O = 1 b_V W_O``,
since rows of A sum to 1). For an attention-only model the logits are then a sum of paths:

    one layer:  X0 W_U + sum_h A_h X0 W_OV_h W_U                        (+ bias row)
    two layers: X0 W_U + sum_h A1_h X0 W_OV1_h W_U + sum_g A2_g X0 W_OV2_g W_U
                + sum_{g,h} A2_g A1_h X0 W_OV1_h W_OV2_g W_U            (virtual heads)
                (+ bias rows)

where X0 = W_E[tokens] + W_pos and the layer-2 patterns A2_g are computed from the layer-1
output X1 (Q- and K-composition enter only through A2; V-composition is the virtual term).
`path_expansion` returns each term separately; their sum equals the model's logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from constructions.transformer import Attention, Transformer


def _attn(model: Transformer, layer: int) -> Attention:
    if not 0 <= layer < model.cfg.n_layers:
        raise ValueError(f"layer must be in [0, {model.cfg.n_layers - 1}], got {layer}")
    return model.attention(layer)


def _head(model: Transformer, head: int) -> int:
    if not 0 <= head < model.cfg.n_heads:
        raise ValueError(f"head must be in [0, {model.cfg.n_heads - 1}], got {head}")
    return head


def qk(model: Transformer, layer: int, head: int) -> Tensor:
    """W_QK = W_Q W_K^T / attn_scale, [d_model, d_model]: score(q, k) = x_q W_QK x_k^T."""
    attn, h = _attn(model, layer), _head(model, head)
    return (attn.W_Q[h] @ attn.W_K[h].T / model.cfg.attn_scale).detach()


def ov(model: Transformer, layer: int, head: int) -> Tensor:
    """W_OV = W_V W_O, [d_model, d_model]: what the head writes for each residual direction."""
    attn, h = _attn(model, layer), _head(model, head)
    return (attn.W_V[h] @ attn.W_O[h]).detach()


def full_qk(model: Transformer, layer: int, head: int, *, query: str = "embed",
            key: str = "embed") -> Tensor:
    """Query side (W_E or W_pos) x W_QK x key side^T: token-token, pos-pos, or mixed scores."""
    sides = {"embed": model.embed.W_E.detach(), "pos": model.pos_embed.W_pos.detach()}
    if query not in sides or key not in sides:
        raise ValueError(f"query and key must be 'embed' or 'pos', got {query!r}, {key!r}")
    return sides[query] @ qk(model, layer, head) @ sides[key].T


def full_ov(model: Transformer, layer: int, head: int) -> Tensor:
    """W_E W_OV W_U, [d_vocab, d_vocab_out]: the logits a head adds for each attended token."""
    return model.embed.W_E.detach() @ ov(model, layer, head) @ model.unembed.W_U.detach()


@dataclass
class PathTerms:
    """The logits of an attention-only model, split into paths (each [batch, pos, d_vocab_out])."""

    direct: Tensor
    heads: dict[tuple[int, int], Tensor]           # (layer, head) -> A X0 W_OV W_U
    virtual: dict[tuple[int, int, int, int], Tensor]  # (l1, h1, l2, h2) -> A2 A1 X0 W_OV1 W_OV2 W_U
    bias: Tensor                                    # every term that carries a bias

    def total(self) -> Tensor:
        out = self.direct + self.bias
        for term in [*self.heads.values(), *self.virtual.values()]:
            out = out + term
        return out


def path_expansion(model: Transformer, tokens: Tensor) -> PathTerms:
    """Split the logits of a 1- or 2-layer attention-only model into the terms of the docstring."""
    cfg = model.cfg
    if not cfg.attn_only or cfg.n_layers > 2:
        raise ValueError("path_expansion needs an attention-only model with 1 or 2 layers, got "
                         f"n_layers={cfg.n_layers}, d_mlp={cfg.d_mlp}")
    _, cache = model.run_with_cache(tokens)
    x0 = (cache["hook_embed"] + cache["hook_pos_embed"]).detach()  # [batch, pos, d_model]
    W_U = model.unembed.W_U.detach()
    heads: dict[tuple[int, int], Tensor] = {}
    virtual: dict[tuple[int, int, int, int], Tensor] = {}
    # Bias rows: every layer's b_V W_O + b_O reaches the residual stream as a constant row
    # (rows of A sum to 1); in layer 2 the layer-1 bias row also passes through W_OV2.
    bias_rows = [_bias_row(model, layer) for layer in range(cfg.n_layers)]
    bias_resid = bias_rows[0].clone()
    for layer in range(cfg.n_layers):
        patterns = cache[f"blocks.{layer}.attn.hook_pattern"].detach()  # [batch, head, q, k]
        for h in range(cfg.n_heads):
            heads[(layer, h)] = patterns[:, h] @ x0 @ ov(model, layer, h) @ W_U
    if cfg.n_layers == 2:
        a1 = cache["blocks.0.attn.hook_pattern"].detach()
        a2 = cache["blocks.1.attn.hook_pattern"].detach()
        for h1 in range(cfg.n_heads):
            for h2 in range(cfg.n_heads):
                chain = ov(model, 0, h1) @ ov(model, 1, h2) @ W_U
                virtual[(0, h1, 1, h2)] = a2[:, h2] @ a1[:, h1] @ x0 @ chain
        bias_resid = bias_resid + bias_rows[1]
        for h2 in range(cfg.n_heads):
            bias_resid = bias_resid + bias_rows[0] @ ov(model, 1, h2)
    bias = (bias_resid @ W_U + model.unembed.b_U.detach()).expand(*x0.shape[:2], -1)
    return PathTerms(direct=x0 @ W_U, heads=heads, virtual=virtual, bias=bias)


def _bias_row(model: Transformer, layer: int) -> Tensor:
    """sum_h b_V[h] W_O[h] + b_O: the constant a layer adds at every position (Q/K biases only
    change the patterns, which the expansion reads from the model)."""
    attn = model.attention(layer)
    return (torch.einsum("he,hed->d", attn.b_V, attn.W_O) + attn.b_O).detach()
