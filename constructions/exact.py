"""The forward pass of `transformer.Transformer`, mirrored in SymPy for exact arithmetic.

The same equations as the torch module, line for line, on ``sympy.Matrix`` values: weights may
be integers, rationals, algebraic numbers (cos(2 pi k/p)) or symbols, and so may the outputs.
Softmax is kept symbolic (``exp(s) / sum exp(s)``); "hard" attention takes the exact maxima of
each row (which needs comparable, i.e. numeric, scores) and shares ties equally. Tests run this
mirror and the torch module on the same rational weights and compare.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sympy as sp
import torch

from constructions.transformer import Config, Transformer


def exact_weights(model: Transformer) -> dict[str, object]:
    """The model's float weights as exact SymPy rationals (each float64 is a dyadic rational).

    2-D weights become Matrices; per-head 3-D weights become lists of Matrices; biases become
    1-row Matrices (``b_Q`` etc.: one row per head)."""
    out: dict[str, object] = {}
    for name, tensor in model.weights().items():
        values = tensor.to(torch.float64).tolist()
        if tensor.dim() == 3:
            out[name] = [sp.Matrix([[sp.Rational(v) for v in row] for row in head])
                         for head in values]
        elif tensor.dim() == 2:
            out[name] = sp.Matrix([[sp.Rational(v) for v in row] for row in values])
        else:
            out[name] = sp.Matrix([[sp.Rational(v) for v in values]])
    return out


def exact_forward(cfg: Config, weights: Mapping[str, object], tokens: Sequence[int]) -> sp.Matrix:
    """Logits [pos, d_vocab_out] of one sequence, in exact arithmetic."""
    n = len(tokens)
    if not 1 <= n <= cfg.n_ctx:
        raise ValueError(f"tokens length must be between 1 and n_ctx={cfg.n_ctx}, got {n}")
    if any(not 0 <= t < cfg.d_vocab for t in tokens):
        raise ValueError(f"tokens must lie in [0, {cfg.d_vocab - 1}], got {list(tokens)}")
    W_E, W_pos = _w(weights, "embed.W_E"), _w(weights, "pos_embed.W_pos")
    resid = sp.Matrix.vstack(*[W_E.row(t) + W_pos.row(i) for i, t in enumerate(tokens)])
    for layer in range(cfg.n_layers):
        resid = resid + _attention(cfg, weights, f"blocks.{layer}.attn.", resid)
        if not cfg.attn_only:
            resid = resid + _mlp(cfg, weights, f"blocks.{layer}.mlp.", resid)
    ones = sp.ones(n, 1)
    return resid * _w(weights, "unembed.W_U") + ones * _row(weights, "unembed.b_U", cfg.vocab_out)


def _attention(cfg: Config, weights: Mapping[str, object], prefix: str, x: sp.Matrix) -> sp.Matrix:
    n = x.rows
    ones = sp.ones(n, 1)
    out = ones * _row(weights, prefix + "b_O", cfg.d_model)
    for h in range(cfg.n_heads):
        q = x * _w(weights, prefix + "W_Q", h) + ones * _row(weights, prefix + "b_Q", cfg.d_head, h)
        k = x * _w(weights, prefix + "W_K", h) + ones * _row(weights, prefix + "b_K", cfg.d_head, h)
        v = x * _w(weights, prefix + "W_V", h) + ones * _row(weights, prefix + "b_V", cfg.d_head, h)
        scores = q * k.T / sp.nsimplify(cfg.attn_scale)
        pattern = sp.zeros(n, n)
        for i in range(n):
            row = [scores[i, j] for j in range(i + 1)]  # causal: keys 0..i
            for j, weight in enumerate(_pattern_row(row, cfg.attention)):
                pattern[i, j] = weight
        out = out + pattern * v * _w(weights, prefix + "W_O", h)
    return out


def _pattern_row(row: list[sp.Expr], attention: str) -> list[sp.Expr]:
    if attention == "softmax":
        exps = [sp.exp(s) for s in row]
        total = sum(exps)
        return [e / total for e in exps]
    best = sp.Max(*row)
    winners = [sp.simplify(s - best) == 0 for s in row]
    share = sp.Rational(1, sum(winners))
    return [share if w else sp.Integer(0) for w in winners]


def _mlp(cfg: Config, weights: Mapping[str, object], prefix: str, x: sp.Matrix) -> sp.Matrix:
    ones = sp.ones(x.rows, 1)
    pre = x * _w(weights, prefix + "W_in") + ones * _row(weights, prefix + "b_in", cfg.d_mlp or 0)
    post = pre.applyfunc(lambda u: sp.Max(u, 0) if cfg.act_fn == "relu" else u**2)
    return post * _w(weights, prefix + "W_out") + ones * _row(weights, prefix + "b_out", cfg.d_model)


def _w(weights: Mapping[str, object], name: str, head: int | None = None) -> sp.Matrix:
    if name not in weights:
        raise ValueError(f"weights: missing {name!r}")
    value = weights[name]
    return value[head] if head is not None else value  # type: ignore[index]


def _row(weights: Mapping[str, object], name: str, width: int, head: int | None = None) -> sp.Matrix:
    """A bias as a 1-row Matrix; absent biases are zero."""
    if name not in weights:
        return sp.zeros(1, width)
    value = weights[name]
    assert isinstance(value, sp.MatrixBase)
    return value.row(head) if head is not None else value
