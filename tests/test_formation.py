"""Formation: the task, the phase-change detector, the comparison with the construction, the
train-induction command (progress, files, Ctrl-C, resume), and the two claims' checks fed
broken inputs so that each condition fails alone and the derived verdict changes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from constructions import induction, transformer
from constructions.transformer import Transformer
from verify import registry
from verify.analysis import scores
from verify.claims import trained_induction as ti
from verify.formation import compare, phase, task, train

SMALL = task.TaskConfig(vocab_size=6, length=8, copy_len=3)


# --- the task ----------------------------------------------------------------------------

@given(st.integers(2, 12), st.integers(2, 5), st.integers(0, 40), st.integers(0, 2**31 - 1))
@example(32, 8, 0, 0)  # the default run's sizes (length 4 * copy_len)
def test_sequences_hold_a_copy_at_a_varying_place(vocab, copy_len, extra, seed) -> None:
    cfg = task.TaskConfig(vocab_size=vocab, length=2 * copy_len + extra, copy_len=copy_len)
    batch = task.sample(cfg, 16, torch.Generator().manual_seed(seed))
    t, d = batch.tokens, batch.dest
    assert t.shape == (16, cfg.n_ctx) and bool((t[:, 0] == cfg.bos).all())
    assert int(t[:, 1:].max()) < vocab
    assert bool((d >= copy_len + 1).all()) and bool((d <= cfg.length - copy_len + 1).all())
    mask = batch.repeated_mask(copy_len)
    assert bool((mask.sum(-1) == copy_len - 1).all())
    for row, start in zip(t, d.tolist()):
        copy = row[start:start + copy_len].tolist()
        sources = [s for s in range(1, start - copy_len + 1)
                   if row[s:s + copy_len].tolist() == copy]
        assert sources  # the copy repeats an earlier, non-overlapping segment


def test_destinations_and_offsets_vary() -> None:
    batch = task.sample(task.TaskConfig(), 400, torch.Generator().manual_seed(0))
    assert len(set(batch.dest.tolist())) == task.TaskConfig().length - 2 * 8 + 1


def test_bigram_table_and_baseline() -> None:
    cfg = task.TaskConfig()
    table = task.bigram_table(cfg)
    assert torch.allclose(table.sum(-1), torch.ones(cfg.vocab_size, dtype=torch.float64))
    assert torch.equal(table, task.bigram_table(cfg))
    batch = task.sample(cfg, 200, torch.Generator().manual_seed(1), table)
    loss, acc = task.bigram_loss(batch.tokens, batch.repeated_mask(cfg.copy_len), table)
    entropy = float(-(table * table.log()).sum(-1).mean())
    assert 0.5 * entropy < loss < 2 * entropy and 0.2 < acc < 0.6


@pytest.mark.parametrize("field, value", [("vocab_size", 1), ("copy_len", 1), ("length", 15),
                                          ("sharpness", 0.0), ("table_seed", -1)])
def test_task_config_refuses(field, value) -> None:
    with pytest.raises(ValueError, match=field):
        task.TaskConfig(**{field: value})


@pytest.mark.parametrize("field, value", [("n_layers", 0), ("steps", 0), ("lr", -1.0),
                                          ("weight_decay", -0.1), ("d_mlp", 0), ("seed", -1)])
def test_train_config_refuses(field, value) -> None:
    with pytest.raises(ValueError, match=field):
        train.TrainConfig(**{field: value})
    with pytest.raises(TypeError, match="task"):
        train.TrainConfig(task={"vocab_size": 3})  # type: ignore[arg-type]


# --- phase change ------------------------------------------------------------------------

def test_midpoint_step() -> None:
    steps = [0, 50, 100, 150, 200]
    assert phase.midpoint_step(steps, [0.0, 0.0, 0.1, 0.5, 0.6], 0.2) == 150
    assert phase.midpoint_step(steps, [0.0, 0.0, 0.3, 0.5, 0.6], 0.2) == 100   # 0.3 == midpoint
    assert phase.midpoint_step(steps, [0, -0.1, -1, -1, -1], 0.2) == 100         # falling curve
    assert phase.midpoint_step(steps, [0.0, 0.1, 0.1, 0.1, 0.2], 0.2) == 50      # change at bound
    assert phase.midpoint_step(steps, [0.0, 0.1, 0.1, 0.1, 0.19], 0.2) is None   # just below
    with pytest.raises(ValueError, match="length"):
        phase.midpoint_step([0], [1.0], 0.2)


def _history(ind: list[float], icl: list[float], every: int = 50) -> list[dict]:
    return [{"step": i * every, "induction": [[0.0], [x]], "icl_score": y,
             "loss_repeated": 2 + y} for i, (x, y) in enumerate(zip(ind, icl))]


def test_phase_change_and_coincidence() -> None:
    ind = [0.0, 0.0, 0.05, 0.5, 0.6, 0.6]
    ph = phase.phase_change(_history(ind, [0, 0, -0.1, -1, -1.1, -1.1]), 50)
    assert ph["step"] == 150 and ph["icl_step"] == 150 and ph["icl_coincides"]
    far = phase.phase_change(_history(ind, [0, -1, -1, -1, -1.1, -1.1]), 50)
    assert far["icl_step"] == 50 and far["icl_coincides"]               # 2 intervals: at bound
    late = [0.0, 0.0, 0.0, 0.0, 0.5, 0.6]
    farther = phase.phase_change(_history(late, [0, -1, -1, -1, -1.1, -1.1]), 50)
    assert farther["step"] == 200 and not farther["icl_coincides"]     # 3 intervals apart
    none = phase.phase_change(_history([0.0] * 6, [0.0] * 6), 50)
    assert none["step"] is None and not none["icl_coincides"] and not none["loss_coincides"]


# --- comparison with the construction -----------------------------------------------------

def test_construction_compares_perfectly_with_itself() -> None:
    m = induction.build_induction_model(10, 21)
    S = compare.token_qk_through_ov(m, (0, 0), (1, 0), 10)
    assert compare.diagonal_share(S) == 1.0
    assert compare.target_agreement(m, scores.probe_tokens(m.cfg), 10) == 1.0


def test_diagonal_share_counts_rows() -> None:
    S = torch.eye(4)
    S[0] = torch.tensor([0.0, 1.0, 0, 0])
    assert compare.diagonal_share(S) == 0.75
    with pytest.raises(ValueError, match="square"):
        compare.diagonal_share(torch.zeros(2, 3))


# --- claim induction.formation ------------------------------------------------------------

@pytest.fixture(scope="module")
def built_circuit() -> ti.Circuit:
    """The hand-built model has the circuit the claim looks for, with scores near 1."""
    return ti.measure_circuit(induction.build_induction_model(10, 21))


def _phase(step: int | None = 500, coincides: bool = True) -> dict:
    return {"step": step, "icl_step": step, "icl_coincides": coincides}


def test_formation_literal_each_condition_at_its_bound(built_circuit) -> None:
    c = built_circuit
    assert ti.check_formation_literal([c] * 3).holds
    assert not ti.check_formation_literal([c] * 2).holds                      # seeds < 3
    assert ti.check_formation_literal([c] * 2, min_seeds=2).holds
    at = c.baseline_mean + ti.COMPOSITION_SIGMAS * c.baseline_std
    for field, value, holds in [
            ("previous_token", (0, 0, ti.HEAD_MIN), True),
            ("previous_token", (0, 0, ti.HEAD_MIN - 1e-9), False),
            ("induction", (1, 0, ti.HEAD_MIN), True),
            ("induction", (1, 0, ti.HEAD_MIN - 1e-9), False),
            ("k_composition", at, True),
            ("k_composition", at - 1e-9, False)]:
        broken = replace(c, **{field: value})
        assert ti.check_formation_literal([c, c, broken]).holds is holds, (field, value)


def test_formation_restated_each_condition_at_its_bound(built_circuit) -> None:
    c = built_circuit
    good = [_phase()] * 3
    assert ti.check_formation_restated([c] * 3, good).holds
    assert not ti.check_formation_restated([c] * 2, good[:2]).holds
    at = c.baseline_mean + ti.COMPOSITION_SIGMAS * c.baseline_std
    cases = [(replace(c, induction=(1, 0, ti.HEAD_MIN - 1e-9)), _phase(), False),
             (replace(c, best_composition=at), _phase(), True),
             (replace(c, best_composition=at - 1e-9), _phase(), False),
             (c, _phase(step=None), False),
             (c, _phase(coincides=False), False),
             # no clean previous-token head (Q-composition instead) does not matter to it
             (replace(c, previous_token=(0, 0, 0.01), k_composition=0.0), _phase(), True)]
    for circuit, ph, holds in cases:
        assert ti.check_formation_restated([c, c, circuit], [*good[:2], ph]).holds is holds
    with pytest.raises(ValueError, match="one entry per seed"):
        ti.check_formation_restated([c] * 3, good[:2])


def test_formation_verdict_follows_the_models(built_circuit) -> None:
    c = built_circuit
    lit, res = ti.check_formation_literal([c] * 3), ti.check_formation_restated([c] * 3,
                                                                                 [_phase()] * 3)
    assert registry.derive_verdict(lit.holds, res.holds) == "confirmed"
    # no clean previous-token head (as seed 2 of the trained runs): the literal fails only
    diffuse = replace(c, previous_token=(0, 1, 0.17))
    lit = ti.check_formation_literal([c, c, diffuse])
    res = ti.check_formation_restated([c, c, diffuse], [_phase()] * 3)
    assert registry.derive_verdict(lit.holds, res.holds) == "corrected"
    # untrained (random) models: no circuit at all
    cfg = transformer.Config(n_layers=2, n_heads=2, d_model=16, d_head=8, d_vocab=11, n_ctx=21)
    rand = [ti.measure_circuit(Transformer.from_weights(cfg, transformer.random_weights(
        cfg, seed=s))) for s in range(3)]
    lit = ti.check_formation_literal(rand)
    res = ti.check_formation_restated(rand, [_phase(step=None)] * 3)
    assert registry.derive_verdict(lit.holds, res.holds) == "refuted"


def test_measure_circuit_needs_two_layers() -> None:
    cfg = transformer.Config(n_layers=1, n_heads=1, d_model=4, d_head=4, d_vocab=5, n_ctx=6)
    with pytest.raises(ValueError, match="2 layers"):
        ti.measure_circuit(Transformer(cfg))


def test_mlp_control_width_matches_an_attention_layer() -> None:
    cfg = train.TrainConfig()
    m = ti.mlp_width(cfg)
    attn = 4 * cfg.n_heads * cfg.d_model * cfg.d_head + 3 * cfg.n_heads * cfg.d_head + cfg.d_model
    assert abs((2 * cfg.d_model * m + m + cfg.d_model) - attn) <= cfg.d_model


# --- claim induction.primary_icl_mechanism ------------------------------------------------

@pytest.fixture(scope="module")
def small_models() -> tuple[Transformer, Transformer]:
    """The hand-built two-layer model (exact induction) and a briefly trained one-layer model
    that learns in context without any induction head, both on a small task."""
    one = train.train(train.TrainConfig(n_layers=1, n_heads=2, d_model=16, d_head=8, steps=300,
                                        log_every=300, task=SMALL))["model"]
    return induction.build_induction_model(SMALL.vocab_size, SMALL.n_ctx), one


def test_primary_literal_and_restated_follow_the_models(small_models) -> None:
    two, one = small_models
    assert ti.measure_icl(one, task=SMALL)["icl_score"] <= -ti.ICL_MIN
    assert ti.induction_heads(one) == [] and ti.induction_heads(two) == [(1, 0)]
    lit = ti.check_primary_literal([two], [], task=SMALL)
    res = ti.check_primary_restated([two], [], task=SMALL)
    assert registry.derive_verdict(lit.holds, res.holds) == "confirmed"
    # a one-layer model learns in context with no induction head: the sentence fails as stated
    lit = ti.check_primary_literal([two], [one], task=SMALL)
    assert not lit.holds and lit.evidence["learners_meeting_share"] == [True, False]
    # and this one reaches the two-layer model's ICL score: the restatement fails too
    res = ti.check_primary_restated([two], [one], task=SMALL)
    assert registry.derive_verdict(lit.holds, res.holds) == "refuted"
    assert res.evidence["controls_below_share"] == [False]


def _row(share: float, per_head: dict[str, float], circuit=("0.0", "1.0"), icl: float = -1.0
         ) -> dict:
    return {"share_removed_by_induction_heads": share, "share_removed_per_head": per_head,
            "circuit": list(circuit), "icl_score": icl}


def test_primary_conditions_each_at_its_bound() -> None:
    heads = {"0.0": 0.9, "0.1": 0.2, "1.0": 0.95, "1.1": 0.1}
    ok = _row(0.95, heads)
    assert ti.primary_conditions([ok], [-0.4])["holds"]
    assert ti.primary_conditions([_row(ti.PRIMARY_SHARE, heads)], [-0.4])["holds"]
    assert not ti.primary_conditions([_row(ti.PRIMARY_SHARE - 1e-9, heads)], [-0.4])["holds"]
    # another head outside the circuit removes as much: not "primary" against it
    assert not ti.primary_conditions([_row(0.95, {**heads, "0.1": 0.95})], [-0.4])["holds"]
    assert ti.primary_conditions([_row(0.95, {**heads, "0.1": 0.95 - 1e-9})], [-0.4])["holds"]
    # controls: below CONTROL_SHARE of the two-layer ICL score, strictly
    bound = ti.CONTROL_SHARE * 1.0
    assert ti.primary_conditions([ok], [-(bound - 1e-9)])["holds"]
    assert not ti.primary_conditions([ok], [-bound])["holds"]
    with pytest.raises(ValueError, match="rows"):
        ti.primary_conditions([], [])


def test_share_removed_by_no_heads_is_zero(small_models) -> None:
    two, _ = small_models
    batch = ti.eval_batch(SMALL)
    assert ti.share_removed(two, [], batch, SMALL) == 0.0
    assert ti.share_removed(two, [(1, 0)], batch, SMALL) > 0.9


# --- the train-induction command ----------------------------------------------------------

TINY = ["--vocab", "6", "--length", "8", "--copy-len", "3", "--d-model", "16", "--n-heads", "2",
        "--d-head", "8", "--log-every", "10"]


def run_cmd(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "verify", "train-induction", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_tiny_run_writes_log_model_and_figures(tmp_path) -> None:
    r = run_cmd("--out", str(tmp_path / "run"), "--steps", "30", *TINY)
    assert r.returncode == 0, r.stderr
    assert "30/30" in r.stderr and "steps/s" in r.stdout          # progress bar on stderr
    log = json.loads((tmp_path / "run" / "run.json").read_text())
    assert log["partial"] is False and log["timing"]["steps"] == 30
    assert [row["step"] for row in log["history"]] == [0, 10, 20, 30]
    assert {"torch", "python"} <= set(log["versions"]) and log["config"]["seed"] == 0
    assert {"phase", "heads", "comparison", "bigram_baseline"} <= set(log)
    for name in ("curves.png", "attention.png"):
        assert (tmp_path / "run" / name).stat().st_size > 20_000
    # the trained model is a folder that `analyze` reads
    a = subprocess.run([sys.executable, "-m", "verify", "analyze", str(tmp_path / "run" / "model"),
                        "--json", "--no-ablation", "--n-seqs", "2"],
                       capture_output=True, text=True, timeout=300)
    assert a.returncode == 0 and len(json.loads(a.stdout)["heads"]) == 4


def test_same_seed_same_run(tmp_path) -> None:
    for name in ("a", "b"):
        assert run_cmd("--out", str(tmp_path / name), "--steps", "10", "--no-figures",
                       "--no-progress", *TINY).returncode == 0
    a, b = (json.loads((tmp_path / n / "run.json").read_text())["history"] for n in "ab")
    assert a == b


def test_ctrl_c_saves_and_resume_continues(tmp_path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "verify", "train-induction", "--out", str(out),
                             "--steps", "1000000", "--no-progress", "--checkpoint-every", "5",
                             *TINY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoint" / "checkpoint.json").exists() and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.count("\n") == 1 and "--resume" in err, err
    log = json.loads((out / "run.json").read_text())
    assert log["partial"] is True and log["stopped_at_step"] >= 5
    stopped = log["stopped_at_step"]
    # conflicting options are refused by name; a wrong file is one line
    r = run_cmd("--out", str(out), "--resume", str(out / "checkpoint"), "--seed", "5", *TINY)
    assert r.returncode == 2 and "--seed" in r.stderr and r.stderr.count("\n") == 1
    r = run_cmd("--out", str(out), "--resume", str(out / "run.json"))
    assert r.returncode == 2 and "checkpoint" in r.stderr and r.stderr.count("\n") == 1
    r = run_cmd("--out", str(out), "--resume", str(out / "checkpoint"),
                "--steps", str(stopped + 10), "--no-figures", "--no-progress", *TINY)
    assert r.returncode == 0, r.stderr
    done = json.loads((out / "run.json").read_text())
    assert done["partial"] is False and done["timing"]["steps"] == stopped + 10


@pytest.mark.parametrize("args, words", [
    (["--steps", "0"], "steps"), (["--lr", "-1"], "lr"), (["--copy-len", "1"], "copy_len"),
    (["--length", "4", "--copy-len", "3"], "length"), (["--checkpoint-every", "0"], "checkpoint"),
    (["--n-heads", "x"], "--n-heads"), (["--resume", "/nonexistent"], "checkpoint"),
])
def test_bad_options_are_one_line(tmp_path, args, words) -> None:
    r = run_cmd("--out", str(tmp_path / "o"), *args, timeout=60)
    assert r.returncode == 2 and words in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr


def test_out_that_is_a_file_is_refused_before_work(tmp_path) -> None:
    (tmp_path / "f").write_text("x")
    start = time.time()
    r = run_cmd("--out", str(tmp_path / "f"), timeout=60)
    assert r.returncode == 2 and "--out" in r.stderr and time.time() - start < 30
