"""Coding Demo 2 (section 5): the tiny modular-addition model's size and output shape.

Claim id ``demo_2.param_count``. For modulus p and embedding width d the model has
p d (embedding) + (2d)(2d) + 2d (first linear) + (2d) p + p (second linear) parameters:
6208 + 16512 + 12513 = 35233 for p = 97, d = 64, and maps a batch of 3 pairs to [3, 97].
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from constructions.tiny_mlp import TinyModel, parameter_count
from verify.registry import Outcome, claim

STATED_COUNT = 35233
STATED_SHAPE = [3, 97]
P, D = 97, 64


def formula_count(p: int, d: int) -> int:
    return p * d + (2 * d) * (2 * d) + 2 * d + (2 * d) * p + p


def check_param_count(build: Callable[[], nn.Module] = lambda: TinyModel(P, D)) -> Outcome:
    torch.manual_seed(0)
    model = build()
    x, y = torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6])  # the demo's inputs
    with torch.no_grad():
        shape = list(model(x, y).shape)
    count = parameter_count(model)
    per_module = {name: sum(p.numel() for p in module.parameters())
                  for name, module in model.named_children()}
    passed = count == STATED_COUNT == formula_count(P, D) and shape == STATED_SHAPE
    return Outcome("confirmed", passed, {"parameters": count, "stated": STATED_COUNT,
                                         "formula_p97_d64": formula_count(P, D),
                                         "per_module": per_module, "output_shape": shape})


@claim("demo_2.param_count", source="section 5, Coding Demo 2",
       statement="the tiny model has 35233 parameters and outputs [3, 97]")
def _param_count() -> Outcome:
    return check_param_count()
