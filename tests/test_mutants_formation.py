"""The induction-formation pieces that decide the trained-induction verdicts, pinned so that a
changed bound, slice or constant fails a test (mutation testing, issue 13): the phase-change
detector (verify/formation/phase.py), the comparison with the construction (compare.py) and the
synthetic task (task.py)."""

from __future__ import annotations

import math

import pytest
import torch

from constructions import induction, transformer
from constructions.transformer import Transformer
from verify.formation import compare, phase, task

SMALL = task.TaskConfig(vocab_size=6, length=8, copy_len=3)


# --- phase.py: midpoint crossings -----------------------------------------------------------

def test_change_thresholds_are_the_documented_ones() -> None:
    # proofs/induction-training.md: 0.2 of attention share / nats; "within 100 steps" = 2 logs
    assert phase.MIN_CHANGE == {"induction": 0.2, "icl_score": 0.2, "loss_repeated": 0.2}
    assert phase.COINCIDE_LOGS == 2


def test_midpoint_step_lengths() -> None:
    assert phase.midpoint_step([0, 10], [0.0, 1.0], 0.2) == 10            # two logs suffice
    for steps, values in [([0], [1.0]), ([0, 1], [1.0]), ([0, 1, 2], [0.0, 1.0])]:
        with pytest.raises(ValueError, match=r"^steps and values must have the same length >= 2$"):
            phase.midpoint_step(steps, values, 0.2)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_midpoint_step_refuses_a_diverged_curve(bad) -> None:
    for values in ([0.0, bad, 1.0], [bad, 0.0, 1.0], [0.0, 1.0, bad]):
        with pytest.raises(ValueError, match="values must be finite"):
            phase.midpoint_step([0, 1, 2], values, 0.2)


def test_midpoint_step_crossing_rule() -> None:
    steps = [0, 10, 20, 30]
    # rising: the first value at or past the midpoint 0.5
    assert phase.midpoint_step(steps, [0.0, 0.4, 0.6, 1.0], 0.2) == 20
    assert phase.midpoint_step(steps, [0.0, 0.5, 0.6, 1.0], 0.2) == 10     # at the midpoint
    assert phase.midpoint_step(steps, [0.0, 0.75, 0.8, 1.0], 0.2) == 10
    # a midpoint of first + change / 2, not first + change or change / 2 alone
    assert phase.midpoint_step(steps, [2.0, 2.4, 2.6, 3.0], 0.2) == 20
    assert phase.midpoint_step(steps, [2.0, 2.3, 2.49, 3.0], 0.2) == 30
    # falling: the sign of the change orients the test
    assert phase.midpoint_step(steps, [1.0, 0.6, 0.4, 0.0], 0.2) == 20
    assert phase.midpoint_step(steps, [1.0, 0.5, 0.4, 0.0], 0.2) == 10
    # the first step itself counts when it is the midpoint (a change of 0 is refused earlier)
    assert phase.midpoint_step([5, 15], [0.0, 1.0], 0.2) == 15
    # steps are reported as ints
    assert type(phase.midpoint_step([0.0, 10.0], [0.0, 1.0], 0.2)) is int


def test_midpoint_step_min_change_at_the_bound_both_signs() -> None:
    steps = [0, 10, 20]
    assert phase.midpoint_step(steps, [0.0, 0.2, 0.25], 0.25) == 10
    assert phase.midpoint_step(steps, [0.0, 0.2, 0.24], 0.25) is None
    assert phase.midpoint_step(steps, [0.25, 0.1, 0.0], 0.25) == 10
    assert phase.midpoint_step(steps, [0.24, 0.1, 0.0], 0.25) is None


def test_midpoint_step_without_a_minimum_change() -> None:
    # min_change 0: a flat curve "changes" at its first step (0 >= 0), never a division by 0
    assert phase.midpoint_step([3, 4, 5], [1.0, 1.0, 1.0], 0.0) == 3


def test_midpoint_step_overflowing_change_reports_the_last_step() -> None:
    # |change| = inf: every product (value - inf) * inf is -inf, so no logged value crosses
    assert phase.midpoint_step([0, 10, 20], [-1e308, 0.0, 1e308], 0.2) == 20


def _history(ind, icl, loss, every: int = 50, layers: int = 2) -> list[dict]:
    """Rows as train.train logs them: induction[layer][head]; the last layer carries `ind`,
    earlier layers a larger score that the curve must not read."""
    return [{"step": i * every,
             "induction": [[0.9, 0.95]] * (layers - 1) + [[x / 2, x]],
             "icl_score": y, "loss_repeated": z}
            for i, (x, y, z) in enumerate(zip(ind, icl, loss))]


def test_induction_curve_reads_the_best_head_of_the_last_layer() -> None:
    rows = _history([0.1, 0.7], [0, 0], [0, 0], layers=3)
    assert phase.induction_curve(rows) == [0.1, 0.7]
    assert phase.induction_curve(_history([0.2, 0.3], [0, 0], [0, 0])) == [0.2, 0.3]


def test_phase_change_each_curve_and_its_own_threshold() -> None:
    ind = [0.0, 0.05, 0.0, 0.3, 0.45, 0.4]         # change 0.4: one step, 150
    icl = [0.0, 0.0, 0.0, -0.2, -0.3, -0.3]        # change 0.3: 150
    loss = [3.0, 3.0, 3.0, 2.0, 2.0, 2.0]           # change 1: 150
    ph = phase.phase_change(_history(ind, icl, loss), 50)
    assert ph == {"step": 150, "icl_step": 150, "loss_step": 150, "icl_coincides": True,
                  "loss_coincides": True, "tolerance_steps": 100,
                  "induction_first_last": [0.0, 0.4]}
    # the tolerance is read from log_every, not from the logged steps
    # each curve at its threshold (0.2 is a float; 0.0 -> 0.2 is exactly 0.2) and just below
    for key, flat in (("induction", "step"), ("icl_score", "icl_step"),
                      ("loss_repeated", "loss_step")):
        at = [0.0, 0.0, 0.0, 0.2, 0.2, 0.2]
        below = [0.0, 0.0, 0.0, 0.19, 0.19, 0.19]
        curves = {"induction": ind, "icl_score": icl, "loss_repeated": loss}
        assert phase.phase_change(_history(*{**curves, key: at}.values()), 50)[flat] == 150
        assert phase.phase_change(_history(*{**curves, key: below}.values()), 50)[flat] is None


def test_phase_change_coincidence_window() -> None:
    ind = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]  # induction at log 5
    for icl_at, loss_at, log_every, icl_ok, loss_ok in [
            (3, 5, 50, True, True),       # 100 steps before: at the tolerance; loss together
            (2, 7, 50, False, True),      # 150 before; loss 100 after
            (7, 2, 50, True, False),      # 100 after; loss 150 before
            (2, 3, 10, False, True)]:     # 10-step logs: a 20-step window; 30 and 20 away
        icl = [0.0] * icl_at + [-1.0] * (8 - icl_at)
        loss = [3.0] * loss_at + [2.0] * (8 - loss_at)
        ph = phase.phase_change(_history(ind, icl, loss, every=log_every), log_every)
        assert ph["step"] == 5 * log_every
        assert ph["icl_step"] == icl_at * log_every and ph["loss_step"] == loss_at * log_every
        assert ph["icl_coincides"] is icl_ok, (icl_at, log_every)
        assert ph["loss_coincides"] is loss_ok, (loss_at, log_every)
        assert ph["tolerance_steps"] == 2 * log_every


def test_phase_change_none_on_either_side_never_coincides() -> None:
    flat, rise, fall = [0.0] * 4, [0.0, 0.0, 1.0, 1.0], [3.0, 3.0, 2.0, 2.0]
    ph = phase.phase_change(_history(rise, flat, flat), 50)    # induction only
    assert ph["step"] == 100 and ph["icl_step"] is None and ph["loss_step"] is None
    assert ph["icl_coincides"] is False and ph["loss_coincides"] is False
    ph = phase.phase_change(_history(flat, [0, 0, -1, -1], fall), 50)   # no induction jump
    assert ph["step"] is None and ph["icl_step"] == 100 and ph["loss_step"] == 100
    assert ph["icl_coincides"] is False and ph["loss_coincides"] is False


# --- compare.py -----------------------------------------------------------------------------

def _random_model(seed: int = 0, d_vocab: int = 7) -> Transformer:
    cfg = transformer.Config(n_layers=2, n_heads=2, d_model=6, d_head=3, d_vocab=d_vocab,
                             n_ctx=9)
    return Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=seed))


def test_token_qk_through_ov_is_the_documented_product() -> None:
    from constructions import circuits

    m = _random_model()
    W_E = m.embed.W_E.detach().double()
    for prev, ind, content in [((0, 1), (1, 0), 5), ((0, 0), (1, 1), 7)]:
        S = compare.token_qk_through_ov(m, prev, ind, content)
        ref = (W_E[:content] @ circuits.qk(m, *ind).double()
               @ (W_E[:content] @ circuits.ov(m, *prev).double()).T)
        assert S.shape == (content, content) and S.dtype == torch.float64
        assert torch.allclose(S, ref, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(compare.token_qk_through_ov(m, (0, 1), (1, 0), 5),
                              compare.token_qk_through_ov(m, (0, 0), (1, 0), 5))


def test_diagonal_share_shapes_and_ties() -> None:
    for bad in (torch.zeros(3), torch.zeros(2, 2, 2), torch.zeros(2, 3), torch.zeros(0, 0)):
        with pytest.raises(ValueError, match="non-empty square"):
            compare.diagonal_share(bad)
    assert compare.diagonal_share(torch.eye(1)) == 1.0
    # columns: the maximum of each ROW is compared with its index
    S = torch.tensor([[5.0, 0.0, 0.0], [5.0, 1.0, 0.0], [5.0, 0.0, 1.0]])
    assert compare.diagonal_share(S) == pytest.approx(1 / 3)
    assert compare.diagonal_share(S.T) == 1.0                  # row 0: the first of a tie
    assert compare.diagonal_share(torch.tensor([[0.0, 2.0], [0.0, 3.0]])) == 0.5


class _Predicts:
    """A stand-in model whose argmax at every position is a given token."""

    def __init__(self, pred: torch.Tensor, d_vocab: int) -> None:
        self.logits = torch.nn.functional.one_hot(pred, d_vocab).double()

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        assert isinstance(tokens, torch.Tensor) and tokens.shape == self.logits.shape[:2]
        return self.logits


def test_target_agreement_counts_the_repeated_half_only() -> None:
    bos, half = 9, 4
    block = torch.tensor([3, 1, 4, 0])
    tokens = torch.cat([torch.tensor([bos]), block, block])[None]   # length 9
    ref = induction.induction_targets(tokens, bos)
    positions = list(range(half + 1, 2 * half + 1))                 # 5, 6, 7, 8
    assert compare.target_agreement(_Predicts(ref, 10), tokens, bos) == 1.0
    for wrong in range(tokens.shape[1]):
        pred = ref.clone()
        pred[0, wrong] = (ref[0, wrong] + 1) % 10
        expected = 1 - 1 / half if wrong in positions else 1.0
        assert compare.target_agreement(_Predicts(pred, 10), tokens, bos) == expected, wrong


# --- task.py --------------------------------------------------------------------------------

def test_task_config_bounds_at_the_edge() -> None:
    task.TaskConfig(vocab_size=2, length=4, copy_len=2, sharpness=1e-9, table_seed=0)
    for field, value, name in [("vocab_size", 1, "vocab_size"), ("copy_len", 1, "copy_len"),
                               ("length", 3, "length"), ("sharpness", 0.0, "sharpness"),
                               ("table_seed", -1, "table_seed")]:
        kwargs = {"vocab_size": 2, "length": 4, "copy_len": 2, field: value}
        with pytest.raises(ValueError, match=f"^{name} must be"):
            task.TaskConfig(**kwargs)
    with pytest.raises(TypeError, match="vocab_size"):
        task.TaskConfig(vocab_size=2.0)  # type: ignore[arg-type]


def test_task_config_defaults_and_derived_sizes() -> None:
    cfg = task.TaskConfig()
    assert (cfg.vocab_size, cfg.length, cfg.copy_len, cfg.sharpness, cfg.table_seed) == \
        (32, 32, 8, 2.0, 1234)
    assert cfg.n_ctx == 33 and cfg.bos == 32
    assert SMALL.n_ctx == 9 and SMALL.bos == 6
    assert SMALL.early_positions().tolist() == [1, 2]


def test_repeated_mask_marks_d_to_d_plus_l_minus_2() -> None:
    batch = task.Batch(torch.zeros(3, 9, dtype=torch.long), torch.tensor([4, 6, 5]))
    mask = batch.repeated_mask(3)
    assert mask.shape == (3, 8)
    assert [row.nonzero()[:, 0].tolist() for row in mask] == [[4, 5], [6, 7], [5, 6]]


def test_bigram_table_is_the_softmax_of_scaled_gaussian_logits() -> None:
    cfg = task.TaskConfig(vocab_size=3, length=4, copy_len=2, sharpness=0.5, table_seed=7)
    table = task.bigram_table(cfg)
    logits = torch.randn(3, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert table.dtype == torch.float64 and table.shape == (3, 3)
    assert torch.allclose(table, torch.softmax(0.5 * logits, dim=-1), rtol=0, atol=1e-15)
    assert torch.allclose(table.sum(-1), torch.ones(3, dtype=torch.float64), atol=1e-15)
    assert table[1].tolist() == pytest.approx([0.16176959423903076, 0.6576942374553751,
                                               0.18053616830559402], abs=1e-15)


def test_sample_is_pinned_for_a_seed() -> None:
    """A seeded sample (torch's CPU generator is stable): the copies, sources and chain."""
    batch = task.sample(SMALL, 4, torch.Generator().manual_seed(0))
    assert batch.tokens.tolist() == [[6, 1, 5, 4, 4, 2, 1, 5, 4], [6, 3, 5, 4, 3, 5, 4, 2, 4],
                                     [6, 5, 4, 5, 4, 5, 4, 5, 4], [6, 2, 5, 4, 2, 5, 4, 2, 2]]
    assert batch.dest.tolist() == [6, 4, 6, 4]
    same = task.sample(SMALL, 4, torch.Generator().manual_seed(0), task.bigram_table(SMALL))
    assert torch.equal(same.tokens, batch.tokens)
    with pytest.raises(ValueError, match="^n_seqs must be"):
        task.sample(SMALL, 0, torch.Generator())
    assert task.sample(SMALL, 1, torch.Generator().manual_seed(0)).tokens.shape == (1, 9)


def test_sample_ranges_of_destination_and_source() -> None:
    """d takes every value in [L + 1, n - L + 1] and the source every value in [1, d - L]."""
    cfg = task.TaskConfig(vocab_size=50, length=10, copy_len=3)
    batch = task.sample(cfg, 600, torch.Generator().manual_seed(3))
    assert set(batch.dest.tolist()) == set(range(4, 9))
    gaps = set()
    for row, d in zip(batch.tokens.tolist(), batch.dest.tolist()):
        copy = row[d:d + 3]
        srcs = [s for s in range(1, d - 2) if row[s:s + 3] == copy]
        assert srcs and row[0] == cfg.bos
        gaps.add((d, min(srcs)))
    assert {(d, 1) for d in range(4, 9)} <= gaps and {(d, d - 3) for d in range(4, 9)} <= gaps


def test_sample_chain_follows_the_table() -> None:
    """Outside the copy, token t + 1 is drawn from row tokens[t] of the table: a table of
    deterministic successors makes the chain exact."""
    cfg = task.TaskConfig(vocab_size=5, length=12, copy_len=3)
    succ = torch.zeros(5, 5, dtype=torch.float64)
    for a in range(5):
        succ[a, (a + 2) % 5] = 1.0
    batch = task.sample(cfg, 50, torch.Generator().manual_seed(1), succ)
    seen_first = set()
    for row, d in zip(batch.tokens.tolist(), batch.dest.tolist()):
        seen_first.add(row[1])
        for t in range(2, 13):
            if not d <= t < d + 3:
                assert row[t] == (row[t - 1] + 2) % 5, (row, d, t)
    assert seen_first == set(range(5))


def test_bigram_loss_exact_values() -> None:
    table = torch.tensor([[0.5, 0.5, 0.0], [0.25, 0.75, 0.0], [0.0, 0.0, 1.0]],
                         dtype=torch.float64)
    tokens = torch.tensor([[3, 0, 1, 1, 2]])          # BOS = 3 is clamped to row 2
    every = torch.ones(1, 4, dtype=torch.bool)
    loss, acc = task.bigram_loss(tokens, every, table)
    # BOS->0: p = 0 (clamped to 1e-12); 0->1: 0.5; 1->1: 0.75; 1->2: 0 (clamped)
    expected = -(math.log(1e-12) + math.log(0.5) + math.log(0.75) + math.log(1e-12)) / 4
    assert loss == pytest.approx(expected, rel=1e-12)
    # argmax: row 2 -> 2 (next 0: wrong), row 0 -> 0 (first of a tie; next 1: wrong),
    # row 1 -> 1 (next 1: right; next 2: wrong)
    assert acc == 0.25
    mask = torch.tensor([[False, True, True, False]])
    loss, acc = task.bigram_loss(tokens, mask, table)
    assert loss == pytest.approx(-(math.log(0.5) + math.log(0.75)) / 2, rel=1e-12)
    assert acc == 0.5


def test_bigram_loss_clamps_bos_to_the_last_row() -> None:
    """Rows are indexed by the current token: BOS (= V) reads row V - 1, whatever the number
    of columns (here one more, a table that also scores BOS as a next token)."""
    table = torch.tensor([[0.5, 0.25, 0.25, 0.0], [0.125, 0.5, 0.25, 0.125],
                          [0.25, 0.25, 0.25, 0.25]], dtype=torch.float64)
    tokens = torch.tensor([[3, 1, 0]])
    loss, acc = task.bigram_loss(tokens, torch.ones(1, 2, dtype=torch.bool), table)
    assert loss == pytest.approx(-(math.log(0.25) + math.log(0.125)) / 2, rel=1e-12)
    assert acc == 0.0
