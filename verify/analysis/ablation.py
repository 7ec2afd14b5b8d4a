"""Zero- and mean-ablation of one attention head, and the loss on the repeated half.

A head contributes out_h = A_h (x W_V[h] + b_V[h]) W_O[h] to the residual stream. Ablating it
builds a copy of the model whose head writes instead:

- zero: nothing (W_O[h] = 0);
- mean: the constant m_h = mean over the reference tokens' batch and positions of out_h
  (W_O[h] = 0 and b_O += m_h), which removes what the head says about THIS sequence while
  keeping its average effect (the usual mean-ablation; see e.g. Olsson et al. 2022's ablations).

Both are weight edits, so the ablated model is an ordinary `Transformer` and every other tool
applies to it. The loss on the repeated half of repeated random tokens (BOS, a block of ``half``
tokens, the block again) is the mean next-token cross-entropy at positions half + 1 .. 2 half - 1,
whose next tokens are copies of earlier ones: an induction circuit drives it to 0.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor

from constructions import validation
from constructions.transformer import Transformer

KINDS = ("zero", "mean")


def ablate(model: Transformer, layer: int, head: int, kind: str = "zero",
           reference: Tensor | None = None) -> Transformer:
    """A frozen copy of ``model`` with head (layer, head) ablated (``reference`` tokens give the
    mean for kind="mean")."""
    validation.check_choice("kind", kind, KINDS)
    validation.check_int("layer", layer, minimum=0, maximum=model.cfg.n_layers - 1)
    validation.check_int("head", head, minimum=0, maximum=model.cfg.n_heads - 1)
    out = copy.deepcopy(model).requires_grad_(False)
    attn = out.attention(layer)
    if kind == "mean":
        if reference is None:
            raise ValueError("reference tokens are needed for kind='mean'")
        with torch.no_grad():
            _, cache = model.run_with_cache(reference)
        z = cache[f"blocks.{layer}.attn.hook_z"][:, :, head].detach()  # [batch, pos, d_head]
        with torch.no_grad():
            attn.b_O.add_(z.mean(dim=(0, 1)) @ attn.W_O[head])
    with torch.no_grad():
        attn.W_O[head] = 0
    return out


def repeated_half_loss(model: Transformer, tokens: Tensor) -> float:
    """Mean cross-entropy of next-token predictions on the repeated half of ``tokens``
    ([batch, 1 + 2 half], BOS then a block twice)."""
    n = tokens.shape[1]
    if n < 5 or (n - 1) % 2:
        raise ValueError(f"tokens must be [batch, 1 + 2 half] with half >= 2, got length {n}")
    half = (n - 1) // 2
    with torch.no_grad():
        logits = model(tokens)
    positions = torch.arange(half + 1, 2 * half)  # predict tokens half + 2 .. 2 half
    return float(F.cross_entropy(logits[:, positions].reshape(-1, logits.shape[-1]).double(),
                                 tokens[:, positions + 1].reshape(-1)))


def loss_deltas(model: Transformer, tokens: Tensor) -> list[list[dict[str, float]]]:
    """deltas[layer][head] = {"zero": loss change, "mean": loss change} on the repeated half."""
    clean = repeated_half_loss(model, tokens)
    return [[{kind: repeated_half_loss(ablate(model, layer, head, kind, tokens), tokens) - clean
              for kind in KINDS} for head in range(model.cfg.n_heads)]
            for layer in range(model.cfg.n_layers)]
