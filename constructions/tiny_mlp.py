"""The section's Coding Demo 2 network: embed a and b, concatenate, a ReLU MLP, logits over Z_p.

Layout (same modules and parameter count as the demo, claim id ``demo_2.param_count``):

    e      = [W_E[a], W_E[b]]              # [batch, 2d]   embed: nn.Embedding(p, d)
    hidden = relu(e W_1^T + b_1)           # [batch, 2d]   fc.0: nn.Linear(2d, 2d)
    logits = hidden W_2^T + b_2            # [batch, p]    fc.2: nn.Linear(2d, p)

Parameters: p d + (2d)(2d) + 2d + (2d) p + p = 35233 for p = 97, d = 64.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from constructions import validation


class TinyModel(nn.Module):
    """Demo 2's model; ``hidden`` sets the MLP width (the demo uses 2d)."""

    def __init__(self, p: int, d: int = 64, *, hidden: int | None = None,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.p = validation.check_int("p", p, minimum=2)
        self.d = validation.check_int("d", d, minimum=1)
        width = 2 * self.d if hidden is None else validation.check_int("hidden", hidden, minimum=1)
        self.embed = nn.Embedding(self.p, self.d, dtype=dtype)
        self.fc = nn.Sequential(nn.Linear(2 * self.d, width, dtype=dtype), nn.ReLU(),
                                nn.Linear(width, self.p, dtype=dtype))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """x, y: LongTensor [batch] of residues in [0, p) -> logits [batch, p]."""
        x, y = check_residue_pair(x, y, self.p)
        e = torch.cat([self.embed(x), self.embed(y)], dim=-1)  # [batch, 2d]
        return self.fc(e)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_residues(name: str, values: object, p: int) -> Tensor:
    """A LongTensor [batch] with entries in [0, p), or a ValueError/TypeError naming ``name``."""
    if not isinstance(values, Tensor):
        raise TypeError(f"{name} must be a torch.LongTensor [batch], got {type(values).__name__}")
    if values.dtype.is_floating_point or values.dtype in (torch.bool, torch.complex64,
                                                           torch.complex128):
        raise TypeError(f"{name} must have an integer dtype (torch.long), got {values.dtype}")
    if values.dim() != 1:
        raise ValueError(f"{name} must have shape [batch], got shape {tuple(values.shape)}")
    if values.numel() and (int(values.min()) < 0 or int(values.max()) >= p):
        raise ValueError(f"{name} must lie in [0, {p - 1}] (p={p}), got values in "
                         f"[{int(values.min())}, {int(values.max())}]")
    return values.long()


def check_residue_pair(x: object, y: object, p: int) -> tuple[Tensor, Tensor]:
    """Two LongTensors [batch] of the same shape with entries in [0, p)."""
    x, y = check_residues("x", x, p), check_residues("y", y, p)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    return x, y
