"""Coding Demo 2 (section 5): the tiny modular-addition model's size and output shape.

Claim id ``demo_2.param_count``. For modulus p and embedding width d the model has
p d (embedding) + (2d)(2d) + 2d (first linear) + (2d) p + p (second linear) parameters:
6208 + 16512 + 12513 = 35233 for p = 97, d = 64, and maps a batch of 3 pairs to [3, 97].

- literal: the demo's model, built as the demo builds it, has exactly the stated count and
  gives the stated output shape on the demo's three pairs;
- restated: the count is the formula above at the demo's sizes (so the statement is a fact
  about the architecture, not about one instance).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from constructions.tiny_mlp import TinyModel, parameter_count
from verify.registry import Finding, claim

STATED_COUNT = 35233
STATED_SHAPE = [3, 97]
P, D = 97, 64
DEMO_INPUTS = (torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6]))  # the demo's x and y


def formula_count(p: int, d: int) -> int:
    return p * d + (2 * d) * (2 * d) + 2 * d + (2 * d) * p + p


def measure(model: nn.Module) -> dict:
    """The model's parameter count, per module, and its output shape on the demo's inputs."""
    with torch.no_grad():
        shape = list(model(*DEMO_INPUTS).shape)
    return {"parameters": parameter_count(model), "output_shape": shape,
            "per_module": {name: sum(p.numel() for p in module.parameters())
                           for name, module in model.named_children()}}


def check_literal(build: Callable[[], nn.Module] = lambda: TinyModel(P, D),
                  stated_count: int = STATED_COUNT, stated_shape: list[int] | None = None
                  ) -> Finding:
    """The demo's model has the stated count and output shape."""
    stated_shape = STATED_SHAPE if stated_shape is None else stated_shape
    found = measure(build())
    holds = found["parameters"] == stated_count and found["output_shape"] == stated_shape
    return Finding(holds, {**found, "stated_count": stated_count, "stated_shape": stated_shape})


def check_restated(build: Callable[[], nn.Module] = lambda: TinyModel(P, D)) -> Finding:
    """The count is p d + (2d)^2 + 2d + 2d p + p at the demo's sizes, and the output is [3, p]."""
    found = measure(build())
    expected = formula_count(P, D)
    holds = found["parameters"] == expected and found["output_shape"] == [3, P]
    return Finding(holds, {**found, "formula_p97_d64": expected})


param_count = claim("demo_2.param_count", source="section 5, Coding Demo 2",
                    statement="the tiny model has 35233 parameters and outputs [3, 97]")
param_count.literal(check_literal)
param_count.restated(check_restated)
