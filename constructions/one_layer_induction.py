"""A ONE-layer transformer (attention + ReLU MLP) that solves the induction task exactly.

Claim ``induction.two_layers_required`` (proofs/induction.md, Proposition 3): the task of
`induction.induction_targets` does not need two attention layers. This model has one block,
N = n_ctx hard-attention heads and an MLP of width (N - 1) V^2, and its logits' argmax equals the
reference at every position of every sequence of length <= N (BOS at 0, content 0..V-1 after).
What one attention layer cannot do is attend by the previous token (Lemma 2 in proofs/): here
the heads attend by position only and the MLP does the matching. The sizes grow with N and V
(and the readout weights 2^{j+1} need about N bits), in line with the lower bound of Sanford,
Hsu and Telgarsky 2024 (heads x width x precision = Omega(N) for one layer).

Circuit, at query position T:
  head k (k = 0..N-1): score(T, j) = 2 k j - j^2 = k^2 - (j - k)^2, so it attends to
      min(k, T) and writes e(x_{min(k,T)}) into slot k;
  thermometer: W_pos writes th_j(T) = [T > j] for j = 0..N-1;
  MLP neuron (j, a, c), j <= N - 2, a, c < V:
      relu(slot_j[a] + tok[a] + slot_{j+1}[c] + th_j - 3) = [x_j = x_T = a, x_{j+1} = c, j < T]
      (slot_{j+1} is exact because j + 1 <= T), written to out[c] with weight 2^{j+1};
  logits = out + b_U with b_U[BOS] = 1: the latest match j* contributes 2^{j*+1}, more than all
  earlier matches together (2^{j*+1} - 2) and more than the BOS bias 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from constructions import validation
from constructions.transformer import Config, Transformer


@dataclass(frozen=True)
class OneLayerLayout:
    """Residual coordinates: tok (V+1), slot k (V+1 each, k < N), out (V+1), thermometer (N),
    position (1, i, i^2)."""

    token: list[int]
    slots: list[list[int]]
    output: list[int]
    thermometer: list[int]
    position: tuple[int, int, int]
    d_model: int


def one_layer_layout(vocab_size: int, n_ctx: int) -> OneLayerLayout:
    n_tok = vocab_size + 1
    slots = [list(range(n_tok * (k + 1), n_tok * (k + 2))) for k in range(n_ctx)]
    out0 = n_tok * (n_ctx + 1)
    th0 = out0 + n_tok
    pos0 = th0 + n_ctx
    return OneLayerLayout(list(range(n_tok)), slots, list(range(out0, th0)),
                          list(range(th0, pos0)), (pos0, pos0 + 1, pos0 + 2), pos0 + 3)


def build_one_layer_induction(vocab_size: int, n_ctx: int) -> Transformer:
    """The one-block model of the module docstring (hard attention, integer weights)."""
    V = validation.check_int("vocab_size", vocab_size, minimum=1)
    N = validation.check_int("n_ctx", n_ctx, minimum=1)
    if N > 50:
        raise ValueError(f"n_ctx must be <= 50 here (weights 2^(j+1) stay exact), got {N}")
    n_tok, lay = V + 1, one_layer_layout(V, N)
    d, tok, slots, out = lay.d_model, lay.token, lay.slots, lay.output
    th, (one, pi, psq) = lay.thermometer, lay.position
    d_mlp = max(1, (N - 1) * V * V)
    cfg = Config(n_layers=1, n_heads=N, d_model=d, d_head=n_tok, d_vocab=n_tok, n_ctx=N,
                 d_mlp=d_mlp, act_fn="relu", attention="hard", d_vocab_out=n_tok)
    f64 = torch.float64
    W_E = torch.zeros(n_tok, d, dtype=f64)
    W_E[:, tok] = torch.eye(n_tok, dtype=f64)
    W_pos = torch.zeros(N, d, dtype=f64)
    i = torch.arange(N, dtype=f64)
    W_pos[:, one], W_pos[:, pi], W_pos[:, psq] = 1.0, i, i * i
    W_pos[:, th] = (i[:, None] > torch.arange(N, dtype=f64)[None, :]).to(f64)  # th_j(T) = [T > j]
    W_Q = torch.zeros(N, d, n_tok, dtype=f64)
    W_K = torch.zeros(N, d, n_tok, dtype=f64)
    W_V = torch.zeros(N, d, n_tok, dtype=f64)
    W_O = torch.zeros(N, n_tok, d, dtype=f64)
    for k in range(N):
        # q = (2k, -1) from the constant 1, key = (j, j^2): score 2kj - j^2, max at j = min(k, T)
        W_Q[k, one, 0], W_Q[k, one, 1] = 2.0 * k, -1.0
        W_K[k, pi, 0], W_K[k, psq, 1] = 1.0, 1.0
        W_V[k, tok, :] = torch.eye(n_tok, dtype=f64)        # value e(x_j)
        W_O[k, :, slots[k]] = torch.eye(n_tok, dtype=f64)   # into slot k
    W_in = torch.zeros(d, d_mlp, dtype=f64)
    b_in = torch.zeros(d_mlp, dtype=f64)
    W_out = torch.zeros(d_mlp, d, dtype=f64)
    neuron = 0
    for j in range(N - 1):
        for a in range(V):
            for c in range(V):
                # four 0/1 indicators, all needed: relu(sum - 3) is their AND
                # (four distinct coordinates: each entry is written once)
                W_in[slots[j][a], neuron] = 1.0
                W_in[tok[a], neuron] = 1.0
                W_in[slots[j + 1][c], neuron] = 1.0
                W_in[th[j], neuron] = 1.0
                b_in[neuron] = -3.0
                W_out[neuron, out[c]] = 2.0 ** (j + 1)  # later matches outweigh all earlier ones
                neuron += 1
    W_U = torch.zeros(d, n_tok, dtype=f64)
    W_U[out, :] = torch.eye(n_tok, dtype=f64)
    b_U = torch.zeros(n_tok, dtype=f64)
    b_U[V] = 1.0  # BOS wins exactly when no neuron fires
    weights = {"embed.W_E": W_E, "pos_embed.W_pos": W_pos, "blocks.0.attn.W_Q": W_Q,
               "blocks.0.attn.W_K": W_K, "blocks.0.attn.W_V": W_V, "blocks.0.attn.W_O": W_O,
               "blocks.0.mlp.W_in": W_in, "blocks.0.mlp.b_in": b_in,
               "blocks.0.mlp.W_out": W_out, "unembed.W_U": W_U, "unembed.b_U": b_U}
    model = Transformer.from_weights(cfg, weights)
    model.bos = V  # type: ignore[assignment]
    return model
