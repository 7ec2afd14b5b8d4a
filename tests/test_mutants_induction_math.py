"""The induction mathematics, each part seen failing: the threshold search's validation, its
monotonicity scan and timing, its command line, and the induction key's first-position match.

Sizes are tiny (V = 2, N = 4: 8 sequences), so the whole file runs in about a second."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch

from constructions import induction
from verify import beta_threshold as bt
from verify import sequences as seqs


def _refusing_builder(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
    raise AssertionError("the model was built before the arguments were checked")


# --- threshold: arguments are checked before any model is built ----------------------------

def test_threshold_refuses_a_vocabulary_of_0_before_building() -> None:
    """With tokens given, nothing downstream would check V: threshold itself must."""
    tokens = seqs.all_sequences(2, 4)
    with pytest.raises(ValueError, match="vocab_size must be >= 1"):
        bt.threshold(0, 4, tokens, build=_refusing_builder)


@pytest.mark.parametrize("n_ctx", [2, 1])
def test_threshold_refuses_a_context_below_3_before_building(n_ctx: int) -> None:
    """N = 3 is the smallest context the lower bound ln(2N - 3) covers; below it the search
    must not run at all (not fail later, after the bracket has been searched)."""
    with pytest.raises(ValueError, match="n_ctx must be >= 3"):
        bt.threshold(2, n_ctx, build=_refusing_builder)


def test_threshold_accepts_the_smallest_sizes() -> None:
    found = bt.threshold(1, 3, tol=1e-2)
    assert found["vocab_size"] == 1 and found["n_ctx"] == 3 and found["monotone_above"]


# --- the monotonicity scan: MONOTONE_GRID betas in (threshold, top] --------------------------

def _recording(calls: list[float]):  # noqa: ANN202
    def build(V, N, attention, beta):  # noqa: ANN001, ANN202
        calls.append(beta)
        return induction.build_induction_model(V, N, attention, beta=beta)
    return build


def test_monotone_scan_is_the_grid_strictly_above_the_threshold_up_to_the_top() -> None:
    calls: list[float] = []
    found = bt.threshold(2, 4, build=_recording(calls), tol=1e-2)
    top, hi = found["beta_star"], found["threshold"]   # the model passes at beta*: top = beta*
    # the scan's betas are the model builds after the bisection and before the classification
    scan = calls[-1 - bt.MONOTONE_GRID:-1]
    assert scan == [hi + (top - hi) * k / bt.MONOTONE_GRID for k in range(1, bt.MONOTONE_GRID + 1)]
    assert calls.count(hi) == 1                         # the threshold is not scanned again
    assert max(calls) == pytest.approx(top, rel=1e-12)  # nothing above the bracket's top


def test_monotone_above_ignores_a_failure_past_the_top() -> None:
    """A model that is right on [threshold, beta*] but wrong above beta*: the scan covers only
    the bracket, so ``monotone_above`` holds (one grid step past the top would see the failure)."""
    star = induction.beta_star(4)

    def wrong_past_the_top(V, N, attention, beta):  # noqa: ANN001, ANN202
        return induction.build_induction_model(V, N, attention,
                                               beta=beta if beta <= star * (1 + 1e-9) else 1e-3)

    found = bt.threshold(2, 4, build=wrong_past_the_top, tol=1e-2)
    assert found["threshold"] < star and found["monotone_above"] is True


def test_monotone_above_sees_a_failure_inside_the_bracket() -> None:
    star = induction.beta_star(4)

    def wrong_near_the_top(V, N, attention, beta):  # noqa: ANN001, ANN202
        wrong = 0.95 * star < beta < 0.999 * star
        return induction.build_induction_model(V, N, attention, beta=1e-3 if wrong else beta)

    assert bt.threshold(2, 4, build=wrong_near_the_top, tol=1e-2)["monotone_above"] is False


# --- the seconds it took: a float rounded to milliseconds --------------------------------------

def test_seconds_are_rounded_to_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([10.0, 11.23456])
    monkeypatch.setattr(bt, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    seconds = bt.threshold(2, 4, tol=1e-2)["seconds"]
    assert isinstance(seconds, float) and seconds == 1.235


# --- the command line: its name, description, option help and error text ---------------------

def _no_record() -> dict:
    raise AssertionError("the record was computed although the arguments were bad")


def test_cli_help_names_the_command_and_its_option(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bt, "record", _no_record)
    with pytest.raises(SystemExit) as exit_info:
        bt.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m verify.beta_threshold [-h] [--out OUT]")
    lines = [line.strip() for line in out.splitlines()]
    assert "Exhaustive and adversarial beta thresholds (JSON)." in lines    # the whole line
    assert "--out OUT   write the JSON here (default: print it)" in lines


def test_cli_error_names_the_command_and_the_bad_argument(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bt, "record", _no_record)
    assert bt.main(["--bogus"]) == 2
    err = capsys.readouterr().err
    assert err == "error: python -m verify.beta_threshold: unrecognized arguments: --bogus\n"


def test_cli_writes_the_record_to_out_or_prints_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bt, "record", lambda: {"exhaustive": [1.5]})
    threads = torch.get_num_threads()        # main sets one thread; given back afterwards
    out, text = tmp_path / "thresholds.json", '{\n "exhaustive": [\n  1.5\n ]\n}\n'
    try:
        assert bt.main(["--out", str(out)]) == 0
        assert out.read_text() == text and capsys.readouterr().out == ""
        assert torch.get_num_threads() == 1
        assert bt.main([]) == 0
        assert capsys.readouterr().out == text
    finally:
        torch.set_num_threads(threads)


# --- sequences: the induction key when the match is at position 0 ----------------------------

def test_induction_key_of_a_match_at_position_0() -> None:
    """kappa_t = j + 1 for the latest j < t with x_j = x_t, j = 0 included: in a frame without
    BOS (Coding Demo 1's) the first token repeats, and its key is 1, not 0 (BOS)."""
    assert seqs.induction_key(torch.tensor([[1, 2, 1]])).tolist() == [[0, 0, 1]]
    demo = seqs.induction_key(torch.tensor([seqs.DEMO_SEQUENCE]))
    assert demo.tolist() == [[0, 0, 0, 0, 1, 2, 3, 4]]


def test_adversarial_sequences_of_length_2_with_random_rows() -> None:
    """n = 2 (body 1) has no halves to repeat; the other random rows are still drawn."""
    rows = seqs.adversarial_sequences(3, 2, n_random=5)
    assert rows.shape[1] == 2 and bool((rows[:, 0] == 3).all())
    assert len(rows) > len(seqs.adversarial_sequences(3, 2, n_random=0))
