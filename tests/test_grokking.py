"""Tests for the grokking experiment (issue 5): training and logging on a tiny configuration,
the run JSON schema and plot, seed and resume reproducibility, the phase detector on synthetic
curves, the progress measures, the explicit circuits' norms, and bad input."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from tests import strategies
from verify import cli
from verify.claims import grokking as claims
from verify.grokking import metrics, norms, phases, runio
from verify.grokking.train import RunConfig, load_checkpoint, train

TINY = RunConfig(p=11, frac=0.5, d=8, steps=60, log_every=20, lr=1e-2)


@pytest.fixture(scope="module")
def tiny_run():
    return train(TINY)


# --- training, logging, schema ---------------------------------------------------------------

def test_run_logs_every_measure(tiny_run):
    h = tiny_run["history"]
    assert h["step"] == [0, 20, 40, 60]
    assert runio.problems(tiny_run) == []
    assert set(h["norm2_per_param"]) == {"embed.weight", "fc.0.weight", "fc.0.bias",
                                         "fc.2.weight", "fc.2.bias"}
    assert math.isclose(h["norm2"][0], sum(v[0] for v in h["norm2_per_param"].values()))
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert all(0 <= g <= 1 for g in h["gini"]) and all(0 <= s <= 1 for s in h["topk_share"])
    assert tiny_run["n_train"] + tiny_run["n_test"] == 121
    json.dumps(tiny_run)  # JSON-serialisable


@pytest.mark.parametrize("breakage", ["drop_key", "short_curve", "nan", "norm_sum", "acc_range",
                                      "steps_order", "schema"])
def test_schema_catches_broken_runs(tiny_run, breakage):
    run = json.loads(json.dumps(tiny_run))
    h = run["history"]
    if breakage == "drop_key":
        del run["phases"]
    elif breakage == "short_curve":
        h["test_loss"].pop()
    elif breakage == "nan":
        h["train_loss"][1] = float("nan")
    elif breakage == "norm_sum":
        h["norm2"][-1] += 1.0
    elif breakage == "acc_range":
        h["test_acc"][0] = 1.5
    elif breakage == "steps_order":
        h["step"][1], h["step"][2] = h["step"][2], h["step"][1]
    else:
        run["schema"] = "other"
    assert runio.problems(run)


def test_seed_reproducible_and_seed_matters():
    a, b = train(TINY), train(TINY)
    assert a["history"]["train_loss"] == b["history"]["train_loss"]
    assert a["history"]["norm2"] == b["history"]["norm2"]
    c = train(RunConfig(**{**TINY.__dict__, "seed": 1}))
    assert c["history"]["train_loss"] != a["history"]["train_loss"]


@pytest.mark.parametrize("grokfast", [False, True])
def test_resume_equals_straight_run(tmp_path, grokfast):
    cfg = RunConfig(**{**TINY.__dict__, "grokfast": grokfast})
    straight = train(cfg)
    ckpt = str(tmp_path / "half.pt")
    train(RunConfig(**{**cfg.__dict__, "steps": 40}), checkpoint=ckpt)
    resumed = train(state=load_checkpoint(ckpt, steps=60))
    for key in ("step", "train_loss", "test_loss", "norm2", "restricted_loss"):
        assert resumed["history"][key] == straight["history"][key], key


def test_grokfast_changes_the_trajectory(tiny_run):
    g = train(RunConfig(**{**TINY.__dict__, "grokfast": True}))
    assert g["history"]["norm2"][-1] != tiny_run["history"]["norm2"][-1]


def test_transformer_model_trains():
    run = train(RunConfig(model="transformer", p=7, frac=0.5, d_model=8, n_heads=2, d_mlp=16,
                          steps=10, log_every=5, lr=1e-2))
    assert runio.problems(run) == []
    assert "blocks.0.attn.b_Q" not in run["history"]["norm2_per_param"]  # frozen, as in Nanda's


def test_cli_writes_json_and_plot(tmp_path, capsys):
    out = tmp_path / "run"
    rc = cli.main(["grok", "--p", "11", "--frac", "0.5", "--d", "8", "--steps", "40",
                   "--log-every", "20", "--out", str(out), "--no-progress",
                   "--checkpoint", str(tmp_path / "c.pt")])
    assert rc == 0
    run = json.loads((out / "grok.json").read_text())
    assert runio.problems(run) == []
    assert (out / "grok.png").stat().st_size > 10_000
    rc = cli.main(["grok", "--steps", "60", "--resume", str(tmp_path / "c.pt"), "--out", str(out),
                   "--name", "resumed", "--no-progress"])
    assert rc == 0
    assert json.loads((out / "resumed.json").read_text())["history"]["step"][-1] == 60
    assert "phases:" in capsys.readouterr().out


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [{"wd": -0.1}, {"frac": 0.0}, {"frac": 1.0}, {"frac": 1.5},
                                    {"p": 1}, {"lr": 0.0}, {"steps": 0}, {"model": "mlp"},
                                    {"beta2": 1.0}, {"n_train": 121, "p": 11},
                                    {"frac": 0.001, "p": 5}, {"labels": "xor"}])
def test_bad_config_raises(kwargs):
    with pytest.raises((ValueError, TypeError)):
        RunConfig(**kwargs)


@pytest.mark.parametrize("argv", [["grok", "--wd", "-1"], ["grok", "--frac", "1.5"],
                                  ["grok", "--frac", "0"], ["grok", "--p", "1"],
                                  ["grok", "--p", "x"], ["grok", "--resume", "/nonexistent.pt"],
                                  ["bench", "grok", "--nanda-steps", "0"]])
def test_cli_bad_arguments_exit_2_one_line(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:") and "Traceback" not in err


def test_cli_bad_argument_subprocess():
    proc = subprocess.run([sys.executable, "-m", "verify", "grok", "--wd", "-1"],
                          capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(
                              os.path.abspath(__file__))))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_detector_rejects_bad_curves():
    with pytest.raises(ValueError):
        phases.detect([], [], [])
    with pytest.raises(ValueError):
        phases.detect([0, 0], [0.1, 0.2], [0.1, 0.2])
    with pytest.raises(ValueError):
        phases.detect([0, 1], [0.1, 1.2], [0.1, 0.2])
    with pytest.raises(ValueError):
        phases.detect([0, 1], [0.1], [0.1, 0.2])


# --- phase detector ----------------------------------------------------------------------------

@given(strategies.accuracy_curves(kind="grokking"))
@example(([0, 1400, 9400, 14000], [0.1, 1.0, 1.0, 1.0], [0.01, 0.02, 0.5, 1.0], 1400, 14000))
def test_detector_finds_grokking(curves):
    steps, train_acc, test_acc, t_mem, t_gen = curves
    ph = phases.detect(steps, train_acc, test_acc)
    assert (ph.kind, ph.t_mem, ph.t_gen) == ("grokking", t_mem, t_gen)
    assert ph.plateau == t_gen - t_mem and t_mem <= ph.t_switch < t_gen


@given(strategies.accuracy_curves(kind="never_generalized"))
def test_detector_never_generalizing(curves):
    steps, train_acc, test_acc, t_mem, _ = curves
    ph = phases.detect(steps, train_acc, test_acc)
    assert (ph.kind, ph.t_mem, ph.t_gen, ph.plateau) == ("never_generalized", t_mem, None, None)


@given(strategies.accuracy_curves(kind="immediate"))
def test_detector_immediate(curves):
    steps, train_acc, test_acc, _, t_gen = curves
    ph = phases.detect(steps, train_acc, test_acc)
    assert (ph.kind, ph.t_mem, ph.t_gen) == ("immediate", None, t_gen)


def synthetic_run(kind: str, *, norm_rises: bool = True, sharp: bool = True) -> dict:
    steps, tr, te, expected = claims.synthetic_curves()[kind]
    ph = phases.detect(steps, tr, te)
    norm = [100.0 + (50.0 if norm_rises else -50.0) * min(1, s / 200) for s in steps]
    if ph.t_switch is not None and sharp:   # flat plateau, then a steep fall in the switch
        norm = [n if s <= ph.t_switch else n * math.exp(-(s - ph.t_switch) / 200)
                for n, s in zip(norm, steps)]
    return {"history": {"step": steps, "train_acc": tr, "test_acc": te, "norm2": norm,
                        "total_loss": norm}, "config": dict(TINY.__dict__)}


def test_phases_claim_on_synthetic_runs():
    good = claims.check_phases(synthetic_run("grokking"), synthetic_run("grokking"))
    assert good.passed and good.verdict == "confirmed"
    flat = claims.check_phases(synthetic_run("grokking", norm_rises=False, sharp=False),
                               synthetic_run("grokking"))
    assert flat.passed and flat.verdict == "corrected"
    assert not flat.evidence["phase1_norm_default_init"]["rises"]
    never = claims.check_phases(synthetic_run("never_generalizing"), synthetic_run("grokking"))
    assert not never.passed and never.verdict == "refuted"
    immediate = claims.check_phases(synthetic_run("immediate"), synthetic_run("grokking"))
    assert not immediate.passed


def test_broken_detector_fails_selftest():
    def always_grokking(steps, tr, te):
        return phases.Phases("grokking", steps[0], steps[0], steps[-1], steps[0])
    out = claims.check_phases(synthetic_run("grokking"), synthetic_run("grokking"),
                              detect=always_grokking)
    assert not out.passed
    assert all(v["ok"] for v in claims.detector_selftest().values())


def test_total_loss_drop_threshold():
    steps = [0, 100, 200, 300]
    ph = phases.Phases("grokking", 0, 0, 300, 100)
    # plateau rate r, switch rate SHARP_FACTOR * r (up to rounding): sharp; 1% below: not
    r = 1e-3
    at = [1.0, math.exp(-100 * r), 0.0, math.exp(-100 * r - 200 * phases.SHARP_FACTOR * r * 1.000001)]
    assert phases.total_loss_drop(steps, at, ph)["sharp"]
    below = at[:3] + [math.exp(-100 * r - 200 * phases.SHARP_FACTOR * r * 0.99)]
    assert not phases.total_loss_drop(steps, below, ph)["sharp"]


# --- progress measures -------------------------------------------------------------------------

def test_gini_and_topk():
    assert metrics.gini(torch.ones(5)) == 0.0
    assert math.isclose(metrics.gini(torch.tensor([0, 0, 0, 3.0])), 3 / 4)
    assert metrics.top_k_share(torch.tensor([4.0, 1.0, 0.0]), 1) == 0.8


@given(p=st.integers(5, 31), k=st.integers(1, 15))
def test_spectrum_of_a_pure_frequency(p, k):
    k = 1 + (k - 1) % (p // 2)
    x = torch.arange(p, dtype=torch.float64)
    w_e = torch.stack([torch.cos(2 * math.pi * k * x / p), 3 * torch.sin(2 * math.pi * k * x / p)], 1)
    spec = metrics.embedding_spectrum(w_e)
    assert int(spec.argmax()) == k - 1
    assert math.isclose(float(spec.sum()), float((w_e - w_e.mean(0)) .pow(2).sum()), rel_tol=1e-9)


def test_restricted_and_excluded_loss_on_the_hand_built_adder():
    modular = pytest.importorskip("constructions.modular")
    p, keys = 13, [2, 5]
    adder = modular.build_adder(p, keys)
    a, b = metrics.all_pairs(p)
    L = 10 * adder(a, b)                                  # [p^2, p]
    y = (a + b) % p
    assert metrics.key_frequencies(L) == keys
    full = float(torch.nn.functional.cross_entropy(L, y))
    assert math.isclose(metrics.restricted_loss(L, y, keys), full, rel_tol=1e-9)
    assert metrics.excluded_loss(L, y, keys, torch.arange(p * p)) == pytest.approx(math.log(p))
    assert metrics.restricted_loss(L, y, [1]) > full + 1


def test_product_share_of_a_product_circuit():
    p = 11
    a, b = metrics.all_pairs(p)
    w = 2 * math.pi * 3 / p
    hidden = torch.stack([torch.cos(w * (a + b)), torch.sin(w * (a + b)), torch.zeros(p * p)], 1)
    assert metrics.product_share(hidden.double(), p, [3]) == pytest.approx(1.0)
    assert metrics.product_share(hidden.double(), p, [4]) == pytest.approx(0.0, abs=1e-12)


# --- explicit norms ----------------------------------------------------------------------------

def test_lookup_memorizer_at_its_least_norm():
    out = claims.check_memorization_norm(ns=(5, 10, 20), trained=False)
    assert out.passed
    assert out.verdict == "corrected"  # without trained memorizers linear growth is not shown
    assert abs(out.evidence["lookup_exponent_mlp_part"] - 1) < 1e-9


def test_broken_lookup_fails():
    def wrong_bias(p, pairs, labels, gamma):
        model = norms.build_lookup(p, pairs, labels, gamma)
        with torch.no_grad():
            model.fc[0].bias.zero_()          # units fire on a single match: margins collapse
        return model

    def off_optimum(p, pairs, labels, gamma):
        return norms.build_lookup(p, pairs, labels, gamma,
                                  alpha=1.2 * norms.lookup_scales(p, gamma)[0])

    assert not claims.check_memorization_norm(wrong_bias, ns=(5, 10), trained=False).passed
    assert not claims.check_memorization_norm(off_optimum, ns=(5, 10), trained=False).passed


def test_margin_for_loss_and_rescaling():
    p = 23
    g = norms.margin_for_loss(p, 0.01)
    assert math.isclose(math.log1p((p - 1) * math.exp(-g)), 0.01)
    # one group of degree 1: s^2 n with s = R
    assert math.isclose(norms.min_norm2_rescaled({"a": 4.0}, {"a": 1}, 3.0), 36.0)
    # two groups of degree 1, n = (1, 4), product R = 2: least s1^2 + 4 s2^2 = 2 * 2 * sqrt(4)/... = 8
    best = min(s ** 2 + 4 * (2 / s) ** 2 for s in [i / 1000 for i in range(1, 10000)])
    assert math.isclose(norms.min_norm2_rescaled({"a": 1.0, "b": 4.0}, {"a": 1, "b": 1}, 2.0),
                        best, rel_tol=1e-5)
    with pytest.raises(ValueError):
        norms.margin_for_loss(1)
    with pytest.raises(ValueError):
        norms.margin_for_loss(5, 0.0)
    with pytest.raises(ValueError):
        norms.build_lookup(5, torch.tensor([[0, 1], [0, 1]]), torch.tensor([1, 2]), 3.0)
    with pytest.raises(ValueError):
        norms.fit_exponent([1.0], [1.0])


def test_adder_norms_and_a_broken_adder():
    modular = pytest.importorskip("constructions.modular")
    out = claims.check_generalization_norm(ps=(11, 23, 47), grok_ps=())
    assert out.passed
    assert out.verdict == "corrected" and out.evidence["few"]["exponent_total"] > 0.4
    assert out.evidence["few"]["middle_layers_per_frequency"] == pytest.approx(46.3125)

    def broken(p, freqs):
        adder = modular.build_adder(p, freqs)
        with torch.no_grad():
            adder.transformer.embed.W_E[0, 0] += 0.5
        return adder

    assert not claims.check_generalization_norm(broken, ps=(11, 23), grok_ps=()).passed


def test_detector_test_before_train_is_immediate():
    ph = phases.detect([0, 1, 2], [0.1, 0.5, 1.0], [0.1, 1.0, 0.2])
    assert ph.kind == "immediate" and ph.t_mem is None
