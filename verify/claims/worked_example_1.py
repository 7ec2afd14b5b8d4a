"""Worked Example 1 (section 4): the QK matrix of a d_model = 4, d_head = 2 head, in integers.

Statement checked (claim id ``worked_example_1.qk_matrix``): W_Q W_K^T is the stated 4x4
matrix E_{0,2} + E_{1,3}, of rank 2, and the score it gives is the bilinear form
x_i W_Q W_K^T x_j^T = x_i[0] x_j[2] + x_i[1] x_j[3]: the dot product of the query's first two
coordinates with the key's last two. It is a similarity, not a match test: a key that does not
match but is longer scores higher than the matching key (the counterexample below), so the
text's "attends to j if the first two dimensions of i match the last two of j" holds only for
keys of equal norm (then Cauchy-Schwarz makes the match the unique best). Section 1 defines
W_QK with a 1/sqrt(d_k) that the example drops: with d_k = 2 the matrix is the stated one
divided by sqrt(2). The title promises "OV and QK Matrix Rank": the example has no OV matrix,
and the QK matrix has rank 2 (= d_head), which the restated check reports.

- literal: the product is the stated matrix AND among the keys given (default: the matching key
  and a longer non-matching one) the matching key gets the unique highest score;
- restated: the product is the stated rank-2 matrix, the score is the dot product of the query's
  first two with the key's last two coordinates, and among keys of equal norm the aligned key
  wins (Cauchy-Schwarz).
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp
import torch

from verify.cli_util import OneLineParser
from verify.display import matrix
from verify.registry import Finding, claim

# The section's matrices, transcribed.
W_Q = sp.Matrix([[1, 0], [0, 1], [0, 0], [0, 0]])
W_K = sp.Matrix([[0, 0], [0, 0], [1, 0], [0, 1]])
STATED_QK = sp.Matrix([[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]])

# The counterexample to "attends to j if ... match": a query whose first two coordinates are
# (1, 0), the matching key (last two coordinates (1, 0)), and a non-matching, longer key.
QUERY = sp.Matrix([[1, 0, 0, 0]])
MATCHING_KEY = sp.Matrix([[0, 0, 1, 0]])
LONGER_KEY = sp.Matrix([[0, 0, 2, 1]])


def _scores(product: sp.Matrix, query: sp.Matrix, keys: Sequence[sp.Matrix]) -> list[sp.Expr]:
    return [sp.nsimplify((query * product * k.T)[0, 0]) for k in keys]


def _matches(query: sp.Matrix, key: sp.Matrix) -> bool:
    """The section's match: the query's first two coordinates equal the key's last two."""
    return bool(query[0, 0:2] == key[0, 2:4])


def check_literal(w_q: sp.Matrix = W_Q, w_k: sp.Matrix = W_K, stated: sp.Matrix = STATED_QK,
                  query: sp.Matrix = QUERY,
                  keys: Sequence[sp.Matrix] = (MATCHING_KEY, LONGER_KEY)) -> Finding:
    """W_Q W_K^T is the stated matrix, and the head attends to the key that matches: among
    ``keys``, the unique highest score is a key whose last two coordinates equal the query's
    first two. (Made precise: "attends to j" = j has the highest score.)"""
    product = w_q * w_k.T
    scores = _scores(product, query, keys)
    best = [i for i, s in enumerate(scores) if s == max(scores)]
    attends_to_match = len(best) == 1 and _matches(query, keys[best[0]])
    holds = product == stated and attends_to_match
    return Finding(holds, {
        "W_Q_W_K^T": product.tolist(), "equals_stated": product == stated,
        "query": query.tolist()[0], "keys": [k.tolist()[0] for k in keys],
        "matches": [_matches(query, k) for k in keys], "scores": [str(s) for s in scores],
        "argmax": best})


def unit_keys(query: sp.Matrix, n: int = 12) -> list[sp.Matrix]:
    """Keys whose last two coordinates lie on the unit circle at n angles (the first is the
    direction of the query's first two coordinates), first two coordinates zero."""
    u = query[0, 0:2] / sp.sqrt(query[0, 0] ** 2 + query[0, 1] ** 2)
    keys = []
    for i in range(n):
        c, s = sp.cos(2 * sp.pi * i / n), sp.sin(2 * sp.pi * i / n)
        rotated = (u[0] * c - u[1] * s, u[0] * s + u[1] * c)
        keys.append(sp.Matrix([[0, 0, *rotated]]))
    return keys


def check_restated(w_q: sp.Matrix = W_Q, w_k: sp.Matrix = W_K, stated: sp.Matrix = STATED_QK,
                   query: sp.Matrix = QUERY, keys: Sequence[sp.Matrix] | None = None) -> Finding:
    """W_Q W_K^T is the stated rank-2 matrix; the score is <x_i[0:2], x_j[2:4]>; among keys of
    equal norm (default: unit keys at 12 angles) the aligned key scores strictly highest
    (Cauchy-Schwarz); section 1's W_QK is the matrix divided by sqrt(d_k)."""
    product = w_q * w_k.T
    d_k = w_q.shape[1]
    x, y = sp.Matrix([sp.symbols("x0:4")]), sp.Matrix([sp.symbols("y0:4")])
    form = sp.expand((x * product * y.T)[0, 0])
    form_ok = sp.expand(form - (x[0] * y[2] + x[1] * y[3])) == 0
    keys = unit_keys(query) if keys is None else list(keys)
    scores = [sp.simplify(s) for s in _scores(product, query, keys)]
    aligned = [i for i, k in enumerate(keys)
               if sp.simplify(k[0, 2] * query[0, 1] - k[0, 3] * query[0, 0]) == 0
               and sp.simplify(k[0, 2] * query[0, 0] + k[0, 3] * query[0, 1]) > 0]
    best = [i for i, s in enumerate(scores) if sp.simplify(s - max(scores)) == 0]
    equal_norms = len({sp.simplify(k[0, 2] ** 2 + k[0, 3] ** 2) for k in keys}) == 1
    cauchy_schwarz = equal_norms and best == aligned and len(aligned) == 1
    rank = product.rank()
    # rank 2 and the dot-product form follow from product == stated: evidence, not conditions
    holds = product == stated and cauchy_schwarz
    # the section's own counterexample keys, for the reader (not a condition)
    longer = _scores(product, QUERY, (MATCHING_KEY, LONGER_KEY))
    weights = [sp.exp(s / sp.sqrt(d_k)) for s in longer]
    return Finding(holds, {
        "equals_stated": product == stated, "rank": rank,
        "rank_means": "the head reads a 2-dimensional subspace of the query (coordinates 0, 1) "
                      "and of the key (coordinates 2, 3); d_head = 2 bounds the rank by 2",
        "bilinear_form": str(form), "bilinear_form_is_dot_product": form_ok,
        "equal_norm_keys": len(keys), "equal_norms": equal_norms,
        "aligned_key_is_unique_argmax": cauchy_schwarz,
        "counterexample": {"query": QUERY.tolist()[0], "matching_key": MATCHING_KEY.tolist()[0],
                           "matching_score": int(longer[0]),
                           "non_matching_longer_key": LONGER_KEY.tolist()[0],
                           "longer_key_score": int(longer[1]),
                           "softmax_weight_on_longer_key": float(weights[1] / sum(weights))},
        "with_section_1_scaling": {"d_k": d_k, "W_QK": str((product / sp.sqrt(d_k)).tolist())}})


qk_matrix = claim("worked_example_1.qk_matrix", source="section 4, Worked Example 1",
                  statement="W_Q W_K^T is the stated matrix; the head attends to j if the first "
                            "two dimensions of token i match the last two of token j")
qk_matrix.literal(check_literal)
qk_matrix.restated(check_restated)


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
