"""The synthetic task: global bigrams plus an in-context copy at a varying offset.

After Bietti et al. 2023 ("Birth of a Transformer: A Memory Viewpoint"): most tokens follow a
GLOBAL bigram table (one random Markov chain shared by every sequence, which a one-layer model
learns through its direct path), and some follow IN-CONTEXT rules that only attention over the
context can predict. Here the in-context part is a copy: a segment of ``copy_len`` tokens that
repeats an earlier segment, with both its place and its distance to the original drawn at random
per sequence. ANCHORS.md records why they must vary: with the copy at a fixed offset a one-layer
model predicts it by position alone; and with the copy always at the end (tried first here) the
trained heads did induction only in the positions where copies occur in training.

A sequence (``n_ctx = 1 + length`` tokens; positions 1..length hold content):

    [BOS] chain ... chain  x_s ... x_{s+L-1}  chain ... chain
                           ^ d: the copy of the segment starting at s

with L = copy_len, the destination d uniform in [L + 1, length - L + 1] and the source s uniform
in [1, d - L] (the copy never overlaps its source). The chain is the bigram Markov chain; after
the copy it continues from the copy's last token. The "repeated" positions are t = d .. d + L - 2,
whose next token (t + 1) is a copy predictable from context; "early" positions t = 1 .. L - 1
(never in a copy) predict bigram tokens from little context.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from constructions import validation


@dataclass(frozen=True)
class TaskConfig:
    """Sizes of the task; defaults are the default run of ``python -m verify train-induction``."""

    vocab_size: int = 32        # content tokens 0..V-1; BOS = V
    length: int = 32            # content tokens per sequence (n_ctx = length + 1)
    copy_len: int = 8           # length L of the copied segment
    sharpness: float = 2.0      # scale of each bigram row's Gaussian logits: larger = peaked rows
    table_seed: int = 1234      # the global bigram table (fixed across model seeds)

    def __post_init__(self) -> None:
        validation.check_int("vocab_size", self.vocab_size, minimum=2)
        validation.check_int("copy_len", self.copy_len, minimum=2)
        validation.check_int("length", self.length, minimum=2 * self.copy_len)
        validation.check_positive_real("sharpness", self.sharpness)
        validation.check_int("table_seed", self.table_seed, minimum=0)

    @property
    def n_ctx(self) -> int:
        return self.length + 1

    @property
    def bos(self) -> int:
        return self.vocab_size

    def early_positions(self) -> Tensor:
        """Positions t = 1 .. copy_len - 1, predicting bigram tokens early in the sequence."""
        return torch.arange(1, self.copy_len)


@dataclass(frozen=True)
class Batch:
    """Sequences and where their copies start."""

    tokens: Tensor       # [batch, n_ctx] long
    dest: Tensor         # [batch] position d of each copy's first token

    def repeated_mask(self, copy_len: int) -> Tensor:
        """[batch, n_ctx - 1] True at positions t = d .. d + L - 2 (their next token is a copy)."""
        t = torch.arange(self.tokens.shape[1] - 1)[None, :]
        return (t >= self.dest[:, None]) & (t <= self.dest[:, None] + copy_len - 2)


def bigram_table(cfg: TaskConfig) -> Tensor:
    """[V, V] row-stochastic table, row a = P(next | a) = softmax(sharpness * g_a), g_a ~ N(0, I)
    (Gaussian logits: larger sharpness, more peaked rows, lower bigram entropy)."""
    gen = torch.Generator().manual_seed(cfg.table_seed)
    logits = torch.randn(cfg.vocab_size, cfg.vocab_size, generator=gen, dtype=torch.float64)
    return torch.softmax(cfg.sharpness * logits, dim=-1)


def sample(cfg: TaskConfig, n_seqs: int, gen: torch.Generator, table: Tensor | None = None
           ) -> Batch:
    """``n_seqs`` sequences of the module docstring."""
    n_seqs = validation.check_int("n_seqs", n_seqs, minimum=1)
    table = bigram_table(cfg) if table is None else table
    V, n, L = cfg.vocab_size, cfg.length, cfg.copy_len
    dest = torch.randint(L + 1, n - L + 2, (n_seqs,), generator=gen)
    src = (torch.rand(n_seqs, generator=gen) * (dest - L)).long() + 1  # uniform in [1, d - L]
    tokens = torch.empty(n_seqs, cfg.n_ctx, dtype=torch.long)
    tokens[:, 0] = cfg.bos
    tokens[:, 1] = torch.randint(0, V, (n_seqs,), generator=gen)
    rows = torch.arange(n_seqs)
    for t in range(2, n + 1):
        chain = torch.multinomial(table[tokens[:, t - 1]], 1, generator=gen)[:, 0]
        offset = t - dest
        in_copy = (offset >= 0) & (offset < L)
        copied = tokens[rows, (src + offset).clamp(1, n)]
        tokens[:, t] = torch.where(in_copy, copied, chain)
    return Batch(tokens, dest)


def bigram_loss(tokens: Tensor, mask: Tensor, table: Tensor) -> tuple[float, float]:
    """(cross-entropy, accuracy) of the true bigram table predicting token t+1 from token t where
    ``mask`` [batch, n_ctx - 1] is True: the n-gram baseline, the best any context-free
    predictor can do on the chain."""
    p = table[tokens[:, :-1].clamp(max=table.shape[0] - 1)]  # [batch, pos - 1, V] (BOS: unused)
    nxt = tokens[:, 1:]
    logp = torch.log(p.gather(-1, nxt[..., None])[..., 0].clamp_min(1e-12))
    acc = (p.argmax(-1) == nxt).double()
    return float(-logp[mask].mean()), float(acc[mask].mean())
