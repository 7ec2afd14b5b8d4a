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
    ckpt = str(tmp_path / "half")
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
                   "--checkpoint", str(tmp_path / "c")])
    assert rc == 0
    run = json.loads((out / "grok.json").read_text())
    assert runio.problems(run) == []
    assert (out / "grok.png").stat().st_size > 10_000
    rc = cli.main(["grok", "--steps", "60", "--resume", str(tmp_path / "c"), "--out", str(out),
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


def test_detector_test_before_train_is_immediate():
    ph = phases.detect([0, 1, 2], [0.1, 0.5, 1.0], [0.1, 1.0, 0.2])
    assert ph.kind == "immediate" and ph.t_mem is None


# --- batched seeds (issue 10, item 1) ----------------------------------------------------------

def test_batched_seed_k_equals_single_run_step_by_step():
    """Seed k of a batched run follows the single run with seed k, step by step."""
    import torch.nn.functional as F

    from verify.grokking import batched, models
    from verify.grokking.train import make_dataset
    cfg = RunConfig(p=13, frac=0.5, d=8, lr=1e-2)
    seeds = [0, 3, 5]
    run = batched.BatchRun(cfg, seeds)
    singles = []
    for s in seeds:
        m = models.build_model("tiny", cfg.p, d=cfg.d, seed=s)
        opt = torch.optim.AdamW(m.parameters(), lr=cfg.lr, weight_decay=cfg.wd,
                                betas=(cfg.beta1, cfg.beta2))
        singles.append((m, opt, make_dataset(RunConfig(**{**cfg.__dict__, "seed": s}))))
    for _ in range(15):
        losses = run.step()
        for k, (m, opt, d) in enumerate(singles):
            opt.zero_grad()
            loss = F.cross_entropy(m(d.a[d.train], d.b[d.train]), d.labels[d.train])
            loss.backward()
            opt.step()
            assert float(losses[k]) == pytest.approx(float(loss.detach()), rel=1e-5)
    for k, (m, _, _) in enumerate(singles):
        for name, value in m.state_dict().items():
            assert torch.allclose(run.params[name][k], value, atol=1e-5), (k, name)


def test_batched_keep_equals_a_batch_of_the_kept_seeds():
    from verify.grokking import batched
    cfg = RunConfig(p=11, frac=0.5, d=8, lr=1e-2)
    a = batched.BatchRun(cfg, [0, 1, 2])
    for _ in range(4):
        a.step()
    a.keep([0, 2])
    for _ in range(4):
        a.step()
    b = batched.BatchRun(cfg, [0, 2])
    for _ in range(8):
        b.step()
    assert a.seeds == [0, 2]
    for name in batched.PARAM_NAMES:
        assert torch.equal(a.params[name], b.params[name])


def test_batched_random_labels_differ_per_seed():
    from verify.grokking import batched
    run = batched.BatchRun(RunConfig(p=7, labels="random", n_train=20, d=4), [0, 1])
    assert not torch.equal(run.labels[0], run.labels[1])


def test_batched_rejects_bad_seeds_and_models():
    from verify.grokking import batched
    with pytest.raises(ValueError, match="seeds"):
        batched.BatchRun(RunConfig(p=7, d=4), [1, 1])
    with pytest.raises(ValueError, match="model"):
        batched.stacked_init(RunConfig(model="transformer", p=7), [0])


# --- the sweep: checkpoints, resume, record ----------------------------------------------------

SMALL = RunConfig(p=11, frac=0.5, d=8, lr=1e-2, steps=120, log_every=20)


def test_sweep_setting_interrupted_and_resumed_equals_straight(tmp_path, monkeypatch):
    from verify.grokking import sweep
    straight = sweep.run_setting("s", SMALL, [0, 1], tmp_path / "a", snapshot_every=40)
    monkeypatch.setattr(sweep, "CHECKPOINT_SECONDS", 0.0)
    calls = []

    def interrupt(text):
        calls.append(text)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep.run_setting("s", SMALL, [0, 1], tmp_path / "b", snapshot_every=40, say=interrupt)
    assert (tmp_path / "b" / "checkpoint" / "checkpoint.json").exists()
    assert not (tmp_path / "b" / "done.json").exists()
    resumed = sweep.run_setting("s", SMALL, [0, 1], tmp_path / "b", snapshot_every=40)
    for seed in ("0", "1"):
        assert [r["train_loss"] for r in resumed["logs"][seed]] == pytest.approx(
            [r["train_loss"] for r in straight["logs"][seed]], rel=1e-6)
    with pytest.raises(ValueError, match="--p"):   # a conflicting setting is refused by name
        sweep.run_setting("s", RunConfig(**{**SMALL.__dict__, "p": 13}), [0, 1],
                          _half_done(tmp_path, monkeypatch), snapshot_every=40)


def _half_done(tmp_path, monkeypatch):
    from verify.grokking import sweep
    folder = tmp_path / "c"
    monkeypatch.setattr(sweep, "CHECKPOINT_SECONDS", 0.0)

    def stop(text):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep.run_setting("s", SMALL, [0, 1], folder, snapshot_every=40, say=stop)
    return folder


def test_record_entries_have_the_required_fields(tmp_path):
    from verify.grokking import record, sweep
    done = sweep.run_setting("default", SMALL, [0, 1], tmp_path / "default", snapshot_every=40)
    rec = record.from_folder(tmp_path, ["default", "demo2_frac0.5"], command="x", wall_seconds=1.0)
    assert rec["partial"] and rec["pending_settings"] == ["demo2_frac0.5"]
    assert len(rec["entries"]) == 2 and done["seeds"] == [0, 1]
    for key in ("setting", "p", "lr", "weight_decay", "betas", "train_frac", "seed", "max_steps",
                "step_memorized", "step_generalized", "hit_cap", "norms_init", "norms_memorized",
                "norms_end", "rise_0.1_to_0.9", "key_frequencies", "nanda_key_frequencies",
                "progress", "least_norm2_memorizer"):
        assert key in rec["entries"][0], key
    for key in ("embed", "rest", "total"):
        assert key in rec["entries"][0]["norms_init"]
    record.write(rec, tmp_path / "r.json")
    assert record.load(tmp_path / "r.json")["entries"][0]["seed"] == 0
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="record"):
        record.load(tmp_path / "bad.json")


# --- measures: the sharp-fall and rise rules, at their bounds ---------------------------------

def test_sharpest_fall_of_a_line_and_of_a_step():
    from verify.grokking import measures
    steps = list(range(0, 1001, 10))
    line = measures.sharpest_fall(steps, [1000.0 - s for s in steps], 0, 1000)
    assert line["share"] == pytest.approx(measures.WINDOW_SHARE) and not line["sharp"]
    step = measures.sharpest_fall(steps, [10.0 if s < 500 else 1.0 for s in steps], 0, 1000)
    assert step["share"] == 1.0 and step["sharp"] and step["window"][0] < 500 <= step["window"][1]
    rising = measures.sharpest_fall(steps, [float(s) for s in steps], 0, 1000)
    assert not rising["defined"] and not rising["sharp"]


def test_sharp_share_at_the_bound_and_just_below():
    from verify.grokking import measures
    steps = list(range(0, 101))

    def curve(jump):   # falls `jump` inside one window, the rest of 1.0 spread over the rest
        return [1.0 - (1 - jump) * min(s, 50) / 50 - (jump if s >= 60 else 0.0)
                - (1 - jump) * 0 for s in steps]

    at = measures.sharpest_fall(steps, curve(0.5), 0, 100, window_share=0.01)
    below = measures.sharpest_fall(steps, curve(0.499), 0, 100, window_share=0.01)
    assert at["share"] == pytest.approx(0.5) and at["sharp"]
    assert not below["sharp"]


def test_rise_steps_and_bad_arguments():
    from verify.grokking import measures
    steps = [0, 100, 200, 300]
    assert measures.rise_steps(steps, [0.0, 0.1, 0.5, 0.9])["steps"] == 200
    assert measures.rise_steps(steps, [0.0, 0.1, 0.5, 0.89])["steps"] is None
    with pytest.raises(ValueError, match="lo"):
        measures.rise_steps(steps, [0.0] * 4, lo=0.9, hi=0.1)
    with pytest.raises(ValueError, match="window_share"):
        measures.sharpest_fall(steps, [1.0] * 4, 0, 300, window_share=1.0)
    with pytest.raises(ValueError, match="t0"):
        measures.sharpest_fall(steps, [1.0] * 4, 300, 0)


# --- least norms over function-preserving rescalings ------------------------------------------

def test_rescaling_keeps_the_function_and_the_lookup_closed_form():
    from constructions.tiny_mlp import TinyModel
    from verify.grokking import growth, rescale
    torch.manual_seed(0)
    m = TinyModel(7, 4)
    a, b = metrics.all_pairs(7)
    before = m(a, b)
    s, c = 1.7, torch.rand(8) + 0.5
    with torch.no_grad():
        m.embed.weight.mul_(s)
        m.fc[0].weight.div_(s)
        m.fc[0].weight.mul_(c[:, None])
        m.fc[0].bias.mul_(c)
        m.fc[2].weight.div_(c[None, :])
    assert torch.allclose(m(a, b), before, atol=1e-5)
    out = growth.check_lookup(ns=(10, 40))
    assert out["ok"] and all(r["least_rescaled"] < r["norm2"] for r in out["rows"])
    y = (a + b) % 7
    assert rescale.logit_scale_for_loss(m.state_dict(), a, b, y) is None   # misclassifies
    with pytest.raises(ValueError, match="target"):
        rescale.logit_scale_for_loss(m.state_dict(), a, b, y, target=0.0)


def test_lookup_of_the_issue_at_p23_n100():
    """Issue 10's figure: the rescaled lookup memorizer, N = 100, p = 23: 2,628.7 -> 1,865.6."""
    from verify.grokking import growth
    g = norms.margin_for_loss(23)
    assert norms.lookup_min_norm2(23, 100, g) == pytest.approx(2628.7, abs=0.05)
    assert growth.lookup_least(23, 100, g) == pytest.approx(1865.6, abs=0.05)


def test_broken_lookup_fails_the_lookup_check():
    from verify.grokking import growth

    def wrong_bias(p, pairs, labels, gamma):
        model = norms.build_lookup(p, pairs, labels, gamma)
        with torch.no_grad():
            model.fc[0].bias.zero_()
        return model

    def off_optimum(p, pairs, labels, gamma):
        return norms.build_lookup(p, pairs, labels, gamma,
                                  alpha=1.2 * norms.lookup_scales(p, gamma)[0])

    assert not growth.check_lookup(wrong_bias, ns=(5, 10))["ok"]
    assert not growth.check_lookup(off_optimum, ns=(5, 10))["ok"]


def test_lemma3_arithmetic_with_all_frequencies():
    """2pm + 46.3125m with m = (p-1)/2 is (p-1)(p + 23.15625); p = 11: 341.5625."""
    from verify.grokking import growth
    table = growth.adder_table(ps=(11, 23))
    assert table["lemma3_ok"]
    for row in table["all"]["table"]:
        p = row["p"]
        assert row["total"] == pytest.approx((p - 1) * (p + 23.15625), rel=1e-9)
    assert table["all"]["table"][0]["total"] == pytest.approx(341.5625)


# --- the claims on synthetic records: each condition made to fail alone ------------------------

def _rows(*, t_mem=100, t_gen=2000, cap=3000, grok=True, rises=True, sharp=False,
          sudden=False, immediate=False, every=50):
    """Logged rows of one synthetic seed (sweep.LOG_KEYS)."""
    end = t_gen if grok else cap
    rows = []
    for s in range(0, end + 1, every):
        train = 1.0 if s >= t_mem else 0.5
        if immediate:
            test = train
        elif not grok or s < t_mem:
            test = 0.01
        elif sudden:
            test = 0.01 if s < t_gen - every else (0.5 if s < t_gen else 1.0)
        else:
            test = min(1.0, 0.01 + 0.99 * (s - t_mem) / (t_gen - t_mem))
        embed = 100.0 if s == 0 else (130.0 if rises else 60.0) - s / 1000
        rest = 10.0 if s == 0 else 20.0
        norm2 = embed + rest
        if s >= t_mem:   # L_total: steady decline, or flat then a drop at the very end
            frac = (s - t_mem) / (end - t_mem)
            norm2 = (embed + rest) * ((1 - 0.5 * (s >= end)) if sharp else (1 - 0.5 * frac))
        rows.append({"step": s, "seconds": 0.0, "train_loss": 0.0 if s >= t_mem else 1.0,
                     "test_loss": 1.0, "train_acc": train, "test_acc": test, "norm2": norm2,
                     "norm2_embed": embed, "norm2_rest": norm2 - embed, "total_loss": norm2,
                     "gini": 0.1, "topk_share": 0.2})
    return rows


def _record(setting_rows: dict, *, circuit_step=150, gen_smaller=True):
    """A record (and matching fresh runs) from {setting: {seed: rows}}."""
    from verify.grokking import record
    entries, fresh, settings = [], {}, {}
    for name, seeds in setting_rows.items():
        cfg = {**RunConfig(p=11, d=8, steps=3000).__dict__}
        settings[name] = cfg
        fin = {str(s): {"step": rows[-1]["step"],
                        "reason": "generalized" if rows[-1]["test_acc"] >= 0.99 else "cap"}
               for s, rows in seeds.items()}
        done = {"setting": name, "config": cfg, "logs": {str(s): r for s, r in seeds.items()},
                "finished": fin, "seeds": list(seeds), "train_seconds": 1.0}
        for seed in seeds:
            e = record.entry(done, seed)
            e["step_circuit_formed"] = circuit_step
            e["least_norm2_memorizer"] = 100.0
            e["least_norm2_generalizer"] = (50.0 if gen_smaller else 150.0) if e["step_generalized"] else None
            entries.append(e)
        fresh[name] = {s: {"log": rows[:13], "memorizer": None, "final": None}
                       for s, rows in seeds.items()}
    return {"entries": entries, "settings": settings}, fresh


def _standard(**changes):
    """The project's measured picture; ``changes`` maps a setting to row options."""
    opts = {"default": {"rises": False}, "demo2_frac0.5": {}, "demo2_frac0.3": {"grok": False}}
    for k, v in changes.items():
        opts[k] = {**opts[k], **v}
    return {name: {s: _rows(**o) for s in (0, 1)} for name, o in opts.items()}


def test_phases_checks_on_the_measured_picture():
    from verify.claims import grokking as gc
    from verify.registry import derive_verdict
    rec, fresh = _record(_standard())
    lit, res = gc.check_phases_literal(rec, fresh), gc.check_phases_restated(rec, fresh)
    assert (lit.holds, res.holds) == (False, True)
    assert lit.evidence["seeds_agreeing"]["norm_rises_phase1"] == [4, 6]
    # the section's picture: the norm rises everywhere, L_total falls sharply and test
    # accuracy jumps suddenly -> the literal check holds and the verdict changes
    good = {"rises": True, "sharp": True, "sudden": True}
    rec2, fresh2 = _record(_standard(**{"default": good, "demo2_frac0.5": good}))
    lit2 = gc.check_phases_literal(rec2, fresh2)
    assert lit2.holds
    assert derive_verdict(lit.holds, res.holds) != derive_verdict(lit2.holds, res.holds)


@pytest.mark.parametrize("broken", ["not_sharp", "not_sudden", "norm_falls", "immediate"])
def test_phases_literal_each_condition(broken):
    from verify.claims import grokking as gc
    good = {"rises": True, "sharp": True, "sudden": True}
    bad = {"not_sharp": {"sharp": False}, "not_sudden": {"sudden": False},
           "norm_falls": {"rises": False}, "immediate": {"immediate": True}}[broken]
    rec, fresh = _record(_standard(**{"default": good, "demo2_frac0.5": {**good, **bad}}))
    assert not gc.check_phases_literal(rec, fresh).holds


@pytest.mark.parametrize("broken", ["default_no_grok", "half_no_grok", "immediate",
                                    "demo2_norm_falls",
                                    "default_norm_rises", "circuit_late"])
def test_phases_restated_each_condition(broken):
    from verify.claims import grokking as gc
    changes = {"default_no_grok": {"default": {"grok": False}},
               "half_no_grok": {"demo2_frac0.5": {"grok": False}},
               "immediate": {"demo2_frac0.3": {"immediate": True}},
               "demo2_norm_falls": {"demo2_frac0.5": {"rises": False}},
               "default_norm_rises": {"default": {"rises": True}},
               "circuit_late": {}}[broken]
    rec, fresh = _record(_standard(**changes),
                         circuit_step=5000 if broken == "circuit_late" else 150)
    assert not gc.check_phases_restated(rec, fresh).holds


def test_a_disagreeing_record_makes_the_claim_fail():
    from verify.claims import grokking as gc
    from verify.grokking import evidence
    from verify.registry import run_claim
    rec, fresh = _record(_standard())
    for e in rec["entries"]:
        if e["setting"] == "default" and e["seed"] == 0:
            e["curves"]["norm2_embed"] = [v * 1.5 for v in e["curves"]["norm2_embed"]]
    with pytest.raises(evidence.RecordMismatch):
        gc.check_phases_literal(rec, fresh)
    c = gc.phases_claim
    saved = c.literal_check, c.restated_check
    try:
        c.literal_check = lambda: gc.check_phases_literal(rec, fresh)
        c.restated_check = lambda: gc.check_phases_restated(rec, fresh)
        result = run_claim(c, {"grokking.phases": "corrected"})
    finally:
        c.literal_check, c.restated_check = saved
    assert result.verdict == "undetermined" and not result.passed


def test_generalization_restated_needs_the_generalizer_smaller():
    from verify.claims import grokking as gc
    from verify.grokking import growth
    rec, fresh = _record(_standard())
    small = {"build": None}
    table = growth.adder_table(ps=(11, 23, 47))
    assert table["lemma3_ok"]
    good = gc.check_generalization_restated(rec=rec, fresh=fresh, band=(0.0, 5.0), **small)
    rec_bad, fresh_bad = _record(_standard(), gen_smaller=False)
    bad = gc.check_generalization_restated(rec=rec_bad, fresh=fresh_bad, band=(0.0, 5.0), **small)
    assert good.holds and not bad.holds
    assert good.evidence["seeds_agreeing"] == [4, 4]


def test_generalization_literal_and_a_broken_adder():
    from constructions import modular
    from verify.claims import grokking as gc
    lit = gc.check_generalization_literal()
    assert not lit.holds and lit.evidence["exponent_in_p"] > 1
    assert gc.check_generalization_literal(tol=5.0).holds    # the bound decides

    def broken(p, freqs):
        adder = modular.build_adder(p, freqs)
        with torch.no_grad():
            adder.transformer.embed.W_E[0, 0] += 0.5
        return adder

    rec, fresh = _record(_standard())
    assert not gc.check_generalization_restated(broken, rec, fresh).holds


def test_memorization_checks_on_given_points():
    from verify.claims import grokking as gc
    linear = {0: [(50, 500.0), (100, 1000.0), (200, 2000.0)], 1: [(50, 510.0), (100, 1000.0),
                                                                    (200, 1990.0)]}
    sub = {0: [(50, 500.0), (100, 700.0), (200, 980.0)], 1: [(50, 520.0), (100, 730.0),
                                                               (200, 1000.0)]}
    assert gc.check_memorization_literal(linear).holds
    assert not gc.check_memorization_literal(sub).holds
    assert gc.check_memorization_restated(points=sub).holds
    assert not gc.check_memorization_restated(points=linear).holds

    def wrong_bias(p, pairs, labels, gamma):
        model = norms.build_lookup(p, pairs, labels, gamma)
        with torch.no_grad():
            model.fc[0].bias.zero_()
        return model

    assert not gc.check_memorization_restated(wrong_bias, points=sub).holds


def test_sharpest_fall_from_the_switch_ignores_an_earlier_fall():
    from verify.grokking import measures
    steps = list(range(0, 1001, 10))
    values = [10.0 if s < 100 else (5.0 if s < 900 else 4.0) for s in steps]   # early drop
    anywhere = measures.sharpest_fall(steps, values, 0, 1000)
    at_switch = measures.sharpest_fall(steps, values, 0, 1000, start_from=800)
    assert anywhere["sharp"] and anywhere["window"][1] == 100
    assert at_switch["share"] == pytest.approx(1 / 6) and not at_switch["sharp"]


# --- the command line: interrupt, resume, refusals (issue 12, section 3) ------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _interrupt_when(proc, path, timeout=120):
    import signal
    import time
    start = time.time()
    while not os.path.exists(path):
        assert proc.poll() is None, proc.communicate()
        assert time.time() - start < timeout, "no checkpoint appeared"
        time.sleep(0.2)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=120)


def test_grok_sigint_leaves_checkpoint_and_partial_json_then_resumes(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "verify", "grok", "--p", "11", "--frac", "0.5", "--d", "8",
           "--log-every", "20", "--out", str(out), "--no-progress", "--checkpoint-every", "40"]
    proc = subprocess.Popen(cmd + ["--steps", "10000000"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = _interrupt_when(proc, out / "grok-checkpoint" / "checkpoint.json")
    assert proc.returncode == 130 and err.count("\n") == 1 and "Traceback" not in err
    run = json.loads((out / "grok.json").read_text())
    assert run["partial"] and run["stopped"].startswith("interrupted")
    step = run["history"]["step"][-1]
    done = subprocess.run([sys.executable, "-m", "verify", "grok", "--resume",
                           str(out / "grok-checkpoint"), "--steps", str(step + 100), "--out",
                           str(out), "--name", "resumed", "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    resumed = json.loads((out / "resumed.json").read_text())
    assert resumed["history"]["step"][-1] == step + 100 and "partial" not in resumed


def test_resume_refusals_are_one_line(tmp_path, capsys):
    out = tmp_path / "r"
    assert cli.main(["grok", "--p", "11", "--frac", "0.5", "--d", "8", "--steps", "20",
                     "--log-every", "10", "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    for argv, needle in ((["--resume", str(out / "grok.json")], "run JSON"),
                         (["--resume", str(out / "grok-checkpoint"), "--p", "13"], "--p 13"),
                         (["--resume", str(out / "grok-checkpoint"), "--d", "9"], "--d 9"),
                         (["--resume", str(tmp_path)], "not a checkpoint")):
        assert cli.main(["grok", *argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err


def test_sweep_sigint_partial_record_then_resume(tmp_path):
    folder, rec = tmp_path / "sw", tmp_path / "rec.json"
    cmd = [sys.executable, "-m", "verify", "grok", "--sweep", "--settings", "default",
           "--seeds", "0", "1", "--cap", "100000"]
    proc = subprocess.Popen(cmd + ["--sweep-dir", str(folder), "--record", str(rec)], cwd=ROOT,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = _interrupt_when(proc, folder / "default" / "snap_000100.safetensors")
    assert proc.returncode == 130 and "--resume" in err.splitlines()[-1]
    partial = json.loads(rec.read_text())
    assert partial["partial"] and partial["running_settings"] == ["default"]
    again = subprocess.run(cmd + ["--sweep-dir", str(folder)], cwd=ROOT, capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 2 and "--resume" in again.stderr   # refuses to start over
    conflict = subprocess.run([sys.executable, "-m", "verify", "grok", "--sweep", "--resume",
                               str(folder), "--cap", "5"], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
    assert conflict.returncode == 2 and "--cap" in conflict.stderr


def test_bench_grok_batched_speed_only(capsys):
    assert cli.main(["bench", "grok", "--skip-runs", "--batch-seeds", "2",
                     "--batch-steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "seed-steps/s batched" in out and "in a loop" in out
