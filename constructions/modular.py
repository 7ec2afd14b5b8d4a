"""The trig-identity modular adder of Theorem 3.1 / Worked Example 3 as a one-layer transformer.

Claim ids ``modular.trig_identity``, ``modular.adder_exact``, ``worked_example_3.mod5``
(proofs/modular-addition.md). Theorem realized: for p >= 2 and a frequency set K of integers
in [1, p-1], the network below computes, in exact arithmetic,

    logit_c(a, b) = sum_{k in K} cos(w_k (a + b - c)),      w_k = 2 pi k / p,

so argmax_c logit_c = (a + b) mod p, uniquely, for every a, b in Z_p if and only if
gcd(p, k_1, ..., k_m) = 1 (the frequencies generate Z_p). With every frequency 1..(p-1)//2
the logits are a Dirichlet kernel: (p-1)/2 at the answer and -1/2 elsewhere for odd p, so the
margin is p/2; (p-2)/2 at the answer and 0 or -1 elsewhere for even p >= 4 (margin p/2 - 1);
p = 2 uses K = {1} (margin 2).

Network (a `transformer.Transformer`, TransformerLens names; input tokens [a, b]; we read the
last position). With m = |K|, the residual stream has three slots of 2m coordinates each:

    B = [0, 2m)    the token's own embedding E(x) = (cos w_k x, sin w_k x)_k   (W_E)
    S = [2m, 4m)   E(a) + E(b), written by the attention head at the last position
    O = [4m, 6m)   (cos w_k(a+b), sin w_k(a+b))_k, written by the MLP

Attention: W_Q = W_K = 0, so every score is 0 and the softmax at the last position is (1/2, 1/2)
in exact arithmetic (in floating point within a proved alpha ~ 6e-16 of it, given the library's
exp: verify/rounding.py). The OV circuit copies slot B to slot S with
factor 2, so slot S holds 2 * (E(a) + E(b)) / 2. The MLP (act_fn "quadratic") forms, per
frequency, z+ = u_a + u_b and z- = u_a - u_b (u_x = e^{i w_k x}; z- = S - 2B) and uses
u_a u_b = (z+^2 - z-^2) / 4 with Re z^2 = x^2 - y^2 and Im z^2 = ((x+y)^2 - (x-y)^2) / 2,
i.e. the polarization identity xy = ((x+y)^2 - (x-y)^2) / 4. W_U reads slot O against
(cos w_k c, sin w_k c): cos(A)cos(C) + sin(A)sin(C) = cos(A - C).

Every weight except W_E and W_U is a small dyadic rational (0, +-1, +-2, +-1/4, +-1/8), so it
is stored exactly; W_E and W_U hold float64 roundings of cos/sin (their error is measured and
bounded by the certificate in verify/adder_certificate.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import cast

import torch
from torch import Tensor, nn

from constructions import transformer, validation
from constructions.tiny_mlp import check_residue_pair

NEURONS_PER_FREQ = 8  # x+^2, y+^2, x-^2, y-^2, (x+ + y+)^2, (x+ - y+)^2, (x- + y-)^2, (x- - y-)^2

# Per frequency: neuron j reads (coefficient of S_cos, S_sin, B_cos, B_sin) and writes
# (to O_cos, to O_sin). x+ = S_cos, y+ = S_sin, x- = S_cos - 2 B_cos, y- = S_sin - 2 B_sin.
#   O_cos = Re(u_a u_b) = (x+^2 - y+^2 - x-^2 + y-^2) / 4
#   O_sin = Im(u_a u_b) = ((x++y+)^2 - (x+-y+)^2 - (x-+y-)^2 + (x--y-)^2) / 8
NEURON_TABLE: tuple[tuple[tuple[int, int, int, int], tuple[float, float]], ...] = (
    ((1, 0, 0, 0), (0.25, 0.0)),      # x+
    ((0, 1, 0, 0), (-0.25, 0.0)),     # y+
    ((1, 0, -2, 0), (-0.25, 0.0)),    # x-
    ((0, 1, 0, -2), (0.25, 0.0)),     # y-
    ((1, 1, 0, 0), (0.0, 0.125)),     # x+ + y+
    ((1, -1, 0, 0), (0.0, -0.125)),   # x+ - y+
    ((1, 1, -2, -2), (0.0, -0.125)),  # x- + y-
    ((1, -1, -2, 2), (0.0, 0.125)),   # x- - y-
)


def default_freqs(p: int) -> tuple[int, ...]:
    """Every frequency 1..(p-1)//2; (1,) for p = 2."""
    p = validation.check_int("p", p, minimum=2)
    return (1,) if p == 2 else tuple(range(1, (p - 1) // 2 + 1))


def freq_gcd(p: int, freqs: Iterable[int]) -> int:
    """gcd(p, k_1, ..., k_m): the adder is exact iff this is 1 (proofs/modular-addition.md)."""
    g = p
    for k in freqs:
        g = math.gcd(g, int(k))
    return g


def check_freqs(p: int, freqs: object, *, admissible_only: bool = True) -> tuple[int, ...]:
    """Validate a frequency set: distinct integers in [1, p-1], and gcd(p, K) = 1."""
    if isinstance(freqs, (str, bytes)) or not isinstance(freqs, Iterable):
        raise TypeError(f"freqs must be a collection of integers in [1, {p - 1}] or None, "
                        f"got {type(freqs).__name__}")
    ks = tuple(validation.check_int("freqs entry", k, minimum=1, maximum=p - 1)
               for k in freqs)
    if not ks:
        raise ValueError(f"freqs must be non-empty (integers in [1, {p - 1}]), got ()")
    if len(set(ks)) != len(ks):
        raise ValueError(f"freqs must be distinct, got {ks}")
    g = freq_gcd(p, ks)
    if admissible_only and g != 1:
        raise ValueError(f"freqs {ks} are inadmissible for p={p}: gcd(p, freqs) = {g} > 1, so "
                         f"the logits of c and c + {p // g} tie for every input (the frequencies "
                         f"must generate Z_p: gcd(p, k_1, ..., k_m) = 1)")
    return ks


def unit_table(p: int, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """(cos 2 pi j / p, sin 2 pi j / p) for j = 0..p-1, each [p]; arguments reduced mod p."""
    angle = torch.arange(p, dtype=torch.float64) * (2 * math.pi / p)
    return torch.cos(angle).to(dtype), torch.sin(angle).to(dtype)


def adder_config(p: int, m: int, dtype: torch.dtype = torch.float64) -> transformer.Config:
    return transformer.Config(n_layers=1, n_heads=1, d_model=6 * m, d_head=2 * m, d_vocab=p,
                              n_ctx=2, d_mlp=NEURONS_PER_FREQ * m, act_fn="quadratic",
                              attn_scale=1.0, attention="softmax", d_vocab_out=p, dtype=dtype)


def slots(m: int) -> dict[str, Tensor]:
    """Residual coordinates: {B,S,O}_{cos,sin}[i] for frequency index i (each LongTensor [m])."""
    i = torch.arange(m)
    return {"B_cos": 2 * i, "B_sin": 2 * i + 1, "S_cos": 2 * m + 2 * i, "S_sin": 2 * m + 2 * i + 1,
            "O_cos": 4 * m + 2 * i, "O_sin": 4 * m + 2 * i + 1}


class ModularAdder(nn.Module):
    """a(x, y) -> logits [batch, p]; the parameters are ``.transformer``'s (TransformerLens names).

    ``parameters()``, ``named_parameters()`` and ``state_dict()`` are those of the transformer,
    under its TransformerLens keys, so ``sum(w.square().sum() for w in a.parameters())`` is the
    network's squared weight norm and ``a.state_dict()`` loads into a HookedTransformer.
    """

    def __init__(self, p: int, freqs: tuple[int, ...], model: transformer.Transformer):
        super().__init__()
        self.p = p
        self.freqs = freqs
        self.transformer = model

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """x, y: LongTensor [batch] of residues in [0, p) -> logits [batch, p] at the last position."""
        return self.transformer(self.tokens(x, y))[:, -1, :]

    def tokens(self, x: Tensor, y: Tensor) -> Tensor:
        x, y = check_residue_pair(x, y, self.p)
        return torch.stack([x, y], dim=1)  # [batch, 2]

    def predict(self, x: Tensor, y: Tensor) -> Tensor:
        return self(x, y).argmax(dim=-1)

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True):
        return self.transformer.named_parameters(prefix, recurse, remove_duplicate)

    def state_dict(self, *args, **kwargs):
        return self.transformer.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.transformer.load_state_dict(state_dict, strict=strict, assign=assign)

    def extra_repr(self) -> str:
        return f"p={self.p}, freqs={len(self.freqs)} frequencies"


def build_adder(p: int, freqs: Iterable[int] | None = None, *,
                dtype: torch.dtype = torch.float64) -> ModularAdder:
    """The adder for modulus ``p``; ``freqs`` None = `default_freqs(p)`; gcd(p, freqs) must be 1."""
    p = validation.check_int("p", p, minimum=2)
    ks = default_freqs(p) if freqs is None else check_freqs(p, freqs)
    return _build(p, ks, dtype)


def build_unchecked(p: int, freqs: Iterable[int], *,
                    dtype: torch.dtype = torch.float64) -> ModularAdder:
    """As `build_adder` but accepting gcd(p, freqs) > 1: a broken adder, for tests that must fail."""
    p = validation.check_int("p", p, minimum=2)
    return _build(p, check_freqs(p, freqs, admissible_only=False), dtype)


def _build(p: int, ks: tuple[int, ...], dtype: torch.dtype) -> ModularAdder:
    m = len(ks)
    cfg = adder_config(p, m, dtype)
    model = transformer.Transformer(cfg)
    s = slots(m)
    k = torch.tensor(ks, dtype=torch.long)                       # [m]
    cos_t, sin_t = unit_table(p)                                 # [p] each
    phase = (torch.arange(p)[:, None] * k[None, :]) % p          # [p, m]: k x mod p, exact
    with torch.no_grad():
        W_E = model.embed.W_E                                    # [d_vocab=p, d_model]
        W_E[:, s["B_cos"]] = cos_t[phase].to(dtype)              # E(x) = cos(w_k x) in B
        W_E[:, s["B_sin"]] = sin_t[phase].to(dtype)              #        sin(w_k x) in B
        block = cast(transformer.Block, model.blocks[0])
        attn = block.attn                                        # W_Q = W_K = 0: scores 0, A = 1/2
        j = torch.arange(2 * m)
        attn.W_V[0, j, j] = 1.0                                  # v = B slot (exact copy)
        attn.W_O[0, j, 2 * m + j] = 2.0                          # S += 2 * (v_a + v_b) / 2
        mlp = block.mlp
        assert mlp is not None
        reads = (s["S_cos"], s["S_sin"], s["B_cos"], s["B_sin"])
        for n, (coeffs, (to_cos, to_sin)) in enumerate(NEURON_TABLE):
            neuron = NEURONS_PER_FREQ * torch.arange(m) + n      # [m]
            for rows, coeff in zip(reads, coeffs):
                if coeff:
                    mlp.W_in[rows, neuron] = float(coeff)
            if to_cos:
                mlp.W_out[neuron, s["O_cos"]] = to_cos
            if to_sin:
                mlp.W_out[neuron, s["O_sin"]] = to_sin
        W_U = model.unembed.W_U                                  # [d_model, p]
        W_U[s["O_cos"], :] = cos_t[phase].T.to(dtype)            # logit_c += cos(A) cos(w_k c)
        W_U[s["O_sin"], :] = sin_t[phase].T.to(dtype)            #          + sin(A) sin(w_k c)
    model.requires_grad_(False)
    return ModularAdder(p, ks, model)


def ideal_logits(p: int, freqs: Iterable[int], d: Tensor) -> Tensor:
    """T(d) = sum_k cos(2 pi k d / p) in float64, d an integer tensor (any shape)."""
    k = torch.tensor(tuple(freqs), dtype=torch.long)
    phase = (d.long()[..., None] * k) % p
    return torch.cos(phase.to(torch.float64) * (2 * math.pi / p)).sum(-1)


def dirichlet_margin(p: int) -> float:
    """Exact margin with `default_freqs(p)`: p/2 (odd p), p/2 - 1 (even p >= 4), 2 (p = 2)."""
    p = validation.check_int("p", p, minimum=2)
    if p == 2:
        return 2.0
    return p / 2 if p % 2 else p / 2 - 1


def margin_lower_bound(p: int) -> float:
    """Every admissible K has margin >= 1 - cos(2 pi / p) = 2 sin^2(pi/p); K = {1} attains it."""
    p = validation.check_int("p", p, minimum=2)
    return 2 * math.sin(math.pi / p) ** 2
