"""Random weights for a `transformer.Config`, for property tests and random baselines."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from constructions.transformer import Config


def random_weights(cfg: Config, *, seed: int, scale: float = 1.0,
                   biases: bool = True) -> dict[str, Tensor]:
    """Gaussian weights with std ``scale / sqrt(fan_in)``, for property tests and baselines."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, Tensor] = {}
    for name, shape in cfg.parameter_shapes().items():
        if name.split(".")[-1].startswith("b_") and not biases:
            continue
        fan_in = shape[-2] if len(shape) >= 2 else shape[-1]
        out[name] = torch.randn(*shape, generator=gen, dtype=cfg.dtype) * scale / fan_in ** 0.5
    return out
