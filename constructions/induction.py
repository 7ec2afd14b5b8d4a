"""A two-layer attention-only induction circuit with a proved temperature bound.

Claims ``induction.previous_token_head`` and ``induction.induction_head`` (proofs/induction.md).

Task (the reference `induction_targets`): position 0 holds BOS (= vocab_size V), positions
t >= 1 hold content tokens 0..V-1; the target at t is x_{j+1} for the LARGEST j < t with
x_j = x_t (the most recent earlier occurrence), and BOS when there is none (a BOS "sink", as in
tracr's categorical attention).

Theorem. Let N = n_ctx >= 2 and beta*(N) = ln(8 N). For attention="hard" (any beta) the logits
at every position of every sequence of length <= N equal the one-hot of the reference target
exactly. For attention="softmax" and beta >= beta*(N) the argmax of the logits equals the
reference target on every such sequence. The bounds behind it (`mass_bounds`, valid for every
beta > 0): layer 1's mass off i - 1 is at most delta_1 = min((N-1) e^{-beta}, 2 e^{-beta} +
e^{-4 beta} / (1 - e^{-5 beta})) (its scores fall off quadratically); a layer-2 score moves by at
most eta = 2 N delta_1 (units of beta); layer 2's mass off the target is at most
delta_2 = e^{beta (eta - 1)} / (1 - e^{-beta}) + e^{-beta (N + 1 - eta)} + (N-1) e^{-beta (N + 2 - 2 eta)}
(earlier matches lie at least 1, 2, 3, ... recency steps behind: a geometric tail); the logit
margin is at least 1 - 2 delta_2. At beta = ln(8N): eta <= 0.5001 and delta_2 < 0.27, and every
term decreases in beta beyond it. (N = 1: one key per row, any beta > 0.) beta* does not
depend on V. proofs/induction.md has the proof.

Circuit (subspaces in `previous_token.Layout`):
  layer 1 (`previous_token.previous_token_head`): position i receives e_prev(x_{i-1}).
  layer 2 (`induction_head`): from query T to key j the score, in units of beta, is
      2 N [x_{j-1} = x_T]   (match: query e_tok(x_T), key e_prev(x_{j-1}))
    + N   [j = 0]           (BOS sink: wins only when nothing matches)
    + j                     (recency: the most recent match wins ties)
  and the OV circuit copies e_tok(x_j) into the output subspace, which W_U reads.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from constructions import validation
from constructions.previous_token import Layout, embeddings, previous_token_head
from constructions.transformer import ATTENTION_KINDS, Config, Transformer

HARD_BETA = 1.0  # hard attention is the beta -> infinity limit; beta = 1 keeps weights integer


def beta_star(n_ctx: int, vocab_size: int = 1) -> float:
    """beta*(N) = ln(8 N) for N >= 2 and 0 for N = 1 (any beta > 0); V does not enter."""
    n = validation.check_int("n_ctx", n_ctx, minimum=1)
    validation.check_int("vocab_size", vocab_size, minimum=1)
    return 0.0 if n == 1 else math.log(8 * n)


def _exp(x: float) -> float:
    return math.exp(min(x, 700.0))  # the bounds are capped at 1 anyway; avoid OverflowError


def mass_bounds(beta: float, n_ctx: int) -> dict[str, float]:
    """The proof's chain of bounds at temperature ``beta`` (valid for every beta > 0).

    delta_1: layer-1 mass off i - 1; eta: the largest change of a layer-2 score, in units of
    beta (2 N delta_1); delta_2: layer-2 mass off the target (capped at 1); margin: the
    guaranteed logit margin 1 - 2 delta_2 (correct predictions when > 0); certified: the
    theorem's hypothesis beta >= beta*."""
    beta = validation.check_positive_real("beta", beta)
    n = validation.check_int("n_ctx", n_ctx, minimum=1)
    if n == 1:  # one key per row: nothing off target
        return {"delta_1": 0.0, "eta": 0.0, "delta_2": 0.0, "margin": 1.0, "certified": True}
    tail = math.exp(-4 * beta) / -math.expm1(-5 * beta)   # sum_{d>=2} e^{-beta d^2}
    delta_1 = min(1.0, (n - 1) * math.exp(-beta), 2 * math.exp(-beta) + tail)
    eta = 2 * n * delta_1
    delta_2 = min(1.0, _exp(beta * (eta - 1)) / -math.expm1(-beta)
                  + _exp(-beta * (n + 1 - eta)) + (n - 1) * _exp(-beta * (n + 2 - 2 * eta)))
    return {"delta_1": delta_1, "eta": eta, "delta_2": delta_2, "margin": 1 - 2 * delta_2,
            "certified": beta >= beta_star(n)}


def default_beta(n_ctx: int, attention: str = "softmax") -> float:
    """beta*(N) for softmax (1.0 when N = 1); `HARD_BETA` for hard attention."""
    validation.check_choice("attention", attention, ATTENTION_KINDS)
    if attention == "hard":
        return HARD_BETA
    return 1.0 if n_ctx == 1 else beta_star(n_ctx)


def induction_head(layout: Layout, beta: float, *, layer: int = 1,
                   dtype: torch.dtype = torch.float64) -> dict[str, Tensor]:
    """Weights of head 0 of block ``layer``: the scores of the module docstring, OV tok -> out."""
    d, e, n, V, N = layout.d_model, layout.d_head, layout.n_tokens, layout.vocab_size, layout.n_ctx
    W_Q = torch.zeros(1, d, e, dtype=dtype)  # [n_heads, d_model, d_head]
    W_K = torch.zeros(1, d, e, dtype=dtype)
    W_V = torch.zeros(1, d, e, dtype=dtype)
    W_O = torch.zeros(1, e, d, dtype=dtype)  # [n_heads, d_head, d_model]
    # head coordinates of the query/key space: 0..V-1 match, V sink, V+1 recency
    sink, recency = V, V + 1
    # match: q = 2 N beta e(x_T) on content tokens, k = e_prev(x_{j-1}); 2 N > N + (N - 1) makes
    # any match beat the sink and every non-match whatever their positions.
    W_Q[0, layout.tok.start + torch.arange(V), torch.arange(V)] = 2.0 * N * beta
    W_K[0, layout.prev.start + torch.arange(V), torch.arange(V)] = 1.0
    # sink: q = N beta (from the constant 1), k = [x_j = BOS]; N > j for every non-match j <= N-1.
    W_Q[0, layout.pos_one, sink] = N * beta
    W_K[0, layout.tok.start + layout.bos, sink] = 1.0
    # recency: q = beta (from the constant 1), k = j; unit steps, below the match weight 2N.
    W_Q[0, layout.pos_one, recency] = beta
    W_K[0, layout.pos_i, recency] = 1.0
    # OV: e_tok(a) -> e_out(a): the attended token itself (its successor role comes from the key).
    for a in range(n):
        W_V[0, layout.tok.start + a, a] = 1.0
        W_O[0, a, layout.out.start + a] = 1.0
    p = f"blocks.{layer}.attn."
    return {p + "W_Q": W_Q, p + "W_K": W_K, p + "W_V": W_V, p + "W_O": W_O}


def unembedding(layout: Layout, dtype: torch.dtype = torch.float64) -> dict[str, Tensor]:
    """W_U reads the output subspace only: logits = e_out coordinates (no direct path)."""
    W_U = torch.zeros(layout.d_model, layout.n_tokens, dtype=dtype)  # [d_model, d_vocab_out]
    W_U[layout.out, :] = torch.eye(layout.n_tokens, dtype=dtype)
    return {"unembed.W_U": W_U}


class InductionModel(Transformer):
    """The two-layer `Transformer` of the module docstring, checking the BOS convention."""

    def __init__(self, cfg: Config, layout: Layout, beta: float):
        super().__init__(cfg)
        self.layout = layout
        self.beta = beta
        self.bos = layout.bos

    def _run(self, tokens: Tensor, cache: dict[str, Tensor] | None) -> Tensor:
        check_sequences(tokens, vocab_size=self.layout.vocab_size, n_ctx=self.cfg.n_ctx)
        return super()._run(tokens, cache)


def check_sequences(tokens: object, *, vocab_size: int, n_ctx: int) -> Tensor:
    """tokens [batch, pos], 1 <= pos <= n_ctx, BOS (= vocab_size) at 0, content in [0, V) after."""
    tokens = validation.check_tokens(tokens, d_vocab=vocab_size + 1, n_ctx=n_ctx)
    if tokens.numel() and bool((tokens[:, 0] != vocab_size).any()):
        raise ValueError(f"tokens: position 0 must hold BOS = vocab_size = {vocab_size}, "
                         f"got {tokens[:, 0].unique().tolist()[:5]}")
    if tokens.shape[1] > 1 and tokens.numel() and int(tokens[:, 1:].max()) >= vocab_size:
        raise ValueError(f"tokens after position 0 must lie in [0, {vocab_size - 1}] "
                         f"(BOS = {vocab_size} only at position 0)")
    return tokens


def build_induction_model(vocab_size: int, n_ctx: int, attention: str = "softmax",
                          beta: float | None = None) -> InductionModel:
    """The circuit of the module docstring; ``beta=None`` takes `default_beta` (>= beta*)."""
    V = validation.check_int("vocab_size", vocab_size, minimum=1)
    N = validation.check_int("n_ctx", n_ctx, minimum=1)
    validation.check_choice("attention", attention, ATTENTION_KINDS)
    beta = default_beta(N, attention) if beta is None else validation.check_positive_real(
        "beta", beta)
    layout = Layout(V, N)
    cfg = Config(n_layers=2, n_heads=1, d_model=layout.d_model, d_head=layout.d_head,
                 d_vocab=layout.n_tokens, n_ctx=N, attn_scale=1.0, attention=attention,
                 d_vocab_out=layout.n_tokens)
    weights = {**embeddings(layout), **previous_token_head(layout, beta, layer=0),
               **induction_head(layout, beta, layer=1), **unembedding(layout)}
    model = InductionModel(cfg, layout, beta)
    model.set_weights(weights)
    return model.requires_grad_(False)


SECTION_VARIANTS = ("identity_ov", "match_only")


def build_section_variant(vocab_size: int, n_ctx: int, variant: str, attention: str = "hard",
                          beta: float | None = None) -> InductionModel:
    """Theorem 2.1 of the section built as its proof words it, on our layout (for its checks).

    ``"identity_ov"``: Layer 1 with W_OV = the identity on the token subspace (the section's
    words), so position i holds e(x_i) + e(x_{i-1}) in ONE subspace; Layer 2 is ours except that
    its match key reads that summed subspace, the only place x_{j-1} now is (a fair build: the
    key does not read an empty subspace). ``"match_only"``: Layer 2 with the section's score
    q_T k_{j+1}^T = A W_QK A^T alone: no recency term, no BOS sink."""
    validation.check_choice("variant", variant, SECTION_VARIANTS)
    model = build_induction_model(vocab_size, n_ctx, attention, beta)
    lay, w = model.layout, model.weights()
    if variant == "identity_ov":
        W_O = w["blocks.0.attn.W_O"].clone()            # [1, d_head, d_model]
        W_O[0, :, lay.prev] = 0.0
        W_O[0, : lay.n_tokens, lay.tok] = torch.eye(lay.n_tokens, dtype=W_O.dtype)  # W_OV = I
        W_K = w["blocks.1.attn.W_K"].clone()
        rows = torch.arange(lay.vocab_size)
        W_K[0, lay.prev.start + rows, rows] = 0.0
        W_K[0, lay.tok.start + rows, rows] = 1.0        # match read from the summed subspace
        model.set_weights({"blocks.0.attn.W_O": W_O, "blocks.1.attn.W_K": W_K})
    else:
        W_Q = w["blocks.1.attn.W_Q"].clone()
        W_Q[0, lay.pos_one, lay.vocab_size:] = 0.0      # drop the sink and the recency terms
        model.set_weights({"blocks.1.attn.W_Q": W_Q})
    return model.requires_grad_(False)


def induction_targets(tokens: Tensor, bos: int) -> Tensor:
    """Reference [batch, pos]: x_{j+1} for the largest j < t with x_j = x_t, else ``bos``."""
    if not isinstance(tokens, Tensor) or tokens.dim() != 2 or tokens.is_floating_point():
        raise TypeError("tokens must be an integer torch tensor [batch, pos]")
    bos = validation.check_int("bos", bos, minimum=0)
    n = tokens.shape[1]
    if not n:                                                        # no positions to look up
        return torch.full_like(tokens, bos)
    same = tokens[:, :, None] == tokens[:, None, :]                  # [batch, t, j]
    earlier = (torch.arange(n)[None, :] < torch.arange(n)[:, None])            # j < t
    j = torch.arange(n)
    last = torch.where(same & earlier, j, -1).amax(dim=-1)           # [batch, t]; -1: no match
    successor = tokens.gather(1, last + 1)                           # last + 1 <= t <= n - 1
    return torch.where(last >= 0, successor, torch.full_like(tokens, bos))
