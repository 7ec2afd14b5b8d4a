"""Norms of explicit circuits (claims grokking.memorization_norm, grokking.generalization_norm).

* The lookup memorizer (proofs/grokking.md): Demo 2's TinyModel with d = p, W_E = I_p and one
  hidden ReLU unit per stored pair (a_i, b_i) -> y_i:
      fc.0 row i = alpha (e_{a_i}, e_{b_i}), bias -alpha   (pre-activation alpha iff both match,
                                                           <= 0 otherwise)
      fc.2 column i = beta (e_{y_i} - 1/p),  bias 0
  Margin on every stored pair: alpha beta = gamma. Under alpha beta = gamma the squared norm
  N (3 alpha^2 + (1 - 1/p) beta^2) is least (AM-GM) at alpha^2 = gamma sqrt(c/3),
  beta^2 = gamma sqrt(3/c), c = 1 - 1/p: ||W||^2 = p + 2 sqrt(3 c) gamma N.
* The margin gamma(p, eps) = ln((p - 1)/(e^eps - 1)) gives every stored pair cross-entropy
  log(1 + (p-1) e^{-gamma}) = eps.
* Layer rescaling of a positively homogeneous circuit: if the logits are homogeneous of degree
  deg_l in parameter group l (current squared norm n_l), the least squared norm over rescalings
  s_l with prod s_l^{deg_l} = R is D R^{2/D} prod_l (n_l / deg_l)^{deg_l / D}, D = sum deg_l
  (Lagrange; proofs/grokking.md).
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import torch
from torch import nn

from constructions import validation
from constructions.tiny_mlp import TinyModel

TARGET_LOSS = 0.01   # eps: the per-example cross-entropy both circuits are scaled to reach


def margin_for_loss(p: int, eps: float = TARGET_LOSS) -> float:
    """gamma with log(1 + (p - 1) e^{-gamma}) = eps."""
    p = validation.check_int("p", p, minimum=2)
    eps = validation.check_positive_real("eps", eps)
    return math.log((p - 1) / math.expm1(eps))


def lookup_scales(p: int, gamma: float) -> tuple[float, float]:
    """(alpha, beta) minimizing 3 alpha^2 + (1 - 1/p) beta^2 subject to alpha beta = gamma."""
    c = 1 - 1 / p
    return math.sqrt(gamma * math.sqrt(c / 3)), math.sqrt(gamma * math.sqrt(3 / c))


def lookup_min_norm2(p: int, n: int, gamma: float) -> float:
    """The lookup memorizer's least squared norm: p + 2 sqrt(3 (1 - 1/p)) gamma N."""
    return p + 2 * math.sqrt(3 * (1 - 1 / p)) * gamma * n


def build_lookup(p: int, pairs: torch.Tensor, labels: torch.Tensor, gamma: float,
                 *, alpha: float | None = None) -> TinyModel:
    """The lookup memorizer storing ``pairs`` [N, 2] -> ``labels`` [N] (pairs distinct).
    ``alpha`` overrides the optimal alpha (beta = gamma / alpha keeps the margin)."""
    p = validation.check_int("p", p, minimum=2)
    n = int(pairs.shape[0])
    if pairs.dim() != 2 or pairs.shape[1] != 2 or labels.shape != (n,) or n < 1:
        raise ValueError("pairs must be [N, 2] and labels [N] with N >= 1")
    if len({(int(a), int(b)) for a, b in pairs.tolist()}) != n:
        raise ValueError("pairs must be distinct")
    a_opt, _ = lookup_scales(p, gamma)
    alpha = a_opt if alpha is None else validation.check_positive_real("alpha", alpha)
    beta = gamma / alpha
    model = TinyModel(p, p, hidden=n, dtype=torch.float64)
    rows = torch.arange(n)
    fc0, fc2 = cast(nn.Linear, model.fc[0]), cast(nn.Linear, model.fc[2])
    with torch.no_grad():
        for q in model.parameters():
            q.zero_()
        model.embed.weight.copy_(torch.eye(p, dtype=torch.float64))     # one-hot embedding
        fc0.weight[rows, pairs[:, 0]] = alpha                   # a matches: +alpha
        fc0.weight[rows, p + pairs[:, 1]] = alpha               # b matches: +alpha
        fc0.bias.fill_(-alpha)                                  # fires iff both match
        out = torch.full((p, n), -beta / p, dtype=torch.float64)        # beta (e_y - 1/p)
        out[labels, rows] += beta
        fc2.weight.copy_(out)
    return model.requires_grad_(False)


def squared_norm(model: torch.nn.Module) -> float:
    return float(sum((q.detach().double() ** 2).sum() for q in model.parameters()))


def min_norm2_rescaled(norms: dict[str, float], degrees: dict[str, int], ratio: float) -> float:
    """Least sum_l s_l^2 n_l over s_l > 0 with prod_l s_l^{deg_l} = ratio (module docstring)."""
    ratio = validation.check_positive_real("ratio", ratio)
    D = sum(degrees.values())
    log_prod = sum(d / D * math.log(norms[k] / d) for k, d in degrees.items())
    return D * ratio ** (2 / D) * math.exp(log_prod)


def fit_exponent(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y against log x."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("fit_exponent needs two equal-length lists of >= 2 points")
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])
