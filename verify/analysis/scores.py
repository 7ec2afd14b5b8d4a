"""Per-head scores of any model (our `Transformer`), from one forward pass.

On repeated random tokens (`probe_tokens`: BOS, a random block, the block again; Olsson et al.
2022's prefix-matching set-up) every head gets, with `verify.detectors`:

- previous_token: share of attention on key i - 1;
- duplicate_token: share on earlier occurrences of the query's token;
- induction: share on the token after an earlier occurrence (prefix matching);
- copying: sum(lambda) / sum(|lambda|) of W_E W_OV W_U (Elhage et al. 2021), None when the
  model's input and output vocabularies differ or the head's full OV circuit is zero.

``normalization="transformer_lens"`` gives TransformerLens's ``detect_head`` "mul" score
(sum(A * D) / sum(A)) averaged over the sequences, which is what TransformerLens returns for a
list of prompts; "rows" (default) is ours (see verify.detectors).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from constructions import circuits, validation
from constructions.transformer import Config, Transformer
from verify import detectors

PROBE_SEQS = 32  # sequences of the default probe


def probe_tokens(cfg: Config, *, seed: int = 0, n_seqs: int = PROBE_SEQS,
                 bos: int | None = None) -> Tensor:
    """[n_seqs, 1 + 2 half] repeated random tokens for a model: BOS = ``bos`` (default the last
    token id, d_vocab - 1), content tokens from the others, half = (n_ctx - 2) // 2 so that the
    length stays below n_ctx (TransformerLens's detect_head requires it)."""
    bos = cfg.d_vocab - 1 if bos is None else validation.check_int(
        "bos", bos, minimum=0, maximum=cfg.d_vocab - 1)
    if cfg.d_vocab < 2 or cfg.n_ctx < 4:
        raise ValueError(f"the model needs d_vocab >= 2 and n_ctx >= 4 for repeated random "
                         f"tokens, got d_vocab={cfg.d_vocab}, n_ctx={cfg.n_ctx}")
    half = (cfg.n_ctx - 2) // 2
    tokens = detectors.repeated_random_tokens(n_seqs, half, cfg.d_vocab - 1, seed=seed, bos=bos)
    if bos != cfg.d_vocab - 1:  # content ids skip bos: shift those at or above it up by one
        content = tokens[:, 1:]
        tokens[:, 1:] = content + (content >= bos).long()
    return tokens


def head_scores(model: Transformer, tokens: Tensor, *, normalization: str = "rows",
                copying: bool = True) -> list[list[dict[str, Any]]]:
    """scores[layer][head] = {"previous_token", "duplicate_token", "induction", "copying"}."""
    if not isinstance(model, Transformer):
        raise TypeError(f"model must be a constructions.transformer.Transformer, "
                        f"got {type(model).__name__} (see verify.analysis.load)")
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
    n = tokens.shape[1]
    kinds = {"previous_token": detectors.previous_token_pattern(n),
             "duplicate_token": detectors.duplicate_token_pattern(tokens),
             "induction": detectors.induction_pattern(tokens)}
    out = []
    for layer in range(model.cfg.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"].detach()  # [batch, head, q, k]
        row = []
        for head in range(model.cfg.n_heads):
            found: dict[str, Any] = {
                kind: float(detectors.pattern_score(pattern[:, head], D,
                                                    normalization=normalization).mean())
                for kind, D in kinds.items()}
            found["copying"] = head_copying(model, layer, head) if copying else None
            row.append(found)
        out.append(row)
    return out


def head_copying(model: Transformer, layer: int, head: int) -> float | None:
    """The copying score of one head, or None where it is undefined (see module docstring)."""
    if model.cfg.d_vocab != model.cfg.vocab_out:
        return None
    # W_E W_V W_O W_U [V, V] and W_O W_U W_E W_V [d_head, d_head] have the same nonzero
    # eigenvalues (eig(AB) = eig(BA) up to zeros), and zeros add nothing to either sum: the
    # small matrix gives the same score at O(V d e) cost instead of an O(V^3) eigensolve.
    circuits.ov(model, layer, head)  # validates layer and head
    attn = model.attention(layer)
    small = (attn.W_O[head] @ model.unembed.W_U @ model.embed.W_E @ attn.W_V[head]).detach()
    try:
        return detectors.copying_score(small)
    except ValueError:  # a zero full OV circuit
        return None


def best_heads(scores: list[list[dict[str, Any]]], kind: str) -> list[tuple[int, int, float]]:
    """(layer, head, score) sorted by ``kind``'s score, highest first."""
    rows = [(layer, head, s[kind]) for layer, heads in enumerate(scores)
            for head, s in enumerate(heads) if s[kind] is not None]
    return sorted(rows, key=lambda r: -r[2])
