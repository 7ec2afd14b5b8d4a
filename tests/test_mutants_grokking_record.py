"""The sweep's evidence record (verify/grokking/record.py) and the progress measures over a
seed's saved weights (verify/grokking/progress.py), on hand-made logs and a hand-made sweep
folder (no training): every field an entry records, the curve subsampling, partial and running
settings, the file checks, and the restricted-loss and least-norm measures pinned against
direct computations (mutation testing, issue 13)."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics

import pytest
import torch

from verify import checkpoint
from verify.grokking import measures, metrics, models, norms, progress, record, rescale, sweep
from verify.grokking.train import RunConfig, make_dataset

# --- record.entry on hand-made logs --------------------------------------------------------------


def rows(n: int = 450, every: int = 10, t_mem: int = 100, t_full: int = 150, rise=(2000, 3000),
         wd_rest: float = 5.0) -> list[dict[str, float]]:
    """Logged rows: train accuracy 0.995 at t_mem and 1 from t_full; test accuracy a ramp from
    0.01 to 1 over ``rise``; L_total falls fastest in the ramp."""
    out = []
    for i in range(n):
        s = i * every
        train = 0.5 if s < t_mem else (0.995 if s < t_full else 1.0)
        lo, hi = rise
        test = 0.01 if s < lo else min(1.0, 0.01 + 0.99 * (s - lo) / (hi - lo))
        total = 50.0 - s / 1000 - (20.0 if s >= 2500 else 0.0)
        out.append({"step": s, "seconds": 0.0, "train_loss": 1.0 / (1 + s), "test_loss": 1.0,
                    "train_acc": train, "test_acc": test, "norm2": 40.0 + i,
                    "norm2_embed": 30.0 + i / 2, "norm2_rest": 10.0 + i / 2 + wd_rest * 0,
                    "total_loss": total, "gini": 0.1, "topk_share": 0.2,
                    "norm2/fc.0.weight": 1.0 + i})
    return out


CFG = {**RunConfig(p=5, d=13, frac=0.6, wd=0.5, lr=0.02, beta1=0.8, beta2=0.99, steps=5000,
                   log_every=10).__dict__}


def done_of(logs: dict[int, list], finished: dict[int, tuple[int, str]], name: str = "s",
            cfg: dict | None = None) -> dict:
    return {"setting": name, "config": cfg or CFG, "logs": {str(s): r for s, r in logs.items()},
            "finished": {str(s): {"step": st, "reason": why, "seconds": 1.0}
                         for s, (st, why) in finished.items()},
            "seeds": sorted(logs), "train_seconds": 2.5}


def test_entry_of_a_grokking_seed_pins_every_field():
    log = rows()
    log[-1] = dict(log[-1], train_acc=0.999, test_acc=0.995)     # the last row is read
    e = record.entry(done_of({3: log}, {3: (4490, "generalized")}), 3)
    assert {k: e[k] for k in ("setting", "seed", "p", "d", "lr", "weight_decay", "betas",
                              "train_frac", "max_steps", "log_every", "stopped", "hit_cap",
                              "steps_run", "kind", "step_memorized", "step_train_acc_1",
                              "step_generalized", "final_train_acc", "final_test_acc")} == {
        "setting": "s", "seed": 3, "p": 5, "d": 13, "lr": 0.02, "weight_decay": 0.5,
        "betas": [0.8, 0.99], "train_frac": 0.6, "max_steps": 5000, "log_every": 10,
        "stopped": "generalized", "hit_cap": False, "steps_run": 4490, "kind": "grokking",
        "step_memorized": 100, "step_train_acc_1": 150, "step_generalized": 2990,
        "final_train_acc": 0.999, "final_test_acc": 0.995}
    steps = [r["step"] for r in log]
    te = [r["test_acc"] for r in log]
    assert e["test_acc_first_reaches"] == {str(x): measures.first_step(steps, te, x)
                                           for x in (0.1, 0.5, 0.9, 0.99)}
    assert e["test_acc_first_reaches"]["0.1"] == 2100
    assert e["rise_0.1_to_0.9"] == measures.rise_steps(steps, te)
    assert e["norms_init"] == measures.norms_at(log, 0)
    assert e["norms_memorized"] == measures.norms_at(log, 100)
    assert e["norms_end"] == measures.norms_at(log, 4490)
    total = [r["total_loss"] for r in log]
    rest = [r["train_loss"] + 0.5 * r["norm2_rest"] for r in log]
    assert e["L_total_sharpest_fall"] == measures.sharpest_fall(steps, total, 100, 2990,
                                                                start_from=2100)
    assert e["L_total_sharpest_fall_anywhere"] == measures.sharpest_fall(steps, total, 100, 2990)
    assert e["L_total_rest_sharpest_fall"] == measures.sharpest_fall(steps, rest, 100, 2990,
                                                                     start_from=2100)
    assert e["L_total_sharpest_fall"]["window"][0] >= 2100
    assert "key_frequencies" not in e


def test_entry_curves_are_subsampled_with_the_last_point():
    log = rows(n=450)
    e = record.entry(done_of({0: log}, {0: (4490, "cap")}), 0)
    keep = list(range(0, 450, 2)) + [449]                  # stride 450 // 200 = 2
    assert set(e["curves"]) == set(record.CURVE_KEYS)
    assert record.CURVE_KEYS == ("step", "train_acc", "test_acc", "train_loss", "test_loss",
                                 "norm2_embed", "norm2_rest", "total_loss")
    for k in record.CURVE_KEYS:
        assert e["curves"][k] == [log[i][k] for i in keep]
    assert record.CURVE_POINTS == 200
    odd = record.entry(done_of({0: rows(n=401)}, {0: (4000, "cap")}), 0)
    assert odd["curves"]["step"] == [r["step"] for r in rows(n=401)][::2]   # 400 % 2 == 0
    short = record.entry(done_of({0: rows(n=399)}, {0: (3980, "cap")}), 0)
    assert len(short["curves"]["step"]) == 399                      # stride 1
    e3 = record.entry(done_of({0: rows(n=603)}, {0: (6020, "cap")}), 0)
    assert e3["curves"]["step"][-2:] == [6000, 6020] and len(e3["curves"]["step"]) == 202
    e601 = record.entry(done_of({0: rows(n=601)}, {0: (6000, "cap")}), 0)  # 600 % 3 == 0
    assert e601["curves"]["step"] == [r["step"] for r in rows(n=601)][::3]


def test_entry_of_other_kinds():
    cap = rows(n=100, rise=(5000, 6000))                       # never reaches 0.1
    e = record.entry(done_of({0: cap}, {0: (990, "cap")}), 0)
    assert (e["kind"], e["stopped"], e["hit_cap"], e["step_generalized"]) == (
        "never_generalized", "cap", True, None)
    assert e["norms_memorized"] == measures.norms_at(cap, 100)
    assert "L_total_sharpest_fall" not in e and "L_total_rest_sharpest_fall" not in e
    imm = rows(n=100, rise=(0, 50))
    e = record.entry(done_of({0: imm}, {0: (990, "generalized")}), 0)
    assert e["kind"] == "immediate" and e["step_memorized"] is None
    assert e["norms_memorized"] == measures.norms_at(imm, 100)        # at t_train
    never = [dict(r, train_acc=0.5) for r in rows(n=20)]
    e = record.entry(done_of({0: never}, {0: (190, "cap")}), 0)
    assert e["kind"] == "never_memorized" and e["norms_memorized"] is None
    assert e["step_train_acc_1"] is None


# --- record.build, summary, write, load ----------------------------------------------------------

def _two_settings():
    a = done_of({0: rows(), 1: rows(n=100, rise=(5000, 6000))},
                {0: (4490, "generalized"), 1: (990, "cap")}, "a")
    b = done_of({2: rows(n=50, rise=(5000, 6000))}, {2: (490, "running")}, "b",
                cfg={**CFG, "p": 7})
    return {"a": a, "b": b}


def test_build_and_summary():
    rec = record.build(_two_settings(), {}, command="grok --sweep", wall_seconds=12.5,
                       partial=True, pending=["c"])
    assert [(e["setting"], e["seed"]) for e in rec["entries"]] == [("a", 0), ("a", 1), ("b", 2)]
    assert rec["schema"] == record.SCHEMA == "circuit-proofs/grok-seeds/1"
    assert (rec["partial"], rec["pending_settings"], rec["command"], rec["wall_seconds"]) == (
        True, ["c"], "grok --sweep", 12.5)
    assert rec["settings"] == {"a": CFG, "b": {**CFG, "p": 7}}
    assert rec["train_seconds"] == {"a": 2.5, "b": 2.5} and rec["seeds"] == {"a": [0, 1], "b": [2]}
    assert rec["generalized_criterion"] == "first logged step with test accuracy >= 0.99"
    assert rec["versions"] == {"python": platform.python_version(), "torch": torch.__version__}
    assert rec["machine"] == {"platform": platform.platform(), "processor": platform.machine(),
                              "cpu_count": os.cpu_count(), "torch_threads": 1, "device": "cpu"}
    a, b = rec["summary"]
    assert a == {"setting": "a", "seeds": 2, "memorized": 2, "generalized": 1, "running": 0,
                 "hit_cap": 1,
                 "steps_run": {"median": statistics.median([4490, 990]), "min": 990,
                               "max": 4490, "n": 2},
                 "t_mem": {"median": 100, "min": 100, "max": 100, "n": 2},
                 "t_gen": {"median": 2990, "min": 2990, "max": 2990, "n": 1},
                 "rise_0.1_to_0.9": {"median": 800, "min": 800, "max": 800, "n": 1},
                 "final_test_acc": {"median": pytest.approx(0.505), "min": 0.01, "max": 1.0,
                                    "n": 2}}
    assert (b["running"], b["hit_cap"], b["t_gen"], b["rise_0.1_to_0.9"]) == (1, 0, None, None)
    assert record.summary({"settings": {"z": {}}, "entries": []})[0]["t_mem"] is None


def test_build_measures_progress_only_for_folders_given(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(progress, "seed_progress",
                        lambda done, seed, folder: seen.append((seed, folder)) or {"x": seed})
    rec = record.build(_two_settings(), {"b": tmp_path}, command="c", wall_seconds=0.0,
                       partial=False, pending=[])
    assert seen == [(2, tmp_path)] and rec["entries"][2]["x"] == 2
    assert "x" not in rec["entries"][0] and rec["partial"] is False


def test_write_and_load(tmp_path):
    rec = {"schema": record.SCHEMA, "entries": [1, 2]}
    path = tmp_path / "r.json"
    record.write(rec, path)
    assert record.load(path) == rec and not (tmp_path / "r.json.tmp").exists()
    assert json.loads(path.read_text()) == rec and "\n " in path.read_text()   # indented
    record.write(rec, str(tmp_path / "s.json"))
    assert record.load(str(tmp_path / "s.json")) == rec


@pytest.mark.parametrize("content, match", [
    (None, r"record: cannot read '.*x\.json' \(FileNotFoundError\)"),
    (b"{not json", r"record: cannot read '.*x\.json' \(JSONDecodeError\)"),
    (b"\xff\xfe\x00", r"record: cannot read .*\(UnicodeDecodeError\)"),
    (b"[1, 2]", r"record: '.*x\.json' is not a circuit-proofs/grok-seeds/1 file"),
    (b'{"schema": "other"}', "is not a circuit-proofs/grok-seeds/1 file"),
    (b"{}", "is not a circuit-proofs/grok-seeds/1 file"),
])
def test_load_refuses_what_is_not_a_record(tmp_path, content, match):
    path = tmp_path / "x.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        record.load(path)


# --- record.from_folder --------------------------------------------------------------------------

def test_from_folder_finished_running_and_pending(tmp_path):
    settings = _two_settings()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "done.json").write_text(json.dumps(settings["a"]))
    log_b = rows(n=30, rise=(5000, 6000))
    checkpoint.save(tmp_path / "b" / "checkpoint", schema=sweep.SCHEMA,
                    tensors={"x": torch.zeros(1)},
                    meta={"config": CFG, "active": [4], "step": 290, "seconds": 7.0,
                          "logs": {"3": log_b[:10], "4": log_b},
                          "finished": {"3": {"step": 90, "reason": "generalized", "seconds": 1.0}}})
    rec = record.from_folder(tmp_path, ["a", "b", "c"], command="cmd", wall_seconds=3.0)
    assert rec["partial"] is True and rec["pending_settings"] == ["c"]
    assert rec["running_settings"] == ["b"] and rec["command"] == "cmd"
    assert rec["wall_seconds"] == 3.0 and rec["seeds"] == {"a": [0, 1], "b": [3, 4]}
    assert rec["train_seconds"]["b"] == 7.0 and rec["settings"]["b"] == CFG
    b = {e["seed"]: e for e in rec["entries"] if e["setting"] == "b"}
    assert (b[3]["stopped"], b[3]["steps_run"]) == ("generalized", 90)
    assert (b[4]["stopped"], b[4]["steps_run"]) == ("running", 290)
    assert [e["seed"] for e in rec["entries"]] == [0, 1, 3, 4]


def test_from_folder_complete_and_the_file_time_span(tmp_path):
    settings = _two_settings()
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "done.json").write_text(json.dumps(settings[name]))
    (tmp_path / "a" / "note.txt").write_text("x")
    os.utime(tmp_path / "a" / "done.json", (1000.0, 1000.0))
    os.utime(tmp_path / "b" / "done.json", (1600.0, 1600.0))
    os.utime(tmp_path / "a" / "note.txt", (1250.0, 1250.0))
    rec = record.from_folder(tmp_path, ["a", "b"], command="c", wall_seconds=1.0)
    assert rec["partial"] is False and rec["pending_settings"] == [] and rec["running_settings"] == []
    assert rec["wall_seconds_first_to_last_file"] == 600.0
    empty = record.from_folder(tmp_path / "none", ["a"], command="c", wall_seconds=1.0)
    assert empty["entries"] == [] and empty["wall_seconds_first_to_last_file"] == 0.0
    assert empty["partial"] is True and empty["pending_settings"] == ["a"]


# --- progress.seed_progress on a hand-made sweep folder --------------------------------------------

P, D = 5, 13


def lookup_state(scale: float = 1.0) -> dict[str, torch.Tensor]:
    """TinyModel(5, 13) weights storing (a + b) mod 5 on all 25 pairs (the lookup memorizer of
    norms.py, padded to width 26); ``scale`` multiplies the output layer."""
    a, b = metrics.all_pairs(P)
    base = norms.build_lookup(P, torch.stack([a, b], 1), (a + b) % P, 3.0)
    E = torch.zeros(P, D)
    E[:, :P] = torch.eye(P)
    W1, b1 = torch.zeros(2 * D, 2 * D), torch.zeros(2 * D)
    W1[:25, :P], W1[:25, D:D + P] = base.fc[0].weight[:, :P], base.fc[0].weight[:, P:]
    b1[:25] = base.fc[0].bias
    W2 = torch.zeros(P, 2 * D)
    W2[:, :25] = scale * base.fc[2].weight
    return {"embed.weight": E, "fc.0.weight": W1, "fc.0.bias": b1, "fc.2.weight": W2,
            "fc.2.bias": torch.zeros(P)}


def zero_state() -> dict[str, torch.Tensor]:
    return {k: torch.zeros_like(v) for k, v in lookup_state().items()}


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    full, weak = lookup_state(), lookup_state(0.05)
    save = sweep.save_weights

    def put(name, states):
        seeds = sorted(states)
        save(folder / name, {k: torch.stack([states[s][k] for s in seeds]) for k in full}, seeds)

    put("snap_000000.safetensors", {0: zero_state(), 1: zero_state()})
    put("snap_000010.safetensors", {0: weak, 1: weak})
    put("snap_000020.safetensors", {0: full, 1: full})
    put("snap_000030.safetensors", {1: full})               # seed 0 absent
    put("snap_000040.safetensors", {0: full, 1: full})      # past seed 0's last step
    put("final_0.safetensors", {0: full})
    put("final_1.safetensors", {1: full})
    put("mem_0.safetensors", {0: full})
    put("mem_2.safetensors", {2: full})
    return folder


CFG5 = {**RunConfig(p=P, d=D, frac=0.6).__dict__}
DONE = {"config": CFG5, "finished": {"0": {"step": 30, "reason": "generalized"},
                                     "1": {"step": 40, "reason": "cap"},
                                     "2": {"step": 40, "reason": "running"}}}


def _losses(state, keys, seed):
    data = make_dataset(RunConfig(**{**CFG5, "seed": seed}))
    m = progress._model(CFG5, state)
    L = models.logits(m, data.a, data.b).double()
    return (metrics.restricted_loss(L, data.labels, keys),
            metrics.excluded_loss(L, data.labels, keys, data.train))


def test_seed_progress_of_a_generalized_seed(sweep_folder):
    out = progress.seed_progress(DONE, 0, sweep_folder)
    data = make_dataset(RunConfig(**{**CFG5, "seed": 0}))
    final = progress._model(CFG5, lookup_state())
    L = models.logits(final, data.a, data.b).double()
    keys = metrics.key_frequencies(L)
    assert out["key_frequencies"] == keys
    nanda = metrics.nanda_key_frequencies(models.hidden(final, data.a, data.b).double(), P)
    assert out["nanda_key_frequencies"] == nanda and nanda["keys"]
    prog = out["progress"]
    assert prog["step"] == [0, 10, 20]
    states = [zero_state(), lookup_state(0.05), lookup_state()]
    for i, st in enumerate(states):
        r, x = _losses(st, keys, 0)
        assert prog["restricted_loss"][i] == pytest.approx(r, rel=1e-12)
        assert prog["excluded_loss"][i] == pytest.approx(x, rel=1e-12)
        rn, xn = _losses(st, nanda["keys"], 0)
        assert prog["restricted_loss_nanda_keys"][i] == pytest.approx(rn, rel=1e-12)
        assert prog["excluded_loss_nanda_keys"][i] == pytest.approx(xn, rel=1e-12)
    assert prog["restricted_loss"][0] == pytest.approx(math.log(P))
    level = progress.CIRCUIT_FORMED_SHARE * math.log(P)
    assert progress.CIRCUIT_FORMED_SHARE == 0.25 and out["circuit_formed_threshold"] == level
    assert prog["restricted_loss"][1] > level >= prog["restricted_loss"][2]
    assert out["step_circuit_formed"] == 20
    tr = data.train
    least = rescale.least_norm2_at_loss(lookup_state(), data.a[tr], data.b[tr], data.labels[tr])
    assert out["least_norm2_memorizer"] == least["least_norm2"]
    assert out["least_norm2_generalizer"] == least["least_norm2"]
    assert out["least_norm2_detail"] == {"memorizer": least, "generalizer": least}


def test_seed_progress_stops_at_the_seed_s_last_step_and_skips_what_it_lacks(sweep_folder):
    out = progress.seed_progress(DONE, 1, sweep_folder)
    assert out["progress"]["step"] == [0, 10, 20, 30, 40]
    assert out["least_norm2_memorizer"] is None and out["least_norm2_generalizer"] is None
    assert out["least_norm2_detail"] == {}
    done = {**DONE, "finished": {**DONE["finished"], "1": {"step": 30, "reason": "generalized"}}}
    out = progress.seed_progress(done, 1, sweep_folder)
    assert out["progress"]["step"] == [0, 10, 20, 30]
    assert out["least_norm2_generalizer"] is not None and out["least_norm2_memorizer"] is None


def test_seed_progress_circuit_threshold_at_the_edge(sweep_folder, monkeypatch):
    r20 = progress.seed_progress(DONE, 0, sweep_folder)["progress"]["restricted_loss"][2]
    monkeypatch.setattr(progress, "CIRCUIT_FORMED_SHARE", r20 / math.log(P))
    assert progress.seed_progress(DONE, 0, sweep_folder)["step_circuit_formed"] == 20
    monkeypatch.setattr(progress, "CIRCUIT_FORMED_SHARE", r20 / math.log(P) * (1 - 1e-9))
    assert progress.seed_progress(DONE, 0, sweep_folder)["step_circuit_formed"] is None


def test_seed_progress_without_nanda_keys(sweep_folder, monkeypatch):
    monkeypatch.setattr(metrics, "nanda_key_frequencies",
                        lambda hidden, p: {"keys": [], "neurons_per_key": {}, "live_neurons": 0})
    prog = progress.seed_progress(DONE, 0, sweep_folder)["progress"]
    assert prog["restricted_loss_nanda_keys"] == [None, None, None]
    assert prog["excluded_loss_nanda_keys"] == [None, None, None]


def test_seed_progress_of_a_seed_still_training(sweep_folder):
    out = progress.seed_progress(DONE, 2, sweep_folder)
    data = make_dataset(RunConfig(**{**CFG5, "seed": 2}))
    tr = data.train
    least = rescale.least_norm2_at_loss(lookup_state(), data.a[tr], data.b[tr], data.labels[tr])
    assert out == {"least_norm2_memorizer": least["least_norm2"],
                   "least_norm2_detail": {"memorizer": least}}
    assert progress.seed_progress(DONE, 3, sweep_folder) == {}


def test_progress_model_loads_the_state():
    m = progress._model(CFG5, lookup_state())
    a, b = metrics.all_pairs(P)
    assert torch.equal(m(a, b).argmax(-1), (a + b) % P)
