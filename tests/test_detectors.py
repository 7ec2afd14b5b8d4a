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
@pytest.mark.parametrize("exclude_bos", [False, True])
def test_scores_equal_transformer_lens(which: str, exclude_bos: bool) -> None:
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
                    exclude_current_token=False, error_measure="mul")
                ours = detectors.pattern_score(ours_pattern, D, normalization="transformer_lens",
                                               exclude_bos=exclude_bos)
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
