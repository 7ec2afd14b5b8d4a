"""Exact trigonometry for the modular claims: the SymPy identity table, the adder's symbolic
forward pass, Dirichlet-kernel values, and whether a readout's features determine (a+b) mod p.

What it computes:
- `identity_table`, `dirichlet_table` / `table_holds`: (id, lhs, rhs) rows, each decided by
  simplify(lhs - rhs) == 0;
- `symbolic_forward`: the adder's last-position logit for symbolic a, b, c and symbolic
  frequencies w_i, through the SymPy mirror of the network (`constructions.exact`);
- `sum_clash`: two input pairs with different sums mod p whose features are exactly equal
  (then no readout of those features is exact), or None when the features separate the sums.
  Features are compared at 30 digits; pairs closer than CLASH_TOL are decided exactly (minimal
  polynomial of the difference), so the answer is exact both ways.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sympy as sp
import torch

from constructions import exact, modular, transformer, validation
from constructions.modular import ModularAdder

A, B, C, TH = sp.symbols("a b c theta", real=True)
K_SYM = sp.Symbol("k", integer=True)
N_SYM = sp.Symbol("n", integer=True, positive=True)
D_SYM = sp.Symbol("d", integer=True)
HALF = sp.Rational(1, 2)
EVAL_DIGITS = 30             # digits of the numeric pre-comparison in `sum_clash`
CLASH_TOL = 1e-12            # feature vectors closer than this are compared exactly

Identity = tuple[str, sp.Expr, sp.Expr]
Features = Callable[[int, int, int], Sequence[sp.Expr]]


def identity_table() -> list[Identity]:
    """(id, lhs, rhs) of the identities the adder's algebra uses: simplify(lhs - rhs) == 0."""
    x, y = sp.symbols("x y", real=True)
    return [
        ("cos_angle_addition", sp.cos(A + B), sp.cos(A) * sp.cos(B) - sp.sin(A) * sp.sin(B)),
        ("sin_angle_addition", sp.sin(A + B), sp.sin(A) * sp.cos(B) + sp.cos(A) * sp.sin(B)),
        ("cos_difference", sp.cos(A - C), sp.cos(A) * sp.cos(C) + sp.sin(A) * sp.sin(C)),
        ("product_to_sum_cc", sp.cos(A) * sp.cos(B), (sp.cos(A - B) + sp.cos(A + B)) / 2),
        ("product_to_sum_ss", sp.sin(A) * sp.sin(B), (sp.cos(A - B) - sp.cos(A + B)) / 2),
        ("product_to_sum_sc", sp.sin(A) * sp.cos(B), (sp.sin(A + B) + sp.sin(A - B)) / 2),
        ("polarization", x * y, ((x + y) ** 2 - (x - y) ** 2) / 4),
    ]


def dirichlet_table() -> list[Identity]:
    """The Dirichlet-kernel steps behind `modular.dirichlet_margin` (symbolic n, d, k, theta)."""
    n, d, k = N_SYM, D_SYM, K_SYM
    return [
        ("dirichlet_telescoping", 2 * sp.sin(TH / 2) * sp.cos(k * TH),
         sp.sin((k + HALF) * TH) - sp.sin((k - HALF) * TH)),
        # odd p = 2n + 1: the kernel's numerator angle (n + 1/2) 2 pi d / p is pi d, so its sine
        # is 0 for integer d. Stated as the angle identity: sin(...) itself would be evaluated to 0
        # by SymPy when the row is built (n, d are integers), and the row would state nothing.
        ("dirichlet_odd_angle", (n + HALF) * 2 * sp.pi * d / (2 * n + 1), sp.pi * d),
        ("dirichlet_even_sign", sp.sin((n - HALF) * sp.pi * d / n),
         -(-1) ** d * sp.sin(sp.pi * d / (2 * n))),
    ]


def identity_holds(lhs: sp.Expr, rhs: sp.Expr) -> bool:
    diff = sp.expand(sp.expand_trig(lhs - rhs))
    if diff == 0 or sp.expand((lhs - rhs).rewrite(sp.exp)) == 0:
        return True
    return sp.simplify(lhs - rhs) == 0


def table_holds(table: Sequence[Identity]) -> dict[str, bool]:
    """{id: holds} for every row of an identity table."""
    return {name: identity_holds(lhs, rhs) for name, lhs, rhs in table}


def dirichlet_closed_form_holds(n: int) -> bool:
    """sum_{k=1}^n cos(k theta) == sin((n + 1/2) theta) / (2 sin(theta/2)) - 1/2, symbolic theta."""
    phi = sp.Symbol("phi", real=True)                   # theta = 2 phi: integer multiples only
    lhs = 2 * sp.sin(phi) * sum(sp.cos(2 * j * phi) for j in range(1, n + 1))
    rhs = sp.sin((2 * n + 1) * phi) - sp.sin(phi)
    return identity_holds(lhs, rhs)


def dirichlet_values_exact(p: int, freqs: Sequence[int] | None = None) -> bool:
    """With every frequency, T(d) = sum_k cos(2 pi k d/p) for d = 1..p-1 equals the closed form
    (minimal polynomials). ``freqs`` (default: every frequency, `modular.default_freqs(p)`) is
    the multiset of k summed, so that a set the closed form does not describe can be handed in."""
    p = validation.check_int("p", p, minimum=2)
    freqs = modular.default_freqs(p) if freqs is None else tuple(freqs)
    x = sp.Symbol("x")
    for d in range(1, p):
        t = sum(sp.cos(2 * sp.pi * k * d / p) for k in freqs)
        if p == 2:
            want = sp.Integer(-1)                      # K = {1} = {p/2}: cos(pi d)
        else:
            want = sp.Rational(-1, 2) if p % 2 else sp.Integer(-1 if d % 2 == 0 else 0)
        if sp.minimal_polynomial(t - want, x) != x:
            return False
    return True


def symbolic_forward(adder: ModularAdder) -> tuple[sp.Expr, sp.Expr]:
    """(the network's last-position logit, sum_i cos(w_i (a + b - c))) for symbolic a, b, c, w_i.

    The adder's dyadic weights (W_V, W_O, W_in, W_out) enter as exact rationals through the
    SymPy mirror `exact.exact_forward`; W_E and W_U are replaced by symbolic rows/columns
    (cos w_i x, sin w_i x), so equality holds for every p and every frequency set."""
    model = adder.transformer
    m = len(adder.freqs)
    ws = sp.symbols(f"w0:{m}", real=True)
    cfg = transformer.Config(**{**model.cfg.__dict__, "d_vocab": 2, "d_vocab_out": 1})
    weights = exact.exact_weights(model)
    s = modular.slots(m)
    emb = sp.zeros(2, model.cfg.d_model)
    unemb = sp.zeros(model.cfg.d_model, 1)
    for i, w in enumerate(ws):
        for row, x in enumerate((A, B)):
            emb[row, int(s["B_cos"][i])] = sp.cos(w * x)
            emb[row, int(s["B_sin"][i])] = sp.sin(w * x)
        unemb[int(s["O_cos"][i]), 0] = sp.cos(w * C)
        unemb[int(s["O_sin"][i]), 0] = sp.sin(w * C)
    weights.update({"embed.W_E": emb, "unembed.W_U": unemb, "unembed.b_U": sp.zeros(1, 1)})
    logits = exact.exact_forward(cfg, weights, [0, 1])
    return logits[1, 0], sum(sp.cos(w * (A + B - C)) for w in ws)


# --- what a readout can see ---------------------------------------------------------------------

def cosine_identity_features(a: int, b: int, p: int) -> tuple[sp.Expr, ...]:
    """The section's identity, evaluated: cos(wa)cos(wb) - sin(wa)sin(wb) = cos(w(a+b)), w = 2pi/p."""
    w = 2 * sp.pi / p
    return (sp.cos(w * a) * sp.cos(w * b) - sp.sin(w * a) * sp.sin(w * b),)


def angle_addition_features(a: int, b: int, p: int) -> tuple[sp.Expr, ...]:
    """Both identities: (cos wa cos wb - sin wa sin wb, sin wa cos wb + cos wa sin wb)."""
    w = 2 * sp.pi / p
    ca, sa, cb, sb = sp.cos(w * a), sp.sin(w * a), sp.cos(w * b), sp.sin(w * b)
    return (ca * cb - sa * sb, sa * cb + ca * sb)


def product_feature(a: int, b: int, p: int) -> tuple[sp.Expr, ...]:
    """One product of the embedding components: cos(wa) cos(wb)."""
    w = 2 * sp.pi / p
    return (sp.cos(w * a) * sp.cos(w * b),)


def sum_clash(p: int, features: Features) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Two pairs (a, b), (a', b') with a + b != a' + b' (mod p) and exactly equal features, or None.

    None means the features determine (a + b) mod p on every pair (some readout is exact)."""
    p = validation.check_int("p", p, minimum=2, maximum=61)
    pairs = [(a, b) for a in range(p) for b in range(p)]
    exprs = [tuple(features(a, b, p)) for a, b in pairs]
    values = torch.tensor([[float(sp.N(e, EVAL_DIGITS)) for e in row] for row in exprs],
                          dtype=torch.float64)                                   # [p^2, k]
    sums = torch.tensor([(a + b) % p for a, b in pairs])
    x = sp.Symbol("x")
    for s in range(p):
        mine = torch.nonzero(sums == s).flatten()
        others = torch.nonzero(sums != s).flatten()                  # never empty: p >= 2
        dist = (values[mine][:, None, :] - values[others][None, :, :]).abs().amax(-1)
        for i, j in torch.nonzero(dist < CLASH_TOL).tolist():
            u, v = int(mine[i]), int(others[j])
            if all(sp.minimal_polynomial(e - f, x) == x for e, f in zip(exprs[u], exprs[v])):
                return pairs[u], pairs[v]
    return None
