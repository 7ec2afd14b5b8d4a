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
           reference: Tensor | None = None, *, mean_z: Tensor | None = None) -> Transformer:
    """A frozen copy of ``model`` with head (layer, head) ablated. For kind="mean" the mean is
    taken over ``reference`` tokens, or given as ``mean_z`` (the head's mean hook_z, [d_head])."""
    validation.check_choice("kind", kind, KINDS)
    validation.check_int("layer", layer, minimum=0, maximum=model.cfg.n_layers - 1)
    validation.check_int("head", head, minimum=0, maximum=model.cfg.n_heads - 1)
    if kind == "mean" and mean_z is None:
        if reference is None:
            raise ValueError("reference tokens (or mean_z) are needed for kind='mean'")
        mean_z = mean_head_outputs(model, reference)[layer][head]
    out = copy.deepcopy(model).requires_grad_(False)
    attn = out.attention(layer)
    if kind == "mean":
        assert mean_z is not None
        with torch.no_grad():
            attn.b_O.add_(mean_z.to(attn.W_O.dtype) @ attn.W_O[head])
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


def mean_head_outputs(model: Transformer, tokens: Tensor) -> list[list[Tensor]]:
    """means[layer][head]: the head's hook_z averaged over the batch and positions [d_head]."""
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
    return [[cache[f"blocks.{layer}.attn.hook_z"][:, :, h].detach().mean(dim=(0, 1))
             for h in range(model.cfg.n_heads)] for layer in range(model.cfg.n_layers)]


def loss_deltas(model: Transformer, tokens: Tensor) -> list[list[dict[str, float]]]:
    """deltas[layer][head] = {"zero": loss change, "mean": loss change} on the repeated half
    (means over ``tokens`` themselves, computed in one forward pass)."""
    clean = repeated_half_loss(model, tokens)
    means = mean_head_outputs(model, tokens)
    return [[{kind: repeated_half_loss(ablate(model, layer, head, kind,
                                              mean_z=means[layer][head]), tokens) - clean
              for kind in KINDS} for head in range(model.cfg.n_heads)]
            for layer in range(model.cfg.n_layers)]
