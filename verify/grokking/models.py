"""The two networks the grokking experiment trains on (a + b) mod p, and their initialization.

* ``tiny``: the section's Coding Demo 2 ``TinyModel`` (constructions/tiny_mlp.py): embed a and
  b, concatenate, ReLU MLP of width 2d, logits over Z_p. PyTorch's default initialization
  (Embedding ~ N(0, 1), Linear ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))), times ``init_scale``.
* ``transformer``: a one-layer transformer in the style of Nanda et al. 2023 ("Progress
  measures for grokking via mechanistic interpretability"), built on
  constructions.transformer.Transformer: tokens [a, b, "="] (the "=" token is p), 4 heads,
  ReLU MLP, no LayerNorm, attention scores / sqrt(d_head), read out at the last position.
  Their initialization: weights ~ N(0, 1/d_model) (W_U ~ N(0, 1/d_vocab)), biases zero; the
  attention biases and b_U are frozen at zero (their model has none).

``logits(model, a, b)`` gives [batch, p] for either network.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import Tensor, nn

from constructions import transformer, validation
from constructions.tiny_mlp import TinyModel

MODELS = ("tiny", "transformer")
FROZEN_TRANSFORMER_PARAMS = ("attn.b_Q", "attn.b_K", "attn.b_V", "attn.b_O", "unembed.b_U")


def build_model(kind: str, p: int, *, d: int = 64, d_model: int = 128, n_heads: int = 4,
                d_mlp: int = 512, init_scale: float = 1.0, seed: int = 0,
                equals_class: bool = False) -> nn.Module:
    """A freshly initialized network (float32), seeded by ``seed``."""
    validation.check_choice("model", kind, MODELS)
    p = validation.check_int("p", p, minimum=2)
    init_scale = validation.check_positive_real("init_scale", init_scale)
    torch.manual_seed(seed)
    model: nn.Module
    if kind == "tiny":
        model = TinyModel(p, validation.check_int("d", d, minimum=1))
    else:
        model = nanda_transformer(p, d_model=d_model, n_heads=n_heads, d_mlp=d_mlp,
                                  equals_class=equals_class)
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(init_scale)
    return model


def nanda_transformer(p: int, *, d_model: int = 128, n_heads: int = 4, d_mlp: int = 512,
                      equals_class: bool = False) -> transformer.Transformer:
    """Nanda et al.'s one-layer modular-addition transformer, with their initialization.
    ``equals_class``: p + 1 outputs, the "=" token a class too, as in their official code."""
    d_model = validation.check_int("d_model", d_model, minimum=1)
    n_heads = validation.check_int("n_heads", n_heads, minimum=1)
    if d_model % n_heads:
        raise ValueError(f"d_model must be a multiple of n_heads, got {d_model} and {n_heads}")
    d_head = d_model // n_heads
    cfg = transformer.Config(n_layers=1, n_heads=n_heads, d_model=d_model, d_head=d_head,
                             d_vocab=p + 1, n_ctx=3, d_mlp=validation.check_int("d_mlp", d_mlp,
                                                                                minimum=1),
                             act_fn="relu", attn_scale=math.sqrt(d_head),
                             d_vocab_out=p + 1 if equals_class else p,
                             dtype=torch.float32)
    model = transformer.Transformer(cfg)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(FROZEN_TRANSFORMER_PARAMS) or ".b_" in name:
                param.zero_()                      # biases start at zero
                param.requires_grad_(not name.endswith(FROZEN_TRANSFORMER_PARAMS))
            elif name == "unembed.W_U":
                param.normal_(0.0, 1.0 / math.sqrt(param.shape[-1]))  # N(0, 1/d_vocab_out)
            else:
                param.normal_(0.0, 1.0 / math.sqrt(d_model))   # N(0, 1/d_model)
    return model


def logits(model: nn.Module, a: Tensor, b: Tensor) -> Tensor:
    """Logits [batch, p] of (a + b) mod p for residues a, b: LongTensor [batch] ([batch, p + 1]
    for a transformer with the "=" class)."""
    if isinstance(model, transformer.Transformer):
        p = model.cfg.d_vocab - 1                  # the "=" token's id
        eq = torch.full_like(a, p)
        tokens = torch.stack([a, b, eq], dim=1)    # [batch, 3]: a, b, "="
        return model(tokens)[:, -1, :]             # [batch, p]
    return model(a, b)


def embedding(model: nn.Module) -> Tensor:
    """The token embedding restricted to the residues 0..p-1: [p, d]."""
    if isinstance(model, transformer.Transformer):
        return model.embed.W_E[: model.cfg.d_vocab - 1]
    return cast(TinyModel, model).embed.weight


def hidden(model: nn.Module, a: Tensor, b: Tensor) -> Tensor:
    """The MLP's hidden activations after ReLU at the read-out position: [batch, width]."""
    if isinstance(model, transformer.Transformer):
        p = model.cfg.d_vocab - 1
        tokens = torch.stack([a, b, torch.full_like(a, p)], dim=1)
        _, cache = model.run_with_cache(tokens)
        return cache["blocks.0.mlp.hook_post"][:, -1, :]
    tiny = cast(TinyModel, model)
    e = torch.cat([tiny.embed(a), tiny.embed(b)], dim=-1)  # [batch, 2d]
    return tiny.fc[1](tiny.fc[0](e))


def modulus(model: nn.Module) -> int:
    if isinstance(model, transformer.Transformer):
        return model.cfg.d_vocab - 1
    return cast(TinyModel, model).p
