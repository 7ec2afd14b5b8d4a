"""The trained circuit against the hand-built one (constructions/induction.py).

- Diagonal dominance (the construction's QK circuit read through its previous-token head):
  the hand-built induction head scores query token a against the key position whose PREVIOUS
  token is b with a bonus exactly when a = b. For a trained pair (previous-token head (l1, h1),
  induction head (l2, h2)) the matching token-token matrix is

      S = W_E W_QK2 (W_E W_OV1)^T      [content tokens x content tokens]

  (query: the token's embedding; key: what the previous-token head writes when it attends to
  token b). `diagonal_share` is the share of rows a whose maximum is at b = a (1 for the
  construction; 1 / V for a random matrix).
- Prediction agreement: on repeated random tokens, the share of positions of the repeated half
  where the trained model's argmax equals `induction.induction_targets`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from constructions import circuits, induction
from constructions.transformer import Transformer


def token_qk_through_ov(model: Transformer, prev: tuple[int, int], ind: tuple[int, int],
                        content: int) -> Tensor:
    """S of the module docstring for the first ``content`` token ids, [content, content]."""
    W_E = model.embed.W_E.detach().double()[:content]
    qk2 = circuits.qk(model, *ind).double()
    ov1 = circuits.ov(model, *prev).double()
    return W_E @ qk2 @ (W_E @ ov1).T


def diagonal_share(S: Tensor) -> float:
    """Share of rows whose maximum lies on the diagonal."""
    if S.dim() != 2 or S.shape[0] != S.shape[1] or S.shape[0] == 0:
        raise ValueError(f"S must be a non-empty square matrix, got {tuple(S.shape)}")
    return float((S.argmax(-1) == torch.arange(S.shape[0])).double().mean())


def target_agreement(model: Transformer, tokens: Tensor, bos: int) -> float:
    """Share of repeated-half positions (tokens = BOS + block + block) where the argmax of the
    model equals `induction.induction_targets`."""
    half = (tokens.shape[1] - 1) // 2
    with torch.no_grad():
        pred = model(tokens).argmax(-1)
    ref = induction.induction_targets(tokens, bos)
    positions = torch.arange(half + 1, 2 * half + 1)
    return float((pred[:, positions] == ref[:, positions]).double().mean())
