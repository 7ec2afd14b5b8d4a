"""verify/detectors.py without TransformerLens: every option of `pattern_score` on a hand case
with its value derived by hand, the refusals word for word, the token generator pinned, and
the copying score at its edges (mutation testing, issue 13)."""

from __future__ import annotations

import pytest
import torch

from constructions import induction, transformer
from constructions.transformer import Transformer
from verify import detectors

# Rows of a causal 4 x 4 pattern and a 0/1 detection pattern (targets: row 1 -> 0, row 2 -> 1
# and 2, row 3 -> 2); row 0 has no target.
A4 = torch.tensor([[1.0, 0, 0, 0], [0.5, 0.5, 0, 0], [0.2, 0.3, 0.5, 0], [0.1, 0.2, 0.3, 0.4]],
                  dtype=torch.float64)
D4 = torch.tensor([[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0]], dtype=torch.float64)

# (exclude_bos, exclude_current_token) -> ("rows", "transformer_lens"), derived by hand:
#  none: hits 0.5, 0.8, 0.3 of rows summing to 1 -> rows 1.6/3; tl 1.6/4
#  diagonal out: rows 1-3 keep 0.5, 0.5, 0.6 and hit 0.5, 0.3 (key 2 no longer a target of
#    row 2), 0.3 -> rows (1 + 0.6 + 0.5)/3 = 0.7; tl 1.1/1.6
#  BOS out: row 1 loses its only target (drops out); rows 2, 3 keep 0.8, 0.9, hit 0.8, 0.3
#    -> rows (1 + 1/3)/2; tl (0.8 + 0.3)/(0.5 + 0.8 + 0.9) = 0.5
#  both: rows 2, 3 keep 0.3, 0.5 and hit 0.3, 0.3 -> rows (1 + 0.6)/2 = 0.8; tl 0.6/0.8
BY_HAND = {(False, False): (1.6 / 3, 0.4), (False, True): (0.7, 1.1 / 1.6),
           (True, False): (2 / 3, 0.5), (True, True): (0.8, 0.75)}


@pytest.mark.parametrize("flags", list(BY_HAND))
def test_pattern_score_every_option_by_hand(flags) -> None:
    bos, cur = flags
    rows, tl = BY_HAND[flags]
    got = detectors.pattern_score(A4, D4, exclude_bos=bos, exclude_current_token=cur)
    assert got.shape == (1,) and float(got) == pytest.approx(rows, abs=1e-15)
    got = detectors.pattern_score(A4, D4, normalization="transformer_lens", exclude_bos=bos,
                                  exclude_current_token=cur)
    assert got.shape == (1,) and float(got) == pytest.approx(tl, abs=1e-15)
    # the inputs are never changed in place by the exclusions
    assert float(A4[:, 0].sum()) == 1.8 and float(A4.diagonal().sum()) == 2.4
    assert float(D4.sum()) == 4.0


def test_pattern_score_batches_and_a_sequence_without_targets() -> None:
    batch = torch.stack([A4, torch.eye(4, dtype=torch.float64)])
    got = detectors.pattern_score(batch, D4)
    assert got.tolist() == pytest.approx([1.6 / 3, 1 / 3], abs=1e-15)   # eye: row 2 on key 2
    with pytest.raises(ValueError, match=r"^detection: a sequence has no row with a target "
                                         r"\(after the exclusions\); the 'rows' score is "
                                         r"undefined there$"):
        detectors.pattern_score(A4, torch.zeros(4, 4))
    # transformer_lens: no target is a score of 0, not an error
    assert float(detectors.pattern_score(A4, torch.zeros(4, 4),
                                         normalization="transformer_lens")) == 0.0
    # a row with a target but no attention left does not count; one with both does
    only_bos = torch.zeros(4, 4, dtype=torch.float64)
    only_bos[:, 0] = 1.0
    only_bos[3] = torch.tensor([0.0, 0.0, 1.0, 0.0])
    assert float(detectors.pattern_score(only_bos, D4, exclude_bos=True)) == 1.0


def test_patterns_shapes_types_and_refusals() -> None:
    assert detectors.previous_token_pattern(1).tolist() == [[0.0]]
    assert detectors.previous_token_pattern(2).dtype == torch.float64
    with pytest.raises(ValueError, match=r"^n must be >= 1, got 0$"):
        detectors.previous_token_pattern(0)
    one_d = detectors.duplicate_token_pattern(torch.tensor([7, 1, 7, 1]))
    assert one_d.dtype == torch.float64 and one_d.shape == (1, 4, 4)
    assert one_d[0].nonzero().tolist() == [[2, 0], [3, 1]]
    assert detectors.induction_pattern(torch.tensor([7, 1, 7, 1]))[0].nonzero().tolist() == [
        [2, 1], [3, 2]]
    message = r"^tokens must be an integer torch tensor \[batch, pos\] or \[pos\]$"
    for bad in (torch.zeros(3), [1, 2], torch.zeros(1, 1, 2, dtype=torch.long),
                torch.tensor(3)):
        with pytest.raises(TypeError, match=message):
            detectors.duplicate_token_pattern(bad)
    square = r"^pattern must be a tensor \[q, k\] or \[batch, q, k\] with q == k$"
    for bad in (torch.zeros(1, 1, 2, 2), torch.zeros(2), [[1.0]], torch.zeros(1, 2, 3)):
        with pytest.raises(ValueError, match=square):
            detectors.pattern_score(bad, torch.eye(2))
    assert detectors.pattern_score(torch.eye(2)[None], torch.eye(2)).shape == (1,)


def test_repeated_random_tokens_pinned() -> None:
    assert detectors.repeated_random_tokens(2, 3, 5, seed=7).tolist() == [
        [5, 1, 4, 0, 1, 4, 0], [5, 1, 3, 0, 1, 3, 0]]
    assert detectors.repeated_random_tokens(2, 4, 2, seed=7).tolist() == [
        [2, 1, 0, 1, 0, 1, 0, 1, 0], [2, 1, 1, 1, 1, 1, 1, 1, 1]]
    for name, args in (("n_seqs", (0, 1, 1)), ("half", (1, 0, 1)), ("vocab_size", (1, 1, 0))):
        with pytest.raises(ValueError, match=rf"^{name} must be >= 1, got 0$"):
            detectors.repeated_random_tokens(*args, seed=0)


def _two_heads() -> Transformer:
    cfg = transformer.Config(n_layers=2, n_heads=2, d_model=6, d_head=3, d_vocab=5, n_ctx=7)
    return Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=11))


def test_head_scores_read_the_head_asked_for() -> None:
    model = _two_heads()
    tokens = detectors.repeated_random_tokens(3, 3, 4, seed=1)
    _, cache = model.run_with_cache(tokens)
    pattern = cache["blocks.1.attn.hook_pattern"][:, 1]
    for norm in ("rows", "transformer_lens"):
        want = float(detectors.pattern_score(pattern, detectors.induction_pattern(tokens),
                                             normalization=norm).mean())
        assert detectors.prefix_matching_score(model, 1, 1, tokens, normalization=norm) == want
        want = float(detectors.pattern_score(pattern, detectors.previous_token_pattern(7),
                                             normalization=norm).mean())
        assert detectors.previous_token_score(model, 1, 1, tokens, normalization=norm) == want
    from constructions import circuits
    for layer in (0, 1):
        for head in (0, 1):
            assert detectors.head_copying_score(model, layer, head) == detectors.copying_score(
                circuits.full_ov(model, layer, head))
    assert detectors.head_copying_score(model, 1, 1) != detectors.head_copying_score(model, 1)
    with pytest.raises(ValueError, match=r"^head must be in \[0, 1\], got -1$"):
        detectors.head_pattern(model, tokens, 0, -1)
    with pytest.raises(ValueError, match=r"^layer must be in \[0, 1\], got -1$"):
        detectors.head_pattern(model, tokens, -1)


def test_copying_score_complex_eigenvalues_and_the_zero_edge() -> None:
    # eigenvalues 1 +- i: sum 2, sum of moduli 2 sqrt 2
    m = torch.tensor([[1.0, -1.0], [1.0, 1.0]], dtype=torch.float64)
    assert detectors.copying_score(m) == pytest.approx(2 ** -0.5, abs=1e-15)
    rotation = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)   # +- i
    assert detectors.copying_score(rotation) == pytest.approx(0.0, abs=1e-15)
    below = torch.zeros(2, 2, dtype=torch.float64)
    below[0, 0] = detectors.EIGEN_ZERO * (1 - 1e-6)
    with pytest.raises(ValueError, match=r"copying score is undefined$"):
        detectors.copying_score(below)
    below[0, 0] = -detectors.EIGEN_ZERO                      # at the bound, negative: defined
    assert detectors.copying_score(below) == -1.0
    assert detectors.EIGEN_ZERO == 1e-12
    assert detectors.head_copying_score(induction.build_induction_model(3, 5), 1) == 1.0


def test_chance_score_batches_and_refuses() -> None:
    D = detectors.previous_token_pattern(3)
    assert detectors.chance_score(torch.stack([D, D])).tolist() == pytest.approx(
        [(1 / 2 + 1 / 3) / 2] * 2, abs=1e-15)
    with pytest.raises(ValueError, match=r"^detection must be a tensor"):
        detectors.chance_score(torch.zeros(2, 2, 2, 2))
