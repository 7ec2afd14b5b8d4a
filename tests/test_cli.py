"""The command line: tables, JSON, claim selection, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from verify import cli, registry

FOUNDATION = ["framework.qk_ov_factorization", "framework.heads_additive",
              "framework.path_expansion", "worked_example_1.qk_matrix", "demo_2.param_count"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "verify", *args], capture_output=True,
                          text=True, timeout=600)


def test_json_lists_the_claims_with_the_documented_fields():
    result = run("--json", "--claim", *FOUNDATION)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["id"] for r in rows] == FOUNDATION
    for r in rows:
        assert set(r) == {"id", "source", "statement", "verdict", "passed", "evidence", "seconds"}
        assert r["passed"] is True and r["verdict"] in registry.VERDICTS


def test_table_and_list(capsys):
    assert cli.main(["--claim", "demo_2.param_count"]) == 0
    out = capsys.readouterr().out
    assert "demo_2.param_count" in out and "1 claims, 1 passed" in out
    assert cli.main(["--list"]) == 0
    listed = capsys.readouterr().out
    for cid in FOUNDATION:
        assert cid in listed


def test_a_failing_check_makes_exit_status_1(monkeypatch, capsys):
    failing = registry.Claim("test.failing", "nowhere", "a claim whose check fails",
                             lambda: registry.Outcome("refuted", False, {"why": "on purpose"}))
    monkeypatch.setattr(registry, "get_claims", lambda ids: [failing])
    assert cli.main(["--claim", "test.failing"]) == 1
    assert "FAILED test.failing" in capsys.readouterr().out


def test_a_crashing_check_is_reported_not_raised():
    def crash() -> registry.Outcome:
        raise RuntimeError("boom")

    result = registry.run_claim(registry.Claim("test.crash", "nowhere", "crashes", crash))
    assert not result.passed and result.verdict == registry.UNDETERMINED
    assert "boom" in result.evidence["error"]


@pytest.mark.parametrize("args, words", [
    (["--claim", "no.such_claim"], "unknown claim id 'no.such_claim'"),
    (["--frobnicate"], "unrecognized arguments"),
    (["inspect"], "inspect needs a NAME"),
    (["inspect", "no_such_construction"], "unknown construction"),
    (["bench", "no_such_benchmark"], "bench needs NAME"),
])
def test_usage_errors_are_one_line_with_exit_status_2(args, words):
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert words in result.stderr


def test_inspect_prints_labelled_circuits():
    result = run("inspect", "worked_example_1")
    assert result.returncode == 0, result.stderr
    assert "W_Q W_K^T" in result.stdout and "d3" in result.stdout
