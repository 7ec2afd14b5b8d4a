"""Layer 1 of the induction circuit: a previous-token head (``induction.previous_token_head``).

Theorem (proofs/induction.md, Lemma 1). Write the residual stream at position i as
``e_tok(x_i) + (1, i, i^2)`` in the subspaces `Layout.tok` and `Layout.pos`. With the weights
below the head's score from query i to key j <= i is

    s(i, j) = beta * (2 (i - 1) j - j^2) = beta * ((i - 1)^2 - (j - (i - 1))^2),

so for i >= 1 the key j = i - 1 wins by at least ``beta`` over every other key (the score drops
by (j - i + 1)^2 >= 1), and row 0 has the single key 0. Hard attention therefore puts all its
weight on i - 1 (on 0 for i = 0); softmax puts at most ``(n - 1) e^{-beta}`` elsewhere.
The OV circuit is NOT the identity: it maps the token subspace onto a separate
"previous token" subspace (``W_OV = sum_a e_tok(a)^T e_prev(a)``), so that position i carries
x_i and x_{i-1} side by side and a later head can tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Layout:
    """Named subspaces of the residual stream (d_model = 3 (V + 1) + 3) and of the heads.

    token ids 0 .. V-1 are content, V is BOS; every one-hot block has V + 1 coordinates."""

    vocab_size: int   # V: content tokens 0 .. V-1; BOS = V
    n_ctx: int        # N: the longest sequence

    @property
    def bos(self) -> int:
        return self.vocab_size

    @property
    def n_tokens(self) -> int:  # V + 1: content tokens and BOS
        return self.vocab_size + 1

    @property
    def tok(self) -> slice:       # one-hot of the current token x_i (written by W_E)
        return slice(0, self.n_tokens)

    @property
    def prev(self) -> slice:      # one-hot of x_{i-1} (written by layer 1; BOS at i = 0)
        return slice(self.n_tokens, 2 * self.n_tokens)

    @property
    def out(self) -> slice:       # one-hot of the copied successor (written by layer 2)
        return slice(2 * self.n_tokens, 3 * self.n_tokens)

    @property
    def pos_one(self) -> int:     # the constant 1 (written by W_pos at every position)
        return 3 * self.n_tokens

    @property
    def pos_i(self) -> int:       # the position i
        return 3 * self.n_tokens + 1

    @property
    def pos_sq(self) -> int:      # i^2
        return 3 * self.n_tokens + 2

    @property
    def d_model(self) -> int:
        return 3 * self.n_tokens + 3

    @property
    def d_head(self) -> int:      # V + 2: enough for layer 2's query/key (see induction.py)
        return self.vocab_size + 2

    def subspaces(self) -> dict[str, list[int]]:
        """Name -> residual coordinates, for display and for tests."""
        def idx(s: slice) -> list[int]:
            return list(range(s.start, s.stop))
        return {"token": idx(self.tok), "previous_token": idx(self.prev),
                "output": idx(self.out), "position": [self.pos_one, self.pos_i, self.pos_sq]}


def embeddings(layout: Layout, dtype: torch.dtype = torch.float64) -> dict[str, Tensor]:
    """W_E writes e_tok(x); W_pos writes (1, i, i^2): integers, exact in float64 for i < 2^26."""
    W_E = torch.zeros(layout.n_tokens, layout.d_model, dtype=dtype)  # [d_vocab, d_model]
    W_E[:, layout.tok] = torch.eye(layout.n_tokens, dtype=dtype)
    W_pos = torch.zeros(layout.n_ctx, layout.d_model, dtype=dtype)   # [n_ctx, d_model]
    i = torch.arange(layout.n_ctx, dtype=dtype)
    W_pos[:, layout.pos_one] = 1.0
    W_pos[:, layout.pos_i] = i
    W_pos[:, layout.pos_sq] = i * i
    return {"embed.W_E": W_E, "pos_embed.W_pos": W_pos}


def previous_token_head(layout: Layout, beta: float, *, layer: int = 0,
                        dtype: torch.dtype = torch.float64) -> dict[str, Tensor]:
    """Weights of head 0 of block ``layer``: attends from i to i - 1 and writes e_prev(x_{i-1})."""
    d, e, n = layout.d_model, layout.d_head, layout.n_tokens
    W_Q = torch.zeros(1, d, e, dtype=dtype)  # [n_heads, d_model, d_head]
    W_K = torch.zeros(1, d, e, dtype=dtype)
    W_V = torch.zeros(1, d, e, dtype=dtype)
    W_O = torch.zeros(1, e, d, dtype=dtype)  # [n_heads, d_head, d_model]
    # query q_i = beta * (2 (i - 1), -1), key k_j = (j, j^2):  q_i . k_j = beta (2 (i-1) j - j^2).
    # beta sits in W_Q only (attn_scale stays 1).
    W_Q[0, layout.pos_i, 0] = 2.0 * beta
    W_Q[0, layout.pos_one, 0] = -2.0 * beta
    W_Q[0, layout.pos_one, 1] = -1.0 * beta
    W_K[0, layout.pos_i, 0] = 1.0
    W_K[0, layout.pos_sq, 1] = 1.0
    # OV: e_tok(a) -> e_prev(a) for every token a (BOS included): a map between two subspaces.
    for a in range(n):
        W_V[0, layout.tok.start + a, a] = 1.0
        W_O[0, a, layout.prev.start + a] = 1.0
    p = f"blocks.{layer}.attn."
    return {p + "W_Q": W_Q, p + "W_K": W_K, p + "W_V": W_V, p + "W_O": W_O}


def previous_token_scores(n: int) -> Tensor:
    """The score matrix s(i, j) / beta = 2 (i - 1) j - j^2 for i, j < n (upper triangle unused)."""
    i = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(n, dtype=torch.float64)[None, :]
    return 2 * (i - 1) * j - j * j  # [q, k]
