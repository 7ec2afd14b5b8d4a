"""Float64 rounding-error bounds shared by the modular certificates (trig adder and pizza).

What it computes: the unit roundoff u and Higham's gamma_n; reference tables of cos, sin(2 pi j/n)
within REF_ERR of the true values; one affine stage x W + b of a running error analysis, valid
for any summation order (Higham, "Accuracy and Stability of Numerical Algorithms", ch. 3); the
error of a two-entry softmax whose scores are equal; per-row margins of logits; pair chunks.

Reference tables. cos and sin of 2 pi j/n come from powers of w = e^{2 pi i/n} in fixed point
with FIXED_BITS fractional bits (Python integers): w is rounded down once from 45-digit mpmath,
|w_hat - w| <= 2^(1-S) (S = FIXED_BITS), and each step z_{j+1} = floor(z_j w_hat) adds at most
sqrt(2) 2^-S, so |z_j - w^j| <= j (1 + 2^(2-S))^j 2^(2-S) <= 2^-100 for j < 2^24. The final
division by 2^S is correctly rounded (Python's int / int), so every entry is within
u + 2^-100 < REF_ERR = 2^-52 of the exact value. (100x faster than one mpmath call per entry.)
"""

from __future__ import annotations

import functools
from fractions import Fraction

import mpmath
import torch

U = 2.0**-53                 # unit roundoff of float64
SLACK = 1 + 1e-9             # safety factor on bounds computed in float64 (their own error < 1e-11)
REF_ERR = 2.0**-52           # |reference table entry - exact value| (module docstring)
FIXED_BITS = 128             # fractional bits of the fixed-point reference recurrence
MAX_TABLE = 2**24            # the REF_ERR proof needs n < 2^24
LOGIT_BUDGET = 2**23         # logits per chunk in all-pairs loops (64 MiB of float64)
# Assumption on the library's exp (stated in proofs/modular-addition.md): for a finite argument
# its relative error is at most 2 units in the last place; exp(-inf) = 0 exactly. (Correctly
# rounded exp has 0.5 ulp; glibc and SLEEF, which torch uses, document <= 1 ulp.)
EXP_REL_ERR = 2.0**-51


def gamma(n: int) -> float:
    """gamma_n = n u / (1 - n u): a sum of n products has relative error <= gamma_n (Higham)."""
    return n * U / (1 - n * U)


@functools.lru_cache(maxsize=512)
def reference_table(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin)(2 pi j / n), j = 0..n-1, each [n] float64, every entry within REF_ERR."""
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n < MAX_TABLE:
        raise ValueError(f"n must be an integer in [1, {MAX_TABLE - 1}], got {n!r}")
    one = 1 << FIXED_BITS
    with mpmath.workdps(45):
        c = int(mpmath.floor(mpmath.cos(2 * mpmath.pi / n) * one))
        s = int(mpmath.floor(mpmath.sin(2 * mpmath.pi / n) * one))
    x, y = one, 0
    cos, sin = [0.0] * n, [0.0] * n
    for j in range(n):
        cos[j], sin[j] = x / one, y / one                 # correctly rounded to float64
        x, y = (x * c - y * s) >> FIXED_BITS, (x * s + y * c) >> FIXED_BITS
    return torch.tensor(cos, dtype=torch.float64), torch.tensor(sin, dtype=torch.float64)


def pair_error(c_hat: torch.Tensor, s_hat: torch.Tensor, ref_cos: torch.Tensor,
               ref_sin: torch.Tensor, ref_err: float = REF_ERR) -> float:
    """eps >= max |(c_hat, s_hat) - (cos, sin)| (2-norm <= 1-norm) against reference entries,
    each within ``ref_err`` of the exact value."""
    diff = (c_hat.to(torch.float64) - ref_cos).abs() + (s_hat.to(torch.float64) - ref_sin).abs()
    return float(diff.max()) * SLACK + 2 * ref_err


def product_reference_error() -> float:
    """|fl(C_a C_b +- S_a S_b) - cos or sin(A -+ B)| for reference entries C, S (each within
    REF_ERR): gamma_2 per term on values <= (1 + REF_ERR)^2, plus 2 REF_ERR + REF_ERR^2 per term."""
    return 2 * gamma(2) * (1 + REF_ERR) ** 2 + 4 * REF_ERR * (1 + REF_ERR)


def as_abs(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float64).abs()


def affine_bound(M: torch.Tensor, e: torch.Tensor, W: torch.Tensor,
                 b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One affine stage x W + b ([d_in, d_out] W) of a running error analysis: M bounds
    |exact value| and e |computed - exact| per coordinate over all inputs; then
    M' = M|W| + |b|, e' = e|W| + gamma_{n+1}((M + e)|W| + |b|), n = d_in, any summation order."""
    W, b = as_abs(W), as_abs(b)
    return M @ W + b, e @ W + gamma(W.shape[0] + 1) * ((M + e) @ W + b)


def equal_softmax_error(n: int = 2, exp_rel_err: float = EXP_REL_ERR) -> float:
    """alpha >= |A_hat_i - 1/n| for a softmax row of n equal finite scores (masked entries -inf).

    Each exp(0) is 1 + theta_i with |theta_i| <= exp_rel_err; the sum of n of them has relative
    error <= gamma_{n-1}; the quotient (or reciprocal-then-product) adds at most two roundings.
    So A_hat_i = (1 + theta_i)(1 + tau) / (n (1 + mean theta)(1 + sigma)), |tau| <= 2u + u^2,
    |sigma| <= gamma_{n-1}: n A_hat_i lies in [L, U] with U = (1 + e)(1 + tau)/((1 - e)(1 - g)),
    L = (1 - e)(1 - tau)/((1 + e)(1 + g)), g = gamma_{n-1}. U - 1 >= 1 - L always (proofs/
    modular-addition.md: L U = (1 - tau^2)/(1 - g^2) and U >= 1 + tau), so alpha = (U - 1)/n."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if n > 2**52:
        raise ValueError(f"n must be at most 2^52 (gamma_(n-1) < 1), got {n!r}")
    if not 0 <= exp_rel_err < 0.5:
        raise ValueError(f"exp_rel_err must be in [0, 0.5), got {exp_rel_err!r}")
    # exact rationals: in float64, upper - 1 would cancel to a multiple of 2^-52 and could
    # round BELOW the true deviation; float(Fraction) is correctly rounded, SLACK covers it
    e, u = Fraction(exp_rel_err), Fraction(1, 2**53)
    tau, g = 2 * u + u * u, (n - 1) * u / (1 - (n - 1) * u)
    upper = (1 + e) * (1 + tau) / ((1 - e) * (1 - g))
    return float((upper - 1) / n) * SLACK


def row_margins(logits: torch.Tensor, answers: torch.Tensor, *,
                inplace: bool = False) -> torch.Tensor:
    """logits[i, answers[i]] - max_{c != answers[i]} logits[i, c], for [n, p] logits
    (``inplace``: overwrite the answers' entries of ``logits`` instead of copying it)."""
    rows = torch.arange(logits.shape[0])
    top = logits[rows, answers]
    others = logits if inplace else logits.clone()
    others[rows, answers] = float("-inf")
    return top - others.amax(1)


def pair_chunks(p: int, chunk: int | None = None):
    """(x, y) LongTensors covering all p^2 pairs, ``chunk`` pairs (default LOGIT_BUDGET / p)."""
    chunk = max(1, LOGIT_BUDGET // p) if chunk is None else chunk
    for start in range(0, p * p, chunk):
        idx = torch.arange(start, min(start + chunk, p * p))
        yield idx // p, idx % p
