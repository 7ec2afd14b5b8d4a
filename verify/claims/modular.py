"""Claims of Theorem 3.1 and Worked Example 3: the trig-identity modular adder.

Claim ids: ``modular.trig_identity`` (SymPy identities and the network's symbolic forward
pass), ``modular.adder_exact`` (exact iff gcd(p, K) = 1; every pair of every p in 2..200
certified in float64; its evidence also carries ``demo_2_pizza``, hand-set "pizza" weights for
Demo 2's TinyModel, exact for odd p: `check_pizza`), ``worked_example_3.mod5`` (the
one-frequency embedding mod 5). Proofs, constants and bounds: proofs/modular-addition.md.

Soundness of the float64 checks. For an adder with weights W let N(a, b) be the logits in
exact real arithmetic on the stored weights and F(a, b) the logits torch computes. The
certificate proves, for every pair at once,

    |F(a,b)_c - N(a,b)_c| <= delta_R        (a-priori rounding bound, any summation order)
    |N(a,b)_c - G(s)_c|   <= m rho_U delta   (s = a+b mod p; the "a+b alone" lemma)
    |G^(s)_c - G(s)_c|    <= delta_G        (G = W_E[:, B] W_U[O, :], computed in float64)

so argmax F(a, b) = s whenever G^(s)_s - max_{c != s} G^(s)_c > 2 (delta_R + m rho_U delta +
delta_G). Cost: one p x 2m x p matrix product, O(p^2 |K|), instead of O(p^3 |K|) for all
pairs (Gross et al. 2024, "Compact proofs of model performance via mechanistic
interpretability", the compact-proof idea).
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from typing import cast

import mpmath
import sympy as sp
import torch

from constructions import exact, modular, pizza, transformer
from constructions.modular import NEURON_TABLE, NEURONS_PER_FREQ, ModularAdder
from constructions.tiny_mlp import TinyModel
from verify import registry
from verify.cli_util import OneLineParser
from verify.display import matrix

U = 2.0**-53                 # unit roundoff of float64
SLACK = 1 + 1e-9             # safety factor on bounds computed in float64 (their own error < 1e-11)
REF_DPS = 30                 # mpmath digits for the reference cos/sin table
REF_ERR = 2.0**-52           # |float(mpmath value) - exact value| <= u + 1e-29 < 2^-52
EXHAUSTIVE_P = range(2, 201)  # every modulus whose all pairs `modular.adder_exact` certifies
BRUTE_P = range(2, 101)      # moduli also checked pair by pair, all p logits (O(p^3 |K|))
DENSE_P = range(2, 31)       # moduli also run through the torch network on every pair
SUBSET_P = range(2, 15)      # moduli for which every frequency set K is tried
LOGIT_BUDGET = 2**23         # logits per chunk in all-pairs loops (64 MiB of float64)


def gamma(n: int) -> float:
    """gamma_n = n u / (1 - n u): a sum of n products has relative error <= gamma_n (Higham)."""
    return n * U / (1 - n * U)


# --- exact identities (modular.trig_identity) ------------------------------------------------

A, B, C, TH = sp.symbols("a b c theta", real=True)
K_SYM = sp.Symbol("k", integer=True)
N_SYM = sp.Symbol("n", integer=True, positive=True)
D_SYM = sp.Symbol("d", integer=True)
HALF = sp.Rational(1, 2)


def identity_table() -> list[tuple[str, sp.Expr, sp.Expr]]:
    """(id, lhs, rhs): each must satisfy simplify(lhs - rhs) == 0."""
    x, y = sp.symbols("x y", real=True)
    n, d, k = N_SYM, D_SYM, K_SYM
    return [
        ("cos_angle_addition", sp.cos(A + B), sp.cos(A) * sp.cos(B) - sp.sin(A) * sp.sin(B)),
        ("sin_angle_addition", sp.sin(A + B), sp.sin(A) * sp.cos(B) + sp.cos(A) * sp.sin(B)),
        ("cos_difference", sp.cos(A - C), sp.cos(A) * sp.cos(C) + sp.sin(A) * sp.sin(C)),
        ("product_to_sum_cc", sp.cos(A) * sp.cos(B), (sp.cos(A - B) + sp.cos(A + B)) / 2),
        ("product_to_sum_ss", sp.sin(A) * sp.sin(B), (sp.cos(A - B) - sp.cos(A + B)) / 2),
        ("product_to_sum_sc", sp.sin(A) * sp.cos(B), (sp.sin(A + B) + sp.sin(A - B)) / 2),
        ("polarization", x * y, ((x + y) ** 2 - (x - y) ** 2) / 4),
        ("dirichlet_telescoping", 2 * sp.sin(TH / 2) * sp.cos(k * TH),
         sp.sin((k + HALF) * TH) - sp.sin((k - HALF) * TH)),
        ("dirichlet_odd_zero", sp.sin((n + HALF) * 2 * sp.pi * d / (2 * n + 1)), sp.Integer(0)),
        ("dirichlet_even_sign", sp.sin((n - HALF) * sp.pi * d / n),
         -(-1) ** d * sp.sin(sp.pi * d / (2 * n))),
    ]


def identity_holds(lhs: sp.Expr, rhs: sp.Expr) -> bool:
    diff = sp.expand(sp.expand_trig(lhs - rhs))
    if diff == 0 or sp.expand((lhs - rhs).rewrite(sp.exp)) == 0:
        return True
    return sp.simplify(lhs - rhs) == 0


def dirichlet_closed_form_holds(n: int) -> bool:
    """sum_{k=1}^n cos(k theta) == sin((n + 1/2) theta) / (2 sin(theta/2)) - 1/2, symbolic theta."""
    phi = sp.Symbol("phi", real=True)                   # theta = 2 phi: integer multiples only
    lhs = 2 * sp.sin(phi) * sum(sp.cos(2 * j * phi) for j in range(1, n + 1))
    rhs = sp.sin((2 * n + 1) * phi) - sp.sin(phi)
    return identity_holds(lhs, rhs)


def dirichlet_values_exact(p: int) -> bool:
    """With every frequency, T(d) for d = 1..p-1 equals the closed form (minimal polynomials)."""
    x = sp.Symbol("x")
    for d in range(1, p):
        t = sum(sp.cos(2 * sp.pi * k * d / p) for k in modular.default_freqs(p))
        if p == 2:
            want = sp.Integer(-1)                      # K = {1} = {p/2}: cos(pi d)
        else:
            want = sp.Rational(-1, 2) if p % 2 else sp.Integer(-1 if d % 2 == 0 else 0)
        if sp.minimal_polynomial(t - want, x) != x:
            return False
    return True


def symbolic_forward(adder: ModularAdder) -> sp.Expr:
    """The network's last-position logit on symbolic a, b, c (one symbolic frequency w_i per k).

    The adder's dyadic weights (W_V, W_O, W_in, W_out) enter as exact rationals through the
    SymPy mirror `exact.exact_forward`; W_E and W_U are replaced by symbolic rows/columns
    (cos w_i x, sin w_i x), so the result holds for every p and every frequency set."""
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


def check_trig_identity(adder: ModularAdder | None = None) -> tuple[bool, dict]:
    table = identity_table()
    results = {name: identity_holds(lhs, rhs) for name, lhs, rhs in table}
    results["dirichlet_closed_form_n1..5"] = all(dirichlet_closed_form_holds(n) for n in range(1, 6))
    results["dirichlet_values_p2..8"] = all(dirichlet_values_exact(p) for p in range(2, 9))
    adder = modular.build_adder(5) if adder is None else adder
    logit, target = symbolic_forward(adder)
    results["network_forward_symbolic"] = identity_holds(logit, target)
    return all(results.values()), results


@registry.claim("modular.trig_identity", source="section 3 / Theorem 3.1",
                statement="cos(w(a+b)) = cos(wa)cos(wb) - sin(wa)sin(wb) drives the adder")
def trig_identity() -> registry.Outcome:
    passed, results = check_trig_identity()
    failed = [k for k, v in results.items() if not v]
    return registry.Outcome("confirmed", passed, {"identities": len(results), "failed": failed,
                                                  "forward": "logit_c = sum_k cos(w_k(a+b-c))"})


# --- the exact condition -----------------------------------------------------------------------

def ties_exactly(p: int, freqs: tuple[int, ...]) -> list[int]:
    """Every d in 1..p-1 with k d = 0 mod p for all k in K (integer arithmetic): T(d) = |K|."""
    return [d for d in range(1, p) if all((k * d) % p == 0 for k in freqs)]


def check_condition_all_subsets(ps=SUBSET_P) -> tuple[bool, dict]:
    """For every p and every nonempty K in [1, p-1]: correct-and-unique iff gcd(p, K) = 1."""
    count, bad = 0, []
    for p in ps:
        ks = torch.arange(1, p)
        if p == 2:
            subsets = torch.ones(1, 1, dtype=torch.float64)
        else:
            bits = torch.arange(1, 2 ** (p - 1))[:, None] >> torch.arange(p - 1)
            subsets = (bits & 1).to(torch.float64)                     # [n_sets, p-1]
        phase = ((ks[:, None] * torch.arange(p)) % p).to(torch.float64)
        cos_tab = torch.cos(2 * math.pi * phase / p)                   # [p-1, p]
        t = subsets @ cos_tab                                           # [n_sets, p]: T(d)
        size = subsets.sum(1)
        margin = size - t[:, 1:].max(1).values if p > 1 else size
        members = [tuple(int(k) for k in ks[row.bool()]) for row in subsets]
        admissible = torch.tensor([modular.freq_gcd(p, kk) == 1 for kk in members])
        tie = torch.tensor([bool(ties_exactly(p, kk)) for kk in members])
        # floats decide "margin > 0" soundly: admissible margins are >= 2 sin^2(pi/p) >= 0.04
        # here, float error < 1e-13; inadmissible sets tie exactly (integer check above).
        ok = (admissible == ~tie) & (~admissible | (margin >= modular.margin_lower_bound(p)
                                                     - 1e-12))
        count += len(members)
        bad += [(p, members[i]) for i in torch.nonzero(~ok).flatten().tolist()]
    return not bad, {"frequency_sets": count, "counterexamples": bad[:5]}


# --- the certificate ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def reference_table(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin(2 pi j / p), j = 0..p-1, from mpmath at REF_DPS digits, rounded to float64."""
    with mpmath.workdps(REF_DPS):
        angles = [2 * mpmath.pi * j / p for j in range(p)]
        cos = [float(mpmath.cos(t)) for t in angles]
        sin = [float(mpmath.sin(t)) for t in angles]
    return torch.tensor(cos, dtype=torch.float64), torch.tensor(sin, dtype=torch.float64)


def expected_sparsity(p: int, m: int) -> dict[str, tuple[tuple[torch.Tensor, ...], torch.Tensor]]:
    """For the dyadic weights: name -> (index tuple, values) of every nonzero entry."""
    s = modular.slots(m)
    j = torch.arange(2 * m)
    zero = torch.zeros(2 * m, dtype=torch.long)
    rows_in, cols_in, vals_in, rows_out, cols_out, vals_out = [], [], [], [], [], []
    reads = (s["S_cos"], s["S_sin"], s["B_cos"], s["B_sin"])
    for n, (coeffs, (to_cos, to_sin)) in enumerate(NEURON_TABLE):
        neuron = NEURONS_PER_FREQ * torch.arange(m) + n
        for rows, coeff in zip(reads, coeffs):
            if coeff:
                rows_in.append(rows)
                cols_in.append(neuron)
                vals_in.append(torch.full((m,), float(coeff)))
        for target, value in ((s["O_cos"], to_cos), (s["O_sin"], to_sin)):
            if value:
                rows_out.append(neuron)
                cols_out.append(target)
                vals_out.append(torch.full((m,), value))
    return {
        "blocks.0.attn.W_V": ((zero, j, j), torch.ones(2 * m)),
        "blocks.0.attn.W_O": ((zero, j, 2 * m + j), torch.full((2 * m,), 2.0)),
        "blocks.0.mlp.W_in": ((torch.cat(rows_in), torch.cat(cols_in)), torch.cat(vals_in)),
        "blocks.0.mlp.W_out": ((torch.cat(rows_out), torch.cat(cols_out)), torch.cat(vals_out)),
    }


def structure_errors(adder: ModularAdder) -> list[str]:
    """Exact checks of everything the algebra relies on; [] when the layout is the proof's."""
    model, p, m = adder.transformer, adder.p, len(adder.freqs)
    cfg = model.cfg
    errors = []
    want = modular.adder_config(p, m, cfg.dtype)
    if cfg != want:
        return [f"config {cfg} != {want}"]
    w = dict(model.named_parameters())
    nonzero = expected_sparsity(p, m)
    for name, tensor in w.items():
        t = tensor.detach()
        if name in nonzero:
            idx, vals = nonzero[name]
            if not torch.equal(t[idx], vals.to(t.dtype)) or int(torch.count_nonzero(t)) != len(vals):
                errors.append(f"{name} differs from the dyadic layout")
        elif name == "embed.W_E":
            if torch.count_nonzero(t[:, 2 * m:]):
                errors.append("W_E writes outside slot B")
        elif name == "unembed.W_U":
            if torch.count_nonzero(t[: 4 * m]):
                errors.append("W_U reads slots B or S")
        elif torch.count_nonzero(t):
            errors.append(f"{name} is not zero")
    if not half_pattern_exact(cfg.dtype):
        errors.append("softmax of two zero scores is not exactly (1/2, 1/2) in this torch")
    return errors


@functools.lru_cache(maxsize=4)
def half_pattern_exact(dtype: torch.dtype) -> bool:
    """The library's softmax maps the last row of zero causal scores to exactly (1/2, 1/2)."""
    future = torch.ones(2, 2, dtype=torch.bool).triu(1)
    pattern = transformer.attention_pattern(
        torch.zeros(1, 1, 2, 2, dtype=dtype).masked_fill(future, float("-inf")), "softmax")
    return torch.equal(pattern[0, 0, 1], torch.tensor([0.5, 0.5], dtype=dtype))


def embedding_error(adder: ModularAdder) -> float:
    """eps_E >= max_{x,k} |W_E[x, B_k] - e^{2 pi i k x / p}| (complex), against mpmath."""
    p, m = adder.p, len(adder.freqs)
    ref_cos, ref_sin = reference_table(p)
    k = torch.tensor(adder.freqs)
    phase = (torch.arange(p)[:, None] * k) % p                        # [p, m]
    w_e = adder.transformer.embed.W_E.detach().to(torch.float64)
    diff = (w_e[:, 0:2 * m:2] - ref_cos[phase]).abs() + (w_e[:, 1:2 * m:2] - ref_sin[phase]).abs()
    return float(diff.max()) * SLACK + 2 * REF_ERR


def unembed_radius(adder: ModularAdder) -> float:
    """rho_U >= max_{k,c} |(W_U[O_cos_k, c], W_U[O_sin_k, c])|."""
    m = len(adder.freqs)
    w_u = adder.transformer.unembed.W_U.detach().to(torch.float64)[4 * m:]
    return float((w_u[0::2] ** 2 + w_u[1::2] ** 2).sqrt().max()) * SLACK


def _abs(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float64).abs()


def affine_bound(M: torch.Tensor, e: torch.Tensor, W: torch.Tensor,
                 b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One affine stage x W + b ([d_in, d_out] W) of the running error analysis below:
    M' = M|W| + |b|, e' = e|W| + gamma_{n+1}((M + e)|W| + |b|), n = d_in, any summation order."""
    W, b = _abs(W), _abs(b)
    return M @ W + b, e @ W + gamma(W.shape[0] + 1) * ((M + e) @ W + b)


def rounding_bound(adder: ModularAdder) -> float:
    """delta_R >= |F(a,b)_c - N(a,b)_c| for all a, b, c: running error analysis of the float64
    forward (Higham, "Accuracy and Stability of Numerical Algorithms", ch. 3), valid for any
    summation order (blocked, pairwise, FMA).

    Each stage carries (M, e): M bounds |exact value|, e bounds |computed - exact|, per
    coordinate and over all inputs. Affine x W + b: M' = M|W| + |b|,
    e' = e|W| + gamma_{n+1}((M + e)|W| + |b|). Square: e' = e(2M + e) + u(M + e)^2.
    Sum: e' = e1 + e2 + u(M1 + e1 + M2 + e2). The pattern is exactly (1/2, 1/2) (structure)."""
    model = adder.transformer
    blk = cast(transformer.Block, model.blocks[0])
    assert blk.mlp is not None
    a, affine = _abs, affine_bound

    def add(M1, e1, M2, e2):
        return M1 + M2, e1 + e2 + U * (M1 + e1 + M2 + e2)

    w_pos = a(model.pos_embed.W_pos).max(0).values
    M_x, e_x = add(a(model.embed.W_E).max(0).values, 0 * w_pos, w_pos, 0 * w_pos)
    M_v, e_v = affine(M_x, e_x, blk.attn.W_V[0], blk.attn.b_V[0])
    M_z, e_z = M_v, e_v * 1 + gamma(2) * (M_v + e_v)                  # z = v0/2 + v1/2
    M_o, e_o = affine(M_z, e_z, blk.attn.W_O[0], blk.attn.b_O)
    M_r, e_r = add(M_x, e_x, M_o, e_o)
    M_pre, e_pre = affine(M_r, e_r, blk.mlp.W_in, blk.mlp.b_in)
    M_post = M_pre**2
    e_post = e_pre * (2 * M_pre + e_pre) + U * (M_pre + e_pre) ** 2
    M_m, e_m = affine(M_post, e_post, blk.mlp.W_out, blk.mlp.b_out)
    M_f, e_f = add(M_r, e_r, M_m, e_m)
    _, e_logit = affine(M_f, e_f, model.unembed.W_U, model.unembed.b_U)
    return float(e_logit.max()) * SLACK


def row_margins(logits: torch.Tensor, answers: torch.Tensor, *,
                inplace: bool = False) -> torch.Tensor:
    """logits[i, answers[i]] - max_{c != answers[i]} logits[i, c], for [n, p] logits
    (``inplace``: overwrite the answers' entries of ``logits`` instead of copying it)."""
    rows = torch.arange(logits.shape[0])
    top = logits[rows, answers]
    others = logits if inplace else logits.clone()
    others[rows, answers] = float("-inf")
    return top - others.amax(1)


def certify(adder: ModularAdder) -> dict:
    """The compact certificate (module docstring): sound for every pair, O(p^2 |K|) time.

    Lemma ("the MLP output depends on a + b alone"): in exact arithmetic the MLP writes
    e_a e_b (complex product of the stored embeddings) and |e_a e_b - e_{a+b}| <= delta =
    3 eps_E + eps_E^2, where eps_E bounds |e_x - exp(i w x)| (measured against mpmath)."""
    start = time.perf_counter()
    p, m = adder.p, len(adder.freqs)
    errors = structure_errors(adder)
    if errors:
        return {"certified": False, "reason": errors[0], "seconds": time.perf_counter() - start}
    t_structure = time.perf_counter()
    eps_e = embedding_error(adder)
    rho_u = unembed_radius(adder)
    delta_r = rounding_bound(adder)
    delta = 3 * eps_e + eps_e**2
    t_bounds = time.perf_counter()
    w_e = adder.transformer.embed.W_E.detach()[:, : 2 * m]
    w_u = adder.transformer.unembed.W_U.detach()[4 * m:]
    delta_g = gamma(2 * m) * m * (1 + eps_e) * rho_u * SLACK
    error = delta_r + m * rho_u * delta * SLACK + delta_g
    margin, rows = math.inf, max(1, LOGIT_BUDGET // p)
    for s0 in range(0, p, rows):                          # G(s)_c = (W_E[:, B] W_U[O, :])[s, c]
        g_hat = w_e[s0:s0 + rows] @ w_u                   # [rows, p], chunks of one matmul
        answers = torch.arange(s0, s0 + g_hat.shape[0])
        margin = min(margin, float(row_margins(g_hat, answers, inplace=True).min()))
    end = time.perf_counter()
    return {"certified": margin > 2 * error, "p": p, "K_size": m, "min_margin": margin,
            "error_bound": error, "delta_R": delta_r, "eps_E": eps_e, "rho_U": rho_u,
            "delta": delta, "seconds": end - start, "flops": 2 * p * p * 2 * m,
            "seconds_structure": t_structure - start, "seconds_bounds": t_bounds - t_structure,
            "seconds_margins": end - t_bounds}


def pair_chunks(p: int, chunk: int | None = None):
    """(x, y) LongTensors covering all p^2 pairs, ``chunk`` pairs (default LOGIT_BUDGET / p)."""
    chunk = max(1, LOGIT_BUDGET // p) if chunk is None else chunk
    for start in range(0, p * p, chunk):
        idx = torch.arange(start, min(start + chunk, p * p))
        yield idx // p, idx % p


def brute_force(adder: ModularAdder, chunk: int | None = None, *,
                cert: dict | None = None) -> dict:
    """Sound all-pairs check, O(p^3 |K|): every pair's p logits from the network's algebra.

    Reuses eps_E, rho_U, delta_R from ``cert`` (a `certify` result) when given."""
    start = time.perf_counter()
    p, m = adder.p, len(adder.freqs)
    if cert is None or "eps_E" not in cert:
        errors = structure_errors(adder)
        if errors:
            return {"certified": False, "reason": errors[0],
                    "seconds": time.perf_counter() - start}
        cert = {"eps_E": embedding_error(adder), "rho_U": unembed_radius(adder),
                "delta_R": rounding_bound(adder)}
    amp = 1 + cert["eps_E"]                               # |e_x| <= amp
    rho_u = cert["rho_U"]
    prod_err = math.sqrt(2) * gamma(2) * amp**2
    error = (cert["delta_R"] + m * rho_u * (prod_err + gamma(2 * m) * (amp**2 + prod_err))
             * SLACK)
    w_e = adder.transformer.embed.W_E.detach()
    cos, sin = w_e[:, 0:2 * m:2], w_e[:, 1:2 * m:2]       # [p, m]
    w_u = adder.transformer.unembed.W_U.detach()[4 * m:]  # [2m, p]
    worst = math.inf
    for x, y in pair_chunks(p, chunk):
        re = cos[x] * cos[y] - sin[x] * sin[y]            # [n, m]: Re(e_a e_b)
        im = sin[x] * cos[y] + cos[x] * sin[y]
        o = torch.stack([re, im], dim=-1).reshape(len(x), 2 * m)  # slot O, interleaved
        worst = min(worst, float(row_margins(o @ w_u, (x + y) % p, inplace=True).min()))
    return {"certified": worst > 2 * error, "p": p, "min_margin": worst, "error_bound": error,
            "seconds": time.perf_counter() - start, "flops": 2 * p**3 * 2 * m}


def network_all_pairs(adder: ModularAdder, chunk: int | None = None) -> dict:
    """The torch network itself on every pair: argmax == (a+b) mod p, and the smallest margin."""
    start = time.perf_counter()
    p = adder.p
    worst, wrong = math.inf, 0
    with torch.no_grad():
        for x, y in pair_chunks(p, chunk):
            logits = adder(x, y)
            answer = (x + y) % p
            wrong += int((logits.argmax(1) != answer).sum())
            worst = min(worst, float(row_margins(logits, answer).min()))
    return {"correct": wrong == 0 and worst > 0, "wrong": wrong, "min_margin": worst,
            "seconds": time.perf_counter() - start}


def check_adder_exact(ps=EXHAUSTIVE_P, build=modular.build_adder) -> tuple[bool, dict]:
    """Every p: the certificate and the all-pairs check agree, margins match the closed form."""
    failures, worst_ratio = [], math.inf
    for p in ps:
        adder = build(p)
        cert = certify(adder)
        brute = brute_force(adder, cert=cert) if p in BRUTE_P else cert
        closed = modular.dirichlet_margin(p) if adder.freqs == modular.default_freqs(p) else None
        if not (cert["certified"] and brute["certified"]):
            failures.append((p, cert.get("reason", "margin <= 2 * error bound")))
        elif closed is not None and abs(cert["min_margin"] - closed) > cert["error_bound"] * 2:
            failures.append((p, f"margin {cert['min_margin']} != closed form {closed}"))
        elif p in DENSE_P and not network_all_pairs(adder)["correct"]:
            failures.append((p, "torch forward pass disagrees"))
        else:
            worst_ratio = min(worst_ratio, cert["min_margin"] / cert["error_bound"])
    return not failures, {"moduli": f"{ps[0]}..{ps[-1]}", "failures": failures[:5],
                          "min_margin_over_error": worst_ratio}


# --- Demo 2's architecture: the pizza construction ----------------------------------------------

PIZZA_DEMO = (97, 64)        # Demo 2: p = 97, d = 64 (hidden = 2d = 128, m = 64 directions)
PIZZA_ODD_P = (3, 5, 7, 9, 15, 21, 45, 101, 127)  # other odd moduli, all pairs, d = 64 and minimal
PIZZA_PROOF_ONLY_P = (1001, 5199)   # compact certificate only; 5199: the largest odd p it certifies
PIZZA_REAL_ONLY_P = 5211     # for m = 64 the proof holds for odd p <= 5211 in real arithmetic
MAIN_TERM_TOL = 2.0**-40     # per unit of m: float64 evaluation error of `pizza.main_term`


def _pair_error(c_hat: torch.Tensor, s_hat: torch.Tensor, ref_cos: torch.Tensor,
                ref_sin: torch.Tensor) -> float:
    """eps >= max |(c_hat, s_hat) - (cos, sin)| (2-norm), the refs being `reference_table` rows."""
    diff = (c_hat.to(torch.float64) - ref_cos).abs() + (s_hat.to(torch.float64) - ref_sin).abs()
    return float(diff.max()) * SLACK + 2 * REF_ERR


def pizza_structure_errors(model: TinyModel) -> list[str]:
    """Exact checks of the layout the pizza proof relies on; [] when it is the proof's."""
    if not isinstance(model, TinyModel):
        return [f"not a TinyModel: {type(model).__name__}"]
    d, p = model.d, model.p
    w_e, (fc1, fc2) = model.embed.weight, pizza.linear_layers(model)
    w_1, w_2 = fc1.weight.detach(), fc2.weight.detach()
    if w_e.dtype != torch.float64:
        return [f"dtype {w_e.dtype}, the certificate assumes float64"]
    hidden = w_1.shape[0]
    if hidden % 2 or hidden < 4:
        return [f"hidden = {hidden} is not an even number >= 4"]
    errors = []
    if torch.count_nonzero(w_e[:, 2:]):
        errors.append("embed writes outside coordinates 0, 1")
    rest = torch.ones(2 * d, dtype=torch.bool)
    rest[[0, 1, d, d + 1]] = False
    if torch.count_nonzero(w_1[:, rest]):
        errors.append("fc.0 reads outside coordinates 0, 1, d, d+1")
    if not torch.equal(w_1[:, d:d + 2], w_1[:, 0:2]):
        errors.append("fc.0 reads E(a) and E(b) differently (v = E(a) + E(b) fails)")
    if not torch.equal(w_1[1::2], -w_1[0::2]):
        errors.append("fc.0 unit (j,-) is not minus unit (j,+) (relu(h) + relu(-h) = |h| fails)")
    if not torch.equal(w_2[:, 0::2], w_2[:, 1::2]):
        errors.append("fc.2 reads the two units of a direction differently")
    if torch.count_nonzero(fc1.bias) or torch.count_nonzero(fc2.bias):
        errors.append("a bias is not zero")
    if w_2.shape != (p, hidden):
        errors.append(f"fc.2 has shape {tuple(w_2.shape)}, want ({p}, {hidden})")
    return errors


def pizza_weight_errors(model: TinyModel) -> dict[str, float]:
    """eps_E, eps_n, eps_W: distances of the stored weights from the ideal pizza weights.

    eps_E >= |W_E[x, 0:2] - e^{2 pi i x/p}|, eps_n >= |W_1[(j,+), 0:2] - e^{i pi j/m}|, and
    eps_W >= |W_2[c, (j,.)] - cos(2 pi j/m - 2 pi c/p)|, the last via the reference product
    R = fl(C_j C_c + S_j S_c): |R - exact| <= 2 gamma_2 (1 + REF_ERR)^2 + 4 REF_ERR (1 + REF_ERR)."""
    p, m = model.p, pizza.directions(model)
    fc1, fc2 = pizza.linear_layers(model)
    w_e = model.embed.weight.detach()
    w_1 = fc1.weight.detach()
    w_2 = fc2.weight.detach()[:, 0::2].to(torch.float64)          # [p, m]
    cos_p, sin_p = reference_table(p)
    cos_2m, sin_2m = reference_table(2 * m)
    cos_m, sin_m = reference_table(m)
    eps_e = _pair_error(w_e[:, 0], w_e[:, 1], cos_p, sin_p)
    eps_n = _pair_error(w_1[0::2, 0], w_1[0::2, 1], cos_2m[:m], sin_2m[:m])
    ref = cos_p[:, None] * cos_m[None, :] + sin_p[:, None] * sin_m[None, :]   # [p, m]
    eps_w = (float((w_2 - ref).abs().max()) * SLACK + 2 * gamma(2) * (1 + REF_ERR) ** 2
             + 4 * REF_ERR * (1 + REF_ERR))
    return {"eps_E": eps_e, "eps_n": eps_n, "eps_W": eps_w}


def pizza_rounding_bound(model: TinyModel) -> float:
    """delta_R >= |F(a,b)_c - N(a,b)_c| (float64 forward vs exact forward on the stored
    weights), every pair: the running error analysis of `rounding_bound` through
    concat -> fc.0 -> ReLU (1-Lipschitz, exact) -> fc.2."""
    w_e = _abs(model.embed.weight).max(0).values
    M_x = torch.cat([w_e, w_e])[None, :]                              # [1, 2d]
    fc1, fc2 = pizza.linear_layers(model)
    M_h, e_h = affine_bound(M_x, 0 * M_x, fc1.weight.T, fc1.bias)
    _, e_logit = affine_bound(M_h, e_h, fc2.weight.T, fc2.bias)
    return float(e_logit.max()) * SLACK


def pizza_weight_bound(m: int, eps: dict[str, float]) -> float:
    """delta_W >= |N(a,b)_c - N*(a,b)_c| (exact forward, stored vs ideal weights):
    eps_h = eps_n (2 + 2 eps_E) + 2 eps_E bounds |h_hat_j - h_j|, and
    delta_W = m (eps_W (2 + 2 eps_E)(1 + eps_n) + eps_h)."""
    e_e, e_n, e_w = eps["eps_E"], eps["eps_n"], eps["eps_W"]
    eps_h = e_n * (2 + 2 * e_e) + 2 * e_e
    return m * (e_w * (2 + 2 * e_e) * (1 + e_n) + eps_h) * SLACK


def certify_pizza(model: TinyModel, *, all_pairs: bool = True) -> dict:
    """The pizza network's argmax is (a+b) mod p on every pair.

    Compact (proof): margin of the ideal network >= L = `pizza.margin_lower_bound`, so the float
    network is exact if L > 2 (delta_R + delta_W), in O(weights) time, no pairs.
    Exhaustive (``all_pairs``): the torch forward on all p^2 pairs; exact for ANY float64
    evaluation order if its smallest margin > 4 delta_R (|F - N| <= delta_R for both orders);
    also every pair's margin >= its proved bound - 2 (delta_R + delta_W), and every logit within
    r (m/2) A(m) + delta_R + delta_W (+ MAIN_TERM_TOL m) of r (m/2) c_1 cos(2 pi (s-c)/p)."""
    start = time.perf_counter()
    errors = pizza_structure_errors(model)
    if errors:
        return {"certified": False, "reason": errors[0], "seconds": time.perf_counter() - start}
    p, m = model.p, pizza.directions(model)
    eps = pizza_weight_errors(model)
    delta_r = pizza_rounding_bound(model)
    delta_w = pizza_weight_bound(m, eps)
    proved = p >= 3 and p % 2 == 1 and pizza.condition_holds(p, m)
    bound = pizza.margin_lower_bound(p, m) if proved else -math.inf
    out: dict = {"p": p, "m": m, "hidden": 2 * m, "proved": proved, "margin_lower_bound": bound,
                 "alias_bound": pizza.alias_bound(m), "delta_R": delta_r, "delta_W": delta_w,
                 **eps, "proof_certified": proved and bound > 2 * (delta_r + delta_w)}
    if not proved:
        out["margin_lower_bound"] = None
    if all_pairs:
        worst, below, approx_excess = math.inf, 0, -math.inf
        slack = delta_r + delta_w
        with torch.no_grad():
            for x, y in pair_chunks(p):
                logits = model(x, y)                                   # [n, p]
                main = pizza.main_term(p, m, x, y)
                tol = (pizza.radius(p, x - y) * (m / 2) * out["alias_bound"] * SLACK
                       + slack + MAIN_TERM_TOL * m)
                approx_excess = max(approx_excess,
                                    float(((logits - main).abs().amax(1) - tol).max()))
                margins = row_margins(logits, (x + y) % p, inplace=True)
                worst = min(worst, float(margins.min()))
                if proved:
                    want = pizza.pair_margin_lower_bound(p, m, x - y) / SLACK - 2 * slack
                    below += int((margins < want).sum())
        out.update({"min_margin": worst, "pairs_certified": worst > 4 * delta_r,
                    "pairs_below_proved_bound": below if proved else None,
                    "logits_within_alias_bound": approx_excess <= 0})
        ok = out["pairs_certified"] and (not proved or (below == 0
                                                        and out["logits_within_alias_bound"]))
    else:
        ok = True
    out["certified"] = bool(out["proof_certified"] and ok)
    out["seconds"] = time.perf_counter() - start
    return out


def check_pizza(cases=None, build=pizza.build_pizza) -> tuple[bool, dict]:
    """Demo 2's TinyModel with pizza weights: p = 97, d = 64 and odd p with d = 64 and with the
    smallest proved width, every pair; large odd p by the compact certificate alone."""
    if cases is None:
        demo_p, demo_d = PIZZA_DEMO
        cases = [(demo_p, demo_d, None, True)]
        cases += [(p, demo_d, None, True) for p in PIZZA_ODD_P]
        cases += [(p, demo_d, pizza.min_hidden(p), True) for p in (demo_p, *PIZZA_ODD_P)]
        cases += [(p, demo_d, None, False) for p in PIZZA_PROOF_ONLY_P]
    failures, results = [], []
    for p, d, hidden, pairs in cases:
        cert = certify_pizza(build(p, d, hidden), all_pairs=pairs)
        results.append(cert)
        if not cert["certified"]:
            failures.append((p, hidden, cert.get("reason", "margin not above the error bound")))
    demo = results[0]
    keys = ("p", "m", "min_margin", "margin_lower_bound", "alias_bound", "delta_R", "delta_W",
            "seconds")
    return not failures, {
        "model": "constructions.pizza.build_pizza: Demo 2's TinyModel, hand-set weights",
        "condition": "odd p, m = hidden/2 with (4/3pi) sin(pi/p) > A(m) = "
                     "(cot(pi/2m) - cot(3pi/2m))/m - 4/(3pi); even p ties at a-b = p/2",
        "demo": {k: demo.get(k) for k in keys},
        "min_hidden_p97": pizza.min_hidden(97),
        "largest_odd_p_d64": {"real_arithmetic": PIZZA_REAL_ONLY_P,
                              "float64_certified": max(PIZZA_PROOF_ONLY_P)},
        "moduli": sorted({c[0] for c in cases}), "failures": failures[:5],
        "exact": "argmax = (a+b) mod p on every pair",
        "approximate": "logits = r (m/2) c_1 cos(2pi(s-c)/p) up to r (m/2) A(m)"}


@registry.claim("modular.adder_exact", source="section 3 / Theorem 3.1; section 4",
                statement="the trig-identity adder predicts (a+b) mod p for every a, b and p >= 2")
def adder_exact() -> registry.Outcome:
    ok_pairs, pairs = check_adder_exact()
    ok_sets, sets = check_condition_all_subsets()
    ok_pizza, pizza_evidence = check_pizza()
    odd_even = {p: modular.dirichlet_margin(p) for p in (2, 3, 4, 5, 97, 100)}
    return registry.Outcome("confirmed", ok_pairs and ok_sets and ok_pizza, {
        "condition": "exact iff gcd(p, k_1..k_m) = 1 (frequency 1 alone always works)",
        "all_pairs": pairs, "all_frequency_sets": sets,
        "dirichlet_margin": {str(k): v for k, v in odd_even.items()},
        "demo_2_pizza": pizza_evidence})


# --- Worked Example 3 --------------------------------------------------------------------------

def check_mod5(adder: ModularAdder | None = None) -> tuple[bool, dict]:
    """p = 5, K = {1}: exact logits cos(2 pi (a+b-c)/5), margin (5 - sqrt 5)/4, float64 check."""
    adder = modular.build_adder(5, freqs=(1,)) if adder is None else adder
    p = 5
    w = 2 * sp.pi / p
    margin_exact = 1 - sp.cos(w)                                   # = (5 - sqrt 5) / 4
    margin_ok = sp.simplify(margin_exact - (5 - sp.sqrt(5)) / 4) == 0
    logits_ok = all(sp.simplify(sp.cos(w * d) - sp.cos(w)) <= 0 for d in range(1, p)) and all(
        sp.cos(w * d).equals(1) is False for d in range(1, p))
    cert = certify(adder)
    net = network_all_pairs(adder)
    close = cert.get("certified") and abs(cert["min_margin"] - float(margin_exact)) <= 2 * cert[
        "error_bound"]
    # The section's loose step: one product alone does not determine x + y mod 5.
    cc = {(x, y): sp.nsimplify(sp.cos(w * x) * sp.cos(w * y)) for x in range(p) for y in range(p)}
    clash = next(((u, v) for u, v in itertools.combinations(cc, 2)
                  if (sum(u) - sum(v)) % p and sp.simplify(cc[u] - cc[v]) == 0), None)
    cos_only = next(((s, t) for s, t in itertools.combinations(range(p), 2)
                     if sp.simplify(sp.cos(w * s) - sp.cos(w * t)) == 0), None)
    passed = bool(margin_ok and logits_ok and close and net["correct"] and clash and cos_only)
    return passed, {"suffices": bool(cert.get("certified")) and net["correct"],
                    "margin": "(5 - sqrt 5)/4", "margin_float": float(margin_exact),
                    "certified_margin": cert.get("min_margin"),
                    "error_bound": cert.get("error_bound"),
                    "cos_a_cos_b_clash": [list(clash[0]), list(clash[1])] if clash else None,
                    "cos_of_sum_clash": list(cos_only) if cos_only else None}


@registry.claim("worked_example_3.mod5", source="Worked Example 3",
                statement="E(x) = [cos 2pi x/5, sin 2pi x/5]; the MLP product gives x + y mod 5")
def mod5() -> registry.Outcome:
    passed, evidence = check_mod5()
    return registry.Outcome("corrected", passed, evidence)


# --- inspect -----------------------------------------------------------------------------------

def inspect_adder(argv: list[str]) -> int:
    parser = OneLineParser(prog="python -m verify inspect adder",
                           description="Weights of the trig-identity adder, one frequency block.")
    parser.add_argument("--p", type=int, default=5, help="modulus (>= 2), default 5")
    parser.add_argument("--freqs", type=int, nargs="+", default=None,
                        help="frequencies (default: every 1..(p-1)//2)")
    ns = parser.parse_args(argv)
    adder = modular.build_adder(ns.p, ns.freqs)
    m = len(adder.freqs)
    w = adder.transformer.weights()
    s = modular.slots(m)
    print(f"adder p={adder.p} K={list(adder.freqs)[:12]}{' ...' if m > 12 else ''} "
          f"(|K|={m}); d_model={6 * m} d_mlp={8 * m}; attention scores 0 -> pattern (1/2, 1/2)")
    rows = [f"x={x}" for x in range(min(adder.p, 8))]
    print(matrix("W_E rows (cos w1 x, sin w1 x) of frequency k1", w["embed.W_E"][:8, :2], rows,
                 ["cos", "sin"]))
    read = torch.stack([s["S_cos"][0], s["S_sin"][0], s["B_cos"][0], s["B_sin"][0]])
    neurons = [f"n{j}" for j in range(NEURONS_PER_FREQ)]
    print(matrix("W_in block of k1 (rows S_cos S_sin B_cos B_sin)",
                 w["blocks.0.mlp.W_in"][read][:, :NEURONS_PER_FREQ],
                 ["S_cos", "S_sin", "B_cos", "B_sin"], neurons))
    out = torch.stack([s["O_cos"][0], s["O_sin"][0]])
    print(matrix("W_out block of k1 (to O_cos, O_sin)",
                 w["blocks.0.mlp.W_out"][:NEURONS_PER_FREQ][:, out], neurons, ["O_cos", "O_sin"]))
    x = torch.arange(min(adder.p, 8))
    logits = adder(x, torch.zeros_like(x))
    print(matrix("logits for (a, 0)", logits[:, :8], rows, [f"c={c}" for c in range(8)][:logits.shape[1]]))
    cert = certify(adder)
    print(f"certificate: min margin {cert['min_margin']:.6g} > 2 x error bound "
          f"{cert['error_bound']:.3g}: {cert['certified']}")
    return 0


INSPECT = {"adder": inspect_adder}
