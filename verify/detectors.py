"""Head detectors: the function Coding Demo 1 leaves as ``pass`` (claim ``demo_1.is_induction_head``).

Scores (Olsson et al. 2022; Elhage et al. 2021; TransformerLens ``head_detector``):

* a detection pattern D [pos, pos] of 0/1, lower triangular (anything else is a ValueError,
  as TransformerLens refuses it too), says where a head of a kind
  should attend: previous token D[i, i-1] = 1; duplicate token D[i, j] = 1 for j < i with
  x_j = x_i; induction (prefix matching) D[i, j+1] = 1 for j < i with x_j = x_i, column 0
  excluded (TransformerLens's construction: the duplicate pattern shifted right by one).
* ``normalization="rows"`` (ours, default): the mean, over the rows that have a target, of the
  share of the row's attention that lies on its targets. ``exclude_bos`` / ``exclude_current_token``
  remove key 0 / the diagonal from the row's attention AND from its targets (the share is then
  taken of the attention left); rows left with no target or no attention do not count. So a head
  that attends only to targets scores exactly 1 whatever the sequence and whatever the
  exclusions (a previous-token head's row 1, whose only target is BOS, drops out under
  ``exclude_bos`` instead of scoring 0). Without exclusions rows sum to 1 and the share is the
  mass on the targets.
* ``normalization="transformer_lens"``: sum(A * D) / sum(A) over the whole matrix, as in
  ``transformer_lens.head_detector.compute_head_attention_similarity_score`` (error measure
  "mul"). Rows without a target count in the denominator, so a perfect head scores
  (rows with a target) / (all rows): about 1/2 on a sequence repeated once.
  The two are related exactly: tl = rows * R / n for n rows of which R have a target.
* copying score: sum(lambda) / sum(|lambda|) over the eigenvalues of the full OV circuit
  W_E W_OV W_U (Elhage et al. 2021): 1 for a head that raises the logit of what it attends to.
"""

from __future__ import annotations

import torch
from torch import Tensor

from constructions import circuits, validation
from constructions.transformer import Transformer

NORMALIZATIONS = ("rows", "transformer_lens")
EIGEN_ZERO = 1e-12  # sum |lambda| below this: the full OV circuit is zero, no copying score


def previous_token_pattern(n: int) -> Tensor:
    """D [n, n] with D[i, i-1] = 1."""
    n = validation.check_int("n", n, minimum=1)
    return torch.diag(torch.ones(n - 1, dtype=torch.float64), -1)


def duplicate_token_pattern(tokens: Tensor) -> Tensor:
    """D [batch, pos, pos] with D[b, i, j] = 1 for j < i and x_j = x_i."""
    tokens = _tokens(tokens)
    n = tokens.shape[1]
    same = tokens[:, :, None] == tokens[:, None, :]
    return (same & (torch.arange(n)[None, :] < torch.arange(n)[:, None])).to(torch.float64)


def induction_pattern(tokens: Tensor) -> Tensor:
    """D [batch, pos, pos] with D[b, i, j+1] = 1 for j < i and x_j = x_i (column 0 stays 0)."""
    dup = duplicate_token_pattern(tokens)
    out = torch.zeros_like(dup)
    out[:, :, 1:] = dup[:, :, :-1]
    return out


def pattern_score(pattern: Tensor, detection: Tensor, *, normalization: str = "rows",
                  exclude_bos: bool = False, exclude_current_token: bool = False) -> Tensor:
    """Per-sequence scores [batch] of attention patterns [batch, q, k] (or [q, k]) against D.

    ``exclude_*`` remove the BOS column / the diagonal (TransformerLens's options; for "rows"
    from the targets too, see the module docstring). ValueError for a detection pattern that
    is not a lower-triangular 0/1 matrix of the pattern's size."""
    validation.check_choice("normalization", normalization, NORMALIZATIONS)
    A = _batched("pattern", pattern).to(torch.float64)
    D = _batched("detection", detection).to(torch.float64)
    if D.shape[-1] != A.shape[-1]:
        raise ValueError(f"detection must be [{A.shape[-1]}, {A.shape[-1]}] like the pattern, "
                         f"got {tuple(D.shape)}")
    if bool(D.triu(1).any()):
        raise ValueError("detection must be lower triangular (a causal head cannot attend to a "
                         "later key); got a nonzero entry above the diagonal")
    if bool(((D != 0) & (D != 1)).any()):
        raise ValueError("detection must hold only 0 and 1")
    D = D.expand_as(A)
    if exclude_bos or exclude_current_token:
        A, D = A.clone(), D.clone()
        for X in (A, D):
            if exclude_bos:
                X[:, :, 0] = 0
            if exclude_current_token:
                X.diagonal(dim1=-2, dim2=-1).zero_()
    hit = (A * D).sum(dim=-1)  # [batch, q]: attention on the targets of each row
    if normalization == "transformer_lens":
        return hit.sum(-1) / A.sum(dim=(-2, -1))
    left = A.sum(dim=-1)  # [batch, q]: the row's attention after the exclusions
    counted = (D.sum(dim=-1) > 0) & (left > 0)
    rows = counted.sum(-1)
    if bool((rows == 0).any()):
        raise ValueError("detection: a sequence has no row with a target (after the "
                         "exclusions); the 'rows' score is undefined there")
    share = torch.where(counted, hit / torch.where(counted, left, 1.0), 0.0)
    return share.sum(-1) / rows


def chance_score(detection: Tensor) -> Tensor:
    """The 'rows' score of uniform causal attention (1/(i+1) on each key): the chance level."""
    D = _batched("detection", detection).to(torch.float64)
    n = D.shape[-1]
    uniform = torch.ones(n, n, dtype=torch.float64).tril() / torch.arange(1, n + 1)[:, None]
    return pattern_score(uniform.expand_as(D), D)


def repeated_random_tokens(n_seqs: int, half: int, vocab_size: int, *, seed: int,
                           bos: int | None = None) -> Tensor:
    """[n_seqs, 1 + 2 half]: BOS then a random block (without repeats when vocab allows) twice."""
    n_seqs = validation.check_int("n_seqs", n_seqs, minimum=1)
    half = validation.check_int("half", half, minimum=1)
    vocab_size = validation.check_int("vocab_size", vocab_size, minimum=1)
    gen = torch.Generator().manual_seed(seed)
    if half <= vocab_size:
        block = torch.rand(n_seqs, vocab_size, generator=gen).argsort(-1)[:, :half]
    else:
        block = torch.randint(0, vocab_size, (n_seqs, half), generator=gen)
    bos_col = torch.full((n_seqs, 1), vocab_size if bos is None else bos)
    return torch.cat([bos_col, block, block], dim=1)


def head_pattern(model: Transformer, tokens: Tensor, layer: int, head: int = 0) -> Tensor:
    """[batch, q, k] attention pattern of one head of our `Transformer`."""
    _, cache = model.run_with_cache(tokens)
    key = f"blocks.{layer}.attn.hook_pattern"
    if key not in cache:
        raise ValueError(f"layer must be in [0, {model.cfg.n_layers - 1}], got {layer}")
    if not 0 <= head < model.cfg.n_heads:
        raise ValueError(f"head must be in [0, {model.cfg.n_heads - 1}], got {head}")
    return cache[key][:, head]


def prefix_matching_score(model: Transformer, layer: int, head: int, tokens: Tensor, *,
                          normalization: str = "rows") -> float:
    """Mean induction score of a head on ``tokens`` (use `repeated_random_tokens`)."""
    pattern = head_pattern(model, tokens, layer, head)
    return float(pattern_score(pattern, induction_pattern(tokens),
                               normalization=normalization).mean())


def previous_token_score(model: Transformer, layer: int, head: int, tokens: Tensor, *,
                         normalization: str = "rows") -> float:
    """Mean previous-token score of a head on ``tokens``."""
    pattern = head_pattern(model, tokens, layer, head)
    return float(pattern_score(pattern, previous_token_pattern(tokens.shape[1]),
                               normalization=normalization).mean())


def copying_score(matrix: Tensor) -> float:
    """sum(lambda) / sum(|lambda|) of a square matrix (the full OV circuit W_E W_OV W_U)."""
    if not isinstance(matrix, Tensor) or matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError("matrix must be a square 2-D tensor (the full OV circuit), got "
                         f"{tuple(matrix.shape) if isinstance(matrix, Tensor) else type(matrix)}")
    eig = torch.linalg.eigvals(matrix.detach().to(torch.float64))
    total = float(eig.abs().sum())
    if total < EIGEN_ZERO:
        raise ValueError("matrix: the full OV circuit is zero, its copying score is undefined")
    return float(eig.sum().real) / total


def head_copying_score(model: Transformer, layer: int, head: int = 0) -> float:
    """`copying_score` of W_E W_OV W_U for one head (needs d_vocab == d_vocab_out)."""
    return copying_score(circuits.full_ov(model, layer, head))


def _tokens(tokens: Tensor) -> Tensor:
    if not isinstance(tokens, Tensor) or tokens.is_floating_point() or tokens.dim() not in (1, 2):
        raise TypeError("tokens must be an integer torch tensor [batch, pos] or [pos]")
    return tokens[None] if tokens.dim() == 1 else tokens


def _batched(name: str, x: Tensor) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() not in (2, 3) or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name} must be a tensor [q, k] or [batch, q, k] with q == k")
    return x[None] if x.dim() == 2 else x
