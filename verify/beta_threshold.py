"""The smallest temperature at which the softmax induction model is right, found by search.

`threshold` bisects over beta for the smallest value at which the softmax model of
`constructions.induction` predicts the reference at every position of every given sequence
(default: EVERY sequence of length N, which covers every shorter one, attention being causal).
It returns the bracket (just_below fails, threshold passes, threshold - just_below <= tol) and
classifies the failures at just_below: the target key (a match, or BOS when nothing matches)
against the key that drew the most other attention (BOS, another match, a non-match).

Bisection assumes that correctness, once reached, stays as beta grows; the function checks
this on a grid from the threshold up to beta* (``monotone_above``) instead of assuming it.

Proved around it (proofs/induction.md): beta*(N) = ln(8N) suffices for every V; every
beta <= ln(2N-3) fails on the family [BOS, b, ..., b, a] (`lower_bound`, `lower_bound_family`).

    python -m verify.beta_threshold --out proofs/data/induction_thresholds.json
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable

import torch
from torch import Tensor

from constructions import induction, validation
from verify.cli_util import OneLineParser, UsageError, fail
from verify.sequences import adversarial_sequences, all_sequences, induction_key, random_sequences

THRESHOLD_TOL = 1e-4   # the bisection stops when threshold - just_below <= this
BETA_FLOOR = 1e-3      # the bracket's lower end (every n >= 3 fails there: lower bound)
MONOTONE_GRID = 24     # betas checked between the threshold and the bracket's top
MAX_DOUBLINGS = 3      # the bracket's top: beta*, doubled while the model still fails
CHUNK = 4096           # sequences per forward pass
EXHAUSTIVE_CASES = ((2, 8), (3, 8), (4, 8), (2, 12), (3, 10), (2, 16))
ADVERSARIAL_CASES = ((3, 8), (3, 16), (3, 32), (3, 64), (64, 64), (3, 128))

Builder = Callable[..., induction.InductionModel]


def lower_bound(n_ctx: int) -> float:
    """ln(2N - 3): every beta in (0, ln(2N-3)] fails on `lower_bound_family` (N >= 3)."""
    n = validation.check_int("n_ctx", n_ctx, minimum=3)
    return math.log(2 * n - 3)


def lower_bound_family(n_ctx: int, vocab_size: int = 2) -> Tensor:
    """[[BOS, 1, ..., 1, 0]] of length N: no earlier 0, so the target at the end is BOS."""
    n = validation.check_int("n_ctx", n_ctx, minimum=3)
    V = validation.check_int("vocab_size", vocab_size, minimum=2)
    return torch.tensor([[V] + [1] * (n - 2) + [0]])


def all_correct(vocab_size: int, n_ctx: int, beta: float, tokens: Tensor, *,
                build: Builder = induction.build_induction_model) -> bool:
    """Does the softmax model at ``beta`` predict the reference everywhere on ``tokens``?"""
    model = build(vocab_size, n_ctx, "softmax", beta=beta)
    for batch in tokens.split(CHUNK):
        target = induction.induction_targets(batch, vocab_size)
        if not bool((model(batch).argmax(-1) == target).all()):
            return False
    return True


def bisect(ok: Callable[[float], bool], lo: float, hi: float, *, tol: float = THRESHOLD_TOL
           ) -> tuple[float, float]:
    """(lo, hi) with not ok(lo), ok(hi), hi - lo <= tol; ValueError if the bracket is not one."""
    if not 0 < lo < hi:
        raise ValueError(f"bracket must satisfy 0 < lo < hi, got lo={lo}, hi={hi}")
    tol = validation.check_positive_real("tol", tol)
    if ok(lo) or not ok(hi):
        raise ValueError(f"bracket [{lo}, {hi}] must fail at lo and pass at hi")
    while hi - lo > tol:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return lo, hi


def classify_failures(model: induction.InductionModel, tokens: Tensor) -> dict:
    """Failing positions of ``model`` on ``tokens``: counts per family and the shortest example.

    Family = "<target> vs <rival>": target "match" (kappa > 0) or "no match" (kappa = 0, BOS);
    rival = the key other than kappa with the most block-1 attention: "BOS", "match" (x_{j-1} =
    x_T) or "non-match"."""
    families: Counter[str] = Counter()
    example: dict | None = None
    for batch in tokens.split(CHUNK):
        logits, cache = model.run_with_cache(batch)
        target = induction.induction_targets(batch, model.bos)
        kappa = induction_key(batch)
        pattern = cache["blocks.1.attn.hook_pattern"][:, 0].clone()   # [batch, q, k]
        pattern.scatter_(-1, kappa[..., None], -1.0)
        rival = pattern.argmax(-1)                                    # [batch, q]
        for b, t in (logits.argmax(-1) != target).nonzero().tolist():
            j, x_t = int(rival[b, t]), int(batch[b, t])
            kind = "BOS" if j == 0 else ("match" if int(batch[b, j - 1]) == x_t else "non-match")
            family = f"{'match' if int(kappa[b, t]) else 'no match'} vs {kind}"
            families[family] += 1
            if example is None or t + 1 < len(example["sequence"]):
                example = {"sequence": batch[b, : t + 1].tolist(), "position": t,
                           "family": family, "target_key": int(kappa[b, t]), "rival_key": j}
    return {"families": dict(families.most_common()), "shortest_example": example}


def threshold(vocab_size: int, n_ctx: int, tokens: Tensor | None = None, *,
              build: Builder = induction.build_induction_model, tol: float = THRESHOLD_TOL
              ) -> dict:
    """The smallest beta (to ``tol``) at which the model is right on ``tokens`` (default: every
    sequence of length n_ctx), with the failures just below it and a monotonicity scan.

    The bracket's top starts at beta* and doubles (at most `MAX_DOUBLINGS` times) while the
    model still fails there, so a model that needs more than beta* shows a threshold above it
    (``inf`` when even the last top fails)."""
    V = validation.check_int("vocab_size", vocab_size, minimum=1)
    N = validation.check_int("n_ctx", n_ctx, minimum=3)
    exhaustive = tokens is None
    tokens = all_sequences(V, N) if tokens is None else tokens
    star = induction.beta_star(N)

    def ok(beta: float) -> bool:
        return all_correct(V, N, beta, tokens, build=build)

    start = time.perf_counter()
    top = star
    for _ in range(MAX_DOUBLINGS):
        if ok(top):
            break
        top *= 2
    base = {"vocab_size": V, "n_ctx": N, "exhaustive": exhaustive, "sequences": len(tokens),
            "tol": tol, "beta_star": star, "lower_bound": lower_bound(N)}
    if not ok(top):
        return {**base, "threshold": math.inf, "just_below": top, "monotone_above": False,
                "failures_just_below": classify_failures(build(V, N, "softmax", beta=top), tokens)}
    lo, hi = bisect(ok, BETA_FLOOR, top, tol=tol)
    grid = [hi + (top - hi) * k / MONOTONE_GRID for k in range(1, MONOTONE_GRID + 1)]
    return {**base, "threshold": hi, "just_below": lo, "ln_2N": math.log(2 * N),
            "beta_star_over_threshold": star / hi,
            "monotone_above": all(ok(b) for b in grid),
            "failures_just_below": classify_failures(build(V, N, "softmax", beta=lo), tokens),
            "seconds": round(time.perf_counter() - start, 3)}


def adversarial_threshold(vocab_size: int, n_ctx: int, *, n_random: int = 300) -> dict:
    """`threshold` on `adversarial_sequences` plus random ones (N too large to enumerate): a
    LOWER estimate of the true threshold (a missing sequence could fail higher up)."""
    tokens = torch.cat([adversarial_sequences(vocab_size, n_ctx),
                        random_sequences(vocab_size, n_ctx, n_random)])
    return threshold(vocab_size, n_ctx, tokens)


def record(cases: tuple = EXHAUSTIVE_CASES, adversarial: tuple = ADVERSARIAL_CASES) -> dict:
    """Everything `main` writes: exhaustive and adversarial thresholds, versions, command."""
    return {"command": "python -m verify.beta_threshold --out proofs/data/induction_thresholds.json",
            "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(),
            "exhaustive": [threshold(V, N) for V, N in cases],
            "adversarial": [adversarial_threshold(V, N) for V, N in adversarial]}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m verify.beta_threshold",
                           description="Exhaustive and adversarial beta thresholds (JSON).")
    parser.add_argument("--out", help="write the JSON here (default: print it)")
    try:
        ns = parser.parse_args(argv)
    except UsageError as error:
        return fail(str(error))
    torch.set_num_threads(1)
    text = json.dumps(record(), indent=1)
    if ns.out:
        with open(ns.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
