"""The float64 certificate of the pizza construction on Demo 2's TinyModel, every p >= 2.

Let N* be the exact-arithmetic logits of the ideal weights (constructions/pizza.py), N those of
the stored weights, F what torch computes. `certify_pizza` proves for every pair and c != s:

    F_s - F_c >= N*_s - N*_c - 2 (delta_R + delta_W) >= L(p, m) - 2 (delta_R + delta_W),

with delta_R the running rounding bound (`verify.rounding.affine_bound`), delta_W the effect of
the stored weights' distance from the ideal ones (measured against reference tables), and L the
proved margin `pizza.margin_lower_bound`: exact when L > 2 (delta_R + delta_W), in O(weights)
time, no pairs. ``all_pairs`` also runs the torch forward on all p^2 pairs (any float64
evaluation order then agrees if the smallest margin exceeds 4 delta_R). `certify_range` runs the
compact certificate for every p of a range (the record in proofs/data/pizza_range.json).
Proofs: proofs/modular-addition.md, "Demo 2's architecture".
"""

from __future__ import annotations

import math
import time

import torch

from constructions import pizza
from constructions.tiny_mlp import TinyModel
from verify.adder_certificate import check_extra_error
from verify.rounding import (
    SLACK,
    affine_bound,
    as_abs,
    pair_chunks,
    pair_error,
    product_reference_error,
    reference_table,
    row_margins,
)


def structure_errors(model: TinyModel) -> list[str]:
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
    if w_2.shape != (p, hidden):
        return [f"fc.2 has shape {tuple(w_2.shape)}, want ({p}, {hidden})"]
    errors = []
    if torch.count_nonzero(w_e[:, 2:]):
        errors.append("embed writes outside coordinates 0, 1")
    rest = torch.ones(2 * d, dtype=torch.bool)
    rest[[0, 1, d, d + 1]] = False
    if torch.count_nonzero(w_1[:, rest]):
        errors.append("fc.0 reads outside coordinates 0, 1, d, d+1")
    if not torch.equal(w_1[1::2], -w_1[0::2]):
        errors.append("fc.0 unit (j,-) is not minus unit (j,+) (relu(h) + relu(-h) = |h| fails)")
    if not torch.equal(w_2[:, 0::2], w_2[:, 1::2]):
        errors.append("fc.2 reads the two units of a direction differently")
    if torch.count_nonzero(fc1.bias) or torch.count_nonzero(fc2.bias):
        errors.append("a bias is not zero")
    return errors


def weight_errors(model: TinyModel) -> dict[str, float]:
    """eps_E, eps_n, eps_W: distances of the stored weights from the ideal pizza weights.

    eps_E >= |W_E[x, 0:2] - e^{2 pi i x/p}|; eps_n >= |row - ideal row| over the a-half rows
    n_j = e^{i pi j/m} and the b-half rows e^{i (pi j/m - theta)}, theta = e pi/p; eps_W >=
    |W_2[c, (j,.)] - cos(2 pi j/m - 2 pi c/p - theta)|. Rotated references are products of two
    table entries, within `product_reference_error` of the exact values."""
    p, m = model.p, pizza.directions(model)
    e = pizza.rotation_steps(p)
    fc1, fc2 = pizza.linear_layers(model)
    w_e, w_1 = model.embed.weight.detach(), fc1.weight.detach()
    w_2 = fc2.weight.detach()[:, 0::2].to(torch.float64)             # [p, m]
    d = model.d
    cos_2p, sin_2p = reference_table(2 * p)                           # angles pi k/p
    cos_2m, sin_2m = reference_table(2 * m)                           # angles pi j/m = phi_j
    cos_m, sin_m = reference_table(m)                                 # angles 2 phi_j
    cos_p, sin_p = cos_2p[0::2], sin_2p[0::2]                         # angles 2 pi x/p
    prod_err = product_reference_error()
    eps_e = pair_error(w_e[:, 0], w_e[:, 1], cos_p, sin_p)
    c_phi, s_phi = cos_2m[:m], sin_2m[:m]
    eps_a = pair_error(w_1[0::2, 0], w_1[0::2, 1], c_phi, s_phi)
    c_t, s_t = cos_2p[e], sin_2p[e]                                   # theta
    eps_b = pair_error(w_1[0::2, d], w_1[0::2, d + 1], c_phi * c_t + s_phi * s_t,
                       s_phi * c_t - c_phi * s_t, prod_err)           # cos, sin(phi_j - theta)
    gam = 2 * torch.arange(p) + e                     # 2 pi c/p + theta; index <= 2p - 1
    ref = cos_2p[gam][:, None] * cos_m[None, :] + sin_2p[gam][:, None] * sin_m[None, :]
    eps_w = float((w_2 - ref).abs().max()) * SLACK + prod_err
    return {"eps_E": eps_e, "eps_n": max(eps_a, eps_b), "eps_W": eps_w}


def rounding_bound(model: TinyModel) -> float:
    """delta_R >= |F(a,b)_c - N(a,b)_c| (float64 forward vs exact forward on the stored
    weights), every pair: concat (exact) -> fc.0 -> ReLU (exact, 1-Lipschitz) -> fc.2."""
    w_e = as_abs(model.embed.weight).max(0).values
    M_x = torch.cat([w_e, w_e])[None, :]                              # [1, 2d]
    fc1, fc2 = pizza.linear_layers(model)
    M_h, e_h = affine_bound(M_x, 0 * M_x, fc1.weight.T, fc1.bias)
    _, e_logit = affine_bound(M_h, e_h, fc2.weight.T, fc2.bias)
    return float(e_logit.max()) * SLACK


def weight_bound(m: int, eps: dict[str, float]) -> float:
    """delta_W >= |N(a,b)_c - N*(a,b)_c| (exact forward, stored vs ideal weights):
    eps_h = eps_n (2 + 2 eps_E) + 2 eps_E bounds |h_hat_j - h_j|, and
    delta_W = m (eps_W (2 + 2 eps_E)(1 + eps_n) + eps_h)."""
    e_e, e_n, e_w = eps["eps_E"], eps["eps_n"], eps["eps_W"]
    eps_h = e_n * (2 + 2 * e_e) + 2 * e_e
    return m * (e_w * (2 + 2 * e_e) * (1 + e_n) + eps_h) * SLACK


def all_pairs_margin(model: TinyModel) -> float:
    """The smallest margin logit_s - max_{c != s} logit_c of the torch forward over all p^2 pairs."""
    worst = math.inf
    with torch.no_grad():
        for x, y in pair_chunks(model.p):
            worst = min(worst, float(row_margins(model(x, y), (x + y) % model.p,
                                                 inplace=True).min()))
    return worst


def certify_pizza(model: TinyModel, *, all_pairs: bool = True, extra_error: float = 0.0) -> dict:
    """The pizza network's argmax is (a+b) mod p on every pair (module docstring).

    ``proof_certified``: (P) holds and L > 2 (delta_R + delta_W + extra_error);
    ``pairs_certified`` (``all_pairs``): the smallest all-pairs margin > 4 (delta_R + extra_error);
    ``certified``: both (the first alone without ``all_pairs``). ``extra_error`` >= 0: an error
    per logit that the caller accounts for outside this analysis (0 by default)."""
    extra = check_extra_error(extra_error)
    start = time.perf_counter()
    errors = structure_errors(model)
    if errors:
        return {"certified": False, "reason": errors[0], "seconds": time.perf_counter() - start}
    p, m = model.p, pizza.directions(model)
    eps = weight_errors(model)
    delta_r = rounding_bound(model)
    delta_w = weight_bound(m, eps)
    proved = pizza.condition_holds(p, m)
    bound = pizza.margin_lower_bound(p, m) if proved else None
    out: dict = {"p": p, "m": m, "hidden": 2 * m, "rotation_steps": pizza.rotation_steps(p),
                 "proved": proved, "margin_lower_bound": bound, "delta_R": delta_r,
                 "delta_W": delta_w, **eps, "extra_error": extra,
                 "proof_certified": bound is not None and bound > 2 * (delta_r + delta_w + extra)}
    ok = out["proof_certified"]
    if all_pairs:
        out["min_margin"] = all_pairs_margin(model)
        out["pairs_certified"] = out["min_margin"] > 4 * (delta_r + extra)
        ok = ok and out["pairs_certified"]
    out["certified"] = bool(ok)
    out["seconds"] = time.perf_counter() - start
    return out


def certify_range(ps, d: int = 64, hidden: int | None = None) -> dict:
    """The compact certificate for every p in ``ps`` at TinyModel(p, d, hidden) (default 2d):
    which p are certified, which are proved in real arithmetic only, which fail (P)."""
    start = time.perf_counter()
    certified, real_only, unproved, worst = [], [], [], math.inf
    for p in ps:
        m = (2 * d if hidden is None else hidden) // 2
        if not pizza.condition_holds(p, m):
            unproved.append(p)
            continue
        cert = certify_pizza(pizza.build_pizza(p, d, hidden), all_pairs=False)
        if cert["proof_certified"]:
            certified.append(p)
            worst = min(worst, cert["margin_lower_bound"] / (2 * (cert["delta_R"] + cert["delta_W"])))
        else:
            real_only.append(p)
    return {"certified": certified, "real_arithmetic_only": real_only, "condition_fails": unproved,
            "min_ratio_L_over_2_error": worst, "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:  # pragma: no mutate block
    """python -m verify.pizza_certificate --first 2 --last 5214 --out FILE: the range record."""
    # The command line (parsing, exit codes, printing) is not mutated, as verify/cli.py is not
    # (pyproject.toml, [tool.mutmut]); tests/test_pizza.py runs it; `certify_range` and `_runs`,
    # which compute the record, are.
    import json
    import platform
    import sys

    from verify.cli_util import OneLineParser, UsageError, fail

    parser = OneLineParser(prog="python -m verify.pizza_certificate",
                           description="Certify the pizza construction for every p of a range.")
    parser.add_argument("--first", type=int, default=2, help="smallest p (>= 2), default 2")
    parser.add_argument("--last", type=int, default=5214, help="largest p, default 5214")
    parser.add_argument("--d", type=int, default=64, help="embedding width (Demo 2: 64)")
    parser.add_argument("--out", default=None, help="write the JSON record here")
    try:
        ns = parser.parse_args(sys.argv[1:] if argv is None else argv)
        if ns.first < 2 or ns.last < ns.first:
            raise UsageError(f"--first must be >= 2 and <= --last, got {ns.first}, {ns.last}")
        if ns.d < 2:
            raise UsageError(f"--d must be >= 2, got {ns.d}")
    except UsageError as error:
        return fail(str(error))
    torch.set_num_threads(1)
    result = certify_range(range(ns.first, ns.last + 1), d=ns.d)
    certified = result["certified"]
    record = {
        "command": "python -m verify.pizza_certificate " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "d": ns.d, "hidden": 2 * ns.d, "first": ns.first, "last": ns.last,
        "certified_count": len(certified),
        "certified_every_p_from_to": _runs(certified),
        "real_arithmetic_only": result["real_arithmetic_only"],
        "condition_fails": result["condition_fails"],
        "min_ratio_L_over_2_error": result["min_ratio_L_over_2_error"],
        "seconds": round(result["seconds"], 1),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, 1 torch thread",
        "versions": {"python": platform.python_version(), "torch": torch.__version__}}
    text = json.dumps(record, indent=1)
    if ns.out:
        with open(ns.out, "w") as handle:
            handle.write(text + "\n")
    print(text)
    return 0


def _runs(values: list[int]) -> list[list[int]]:
    """Maximal runs of consecutive integers, as [first, last] pairs."""
    runs: list[list[int]] = []
    for v in values:
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return runs


if __name__ == "__main__":
    raise SystemExit(main())
