"""Edges of the grokking phase detector and of the sweep record's file and summary
(verify/grokking/phases.py, record.py) that the other mutation tests leave open: the exact
refusal messages a user reads, an "immediate" run that never generalizes, an interrupted write,
the record file's exact text, and the per-setting count of generalized seeds (mutation testing,
issue 13). No training; everything here runs in milliseconds."""

from __future__ import annotations

import json

import pytest

from verify.grokking import phases, record

# --- phases.py -----------------------------------------------------------------------------------


@pytest.mark.parametrize("steps, curve, message", [
    ([], [], "steps must be non-empty"),
    ([0, 10, 10], [0.0, 0.0, 0.0], "steps must be strictly increasing"),
    ([0, 10], [0.0, 1.5], r"accuracies must lie in \[0, 1\]"),
    ([0, 10], [0.0], r"every curve must have len\(steps\)=2 entries, got 1"),
])
def test_detect_refusals_are_the_whole_message(steps, curve, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        phases.detect(steps, curve, curve)


def test_detect_immediate_run_that_never_generalizes():
    # test accuracy 0.6 >= LOW_TEST when train accuracy first reaches 0.99, never 0.99
    ph = phases.detect([0, 10, 20], [0.5, 1.0, 1.0], [0.2, 0.6, 0.9])
    assert ph == phases.Phases("immediate", 10, None, None, None)
    assert ph.as_json() == {"kind": "immediate", "t_train": 10, "t_mem": None, "t_gen": None,
                            "t_switch": None, "plateau": None}


# --- record.write --------------------------------------------------------------------------------


def test_write_is_the_one_space_indented_json_text(tmp_path):
    rec = {"schema": record.SCHEMA, "entries": [{"seed": 0, "kind": "grokking"}]}
    path = tmp_path / "r.json"
    record.write(rec, path)
    assert path.read_text() == json.dumps(rec, indent=1)
    assert path.read_text().splitlines()[1] == ' "schema": "circuit-proofs/grok-seeds/1",'


def test_an_interrupted_write_leaves_the_old_record_and_the_new_text_beside_it(tmp_path,
                                                                            monkeypatch):
    path = tmp_path / "r.json"
    record.write({"schema": record.SCHEMA, "entries": []}, path)
    old = path.read_text()
    moves = []

    def crash(src, dst):
        moves.append((str(src), str(dst)))
        raise OSError("interrupted")

    monkeypatch.setattr(record.os, "replace", crash)
    new = {"schema": record.SCHEMA, "entries": [1]}
    with pytest.raises(OSError, match="interrupted"):
        record.write(new, path)
    assert moves == [(str(path) + ".tmp", str(path))]
    assert path.read_text() == old
    assert (tmp_path / "r.json.tmp").read_text() == json.dumps(new, indent=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.json.tmp"]


# --- record.summary ------------------------------------------------------------------------------


def _entry(t_gen, stopped="generalized"):
    return {"setting": "s", "step_memorized": 100, "step_generalized": t_gen, "stopped": stopped,
            "hit_cap": stopped == "cap", "steps_run": 5000, "rise_0.1_to_0.9": {"steps": None},
            "final_test_acc": 1.0 if t_gen is not None else 0.05}


def test_summary_counts_the_seeds_that_generalized():
    rec = {"settings": {"s": {}},
           "entries": [_entry(3000), _entry(None, "cap"), _entry(4000), _entry(5000),
                       _entry(None, "running")]}
    (row,) = record.summary(rec)
    assert (row["seeds"], row["memorized"], row["generalized"]) == (5, 5, 3)
    assert (row["running"], row["hit_cap"]) == (1, 1)
    assert row["t_gen"] == {"median": 4000, "min": 3000, "max": 5000, "n": 3}
