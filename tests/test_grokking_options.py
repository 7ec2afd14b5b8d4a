"""The options that make the "nanda" run match Nanda et al.'s official code (issue 12):
their data split, the "=" output class, the learning-rate warmup and the float64 loss."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
import torch

from verify.benchmarks.grok import NANDA, NANDA_DEVIATIONS
from verify.grokking import batched, models
from verify.grokking.config import RunConfig, make_dataset
from verify.grokking.train import new_state, train


def test_python_split_is_their_shuffle_of_the_a_major_pairs():
    # their gen_train_test: random.seed(seed); random.shuffle([(i, j, p) ...]); int(frac p^2)
    p, seed, n = 13, 3, int(0.3 * 13 ** 2)
    pairs = [(i, j) for i in range(p) for j in range(p)]
    random.seed(seed)
    random.shuffle(pairs)
    data = make_dataset(RunConfig(p=p, n_train=n, seed=seed, split="python"))
    assert data.train.tolist() == sorted(i * p + j for i, j in pairs[:n])
    assert data.test.tolist() == sorted(i * p + j for i, j in pairs[n:])
    torch_split = make_dataset(RunConfig(p=p, n_train=n, seed=seed))
    assert data.train.tolist() != torch_split.train.tolist()


def test_equals_class_gives_their_114_outputs_and_226816_parameters():
    m = models.build_model("transformer", 113, equals_class=True)
    assert m.unembed.W_U.shape == (128, 114)
    assert sum(q.numel() for q in m.parameters() if q.requires_grad) == 226_816
    plain = models.build_model("transformer", 113)
    assert sum(q.numel() for q in plain.parameters() if q.requires_grad) == 226_688
    # W_U ~ N(0, 1/d_vocab_out): the sample std is within a few percent of 1/sqrt(114)
    assert abs(float(m.unembed.W_U.std()) * 114 ** 0.5 - 1) < 0.05
    a = torch.arange(5)
    assert models.logits(m, a, a).shape == (5, 114)
    assert models.modulus(m) == 113 and models.embedding(m).shape == (113, 128)


def test_warmup_sets_their_learning_rate_factor_min_step_over_warmup_1():
    cfg = RunConfig(p=7, steps=1, warmup_steps=4, lr=1e-2, log_every=1)
    seen = []
    for steps in range(1, 7):
        state = new_state(replace(cfg, steps=steps))
        train(replace(cfg, steps=steps), state=state)
        seen.append(state.optimizer.param_groups[0]["lr"])
    # the lr of the last step taken, step s = steps - 1 (counted from 0): lr * min(s / 4, 1)
    assert seen == pytest.approx([0.0, 2.5e-3, 5e-3, 7.5e-3, 1e-2, 1e-2])


def test_first_warmup_step_moves_nothing_as_theirs():
    # their LambdaLR starts at factor 0: AdamW's first step (and its decay) is lr * 0
    cfg = RunConfig(p=7, steps=1, warmup_steps=10, log_every=1)
    state = new_state(cfg)
    before = {k: v.clone() for k, v in state.model.state_dict().items()}
    train(cfg, state=state)
    assert all(torch.equal(before[k], v) for k, v in state.model.state_dict().items())


def test_float64_loss_changes_rounding_only():
    cfg = RunConfig(p=7, steps=20, log_every=20)
    a = train(cfg)["history"]["train_loss"][-1]
    b = train(replace(cfg, loss_float64=True))["history"]["train_loss"][-1]
    assert a == pytest.approx(b, rel=1e-4)


@pytest.mark.parametrize("kwargs, error", [
    ({"warmup_steps": -1}, ValueError), ({"warmup_steps": 1.5}, TypeError),
    ({"equals_class": 1}, TypeError), ({"loss_float64": "yes"}, TypeError),
    ({"equals_class": True}, ValueError),                 # the tiny model has no "=" token
    ({"split": "numpy"}, ValueError),
])
def test_bad_options_are_refused_by_name(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        RunConfig(**kwargs)


@pytest.mark.parametrize("change", [{"warmup_steps": 10}, {"loss_float64": True},
                                    {"split": "python"}])
def test_batched_seeds_refuse_the_official_options(change):
    with pytest.raises(ValueError, match="batched seeds support"):
        batched.stacked_init(replace(RunConfig(), **change), [0, 1])


def test_the_nanda_benchmark_run_uses_every_official_option():
    assert (NANDA.warmup_steps, NANDA.equals_class, NANDA.loss_float64, NANDA.split,
            NANDA.n_train) == (10, True, True, "python", 3830)
    text = " ".join(NANDA_DEVIATIONS)
    for gone in ("warmup", "114", "loss in float32", "3,831"):
        assert gone not in text
