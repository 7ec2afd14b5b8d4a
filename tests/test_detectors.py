"""Head detectors: our heads score ~1, random heads ~chance, TransformerLens agrees."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from constructions import induction, transformer
from constructions.transformer import Transformer
from tests import strategies as S
from verify import detectors


def _model(V: int = 10, N: int = 21) -> induction.InductionModel:
    return induction.build_induction_model(V, N, "softmax")


def test_patterns_by_hand() -> None:
    tokens = torch.tensor([[9, 1, 2, 1, 2]])
    D = detectors.induction_pattern(tokens)[0]
    assert D.nonzero().tolist() == [[3, 2], [4, 3]]
    assert detectors.duplicate_token_pattern(tokens)[0].nonzero().tolist() == [[3, 1], [4, 2]]
    assert detectors.previous_token_pattern(3).nonzero().tolist() == [[1, 0], [2, 1]]


def test_our_heads_score_one_within_bounds() -> None:
    model = _model()
    tokens = detectors.repeated_random_tokens(10, 10, 10, seed=1)
    b = induction.mass_bounds(model.beta, model.cfg.n_ctx)
    assert detectors.prefix_matching_score(model, 1, 0, tokens) >= 1 - b["delta_2"]
    assert detectors.previous_token_score(model, 0, 0, tokens) >= 1 - b["delta_1"]
    assert detectors.head_copying_score(model, 1, 0) == pytest.approx(1.0, abs=1e-12)
    hard = induction.build_induction_model(10, 21, "hard")
    assert detectors.prefix_matching_score(hard, 1, 0, tokens) == 1.0
    assert detectors.previous_token_score(hard, 0, 0, tokens) == 1.0


def test_normalizations_relate_exactly() -> None:
    """tl = rows * R / n, with R rows that have a target out of n."""
    model = _model()
    tokens = detectors.repeated_random_tokens(5, 10, 10, seed=2)
    pattern = detectors.head_pattern(model, tokens, 1)
    D = detectors.induction_pattern(tokens)
    rows = detectors.pattern_score(pattern, D)
    tl = detectors.pattern_score(pattern, D, normalization="transformer_lens")
    R = (D.sum(-1) > 0).sum(-1)
    assert torch.allclose(tl, rows * R / tokens.shape[1], atol=1e-14, rtol=0)


def test_random_heads_near_chance() -> None:
    cfg = _model().cfg
    tokens = detectors.repeated_random_tokens(20, 10, 10, seed=3)
    chance = float(detectors.chance_score(detectors.induction_pattern(tokens)).mean())
    for seed in range(3):
        rand = Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=seed))
        for layer in (0, 1):
            assert detectors.prefix_matching_score(rand, layer, 0, tokens) < 0.5
            assert detectors.previous_token_score(rand, layer, 0, tokens) < 0.5
    assert 0 < chance < 0.2


def test_copying_score_values() -> None:
    assert detectors.copying_score(torch.eye(4)) == pytest.approx(1.0)
    assert detectors.copying_score(-torch.eye(4)) == pytest.approx(-1.0)
    assert detectors.copying_score(torch.diag(torch.tensor([1.0, -1.0]))) == pytest.approx(0.0)


# --- TransformerLens cross-check ----------------------------------------------------------

@given(S.induction_cases(min_vocab=2, max_vocab=6, max_ctx=10, batch=1), S.seeds)
def test_detection_patterns_equal_transformer_lens(case, seed) -> None:
    hd = pytest.importorskip("transformer_lens.head_detector")
    _, _, tokens = case
    if tokens.shape[1] < 2:
        return
    assert torch.equal(detectors.induction_pattern(tokens)[0],
                       hd.get_induction_head_detection_pattern(tokens).double())
    assert torch.equal(detectors.duplicate_token_pattern(tokens)[0],
                       hd.get_duplicate_token_head_detection_pattern(tokens).double())
    assert torch.equal(detectors.previous_token_pattern(tokens.shape[1]),
                       hd.get_previous_token_head_detection_pattern(tokens).double())


@pytest.mark.parametrize("which", ["ours", "random"])
@pytest.mark.parametrize("exclude_bos, exclude_current_token",
                         [(False, False), (True, False), (False, True), (True, True)])
def test_scores_equal_transformer_lens(which: str, exclude_bos: bool,
                                       exclude_current_token: bool) -> None:
    """Same weights in HookedTransformer; TL's score on TL's pattern == ours on ours."""
    hd = pytest.importorskip("transformer_lens.head_detector")
    from verify.benchmarks.induction import hooked_transformer

    model = _model()
    if which == "random":
        model = Transformer.from_weights(model.cfg, transformer.random_weights(model.cfg, seed=5))
    tl = hooked_transformer(model)
    tokens = detectors.repeated_random_tokens(3, 10, 10, seed=4)
    _, cache = tl.run_with_cache(tokens)
    for b in range(len(tokens)):
        seq = tokens[b: b + 1]
        for layer in (0, 1):
            ours_pattern = detectors.head_pattern(model, seq, layer)[0]
            tl_pattern = cache["pattern", layer][b, 0]
            for D, theirs in ((detectors.induction_pattern(seq)[0],
                               hd.get_induction_head_detection_pattern(seq)),
                              (detectors.previous_token_pattern(seq.shape[1]),
                               hd.get_previous_token_head_detection_pattern(seq))):
                tl_score = hd.compute_head_attention_similarity_score(
                    tl_pattern, theirs.double(), exclude_bos=exclude_bos,
                    exclude_current_token=exclude_current_token, error_measure="mul")
                ours = detectors.pattern_score(ours_pattern, D, normalization="transformer_lens",
                                               exclude_bos=exclude_bos,
                                               exclude_current_token=exclude_current_token)
                assert float(ours) == pytest.approx(tl_score, abs=1e-12)


# --- bad input ----------------------------------------------------------------------------

def test_bad_input() -> None:
    with pytest.raises(ValueError, match="normalization"):
        detectors.pattern_score(torch.eye(3), torch.eye(3), normalization="mean")
    with pytest.raises(ValueError, match="pattern"):
        detectors.pattern_score(torch.ones(2, 3), torch.eye(3))
    with pytest.raises(ValueError, match="detection"):
        detectors.pattern_score(torch.eye(3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="matrix"):
        detectors.copying_score(torch.ones(2, 3))
    with pytest.raises(ValueError, match="zero"):
        detectors.copying_score(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="zero"):
        detectors.head_copying_score(_model(), 0, 0)  # layer 1 writes no logits
    with pytest.raises(TypeError, match="tokens"):
        detectors.induction_pattern(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="n"):
        detectors.previous_token_pattern(0)
    with pytest.raises(ValueError, match="half"):
        detectors.repeated_random_tokens(2, 0, 5, seed=0)
    with pytest.raises(ValueError, match="layer"):
        detectors.head_pattern(_model(), detectors.repeated_random_tokens(1, 3, 10, seed=0), 2)
    with pytest.raises(ValueError, match="head"):
        detectors.head_pattern(_model(), detectors.repeated_random_tokens(1, 3, 10, seed=0), 0, 1)


@given(st.integers(1, 12))
def test_chance_is_uniform_score(n: int) -> None:
    D = detectors.previous_token_pattern(max(n, 2))
    uniform = torch.ones(D.shape, dtype=torch.float64).tril()
    uniform = uniform / uniform.sum(-1, keepdim=True)
    assert torch.allclose(detectors.chance_score(D), detectors.pattern_score(uniform, D))


# --- issue 12 section 4 and issue 13: refusals, exclusions, the token generator ------------

def test_detection_pattern_must_be_lower_triangular_zero_one() -> None:
    A = torch.eye(7, dtype=torch.float64)
    with pytest.raises(ValueError, match="lower triangular"):
        detectors.pattern_score(A, torch.ones(7, 7))      # TransformerLens refuses it too
    upper_only = torch.zeros(7, 7)
    upper_only[2, 3] = 1                                  # one entry just above the diagonal
    with pytest.raises(ValueError, match="lower triangular"):
        detectors.pattern_score(A, upper_only + detectors.previous_token_pattern(7))
    with pytest.raises(ValueError, match="only 0 and 1"):
        detectors.pattern_score(A, 0.5 * detectors.previous_token_pattern(7))
    with pytest.raises(ValueError, match=r"\[7, 7\]"):
        detectors.pattern_score(A, detectors.previous_token_pattern(6))
    # the diagonal itself is allowed (the induction pattern has it where x_{i-1} = x_i)
    assert float(detectors.pattern_score(A, torch.eye(7))) == 1.0


def test_tl_refuses_the_same_pattern() -> None:
    hd = pytest.importorskip("transformer_lens.head_detector",
                             reason="TransformerLens is not installed (the 'peers' extra)")
    from transformer_lens.utilities import is_lower_triangular

    assert not is_lower_triangular(torch.ones(7, 7))
    assert hd is not None


@given(S.induction_cases(min_vocab=2, max_vocab=8, max_ctx=12, batch=1))
def test_perfect_head_scores_one_whatever_the_exclusions(case) -> None:
    """A head attending only to its targets scores 1 under every exclusion (the docstring)."""
    _, _, tokens = case
    n = tokens.shape[1]
    if n < 3:
        return
    for D in (detectors.previous_token_pattern(n)[None], detectors.induction_pattern(tokens),
              detectors.duplicate_token_pattern(tokens)):
        perfect = D / D.sum(-1, keepdim=True).clamp_min(1)
        perfect[:, :, 0] += (D.sum(-1) == 0).double()       # rows with no target: BOS
        for bos in (False, True):
            for cur in (False, True):
                kept = D.clone()
                if bos:
                    kept[:, :, 0] = 0
                if cur:
                    kept.diagonal(dim1=-2, dim2=-1).zero_()
                if not bool((kept.sum(-1) > 0).any()):
                    with pytest.raises(ValueError, match="no row"):
                        detectors.pattern_score(perfect, D, exclude_bos=bos,
                                                exclude_current_token=cur)
                    continue
                score = detectors.pattern_score(perfect, D, exclude_bos=bos,
                                                exclude_current_token=cur)
                assert float(score) == pytest.approx(1.0, abs=1e-12)


def test_previous_token_head_with_exclude_bos_scores_one_not_0_95() -> None:
    hard = induction.build_induction_model(10, 21, "hard")
    tokens = detectors.repeated_random_tokens(1, 10, 10, seed=0)   # 20 rows with a target
    pattern = detectors.head_pattern(hard, tokens, 0)
    D = detectors.previous_token_pattern(21)
    assert float(detectors.pattern_score(pattern, D, exclude_bos=True)[0]) == 1.0
    # without the exclusion row 1 (target: BOS) counts and the head still scores 1
    assert float(detectors.pattern_score(pattern, D)[0]) == 1.0
    # TransformerLens's normalization drops row 1's attention from its denominator too
    tl = detectors.pattern_score(pattern, D, normalization="transformer_lens", exclude_bos=True)
    assert float(tl[0]) == 1.0


def test_exclude_current_token_removes_the_diagonal_from_attention() -> None:
    # half on itself, half on the previous token: 0.5 as is, 1 once the diagonal is excluded
    n = 5
    A = (torch.eye(n, dtype=torch.float64) + detectors.previous_token_pattern(n)) / 2
    A[0, 0] = 1
    D = detectors.previous_token_pattern(n)
    assert float(detectors.pattern_score(A, D)) == pytest.approx(0.5)
    assert float(detectors.pattern_score(A, D, exclude_current_token=True)) == pytest.approx(1.0)
    assert float(detectors.pattern_score(A, D, exclude_bos=True)) == pytest.approx(0.5 * 3 / 3)


def test_exclude_current_token_removes_the_diagonal_from_targets() -> None:
    # x = [B, 1, 1]: the induction pattern's row 2 targets key 2 itself (x_1 = x_2)
    tokens = torch.tensor([[5, 1, 1]])
    D = detectors.induction_pattern(tokens)
    assert D[0, 2, 2] == 1
    on_self = torch.eye(3, dtype=torch.float64)
    assert float(detectors.pattern_score(on_self, D)) == 1.0
    with pytest.raises(ValueError, match="after the exclusions"):
        detectors.pattern_score(on_self, D, exclude_current_token=True)


def test_rows_left_without_attention_do_not_count() -> None:
    # row 1 attends only to BOS; row 2 only to its target 1: excluding BOS leaves row 2 alone
    A = torch.tensor([[1.0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=torch.float64)
    D = detectors.previous_token_pattern(3)
    assert float(detectors.pattern_score(A, D)) == 1.0
    assert float(detectors.pattern_score(A, D, exclude_bos=True)) == 1.0
    A[2] = torch.tensor([0.5, 0.25, 0.25])   # row 2: of the attention left, half on target
    assert float(detectors.pattern_score(A, D, exclude_bos=True)) == pytest.approx(0.5)


def test_repeated_random_tokens_options() -> None:
    t = detectors.repeated_random_tokens(4, 6, 10, seed=3)
    assert t.shape == (4, 13) and bool((t[:, 0] == 10).all())
    assert torch.equal(t[:, 1:7], t[:, 7:])
    assert all(len(set(row[1:7].tolist())) == 6 for row in t)       # no repeats: half <= V
    assert torch.equal(t, detectors.repeated_random_tokens(4, 6, 10, seed=3))
    assert not torch.equal(t, detectors.repeated_random_tokens(4, 6, 10, seed=4))
    long = detectors.repeated_random_tokens(3, 12, 4, seed=0)        # half > V: with repeats
    assert long.shape == (3, 25) and int(long[:, 1:].max()) < 4
    assert torch.equal(long[:, 1:13], long[:, 13:])
    assert any(len(set(row[1:13].tolist())) < 12 for row in long)
    at_bound = detectors.repeated_random_tokens(2, 4, 4, seed=0)     # half == V: a permutation
    assert all(sorted(row[1:5].tolist()) == [0, 1, 2, 3] for row in at_bound)
    custom = detectors.repeated_random_tokens(2, 3, 5, seed=0, bos=0)
    assert bool((custom[:, 0] == 0).all())
    with pytest.raises(ValueError, match="n_seqs"):
        detectors.repeated_random_tokens(0, 3, 5, seed=0)
    with pytest.raises(ValueError, match="vocab_size"):
        detectors.repeated_random_tokens(1, 3, 0, seed=0)
    with pytest.raises(TypeError, match="half"):
        detectors.repeated_random_tokens(1, 2.5, 5, seed=0)


def test_named_scores_pass_the_normalization_through() -> None:
    model = _model()
    tokens = detectors.repeated_random_tokens(3, 10, 10, seed=2)
    rows = detectors.prefix_matching_score(model, 1, 0, tokens)
    tl = detectors.prefix_matching_score(model, 1, 0, tokens, normalization="transformer_lens")
    assert tl == pytest.approx(rows * 10 / 21, rel=1e-12)   # 10 of 21 rows have a target
    prev_tl = detectors.previous_token_score(model, 0, 0, tokens, normalization="transformer_lens")
    assert prev_tl == pytest.approx(detectors.previous_token_score(model, 0, 0, tokens) * 20 / 21,
                                    rel=1e-12)
