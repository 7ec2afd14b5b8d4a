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

# --- modular addition (issue 4) -----------------------------------------------------------

# --- grokking (issue 5) -------------------------------------------------------------------
