"""The command line: tables, JSON, claim selection, help, progress, Ctrl-C, and one-line
errors with exit status 2."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from verify import cli, registry

FOUNDATION = ["framework.qk_ov_factorization", "framework.heads_additive",
              "framework.path_expansion", "worked_example_1.qk_matrix", "demo_2.param_count"]
JSON_FIELDS = {"id", "source", "statement", "verdict", "passed", "evidence", "seconds",
               "literal", "restated", "recorded_verdict"}


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "verify", *args], capture_output=True,
                          text=True, timeout=timeout)


def one_line_error(result: subprocess.CompletedProcess) -> bool:
    return (result.returncode == 2 and result.stderr.count("\n") == 1
            and result.stderr.startswith("error: ") and "Traceback" not in result.stderr)


def test_json_prints_the_result_fields_and_progress_goes_to_stderr():
    result = run("--json", "--claim", *FOUNDATION)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)          # stdout is nothing but the JSON
    assert [r["id"] for r in rows] == FOUNDATION
    for r in rows:
        assert set(r) == JSON_FIELDS
        assert r["passed"] is True and r["verdict"] in registry.VERDICTS
        assert r["verdict"] == r["recorded_verdict"]
        for check in ("literal", "restated"):
            assert set(r[check]) == {"holds", "evidence"} and isinstance(r[check]["holds"], bool)
        assert r["verdict"] == registry.derive_verdict(r["literal"]["holds"],
                                                       r["restated"]["holds"])
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert len(progress) == len(FOUNDATION)
    assert progress[0].startswith(f"[1/{len(FOUNDATION)}] {FOUNDATION[0]} ...")


def test_quiet_silences_progress(capsys):
    assert cli.main(["--quiet", "--claim", "demo_2.param_count"]) == 0
    assert capsys.readouterr().err == ""


def test_table_has_literal_and_restated_columns_and_list(capsys):
    assert cli.main(["--claim", "demo_2.param_count"]) == 0
    captured = capsys.readouterr()
    header = captured.out.splitlines()[0].split()
    assert header == ["claim", "literal", "restated", "verdict", "recorded", "passed", "seconds"]
    row = captured.out.splitlines()[2].split()
    assert row[:3] == ["demo_2.param_count", "holds", "holds"] and row[5] == "yes"
    assert "1 claims, 1 passed" in captured.out
    assert "[1/1] demo_2.param_count ..." in captured.err
    assert cli.main(["--list"]) == 0
    listed = capsys.readouterr().out
    for cid in FOUNDATION:
        assert cid in listed


def _claim(name: str, literal: bool | None, restated: bool | None) -> registry.Claim:
    def check(holds: bool | None):
        def run_check() -> registry.Finding:
            if holds is None:
                raise RuntimeError("boom")
            return registry.Finding(holds, {"why": "on purpose"})
        return run_check
    return registry.Claim(name, "nowhere", "a test claim", literal=check(literal),
                          restated=check(restated))


@pytest.mark.parametrize("literal, restated, cells", [
    (True, True, ("holds", "holds")), (False, True, ("fails", "holds")),
    (False, False, ("fails", "fails")), (None, True, ("error", "holds"))])
def test_table_cells_follow_each_check(literal, restated, cells):
    c = _claim("test.cells", literal, restated)
    row = cli.result_row(registry.run_claim(c, {"test.cells": None}))
    assert row[1:3] == cells and row[5] == "NO"


def test_a_failing_check_makes_exit_status_1(monkeypatch, capsys):
    failing = _claim("test.failing", False, False)
    monkeypatch.setattr(registry, "get_claims", lambda ids: [failing])
    assert cli.main(["--claim", "test.failing"]) == 1
    out = capsys.readouterr().out
    assert "FAILED test.failing" in out and "fails" in out


def test_a_crashing_check_is_reported_not_raised():
    result = registry.run_claim(_claim("test.crash", None, True), {"test.crash": None})
    assert not result.passed and result.verdict == registry.UNDETERMINED
    assert "boom" in result.evidence["error"] and result.literal is None
    assert cli.holds(result.literal) == "error" and cli.holds(result.restated) == "holds"


@pytest.mark.parametrize("args, words", [
    (["--claim", "no.such_claim"], "unknown claim id 'no.such_claim'"),
    (["--frobnicate"], "unrecognized arguments"),
    (["inspect"], "inspect needs a NAME"),
    (["inspect", "no_such_construction"], "unknown construction"),
    (["bench", "no_such_benchmark"], "bench needs NAME"),
    (["bench"], "bench needs NAME"),
    (["inspect", "adder", "--max-memory", "lots"], "--max-memory must be a number of GB"),
    (["inspect", "adder", "--max-memory", "-1"], "--max-memory must be a number of GB > 0"),
    (["bench", "adder", "--max-memory"], "--max-memory needs a number of GB"),
])
def test_usage_errors_are_one_line_with_exit_status_2(args, words):
    result = run(*args)
    assert one_line_error(result), result.stderr
    assert words in result.stderr


def test_inspect_prints_labelled_circuits():
    result = run("inspect", "worked_example_1")
    assert result.returncode == 0, result.stderr
    assert "W_Q W_K^T" in result.stdout and "d3" in result.stdout


# --- help ---------------------------------------------------------------------------------------

def test_top_level_help_lists_every_subcommand_with_one_line():
    result = run("--help")
    assert result.returncode == 0 and result.stderr == ""
    listed = result.stdout.split("subcommands")[1].splitlines()[1:]
    names = [line.split()[0] for line in listed if line.strip()]
    assert names == list(cli.SUBCOMMANDS)
    for line in listed:
        if line.strip():
            assert len(line.split()) > 2 and "not available" not in line, line
    for option in ("--json", "--claim", "--list", "--all", "--quiet"):
        assert option in result.stdout


@pytest.mark.parametrize("name", list(cli.SUBCOMMANDS))
def test_every_subcommand_help_exits_0_with_its_options(name):
    result = run(name, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:") and "--help" in result.stdout
    assert "Traceback" not in result.stderr


def test_inspect_and_bench_help_list_their_targets():
    from verify import benchmarks, inspect_cmd
    inspect_help = run("inspect", "--help").stdout
    for name in inspect_cmd.targets():
        assert f"\n  {name} " in inspect_help
    bench_help = run("bench", "-h").stdout
    for name in cli.discover("verify.benchmarks", "BENCHMARKS"):
        assert f"\n  {name} " in bench_help
    for text in (inspect_help, bench_help):
        assert "--max-memory GB" in text
    assert benchmarks.HELP in bench_help and inspect_cmd.HELP in inspect_help


def test_subcommand_help_falls_back_to_the_docstring(monkeypatch):
    monkeypatch.setitem(cli.SUBCOMMANDS, "nowhere", "verify.no_such_module")
    assert cli.subcommand_help("nowhere").startswith("(not available")
    monkeypatch.setitem(cli.SUBCOMMANDS, "display", "verify.display")
    assert cli.subcommand_help("display").startswith("Plain-text rendering")


# --- Ctrl-C ---------------------------------------------------------------------------------------

def test_ctrl_c_prints_one_line_and_exits_130():
    # the child gets Ctrl-C's default disposition: a shell's background job (how CI may run
    # pytest) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
    proc = subprocess.Popen([sys.executable, "-m", "verify", "--claim", *FOUNDATION * 12],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stderr is not None
    first = proc.stderr.read(4)             # progress has started: main() is running
    assert first == "[1/6"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == cli.INTERRUPTED, err
    lines = (first + err).splitlines()
    assert "Traceback" not in err and lines[-1].startswith("interrupted (Ctrl-C)")


def test_ctrl_c_while_loading_is_one_line_too():
    # the signal lands while verify.cli (and torch) load: simulated, so that it is deterministic
    code = ("import builtins, runpy\nreal = builtins.__import__\n"
            "def interrupted(name, *args, **kwargs):\n"
            "    if name == 'verify.cli':\n        raise KeyboardInterrupt\n"
            "    return real(name, *args, **kwargs)\n"
            "builtins.__import__ = interrupted\n"
            "runpy.run_module('verify', run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == cli.INTERRUPTED, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("interrupted")
