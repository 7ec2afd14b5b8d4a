"""Worked Example 1 (section 4): the QK matrix of a d_model = 4, d_head = 2 head, in integers.

Statement checked (claim id ``worked_example_1.qk_matrix``): W_Q W_K^T is the stated 4x4
matrix E_{0,2} + E_{1,3}, of rank 2, and the score it gives is the bilinear form
x_i W_Q W_K^T x_j^T = x_i[0] x_j[2] + x_i[1] x_j[3]: the dot product of the query's first two
coordinates with the key's last two. It is a similarity, not a match test: a key that does not
match but is longer scores higher than the matching key (the counterexample below), so the
text's "attends to j if the first two dimensions of i match the last two of j" holds only for
keys of equal norm (then Cauchy-Schwarz makes the match the unique best). Section 1 defines
W_QK with a 1/sqrt(d_k) that the example drops: with d_k = 2 the matrix is the stated one
divided by sqrt(2).
"""

from __future__ import annotations

import sympy as sp
import torch

from verify.cli_util import OneLineParser
from verify.display import matrix
from verify.registry import Outcome, claim

# The section's matrices, transcribed.
W_Q = sp.Matrix([[1, 0], [0, 1], [0, 0], [0, 0]])
W_K = sp.Matrix([[0, 0], [0, 0], [1, 0], [0, 1]])
STATED_QK = sp.Matrix([[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]])

# The counterexample to "attends to j if ... match": a query whose first two coordinates are
# (1, 0), the matching key (last two coordinates (1, 0)), and a non-matching, longer key.
QUERY = sp.Matrix([[1, 0, 0, 0]])
MATCHING_KEY = sp.Matrix([[0, 0, 1, 0]])
LONGER_KEY = sp.Matrix([[0, 0, 2, 1]])


def check_qk_matrix(w_q: sp.Matrix = W_Q, w_k: sp.Matrix = W_K,
                    stated: sp.Matrix = STATED_QK) -> Outcome:
    product = w_q * w_k.T
    d_k = w_q.shape[1]
    x, y = sp.Matrix([sp.symbols("x0:4")]), sp.Matrix([sp.symbols("y0:4")])
    form = sp.expand((x * product * y.T)[0, 0])
    expected_form = x[0] * y[2] + x[1] * y[3]
    match_score = (QUERY * product * MATCHING_KEY.T)[0, 0]
    longer_score = (QUERY * product * LONGER_KEY.T)[0, 0]
    scaled = product / sp.sqrt(d_k)
    # softmax over the two keys with the section's own 1/sqrt(d_k): the longer key wins
    weights = [sp.exp(s / sp.sqrt(d_k)) for s in (match_score, longer_score)]
    to_longer = weights[1] / sum(weights)
    passed = (product == stated and product.rank() == 2 and sp.expand(form - expected_form) == 0
              and longer_score > match_score and to_longer > sp.Rational(1, 2))
    return Outcome("corrected", passed, {
        "W_Q_W_K^T": product.tolist(), "equals_stated": product == stated,
        "rank": product.rank(), "bilinear_form": str(form),
        "counterexample": {"query": QUERY.tolist()[0], "matching_key": MATCHING_KEY.tolist()[0],
                           "matching_score": int(match_score),
                           "non_matching_longer_key": LONGER_KEY.tolist()[0],
                           "longer_key_score": int(longer_score),
                           "softmax_weight_on_longer_key": float(to_longer)},
        "with_section_1_scaling": {"d_k": d_k, "W_QK": str(scaled.tolist()),
                                   "factor": str(1 / sp.sqrt(d_k))},
        "restatement": "the head scores key j by <x_i[0:2], x_j[2:4]>; among keys of equal "
                       "norm the matching one scores highest (Cauchy-Schwarz); W_QK carries "
                       "1/sqrt(2) under section 1's definition"})


@claim("worked_example_1.qk_matrix", source="section 4, Worked Example 1",
       statement="W_Q W_K^T is the stated matrix; the head attends to j if the first two "
                 "dimensions of token i match the last two of token j")
def _qk_matrix() -> Outcome:
    return check_qk_matrix()


def inspect_worked_example_1(argv: list[str]) -> int:
    OneLineParser(prog="python -m verify inspect worked_example_1").parse_args(argv)
    to_tensor = lambda m: torch.tensor(m.tolist(), dtype=torch.float64)  # noqa: E731
    dims = ["d0", "d1", "d2", "d3"]
    print(matrix("W_Q", to_tensor(W_Q), dims, ["h0", "h1"]))
    print()
    print(matrix("W_K", to_tensor(W_K), dims, ["h0", "h1"]))
    print()
    print(matrix("W_Q W_K^T (query rows, key columns)", to_tensor(W_Q * W_K.T), dims, dims))
    print("\nscore(i, j) = x_i[0] x_j[2] + x_i[1] x_j[3]; section 1's W_QK is this / sqrt(2)")
    return 0


INSPECT = {"worked_example_1": inspect_worked_example_1}
