"""The float64 certificate of the trig-identity adder: argmax = (a+b) mod p on every pair.

For an adder with weights W let N(a, b) be the logits in exact real arithmetic on the stored
weights and F(a, b) the logits torch computes. `certify` proves, for every pair at once,

    |F(a,b)_c - N(a,b)_c| <= delta_R        (a-priori rounding bound, any summation order)
    |N(a,b)_c - G(s)_c|   <= m rho_U delta   (s = a+b mod p; the "a+b alone" lemma)
    |G^(s)_c - G(s)_c|    <= delta_G        (G = W_E[:, B] W_U[O, :], computed in float64)

so argmax F(a, b) = s whenever G^(s)_s - max_{c != s} G^(s)_c > 2 (delta_R + m rho_U delta +
delta_G). Cost: one p x 2m x p matrix product, O(p^2 |K|), instead of O(p^3 |K|) for all pairs
(Gross et al. 2024, "Compact proofs of model performance via mechanistic interpretability").
The network is never run: `structure_errors` is the guard that the weights are the architecture
the analysis assumes (config, dyadic layout, zero tensors). Proofs: proofs/modular-addition.md.
"""

from __future__ import annotations

import math
import time
from typing import cast

import torch

from constructions import modular, transformer
from constructions.modular import NEURON_TABLE, NEURONS_PER_FREQ, ModularAdder
from verify.rounding import (
    LOGIT_BUDGET,
    SLACK,
    U,
    affine_bound,
    as_abs,
    equal_softmax_error,
    gamma,
    pair_error,
    reference_table,
    row_margins,
)


def expected_sparsity(m: int) -> dict[str, tuple[tuple[torch.Tensor, ...], torch.Tensor]]:
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
    """Exact checks of everything the algebra relies on; [] when the layout is the proof's.

    With W_Q = W_K = b_Q = b_K = 0 and attn_scale 1 every score is exactly 0, so the softmax row
    at the last position is two equal scores: its rounding is bounded in `rounding_bound`."""
    model, p, m = adder.transformer, adder.p, len(adder.freqs)
    cfg = model.cfg
    want = modular.adder_config(p, m)                    # float64, quadratic MLP, 1 head, ...
    if cfg != want:
        return [f"config {cfg} != {want}"]
    errors = []
    nonzero = expected_sparsity(m)
    for name, tensor in model.named_parameters():
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
    return errors


def embedding_error(adder: ModularAdder) -> float:
    """eps_E >= max_{x,k} |W_E[x, B_k] - e^{2 pi i k x / p}| (complex), against `reference_table`."""
    p, m = adder.p, len(adder.freqs)
    ref_cos, ref_sin = reference_table(p)
    phase = (torch.arange(p)[:, None] * torch.tensor(adder.freqs)) % p       # [p, m]
    w_e = adder.transformer.embed.W_E.detach()
    return pair_error(w_e[:, 0:2 * m:2], w_e[:, 1:2 * m:2], ref_cos[phase], ref_sin[phase])


def unembed_radius(adder: ModularAdder) -> float:
    """rho_U >= max_{k,c} |(W_U[O_cos_k, c], W_U[O_sin_k, c])|."""
    m = len(adder.freqs)
    w_u = adder.transformer.unembed.W_U.detach().to(torch.float64)[4 * m:]
    return float((w_u[0::2] ** 2 + w_u[1::2] ** 2).sqrt().max()) * SLACK


def rounding_bound(adder: ModularAdder) -> float:
    """delta_R >= |F(a,b)_c - N(a,b)_c| for all a, b, c: a running error analysis of the float64
    forward (Higham, ch. 3), valid for any summation order (blocked, pairwise, FMA).

    Each stage carries (M, e): M bounds |exact value|, e bounds |computed - exact|, per
    coordinate over all inputs. Affine: `affine_bound`. Attention mix with the computed pattern
    A_hat_i = 1/2 + O(alpha) (`equal_softmax_error`): |A_hat_0 v_hat_0 + A_hat_1 v_hat_1 -
    (v_0 + v_1)/2| <= e + 2 alpha (M + e) + gamma_2 (1 + 2 alpha)(M + e). Square:
    e' = e(2M + e) + u(M + e)^2. Sum: e' = e1 + e2 + u(M1 + e1 + M2 + e2)."""
    model = adder.transformer
    blk = cast(transformer.Block, model.blocks[0])
    assert blk.mlp is not None
    alpha = equal_softmax_error(2)

    def add(M1, e1, M2, e2):
        return M1 + M2, e1 + e2 + U * (M1 + e1 + M2 + e2)

    w_pos = as_abs(model.pos_embed.W_pos).max(0).values
    M_x, e_x = add(as_abs(model.embed.W_E).max(0).values, 0 * w_pos, w_pos, 0 * w_pos)
    M_v, e_v = affine_bound(M_x, e_x, blk.attn.W_V[0], blk.attn.b_V[0])
    M_z = M_v
    e_z = e_v + 2 * alpha * (M_v + e_v) + gamma(2) * (1 + 2 * alpha) * (M_v + e_v)
    M_o, e_o = affine_bound(M_z, e_z, blk.attn.W_O[0], blk.attn.b_O)
    M_r, e_r = add(M_x, e_x, M_o, e_o)
    M_pre, e_pre = affine_bound(M_r, e_r, blk.mlp.W_in, blk.mlp.b_in)
    M_post = M_pre**2
    e_post = e_pre * (2 * M_pre + e_pre) + U * (M_pre + e_pre) ** 2
    M_m, e_m = affine_bound(M_post, e_post, blk.mlp.W_out, blk.mlp.b_out)
    M_f, e_f = add(M_r, e_r, M_m, e_m)
    _, e_logit = affine_bound(M_f, e_f, model.unembed.W_U, model.unembed.b_U)
    return float(e_logit.max()) * SLACK


def check_extra_error(extra_error: object) -> float:
    if isinstance(extra_error, bool) or not isinstance(extra_error, (int, float)):
        raise TypeError(f"extra_error must be a real number >= 0, got {type(extra_error).__name__}")
    if not (0 <= float(extra_error) < math.inf):
        raise ValueError(f"extra_error must be a finite number >= 0, got {extra_error}")
    return float(extra_error)


def certify(adder: ModularAdder, *, extra_error: float = 0.0) -> dict:
    """The compact certificate (module docstring): sound for every pair, O(p^2 |K|) time.

    ``certified`` iff the smallest margin of G^ exceeds 2 (Delta + extra_error); ``extra_error``
    (>= 0) is an error the caller accounts for outside this analysis (0 by default).
    Lemma ("the MLP output depends on a + b alone"): in exact arithmetic the MLP writes
    e_a e_b (complex product of the stored embeddings) and |e_a e_b - e_{a+b}| <= delta =
    3 eps_E + eps_E^2, where eps_E bounds |e_x - exp(i w x)|."""
    extra = check_extra_error(extra_error)
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
    return {"certified": margin > 2 * (error + extra), "p": p, "K_size": m, "min_margin": margin,
            "error_bound": error, "extra_error": extra, "delta_R": delta_r, "eps_E": eps_e,
            "rho_U": rho_u, "delta": delta, "seconds": end - start, "flops": 2 * p * p * 2 * m,
            "seconds_structure": t_structure - start, "seconds_bounds": t_bounds - t_structure,
            "seconds_margins": end - t_bounds}
