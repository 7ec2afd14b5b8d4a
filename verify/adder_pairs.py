"""Pair-by-pair evidence for the trig-identity adder, beside the compact certificate.

What it computes: `brute_force`, a sound all-pairs check of every logit from the network's
algebra (O(p^3 |K|)); `network_all_pairs`, the torch network itself on every pair;
`ties_exactly`, the residues d with T_K(d) = |K| in integer arithmetic (k d = 0 mod p for all
k); `condition_all_subsets`, the exact condition "correct and unique iff gcd(p, K) = 1" over
every non-empty frequency set of small moduli. Proofs: proofs/modular-addition.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from constructions import modular, validation
from constructions.modular import ModularAdder
from verify.adder_certificate import embedding_error, rounding_bound, structure_errors, unembed_radius
from verify.rounding import SLACK, gamma, pair_chunks, row_margins

MAX_SUBSET_P = 20            # 2^(p-1) - 1 frequency sets per modulus: at most ~5e5


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


def ties_exactly(p: int, freqs: tuple[int, ...]) -> list[int]:
    """Every d in 1..p-1 with k d = 0 mod p for all k in K (integer arithmetic): T(d) = |K|."""
    return [d for d in range(1, p) if all((k * d) % p == 0 for k in freqs)]


def gcd_condition(p: int, freqs: tuple[int, ...]) -> bool:
    """The theorem's condition: gcd(p, k_1, ..., k_m) = 1."""
    return modular.freq_gcd(p, freqs) == 1


def condition_all_subsets(ps=range(2, 15),
                          condition: Callable[[int, tuple[int, ...]], bool] | None = None
                          ) -> tuple[bool, dict]:
    """For every p and every nonempty K in [1, p-1]: the exact logits T_K(a+b-c) have a unique
    maximum at c = a+b (no tie) iff ``condition(p, K)`` (default `gcd_condition`); the first few
    sets where they disagree are the counterexamples. A tie is decided in integers as in
    `ties_exactly`; without one, T_K(d) < |K| for d != 0 (proofs/modular-addition.md)."""
    condition = gcd_condition if condition is None else condition
    ps = [validation.check_int("ps entry", p, minimum=2, maximum=MAX_SUBSET_P) for p in ps]
    count, bad = 0, []
    for p in ps:
        ks = torch.arange(1, p)
        bits = torch.arange(1, 2 ** (p - 1))[:, None] >> torch.arange(p - 1)
        subsets = (bits & 1).to(torch.float64)                         # [n_sets, p-1]
        members = [tuple(k for k in range(1, p) if mask >> (k - 1) & 1)
                   for mask in range(1, 2 ** (p - 1))]                 # rows of subsets
        admissible = torch.tensor([bool(condition(p, kk)) for kk in members])
        # tie (as in `ties_exactly`): some d in 1..p-1 has k d = 0 mod p for every k in K,
        # i.e. no member of K among the k with k d != 0 (counts are exact small integers)
        moves = ((ks[:, None] * torch.arange(1, p)[None, :]) % p != 0).to(torch.float64)
        tie = ((subsets @ moves) == 0).any(1)                           # [n_sets]
        ok = admissible == ~tie
        count += len(members)
        bad += [(p, members[i]) for i in torch.nonzero(~ok).flatten().tolist()]
    return not bad, {"moduli": f"{min(ps)}..{max(ps)}" if ps else "none", "frequency_sets": count,
                     "counterexamples": bad[:5]}
