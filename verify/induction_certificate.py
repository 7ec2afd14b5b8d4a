"""Certificates for the induction circuit: exact integer runs, SymPy runs, and softmax bounds.

- `integer_certificate` (Lemma E of proofs/induction.md): every cached activation is an integer
  of magnitude < 2^53 and every attention entry is 0 or 1. Then each float64 operation of the
  pass had an integer result that float64 represents, so nothing was rounded: the run is exact.
- `check_exact`: every sequence up to a length through hard models, logits == one-hot of the
  reference with the integer certificate, and a sample through the SymPy mirror.
- `softmax_report`: measured masses off the target keys and logit margins of a softmax model
  against the proved bounds of `constructions.induction.mass_bounds`.
- `rounding_estimate`: a first-order ESTIMATE (not a proof) of how far float64 rounding moves
  the softmax model's logits; see proofs/induction.md, "Rounding".
"""

from __future__ import annotations

import random

import sympy as sp
import torch
import torch.nn.functional as F
from torch import Tensor

from constructions import exact, induction, validation
from constructions.transformer import Transformer
from verify.sequences import SEED, all_sequences, induction_key, previous_index

FLOAT_EXACT_LIMIT = 2.0 ** 53  # integers below this are exact in float64, and so are their sums
MASS_TOL = 1e-12               # allowance for float64 rounding when comparing masses and bounds
UNIT_ROUNDOFF = 2.0 ** -53     # u for float64


def at_most(measured: float, bound: float) -> bool:
    """measured <= bound, allowing `MASS_TOL` for rounding (masses against delta_1, delta_2)."""
    return measured <= bound + MASS_TOL


def at_least(measured: float, bound: float) -> bool:
    """measured >= bound, allowing `MASS_TOL` for rounding (margins and detector floors)."""
    return measured >= bound - MASS_TOL


def integer_certificate(cache: dict[str, Tensor]) -> bool:
    """True when every finite activation is an integer of magnitude < 2^53 and every
    ``hook_pattern`` entry is 0 or 1 (the hypotheses of Lemma E)."""
    for name, value in cache.items():
        finite = value[torch.isfinite(value)]
        if not bool(torch.all(finite == finite.round())):
            return False
        if finite.numel() and float(finite.abs().max()) >= FLOAT_EXACT_LIMIT:
            return False
        if name.endswith("hook_pattern") and not bool(((value == 0) | (value == 1)).all()):
            return False
    return True


def off_target_mass(pattern: Tensor, target: Tensor) -> Tensor:
    """Per row: 1 - pattern[target]; pattern [batch, q, k], target [batch, q]."""
    return 1 - pattern.gather(-1, target[..., None])[..., 0]


def check_exact(models: list[Transformer], *, sympy_sample: int, max_len: int,
                seed: int = SEED) -> dict:
    """Every sequence up to ``max_len`` through each hard model: logits == one-hot(reference),
    exactly (integer certificate); ``sympy_sample`` of them also through the SymPy mirror."""
    sympy_sample = validation.check_int("sympy_sample", sympy_sample, minimum=0)
    max_len = validation.check_int("max_len", max_len, minimum=1)
    exact_ok, certified, count, pool = True, True, 0, []
    for model in models:
        V = model.cfg.d_vocab - 1
        for length in range(1, min(max_len, model.cfg.n_ctx) + 1):
            tokens = all_sequences(V, length)
            logits, cache = model.run_with_cache(tokens)
            want = F.one_hot(induction.induction_targets(tokens, V), V + 1).to(logits.dtype)
            exact_ok &= bool(torch.equal(logits, want))
            certified &= integer_certificate(cache)
            count += len(tokens)
            pool += [(model, s) for s in tokens.tolist()]
    sample = random.Random(seed).sample(pool, min(sympy_sample, len(pool)))
    weights = {id(m): exact.exact_weights(m) for m in models}
    sympy_ok = True
    for model, seq in sample:
        V = model.cfg.d_vocab - 1
        got = exact.exact_forward(model.cfg, weights[id(model)], seq)
        target = induction.induction_targets(torch.tensor([seq]), V)[0].tolist()
        sympy_ok &= got == sp.Matrix([[int(c == t) for c in range(V + 1)] for t in target])
    return {"exact_all_sequences": exact_ok, "integer_certificate": certified,
            "sequences": count, "sympy_sample": len(sample), "sympy_exact": bool(sympy_ok)}


def softmax_report(model: induction.InductionModel, tokens: Tensor) -> dict:
    """Predictions vs reference, off-target masses and margins against the proved bounds.

    The three bound comparisons are reported separately (mass_1_within, mass_2_within,
    margin_within) and allow `MASS_TOL` for rounding."""
    logits, cache = model.run_with_cache(tokens)
    target = induction.induction_targets(tokens, model.bos)
    N = tokens.shape[1]
    m1 = off_target_mass(cache["blocks.0.attn.hook_pattern"][:, 0],
                         previous_index(N).expand(len(tokens), -1))
    m2 = off_target_mass(cache["blocks.1.attn.hook_pattern"][:, 0], induction_key(tokens))
    right = logits.gather(-1, target[..., None])[..., 0]
    others = logits.scatter(-1, target[..., None], float("-inf")).amax(-1)
    bound = induction.mass_bounds(model.beta, model.cfg.n_ctx)
    max_1, max_2, margin = float(m1.max()), float(m2.max()), float((right - others).min())
    return {"correct": bool((logits.argmax(-1) == target).all()),
            "wrong_positions": int((logits.argmax(-1) != target).sum()),
            "max_mass_1": max_1, "max_mass_2": max_2, "min_margin": margin, "bounds": bound,
            "mass_1_within": at_most(max_1, bound["delta_1"]),
            "mass_2_within": at_most(max_2, bound["delta_2"]),
            "margin_within": at_least(margin, bound["margin"])}


def rounding_estimate(beta: float, n_ctx: int) -> dict[str, float]:
    """A first-order ESTIMATE of float64 rounding in the softmax model, not a proof.

    Scores are sums of <= 3 products of size <= beta * 3 N^2 (positions i^2 <= N^2), so their
    rounding error is about 4 u * 3 beta N^2; each exp(s_j - s_k) then moves by that relative
    amount, and the normalisation and the final sums add about N u. torch's exp is not
    correctly rounded and its error is not documented, which is why this stays an estimate.
    Returns the estimated logit error and the proved margin 1/(2N) it is compared with."""
    beta = validation.check_positive_real("beta", beta)
    n = validation.check_int("n_ctx", n_ctx, minimum=2)
    u = UNIT_ROUNDOFF
    score_error = 4 * u * 3 * beta * n * n
    logit_error = 2 * score_error + 4 * n * u  # both layers' softmax, then the final sums
    return {"estimated_logit_error": logit_error, "proved_margin_floor": 1 / (2 * n)}
