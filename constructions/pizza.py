"""Hand-set weights for Demo 2's `TinyModel` that add mod p: the "pizza" construction, every p >= 2.

Part of claim ``modular.adder_exact`` (proofs/modular-addition.md, section "Demo 2's
architecture: the pizza construction"). The mechanism is the Pizza of Zhong et al. 2023 ("The
Clock and the Pizza"): the MLP sees a SUM of the two embeddings, proportional to
|cos(half-difference)| (cos, sin)(half-sum). Theorem realized (m = hidden/2 directions):

    E(x)  = (cos 2 pi x/p, sin 2 pi x/p, 0, ..., 0)                         in R^d
    theta = 0 for odd p, pi/p for even p     (fc.0 reads the b-half rotated by theta)
    v     = E(a) + R_theta E(b) = 2 cos(pi (a-b)/p - theta/2) (cos psi, sin psi),
            psi = pi (a+b)/p + theta/2
    unit (j, +-): relu(+- <n_j, v>),  n_j = (cos phi_j, sin phi_j),  phi_j = pi j/m
    logit_c = sum_j cos(2 phi_j - 2 pi c/p - theta) |<n_j, v>|
            = r (m/2) [c_1 cos(2 pi (s - c)/p) + eps_c],   r = |v|, s = (a + b) mod p,

with c_k = (4/pi) (-1)^(k+1) / (4k^2 - 1) the Fourier coefficients of |cos| and
|eps_s - eps_c| <= 2 sin(pi |s-c|/p) A(m), where the alias sum
A(m) = sum_{t>=1} |c_{mt+1}| + |c_{mt-1}| = (cot(pi/2m) - cot(3 pi/2m))/m - 4/(3 pi).
If c_1 sin(pi/p) > A(m) the argmax is (a+b) mod p, uniquely, for every pair, with margin
>= r m sin(pi/p) (c_1 sin(pi/p) - A(m)), and r >= 2 sin(pi/(2p)) > 0 for EVERY p >= 2: the
angle of the cosine in r is pi n/p (odd p) or pi (2n - 1)/(2p) (even p) for an integer n, never
an odd multiple of pi/2, and at least pi/(2p) away from one. (Without the rotation, even p and
a - b = p/2 give v = 0: every logit 0, a tie.)

Demo 2's fc.0 is one nn.Linear(2d, 2d) on the concatenation [E(a), E(b)], so its two halves may
read E(a) and E(b) through different maps; that is all the rotation uses.
Exact: the argmax on every pair (proved, and certified in float64 by verify/pizza_certificate.py).
Approximate: the logits themselves, r (m/2) c_1 cos(2 pi (s-c)/p) up to r (m/2) A(m).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import cast

import mpmath
import torch
from torch import Tensor, nn

from constructions import validation
from constructions.tiny_mlp import TinyModel

C1 = 4 / (3 * math.pi)   # c_1, the first Fourier coefficient of |cos y| in cos(2y)
DPS = 40                 # mpmath digits for the condition (its two sides differ by >= 1e-6 here)


def fourier_coeff(k: int) -> float:
    """c_k in |cos y| = 2/pi + sum_{k>=1} c_k cos(2ky): (4/pi) (-1)^(k+1) / (4k^2 - 1)."""
    k = validation.check_int("k", k, minimum=1)
    return (4 / math.pi) * (-1) ** (k + 1) / (4 * k * k - 1)


@lru_cache(maxsize=1024)
def _alias_mp(m: int) -> mpmath.mpf:
    with mpmath.workdps(DPS):
        return ((mpmath.cot(mpmath.pi / (2 * m)) - mpmath.cot(3 * mpmath.pi / (2 * m))) / m
                - 4 / (3 * mpmath.pi))


def alias_bound(m: int) -> float:
    """A(m) = sum_{t>=1} |c_{mt+1}| + |c_{mt-1}| in closed form (m >= 2); ~ pi / (3 m^2)."""
    m = validation.check_int("m", m, minimum=2)
    return float(_alias_mp(m))


def _gap_mp(p: int, m: int) -> mpmath.mpf:
    """c_1 sin(pi/p) - A(m): positive iff the construction is proved exact."""
    with mpmath.workdps(DPS):
        return 4 / (3 * mpmath.pi) * mpmath.sin(mpmath.pi / p) - _alias_mp(m)


def condition_holds(p: int, m: int) -> bool:
    """The proved condition: p >= 2, m >= 2 and c_1 sin(pi/p) > A(m) (any parity of p)."""
    p = validation.check_int("p", p, minimum=2)
    m = validation.check_int("m", m, minimum=2)
    return bool(_gap_mp(p, m) > 0)


@lru_cache(maxsize=1024)
def min_directions(p: int) -> int:
    """Smallest m with c_1 sin(pi/p) > A(m) (A decreases in m, so every larger m works too)."""
    p = validation.check_int("p", p, minimum=2)
    m = 3                                     # A(2) = 0.5756 > c_1 = 0.4244: m = 2 never works
    while _gap_mp(p, m) <= 0:
        m += 1
    return m


def min_hidden(p: int) -> int:
    """Smallest admissible ``hidden`` (two ReLU units per direction): 2 * min_directions(p)."""
    return 2 * min_directions(p)


def rotation_steps(p: int) -> int:
    """e in theta = e pi/p, the rotation of the b-half: 1 for even p, 0 for odd p."""
    return 1 - validation.check_int("p", p, minimum=2) % 2


def margin_lower_bound(p: int, m: int) -> float:
    """Exact-arithmetic margin over all pairs: 2 sin(pi/2p) m sin(pi/p) (c_1 sin(pi/p) - A(m))."""
    if not condition_holds(p, m):
        raise ValueError(f"(p, m) = ({p}, {m}) violates c_1 sin(pi/p) > A(m): no margin is proved")
    with mpmath.workdps(DPS):
        sp = mpmath.sin(mpmath.pi / p)
        return float(2 * mpmath.sin(mpmath.pi / (2 * p)) * m * sp * _gap_mp(p, m))


def radius(p: int, diff: Tensor, rotation: int | None = None) -> Tensor:
    """r = |E(a) + R_theta E(b)| = 2 |cos(pi (2(a - b) - e)/(2p))| (float64), ``diff`` = a - b,
    e = ``rotation`` (default `rotation_steps(p)`)."""
    e = rotation_steps(p) if rotation is None else rotation
    n = (2 * diff.long() - e) % (4 * p)                                # angle 2 pi n / (4p)
    return 2 * torch.cos(2 * math.pi * n.to(torch.float64) / (4 * p)).abs()


def pair_margin_lower_bound(p: int, m: int, diff: Tensor) -> Tensor:
    """Per pair: r(a - b) m sin(pi/p) (c_1 sin(pi/p) - A(m)) (float64, up to rounding)."""
    bound = margin_lower_bound(p, m) / (2 * math.sin(math.pi / (2 * p)))
    return radius(p, diff) * bound


def main_term(p: int, m: int, x: Tensor, y: Tensor) -> Tensor:
    """r (m/2) c_1 cos(2 pi (s - c)/p): the logits [batch, p] up to the alias error r (m/2) A(m)."""
    c = torch.arange(p)
    phase = ((x + y)[:, None] - c[None, :]) % p                      # [batch, p]
    wave = torch.cos(2 * math.pi * phase.to(torch.float64) / p)
    return radius(p, x - y)[:, None] * (m / 2) * C1 * wave


def check_pizza_args(p: object, d: object, hidden: object) -> tuple[int, int, int]:
    """Validate (p, d, hidden) for `build_pizza`; hidden None = 2d."""
    p = validation.check_int("p", p, minimum=2)
    d = validation.check_int("d", d, minimum=2)
    hidden = 2 * d if hidden is None else validation.check_int("hidden", hidden, minimum=2)
    if hidden % 2:
        raise ValueError(f"hidden must be even (two ReLU units per direction), got {hidden}")
    need = min_hidden(p)
    if hidden < need:
        raise ValueError(f"hidden must be >= {need} for p={p} (got {hidden}): the proof needs "
                         f"m = hidden/2 directions with c_1 sin(pi/p) > A(m), "
                         f"i.e. m >= {need // 2}")
    return p, d, hidden


def build_pizza(p: int, d: int = 64, hidden: int | None = None, *,
                dtype: torch.dtype = torch.float64) -> TinyModel:
    """Demo 2's TinyModel(p, d, hidden) with the pizza weights; exact argmax for every pair.

    hidden defaults to 2d (the demo's width); p >= 2 (odd or even), hidden/2 >= min_directions(p).

    >>> model = build_pizza(96)                      # even p: the b-half is read rotated by pi/p
    >>> model(torch.tensor([1, 95]), torch.tensor([49, 47])).argmax(1).tolist()
    [50, 46]
    """
    p, d, hidden = check_pizza_args(p, d, hidden)
    return _build(p, d, hidden, dtype, rotation_steps(p))


def build_unchecked(p: int, d: int = 64, hidden: int | None = None, *,
                    dtype: torch.dtype = torch.float64, rotation: int | None = None) -> TinyModel:
    """As `build_pizza` without the width condition, and with ``rotation`` e (theta = e pi/p,
    0 or 1; default `rotation_steps(p)`) forced if given: broken models for tests."""
    p = validation.check_int("p", p, minimum=2)
    d = validation.check_int("d", d, minimum=2)
    hidden = 2 * d if hidden is None else validation.check_int("hidden", hidden, minimum=2)
    if hidden % 2:
        raise ValueError(f"hidden must be even (two ReLU units per direction), got {hidden}")
    e = rotation_steps(p) if rotation is None else validation.check_int(
        "rotation", rotation, minimum=0, maximum=1)
    return _build(p, d, hidden, dtype, e)


def linear_layers(model: TinyModel) -> tuple[nn.Linear, nn.Linear]:
    """(fc.0, fc.2): the first [hidden, 2d] and second [p, hidden] linear maps of TinyModel."""
    return cast(nn.Linear, model.fc[0]), cast(nn.Linear, model.fc[2])


def directions(model: TinyModel) -> int:
    """m = hidden / 2, the number of directions n_j."""
    return linear_layers(model)[0].weight.shape[0] // 2


def _build(p: int, d: int, hidden: int, dtype: torch.dtype, e: int) -> TinyModel:
    m = hidden // 2
    model = TinyModel(p, d, hidden=hidden, dtype=dtype)
    x = torch.arange(p)
    j = torch.arange(m)
    c = torch.arange(p)
    angle = 2 * math.pi * x.to(torch.float64) / p                    # [p]
    turn = 2 * m * p                                                 # angles in units of 2pi/(2mp)
    # a-half rows n_j: phi_j = pi j/m = 2 pi (j p)/(2 m p); b-half rows: phi_j - e pi/p
    a_row = 2 * math.pi * ((j * p) % turn).to(torch.float64) / turn
    b_row = 2 * math.pi * ((j * p - e * m) % turn).to(torch.float64) / turn
    # readout angle 2 phi_j - 2 pi c/p - e pi/p = 2 pi (2 j p - 2 c m - e m)/(2 m p), exact mod
    phase = (2 * j[None, :] * p - 2 * c[:, None] * m - e * m) % turn  # [p, m]
    readout = torch.cos(2 * math.pi * phase.to(torch.float64) / turn)
    with torch.no_grad():
        W_E = model.embed.weight                                     # [p, d]
        W_E.zero_()
        # indexed assignment casts to the parameters' dtype (float64 -> dtype, once)
        W_E[:, 0] = torch.cos(angle)                                 # E(x) = (cos, sin)(2 pi x/p)
        W_E[:, 1] = torch.sin(angle)
        fc1, fc2 = linear_layers(model)
        W_1 = fc1.weight                                             # [hidden, 2d]
        W_1.zero_()
        for half, rows in ((0, a_row), (d, b_row)):                  # E(a) half, E(b) half
            n = torch.stack([torch.cos(rows), torch.sin(rows)], dim=1)   # [m, 2], float64
            W_1[0::2, half:half + 2] = n                             # unit (j,+): <n_j, .>
            W_1[1::2, half:half + 2] = -n                            # unit (j,-): -<n_j, .>
        fc1.bias.zero_()                                             # relu(h) + relu(-h) = |h|
        W_2 = fc2.weight                                             # [p, hidden]
        W_2[:, 0::2] = readout                                       # cos(2 phi_j - 2 pi c/p - theta),
        W_2[:, 1::2] = readout                                       # same on both units of j
        fc2.bias.zero_()
    model.requires_grad_(False)
    return model
