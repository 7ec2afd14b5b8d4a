"""`python -m verify report DIR`: the certificate's files, figures and environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from verify import docs, registry, report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "verify", *args], capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("certificate")
    result = run("report", str(out), "--claim", "demo_2.param_count", "framework.heads_additive")
    assert result.returncode == 0, result.stderr
    return out


def test_report_writes_markdown_json_and_figures(certificate):
    text = (certificate / "REPORT.md").read_text()
    assert "demo_2.param_count" in text and "framework.heads_additive" in text
    assert "**Verdict:** confirmed" in text
    data = json.loads((certificate / "report.json").read_text())
    assert [c["id"] for c in data["claims"]] == ["demo_2.param_count", "framework.heads_additive"]
    assert all(c["passed"] for c in data["claims"])
    env = data["environment"]
    for key in ("python", "platform", "git_commit", "packages"):
        assert key in env
    for name in ("torch", "numpy", "sympy", "hypothesis"):
        assert env["packages"][name]
    figures = [certificate / f for f in data["figures"]]
    assert {f.name for f in figures} >= {"induction_demo1.png", "induction_cat_sat.png",
                                         "adder_logits_and_margin.png"}
    for f in figures:
        assert f.read_bytes()[:8] == PNG_MAGIC and f.stat().st_size > 10_000
        assert f"]({f.relative_to(certificate).as_posix()})" in text


def test_markdown_marks_a_failed_claim():
    failed = registry.Result("x.y", "nowhere", "s", "refuted", False, {"why": "broken"}, 0.1)
    text = report.render_markdown([failed], report.environment(), [], Path("."))
    assert "**NO**" in text and "0 passed, 1 failed" in text


@pytest.mark.parametrize("args, words", [
    (["report"], "the following arguments are required: directory"),
    (["report", "out", "--grok-run", "no/such/run.json"], "--grok-run must name an existing"),
    (["report", "README.md"], "exists and is not a directory"),
    (["report", "out", "--claim", "nope.nope"], "unknown claim id"),
])
def test_report_bad_arguments(args, words, tmp_path):
    result = subprocess.run([sys.executable, "-m", "verify", *args], capture_output=True,
                            text=True, timeout=300, cwd=docs.ROOT)
    assert result.returncode == 2
    assert words in result.stderr and result.stderr.count("\n") == 1


def test_report_draws_the_curves_of_a_grok_run(tmp_path):
    from verify import cli
    runs = tmp_path / "runs"
    assert cli.main(["grok", "--p", "11", "--frac", "0.5", "--d", "8", "--steps", "40",
                     "--log-every", "10", "--out", str(runs), "--no-progress"]) == 0
    out = tmp_path / "certificate"
    assert cli.main(["report", str(out), "--claim", "demo_2.param_count",
                     "--grok-run", str(runs / "grok.json")]) == 0
    curves = out / "figures" / "grokking_curves.png"
    assert curves.read_bytes()[:8] == PNG_MAGIC
    assert "figures/grokking_curves.png" in (out / "REPORT.md").read_text()


def test_report_rejects_a_file_that_is_not_a_grok_run(tmp_path):
    from verify import cli
    bogus = tmp_path / "bogus.json"
    bogus.write_text(json.dumps({"history": {}}))
    assert cli.main(["report", str(tmp_path / "out"), "--claim", "demo_2.param_count",
                     "--grok-run", str(bogus)]) == 2
    assert not (tmp_path / "out").exists()  # rejected before anything is written
