"""The searched temperature threshold: direction of the bisection, the record, the families."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from constructions import induction
from verify import beta_threshold as bt
from verify import sequences as seqs

RECORD = Path(__file__).resolve().parent.parent / "proofs" / "data" / "induction_thresholds.json"


def test_bisect_direction_on_a_step_function() -> None:
    lo, hi = bt.bisect(lambda b: b >= 2.0, 0.5, 8.0, tol=1e-6)
    assert lo < 2.0 <= hi and hi - lo <= 1e-6


def test_bisect_refuses_an_inverted_bracket() -> None:
    with pytest.raises(ValueError, match="bracket"):
        bt.bisect(lambda b: b < 2.0, 0.5, 8.0)          # passes low, fails high: inverted
    with pytest.raises(ValueError, match="bracket"):
        bt.bisect(lambda b: True, 0.5, 8.0)
    with pytest.raises(ValueError, match="bracket"):
        bt.bisect(lambda b: b >= 2.0, 3.0, 1.0)
    with pytest.raises(ValueError, match="tol"):
        bt.bisect(lambda b: b >= 2.0, 1.0, 3.0, tol=0.0)


@pytest.mark.parametrize("V, N", [(2, 8), (3, 6), (2, 10)])
def test_threshold_passes_and_just_below_fails(V: int, N: int) -> None:
    """The returned threshold is right on every sequence; a value one tolerance below is not."""
    found = bt.threshold(V, N)
    tokens = seqs.all_sequences(V, N)
    assert bt.all_correct(V, N, found["threshold"], tokens)
    assert not bt.all_correct(V, N, found["threshold"] - found["tol"] * 1.01, tokens)
    assert not bt.all_correct(V, N, found["just_below"], tokens)
    assert found["lower_bound"] <= found["threshold"] <= found["beta_star"]
    assert found["monotone_above"] and found["exhaustive"]


def test_threshold_of_a_broken_builder_moves() -> None:
    """A builder whose beta is halved inside needs twice the temperature: the search sees it."""
    def halved(V, N, attention, beta):  # noqa: ANN001, ANN202
        return induction.build_induction_model(V, N, attention, beta=beta / 2)

    right, broken = bt.threshold(2, 6, tol=1e-3), bt.threshold(2, 6, build=halved, tol=1e-3)
    assert broken["threshold"] == pytest.approx(2 * right["threshold"], abs=3e-3)


def test_first_failures_are_match_vs_match_not_the_lower_bound_family() -> None:
    found = bt.threshold(2, 8)
    example = found["failures_just_below"]["shortest_example"]
    assert set(found["failures_just_below"]["families"]) == {"match vs match"}
    assert example["sequence"] == [2, 0, 0, 0, 0, 0, 1, 0] and example["family"] == "match vs match"
    # the lower-bound family is already right there: it is not what fails first
    family = bt.lower_bound_family(8)
    model = induction.build_induction_model(2, 8, "softmax", beta=found["just_below"])
    assert model(family)[0, -1].argmax() == 2


def test_record_agrees_with_a_rerun() -> None:
    """proofs/data/induction_thresholds.json: the small exhaustive cases, re-run, agree."""
    record = json.loads(RECORD.read_text())
    assert record["command"].startswith("python -m verify.beta_threshold")
    for row in record["exhaustive"]:
        assert row["lower_bound"] <= row["threshold"] <= math.log(2 * row["n_ctx"])
        if row["sequences"] <= 2048:
            again = bt.threshold(row["vocab_size"], row["n_ctx"])
            assert again["threshold"] == pytest.approx(row["threshold"], abs=row["tol"])


def test_classify_on_a_hand_case() -> None:
    model = induction.build_induction_model(2, 8, "softmax", beta=2.0)
    out = bt.classify_failures(model, torch.tensor([[2, 0, 0, 0, 0, 0, 1, 0]]))
    assert out["families"] == {"match vs match": 1}
    assert out["shortest_example"]["target_key"] == 6
    assert out["shortest_example"]["rival_key"] == 5
    right = bt.classify_failures(induction.build_induction_model(2, 8), seqs.all_sequences(2, 8))
    assert right == {"families": {}, "shortest_example": None}


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="n_ctx"):
        bt.lower_bound(2)
    with pytest.raises(ValueError, match="vocab_size"):
        bt.lower_bound_family(5, vocab_size=1)
    with pytest.raises(ValueError, match="n_ctx"):
        bt.threshold(2, 2)


def test_cli_bad_input_one_line_exit_2(capsys) -> None:
    assert bt.main(["--bogus"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
