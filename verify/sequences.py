"""Token sequences for the induction checks, and the keys an induction circuit should attend to.

Every sequence is a row of a LongTensor [batch, pos] with BOS (= vocab_size V) at position 0 and
content tokens 0..V-1 after it (`constructions.induction.check_sequences` is the convention).
``all_sequences`` enumerates every such row of one length; because attention is causal, the
predictions at positions < n of a length-N row are those of its length-n prefix, so the rows
of length N cover every shorter sequence too.
"""

from __future__ import annotations

import itertools
import random

import torch
from torch import Tensor

from constructions import validation

SEED = 0


def all_sequences(vocab_size: int, length: int) -> Tensor:
    """Every sequence [V^(length-1), length]: BOS then all content strings of length - 1."""
    V = validation.check_int("vocab_size", vocab_size, minimum=1)
    n = validation.check_int("length", length, minimum=1)
    body = list(itertools.product(range(V), repeat=n - 1))
    return torch.tensor([[V, *s] for s in body], dtype=torch.long).reshape(-1, n)


def random_sequences(vocab_size: int, n: int, count: int, *, seed: int = SEED) -> Tensor:
    """[count, n]: BOS then uniform random content tokens (seeded)."""
    V = validation.check_int("vocab_size", vocab_size, minimum=1)
    n = validation.check_int("n", n, minimum=1)
    count = validation.check_int("count", count, minimum=1)
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, V, (count, n), generator=gen)
    tokens[:, 0] = V
    return tokens


def adversarial_sequences(vocab_size: int, n: int, *, seed: int = SEED, n_random: int = 200
                          ) -> Tensor:
    """[batch, n]: families that stress the proof's cases, plus random ones over 2 tokens.

    all-same; no repeats; alternating; a "first occurrence" trap (a b a c ... a); the lower-bound
    family [b ... b a] (a long non-matching run before a fresh token: BOS must win); near ties
    at every offset (... a a b <pad> a); the run [a ... a b a], the match-vs-match family that
    the exhaustive search (`verify.beta_threshold`) finds failing first; random halves
    repeated; random strings over {0, 1}."""
    V = validation.check_int("vocab_size", vocab_size, minimum=1)
    n = validation.check_int("n", n, minimum=2)
    rng = random.Random(seed)
    a, b, c = 0, min(1, V - 1), min(2, V - 1)
    body = n - 1
    fams = [[a] * body, [i % V for i in range(body)], [(a, b)[i % 2] for i in range(body)],
            ([a, b, a, c] * n)[:body - 1] + [a], ([b] * body)[:-1] + [a],
            ([c] * max(0, body - 5) + [a, a, a, b, c] + [a])[-body:],
            ([a] * body)[:-2] + [b, a][-body:]]
    for k in range(1, body):  # near ties at every offset: ... a a b <pad> a
        s = [c] * body
        s[max(0, k - 2):k] = [a] * min(2, k)
        s[k] = b
        s[-1] = a
        fams.append(s)
    for _ in range(n_random):
        half = [rng.randrange(V) for _ in range(body // 2)]
        if half:                   # body = 1 has no halves to repeat
            fams.append((half * 3)[:body])
        fams.append([rng.randrange(min(V, 2)) for _ in range(body)])
    return torch.tensor([[V, *f] for f in fams], dtype=torch.long).reshape(-1, n)


def previous_index(n: int) -> Tensor:
    """Layer 1's target key: i - 1, and 0 for row 0. [n]"""
    n = validation.check_int("n", n, minimum=1)
    return (torch.arange(n) - 1).clamp(min=0)


def induction_key(tokens: Tensor) -> Tensor:
    """Layer 2's target key kappa_t [batch, pos]: j + 1 for the latest j < t with x_j = x_t, and 0
    (BOS) without one."""
    if not isinstance(tokens, Tensor) or tokens.dim() != 2 or tokens.is_floating_point():
        raise TypeError("tokens must be an integer torch tensor [batch, pos]")
    n = tokens.shape[1]
    same = tokens[:, :, None] == tokens[:, None, :]
    last = torch.where(same & (torch.arange(n)[None, :] < torch.arange(n)[:, None]),
                       torch.arange(n), -1).amax(-1)
    return torch.where(last >= 0, last + 1, 0)


# --- the section's own examples ------------------------------------------------------------

SENTENCE = "The cat sat on the mat. The cat"    # Worked Example 2
DEMO_SEQUENCE = [1, 2, 3, 4, 1, 2, 3, 4]        # Coding Demo 1 (its frame has no BOS)


def tokenize(text: str) -> tuple[list[str], list[int]]:
    """Word-level: lower-case, '.' is its own token; ids by first appearance. (vocab, ids)"""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    words = text.lower().replace(".", " . ").split()
    vocab = list(dict.fromkeys(words))
    return vocab, [vocab.index(w) for w in words]
