"""The synthetic task: global bigrams plus an in-context copy at a varying offset.

After Bietti et al. 2023 ("Birth of a Transformer: A Memory Viewpoint"): most tokens follow a
GLOBAL bigram table (one random Markov chain shared by every sequence, which a one-layer model
learns through its direct path), and some follow IN-CONTEXT rules that only attention over the
context can predict. Here the in-context part is a copy: the last ``copy_len`` tokens repeat a
segment that began at a random earlier position, so the distance between the original and the
copy varies from sequence to sequence. ANCHORS.md records why it must vary: with the copy at a
fixed offset a one-layer model predicts it by position alone, no induction needed.

A sequence (``n_ctx = 1 + length`` tokens):

    [BOS] x_1 ... x_{length - copy_len}  x_{s} ... x_{s + copy_len - 1}
          bigram chain from the table      copy of the segment starting at s (1 <= s <= s_max)

with s uniform in [1, length - 2 copy_len + 1], so the copy never overlaps its source and the
offset length - copy_len + 1 - s ranges over copy_len .. length - copy_len. Positions of the
"repeated half" are the copy's positions after its first token: there, and only there, the next
token is determined by the context (the bigram table gives its own guess everywhere).
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
    length: int = 48            # content tokens per sequence (n_ctx = length + 1)
    copy_len: int = 16          # the copied segment at the end
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

    @property
    def copy_start(self) -> int:
        """Sequence index of the copy's first token."""
        return self.length - self.copy_len + 1

    def repeated_positions(self) -> Tensor:
        """Positions t whose NEXT token (t + 1) is inside the copy and predictable from context:
        t = copy_start .. length - 1 (the logits at t predict token t + 1)."""
        return torch.arange(self.copy_start, self.length)

    def early_positions(self) -> Tensor:
        """Positions t predicting bigram tokens early in the sequence: t = 1 .. copy_len - 1."""
        return torch.arange(1, self.copy_len)


def bigram_table(cfg: TaskConfig) -> Tensor:
    """[V, V] row-stochastic table, row a = P(next | a) = softmax(sharpness * g_a), g_a ~ N(0, I)
    (Gaussian logits: larger sharpness, more peaked rows, lower bigram entropy)."""
    gen = torch.Generator().manual_seed(cfg.table_seed)
    logits = torch.randn(cfg.vocab_size, cfg.vocab_size, generator=gen, dtype=torch.float64)
    return torch.softmax(cfg.sharpness * logits, dim=-1)


def sample(cfg: TaskConfig, n_seqs: int, gen: torch.Generator, table: Tensor | None = None
           ) -> Tensor:
    """[n_seqs, n_ctx] sequences of the module docstring (long)."""
    n_seqs = validation.check_int("n_seqs", n_seqs, minimum=1)
    table = bigram_table(cfg) if table is None else table
    V, n, L = cfg.vocab_size, cfg.length, cfg.copy_len
    tokens = torch.empty(n_seqs, cfg.n_ctx, dtype=torch.long)
    tokens[:, 0] = cfg.bos
    tokens[:, 1] = torch.randint(0, V, (n_seqs,), generator=gen)
    for t in range(2, n - L + 1):
        tokens[:, t] = torch.multinomial(table[tokens[:, t - 1]], 1, generator=gen)[:, 0]
    s = torch.randint(1, n - 2 * L + 2, (n_seqs,), generator=gen)  # source start, 1-based
    idx = s[:, None] + torch.arange(L)[None, :]
    tokens[:, cfg.copy_start:] = tokens.gather(1, idx)
    return tokens


def bigram_loss(cfg: TaskConfig, tokens: Tensor, positions: Tensor, table: Tensor | None = None
                ) -> tuple[float, float]:
    """(cross-entropy, accuracy) of the true bigram table predicting token t+1 from token t at
    ``positions``: the n-gram baseline, the best any context-free predictor can do on the chain."""
    table = bigram_table(cfg) if table is None else table
    prev, nxt = tokens[:, positions], tokens[:, positions + 1]
    p = table[prev]  # [batch, pos, V]
    loss = -torch.log(p.gather(-1, nxt[..., None])[..., 0].clamp_min(1e-12)).mean()
    acc = (p.argmax(-1) == nxt).double().mean()
    return float(loss), float(acc)
