"""Coding Demo 1's checks (verify/claims/induction_examples.py): the demo's own matrix, the
reference frame and the evidence each check reports, pinned so that a changed entry, bound or
slice fails a test (mutation testing, issue 13)."""

from __future__ import annotations

import pytest
import torch

from constructions import circuits, induction, transformer
from verify import detectors
from verify.claims import induction_examples as I

DEMO_ONES = [[4, 1], [5, 2], [6, 3]]
IDEAL_ONES = [*DEMO_ONES, [7, 4]]


def test_demo_matrix_is_the_demo_s_three_ones():
    m = I.demo_matrix()
    assert m.shape == (8, 8) and m.dtype == torch.float64
    assert m.nonzero().tolist() == DEMO_ONES and float(m.sum()) == 3.0


def test_reference_frame_of_the_demo_sequence_and_others():
    frame = I.reference_frame()
    assert frame.shape == (8, 8) and frame.dtype == torch.float64
    assert frame.nonzero().tolist() == IDEAL_ONES and float(frame.sum()) == 4.0
    # a repeat right after the first token: row 1's target is key 1 (kappa = 2 in the BOS frame)
    assert I.reference_frame([3, 3, 3]).nonzero().tolist() == [[1, 1], [2, 2]]
    assert I.reference_frame([0, 1, 2]).sum() == 0  # no repeats, no targets


def test_ideal_literal_evidence_and_its_flip():
    found = I.check_ideal_literal()
    assert not found.holds
    assert found.evidence == {"given_nonzero": DEMO_ONES, "reference_nonzero": IDEAL_ONES}
    fixed = I.check_ideal_literal(I.reference_frame().to(torch.float32))
    assert fixed.holds and fixed.evidence["given_nonzero"] == IDEAL_ONES


def test_ideal_restated_evidence():
    found = I.check_ideal_restated()
    assert found.holds
    assert found.evidence == {"ours_nonzero": IDEAL_ONES, "rows_on_bos": [0, 1, 2, 3],
                              "rows_without_target": [0, 1, 2, 3]}


class _Patterned:
    """A stand-in model whose block-1 pattern is given (BOS at index 0)."""

    def __init__(self, pattern: torch.Tensor) -> None:
        self.pattern = pattern

    def run_with_cache(self, tokens):
        return None, {"blocks.1.attn.hook_pattern": self.pattern[None, None]}


def _ideal_full() -> torch.Tensor:
    full = torch.zeros(9, 9, dtype=torch.float64)
    full[1:, 1:] = I.reference_frame()
    for q in range(1, 5):
        full[q, 0] = 1.0
    return full


def test_ideal_restated_bos_rows_at_the_half_bound():
    assert I.check_ideal_restated(_Patterned(_ideal_full())).holds
    split = _ideal_full()
    split[1, 0], split[1, 1] = 0.5, 0.5  # a tie between BOS and the token itself
    found = I.check_ideal_restated(_Patterned(split))
    assert not found.holds and found.evidence["rows_on_bos"] == [1, 2, 3]
    assert found.evidence["ours_nonzero"] == IDEAL_ONES  # 0.5 is not above the half
    moved = _ideal_full()
    moved[1, 0], moved[1, 1] = 0.0, 1.0  # a row without target attends to itself
    found = I.check_ideal_restated(_Patterned(moved))
    assert not found.holds and found.evidence["ours_nonzero"] == [[0, 0], *IDEAL_ONES]
    extra_bos = _ideal_full()
    extra_bos[5, 0] = 1.0  # the frame is intact; a row with a target also reads BOS
    found = I.check_ideal_restated(_Patterned(extra_bos))
    assert not found.holds and found.evidence["ours_nonzero"] == IDEAL_ONES
    assert found.evidence["rows_on_bos"] == [0, 1, 2, 3, 4]


# --- verify/detectors.py: the chance level ------------------------------------------------------

def test_chance_score_is_uniform_causal_attention():
    """Row i of uniform causal attention puts 1/(i+1) on each key: with one target in rows 1
    and 2 the 'rows' score is the mean of 1/2 and 1/3."""
    D = torch.zeros(3, 3)
    D[1, 0] = D[2, 1] = 1
    score = detectors.chance_score(D)
    assert score.dtype == torch.float64 and score.shape == (1,)
    assert float(score) == pytest.approx(5 / 12, rel=1e-15)
    assert detectors.chance_score(torch.stack([D, D])).tolist() == pytest.approx([5 / 12] * 2)
    with pytest.raises(ValueError, match=r"^detection must be a tensor \[q, k\] or \[batch, q, k\] "
                                         r"with q == k$"):
        detectors.chance_score(torch.zeros(2, 3))
    D4 = torch.zeros(1, 4, 4)
    D4[0, 3, 0] = 1
    assert float(detectors.chance_score(D4)) == pytest.approx(1 / 4, rel=1e-15)


def test_cat_sat_restated_needs_the_hard_model_to_predict_too():
    """The hard model's row stays one-hot on the target but its unembedding is rolled: the
    prediction is wrong, and that alone fails the check."""
    vocab, ids = I.tokenize(I.SENTENCE)
    hard = induction.build_induction_model(len(vocab), len(ids) + 1, "hard")
    with torch.no_grad():
        hard.unembed.W_U.copy_(hard.unembed.W_U.roll(1, dims=1))
    found = I.check_cat_sat_restated(hard=hard)
    assert not found.holds and found.evidence["hard_row_one_hot"] is False
    assert I.check_cat_sat_restated().holds


# --- verify/detectors.py: messages, bounds at the edge, defaults -------------------------------


def test_copying_score_refusals_and_the_zero_edge():
    with pytest.raises(ValueError, match=r"^matrix must be a square 2-D tensor \(the full OV "
                                         r"circuit\), got \(2, 3\)$"):
        detectors.copying_score(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"got <class 'list'>$"):
        detectors.copying_score([[1.0]])
    with pytest.raises(ValueError, match=r"got \(4,\)$"):
        detectors.copying_score(torch.zeros(4))
    with pytest.raises(ValueError, match=r"^matrix: the full OV circuit is zero, its copying score "
                                         r"is undefined$"):
        detectors.copying_score(torch.zeros(3, 3))
    edge = torch.zeros(2, 2, dtype=torch.float64)
    edge[0, 0] = detectors.EIGEN_ZERO  # sum |lambda| exactly at the bound: defined
    assert detectors.copying_score(edge) == 1.0
    assert detectors.copying_score(-torch.eye(3, dtype=torch.float32)) == -1.0
    third = torch.tensor([[1 / 3]], dtype=torch.float32)  # computed in float64
    assert detectors.copying_score(third) == 1.0


def _two_layer_model():
    cfg = transformer.Config(n_layers=2, n_heads=2, d_model=4, d_head=2, d_vocab=5, n_ctx=9)
    return transformer.Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=3))


def test_head_pattern_names_the_allowed_range():
    model, tokens = _two_layer_model(), torch.tensor([[0, 1, 2]])
    with pytest.raises(ValueError, match=r"^layer must be in \[0, 1\], got 2$"):
        detectors.head_pattern(model, tokens, 2)
    with pytest.raises(ValueError, match=r"^head must be in \[0, 1\], got 2$"):
        detectors.head_pattern(model, tokens, 0, 2)
    _, cache = model.run_with_cache(tokens)
    assert torch.equal(detectors.head_pattern(model, tokens, 1),
                       cache["blocks.1.attn.hook_pattern"][:, 0])


def test_scores_read_the_head_they_are_given():
    model = _two_layer_model()
    tokens = detectors.repeated_random_tokens(2, 4, 4, seed=0)
    _, cache = model.run_with_cache(tokens)
    for layer in (0, 1):
        for head in (0, 1):
            pattern = cache[f"blocks.{layer}.attn.hook_pattern"][:, head]
            assert detectors.previous_token_score(model, layer, head, tokens) == float(
                detectors.pattern_score(pattern, detectors.previous_token_pattern(9)).mean())
            assert detectors.prefix_matching_score(model, layer, head, tokens) == float(
                detectors.pattern_score(pattern, detectors.induction_pattern(tokens)).mean())
    assert detectors.head_copying_score(model, 1) == detectors.copying_score(
        circuits.full_ov(model, 1, 0))


def test_pattern_score_messages():
    with pytest.raises(ValueError, match=r"^normalization must be one of 'rows', "
                                         r"'transformer_lens'; got 'x'$"):
        detectors.pattern_score(torch.eye(2), torch.eye(2), normalization="x")
    with pytest.raises(ValueError, match=r"^pattern must be a tensor"):
        detectors.pattern_score(torch.zeros(2, 3), torch.eye(2))
    with pytest.raises(ValueError, match=r"^detection must be a tensor"):
        detectors.pattern_score(torch.eye(2), torch.zeros(2, 3))
    third = torch.full((1, 1), 1 / 3, dtype=torch.float32)
    one = torch.ones(1, 1, dtype=torch.float32)
    assert float(detectors.pattern_score(one, one)) == 1.0
    assert detectors.pattern_score(third, one).dtype == torch.float64


def test_repeated_random_tokens_edges_and_messages():
    t = detectors.repeated_random_tokens(1, 1, 1, seed=0)  # every minimum at once
    assert t.tolist() == [[1, 0, 0]]
    for name, args in (("n_seqs", (0, 1, 1)), ("half", (1, 0, 1)), ("vocab_size", (1, 1, 0))):
        with pytest.raises(ValueError, match=rf"^{name} must be >= 1, got 0$"):
            detectors.repeated_random_tokens(*args, seed=0)
    distinct = detectors.repeated_random_tokens(50, 4, 4, seed=1)
    assert all(sorted(row[1:5]) == [0, 1, 2, 3] for row in distinct.tolist())  # a permutation
    long = detectors.repeated_random_tokens(50, 6, 2, seed=1)  # half > vocab: with repeats
    assert long.shape == (50, 13) and set(long[:, 1:].unique().tolist()) == {0, 1}
    assert torch.equal(long, detectors.repeated_random_tokens(50, 6, 2, seed=1))
    assert detectors.repeated_random_tokens(1, 2, 3, seed=0, bos=9)[0, 0] == 9


def test_pattern_score_refuses_a_mismatched_or_acausal_detection():
    with pytest.raises(ValueError, match=r"^detection must be \[3, 3\] like the pattern, got "
                                         r"\(1, 2, 2\)$"):
        detectors.pattern_score(torch.eye(3)[None], torch.eye(2))
    upper = torch.zeros(3, 3)
    upper[0, 2] = 1
    with pytest.raises(ValueError, match=r"^detection must be lower triangular \(a causal head "
                                         r"cannot attend to a later key\); got a nonzero entry "
                                         r"above the diagonal$"):
        detectors.pattern_score(torch.eye(3), upper)
    with pytest.raises(ValueError, match=r"^detection must hold only 0 and 1$"):
        detectors.pattern_score(torch.eye(3), 2 * torch.eye(3))


def test_copying_score_is_computed_in_float64():
    """Eigenvalues 1 and -1e-8: the score is (1 - 1e-8) / (1 + 1e-8) in float64; in float32
    the small eigenvalue vanishes against 1 and the score would be exactly 1."""
    m = torch.tensor([[1.0, 0.0], [0.0, -1e-8]], dtype=torch.float32)
    assert detectors.copying_score(m) == pytest.approx((1 - 1e-8) / (1 + 1e-8), rel=1e-12)
    assert detectors.copying_score(m) != 1.0
