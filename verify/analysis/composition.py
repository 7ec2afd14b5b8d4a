"""Q-, K- and V-composition between heads, with the baseline of random matrices.

Elhage et al. 2021 ("A Mathematical Framework for Transformer Circuits"): a later head (l2, h2)
can read what an earlier head (l1, h1) wrote through its query, its key or its value. With row
vectors (x is a row of the residual stream, score = x_q W_QK x_k^T, output = x W_OV):

    query side reads x W_OV1:  score = x W_OV1 W_QK2 x_k^T  -> Q-composition of M = W_OV1 W_QK2
    key side reads x W_OV1:    score = x_q W_QK2 W_OV1^T x^T -> K-composition of M = W_QK2 W_OV1^T
    value side reads x W_OV1:  out = x W_OV1 W_OV2          -> V-composition of M = W_OV1 W_OV2

and the score is ||M||_F / (||first||_F ||second||_F), between 0 and 1. Its size means little
alone, so `baseline` gives the mean score of random matrices of the same shapes: W_QK = Q K^T and
W_OV = V O with Gaussian factors [d_model, d_head] and [d_head, d_model]. The three kinds have the
same baseline: each is the product of two such rank-d_head matrices (up to a transpose, which
leaves Frobenius norms unchanged).
"""

from __future__ import annotations

import torch
from torch import Tensor

from constructions import circuits, validation
from constructions.transformer import Transformer

KINDS = ("q", "k", "v")
BASELINE_SAMPLES = 200  # random pairs per baseline: the mean's standard error is ~1% of it
NORM_ZERO = 1e-30       # a zero W_QK or W_OV has no composition score (reported as 0)


def score(first: Tensor, second: Tensor) -> float:
    """||first @ second||_F / (||first||_F ||second||_F); 0 when either is zero."""
    denom = float(first.norm() * second.norm())
    return 0.0 if denom < NORM_ZERO else float((first @ second).norm()) / denom


def factored_score(a1: Tensor, b1: Tensor, a2: Tensor, b2: Tensor) -> float:
    """`score`(a1 b1, a2 b2) for low-rank factors a [d, e], b [e, d], without forming a d x d
    matrix: ||a1 b1||^2 = tr(G(a1) G(b1^T)) with Gram matrices G(x) = x^T x, and
    ||a1 (b1 a2) b2||^2 = tr(G(a1) M G(b2^T) M^T) with M = b1 a2 [e, e]. Cost O(d e^2)."""
    ga1, gb1, ga2, gb2 = a1.T @ a1, b1 @ b1.T, a2.T @ a2, b2 @ b2.T
    m = b1 @ a2
    n1, n2 = float(torch.trace(ga1 @ gb1)), float(torch.trace(ga2 @ gb2))
    if n1 <= 0 or n2 <= 0 or (n1 * n2) ** 0.5 < NORM_ZERO:
        return 0.0
    product = max(float(torch.trace(ga1 @ m @ gb2 @ m.T)), 0.0)
    return (product / (n1 * n2)) ** 0.5


def pair(model: Transformer, l1: int, h1: int, l2: int, h2: int, kind: str) -> float:
    """The ``kind`` composition score of head (l2, h2) reading head (l1, h1), l1 < l2."""
    validation.check_choice("kind", kind, KINDS)
    if not 0 <= l1 < l2 < model.cfg.n_layers:
        raise ValueError(f"layers must satisfy 0 <= l1 < l2 <= {model.cfg.n_layers - 1}, "
                         f"got l1={l1}, l2={l2}")
    # factors: W_OV = W_V W_O and W_QK = W_Q W_K^T (the 1/attn_scale cancels in the ratio)
    a1, b1 = _factors(model, l1, h1, "ov")
    if kind == "v":
        return factored_score(a1, b1, *_factors(model, l2, h2, "ov"))
    a2, b2 = _factors(model, l2, h2, "qk")
    return factored_score(a1, b1, a2, b2) if kind == "q" else factored_score(a2, b2, b1.T, a1.T)


def _factors(model: Transformer, layer: int, head: int, which: str) -> tuple[Tensor, Tensor]:
    circuits.qk(model, layer, head)  # validates layer and head
    attn = model.attention(layer)
    if which == "ov":
        return attn.W_V[head].detach().double(), attn.W_O[head].detach().double()
    return attn.W_Q[head].detach().double(), attn.W_K[head].detach().double().T


def matrix(model: Transformer, l1: int, l2: int, kind: str) -> Tensor:
    """[n_heads, n_heads]: entry [h1, h2] is `pair`(l1, h1, l2, h2, kind)."""
    n = model.cfg.n_heads
    return torch.tensor([[pair(model, l1, h1, l2, h2, kind) for h2 in range(n)]
                         for h1 in range(n)], dtype=torch.float64)


def baseline(d_model: int, d_head: int, *, samples: int = BASELINE_SAMPLES, seed: int = 0
             ) -> dict[str, float]:
    """Mean and standard deviation of the score of random W_QK / W_OV pairs of these shapes."""
    d = validation.check_int("d_model", d_model, minimum=1)
    e = validation.check_int("d_head", d_head, minimum=1)
    samples = validation.check_int("samples", samples, minimum=2)
    gen = torch.Generator().manual_seed(seed)
    found = []
    for _ in range(samples):
        a = torch.randn(d, e, generator=gen, dtype=torch.float64)
        b = torch.randn(e, d, generator=gen, dtype=torch.float64)
        c = torch.randn(d, e, generator=gen, dtype=torch.float64)
        f = torch.randn(e, d, generator=gen, dtype=torch.float64)
        found.append(factored_score(a, b, c, f))
    t = torch.tensor(found)
    return {"mean": float(t.mean()), "std": float(t.std()), "samples": samples}


def all_pairs(model: Transformer) -> list[dict[str, object]]:
    """Every pair of heads in layers l1 < l2, with its q, k, v scores."""
    cfg = model.cfg
    rows: list[dict[str, object]] = []
    for l2 in range(1, cfg.n_layers):
        for l1 in range(l2):
            q, k, v = (matrix(model, l1, l2, kind) for kind in KINDS)
            for h1 in range(cfg.n_heads):
                for h2 in range(cfg.n_heads):
                    rows.append({"from": [l1, h1], "to": [l2, h2], "q": float(q[h1, h2]),
                                 "k": float(k[h1, h2]), "v": float(v[h1, h2])})
    return rows
