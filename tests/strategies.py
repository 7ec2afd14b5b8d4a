"""Named Hypothesis strategies shared by the test suite (one section per construction)."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from constructions import transformer

# --- the transformer core -----------------------------------------------------------------


@st.composite
def configs(draw, *, max_layers: int = 2, max_heads: int = 3, max_width: int = 6,
            max_vocab: int = 7, max_ctx: int = 7, mlp: bool | None = None,
            attention: str | None = None) -> transformer.Config:
    """A small random `transformer.Config` (attention-only unless ``mlp`` is True/None-drawn)."""
    with_mlp = draw(st.booleans()) if mlp is None else mlp
    return transformer.Config(
        n_layers=draw(st.integers(1, max_layers)),
        n_heads=draw(st.integers(1, max_heads)),
        d_model=draw(st.integers(1, max_width)),
        d_head=draw(st.integers(1, max_width)),
        d_vocab=draw(st.integers(1, max_vocab)),
        n_ctx=draw(st.integers(1, max_ctx)),
        d_mlp=draw(st.integers(1, max_width)) if with_mlp else None,
        act_fn=draw(st.sampled_from(["relu", "quadratic"])) if with_mlp else None,
        attn_scale=draw(st.sampled_from([1.0, 2.0, 0.5, 3.0 ** 0.5])),
        attention=attention or draw(st.sampled_from(["softmax", "hard"])),
    )


@st.composite
def token_batches(draw, *, d_vocab: int, n_ctx: int, max_batch: int = 3) -> torch.Tensor:
    """A LongTensor [batch, pos] with 1 <= pos <= n_ctx and tokens in [0, d_vocab)."""
    batch = draw(st.integers(1, max_batch))
    length = draw(st.integers(1, n_ctx))
    flat = draw(st.lists(st.integers(0, d_vocab - 1), min_size=batch * length,
                         max_size=batch * length))
    return torch.tensor(flat, dtype=torch.long).reshape(batch, length)


seeds = st.integers(0, 2**31 - 1)

# --- induction (issue 3) ------------------------------------------------------------------

INDUCTION_KINDS = ("random", "repeated_half", "all_same", "no_repeats", "alternating",
                   "first_occurrence_trap")


@st.composite
def induction_bodies(draw, *, vocab_size: int, length: int, kind: str | None = None) -> list[int]:
    """Content tokens (length - 1 of them, in [0, vocab_size)) of one family of INDUCTION_KINDS.

    first_occurrence_trap: a x a y ... a with x != y, so "successor of the FIRST occurrence"
    and "successor of the MOST RECENT occurrence" disagree (needs vocab_size >= 3)."""
    kind = kind or draw(st.sampled_from(INDUCTION_KINDS))
    body, V = length - 1, vocab_size
    tok = st.integers(0, V - 1)
    if kind == "repeated_half":
        size = max(1, (body + 1) // 2)
        half = draw(st.lists(tok, min_size=size, max_size=size))
        out = (half * 2)[:body]
    elif kind == "all_same":
        out = [draw(tok)] * body
    elif kind == "no_repeats":
        perm = draw(st.permutations(list(range(V))))
        out = (list(perm) * (body // V + 1))[:body] if body > V else list(perm)[:body]
    elif kind == "alternating":
        a, b = draw(tok), draw(tok)
        out = [(a, b)[i % 2] for i in range(body)]
    elif kind == "first_occurrence_trap" and V >= 3 and body >= 5:
        a, x, y = draw(st.permutations(list(range(V))))[:3]
        filler = draw(st.lists(tok, min_size=body - 5, max_size=body - 5))
        out = [a, x, *filler, a, y, a][:body]
    else:
        out = draw(st.lists(tok, min_size=body, max_size=body))
    return out


@st.composite
def induction_cases(draw, *, max_vocab: int = 6, max_ctx: int = 12, min_vocab: int = 1,
                    kind: str | None = None, batch: int = 3) -> tuple[int, int, torch.Tensor]:
    """(vocab_size, n_ctx, tokens [batch, length]): BOS (= vocab_size) then content tokens,
    1 <= length <= n_ctx, each row drawn from one of INDUCTION_KINDS."""
    V = draw(st.integers(min_vocab, max_vocab))
    N = draw(st.integers(1, max_ctx))
    length = draw(st.integers(1, N))
    rows = [[V, *draw(induction_bodies(vocab_size=V, length=length, kind=kind))]
            for _ in range(draw(st.integers(1, batch)))]
    return V, N, torch.tensor(rows, dtype=torch.long).reshape(len(rows), length)


# --- modular addition (issue 4) -----------------------------------------------------------


@st.composite
def admissible_freqs(draw, *, p: int, max_size: int = 4) -> tuple[int, ...]:
    """Distinct frequencies in [1, p-1] with gcd(p, k_1, ..., k_m) = 1 (the adder's condition)."""
    import math
    ks = draw(st.lists(st.integers(1, p - 1), min_size=1, max_size=min(max_size, p - 1),
                       unique=True))
    if math.gcd(p, *ks) != 1:  # make it admissible with a unit, keeping the drawn frequencies
        unit = draw(st.integers(1, p - 1).filter(lambda k: math.gcd(k, p) == 1))
        ks = ks[:-1] + [unit] if unit not in ks else ks[:-1]
        if not ks or math.gcd(p, *ks) != 1:
            ks = [unit]
    return tuple(ks)


@st.composite
def residue_pairs(draw, *, p: int, max_batch: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Two LongTensors [batch] of residues in [0, p)."""
    n = draw(st.integers(1, max_batch))
    xs = draw(st.lists(st.integers(0, p - 1), min_size=n, max_size=n))
    ys = draw(st.lists(st.integers(0, p - 1), min_size=n, max_size=n))
    return torch.tensor(xs, dtype=torch.long), torch.tensor(ys, dtype=torch.long)


# --- grokking (issue 5) -------------------------------------------------------------------


@st.composite
def accuracy_curves(draw, *, kind: str, n_logs: int = 30, every: int = 100):
    """Synthetic (steps, train_acc, test_acc, t_mem, t_gen) of a given phase ``kind``: train
    accuracy reaches 1 at t_mem; test accuracy stays below 0.1 (with noise) until a rise that
    reaches 1 at t_gen ("grokking"), never rises ("never_generalized"), or rises with train
    accuracy ("immediate")."""
    steps = [i * every for i in range(n_logs)]
    i_mem = draw(st.integers(1, n_logs // 3))
    train = [min(1.0, 0.9 * i / i_mem) if i < i_mem else 1.0 for i in range(n_logs)]
    noise = draw(st.lists(st.floats(0.0, 0.09), min_size=n_logs, max_size=n_logs))
    if kind == "immediate":
        test = [min(1.0, 0.95 * train[i]) if i < i_mem else 1.0 for i in range(n_logs)]
        return steps, train, test, None, steps[i_mem]
    if kind == "never_generalized":
        return steps, train, noise, steps[i_mem], None
    i_gen = draw(st.integers(i_mem + 2, n_logs - 1))
    i_rise = draw(st.integers(i_mem + 1, i_gen - 1))
    test = [noise[i] if i < i_rise else
            (1.0 if i >= i_gen else 0.1 + 0.85 * (i - i_rise) / (i_gen - i_rise))
            for i in range(n_logs)]
    return steps, train, test, steps[i_mem], steps[i_gen]


# --- pizza (Demo 2 architecture) ----------------------------------------------------------


@st.composite
def odd_moduli(draw, *, min_p: int = 3, max_p: int = 301) -> int:
    """An odd modulus p in [min_p, max_p] (the pizza construction needs odd p >= 3)."""
    return 2 * draw(st.integers(max(1, min_p // 2), (max_p - 1) // 2)) + 1


@st.composite
def pizza_widths(draw, *, p: int, max_hidden: int = 128) -> int:
    """An even MLP width from the proved minimum `pizza.min_hidden(p)` up to max_hidden."""
    from constructions import pizza
    low = pizza.min_hidden(p)
    return 2 * draw(st.integers(low // 2, max(low, max_hidden) // 2))


# --- the induction temperature's lower bound (issue 9, helper A) ----------------------------


@st.composite
def lower_bound_cases(draw, *, max_ctx: int = 64) -> tuple[int, float]:
    """(n_ctx, beta) with 3 <= n_ctx <= max_ctx and 0 < beta <= ln(2 n_ctx - 3): where
    proofs/induction.md proves that [BOS, b, ..., b, a] is predicted wrongly."""
    import math
    n = draw(st.integers(3, max_ctx))
    share = draw(st.floats(1e-6, 1.0))
    return n, share * math.log(2 * n - 3)


@st.composite
def pizza_moduli(draw, *, min_p: int = 2, max_p: int = 301) -> int:
    """A modulus p in [min_p, max_p] of either parity (the pizza construction works for every
    p >= 2: even p reads the b-half rotated by pi/p); half the draws are even."""
    if draw(st.booleans()):
        return 2 * draw(st.integers(max(1, (min_p + 1) // 2), max_p // 2))
    return draw(odd_moduli(min_p=max(3, min_p), max_p=max_p))

# --- interop and analysis (issue 11) ------------------------------------------------------


@st.composite
def tl_configs(draw, *, max_layers: int = 2, max_heads: int = 3, max_width: int = 6,
               max_vocab: int = 7, max_ctx: int = 7) -> transformer.Config:
    """A small `transformer.Config` that TransformerLens can express: softmax attention, and
    attention-only or ReLU MLPs (no quadratic activation); float64."""
    cfg = draw(configs(max_layers=max_layers, max_heads=max_heads, max_width=max_width,
                       max_vocab=max_vocab, max_ctx=max_ctx, attention="softmax"))
    if cfg.act_fn == "quadratic":
        from dataclasses import replace
        cfg = replace(cfg, act_fn="relu")
    return cfg


@st.composite
def distractor_layouts(draw, *, n_heads: int = 4) -> tuple[int, int, int]:
    """(n_heads, index of the previous-token head in layer 0, index of the induction head in
    layer 1) for planting the hand-built heads among random ones."""
    return n_heads, draw(st.integers(0, n_heads - 1)), draw(st.integers(0, n_heads - 1))
