"""`python -m verify report DIR`: the certificate's files, figures, environment and words."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from verify import docs, registry, report, report_text

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLAIMS = ["demo_2.param_count", "framework.heads_additive"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "verify", *args], capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("certificate")
    result = run("report", str(out), "--claim", *CLAIMS)
    assert result.returncode == 0, result.stderr
    return out


def test_report_writes_markdown_json_html_and_figures(certificate):
    text = (certificate / "REPORT.md").read_text()
    data = json.loads((certificate / "report.json").read_text())
    assert [c["id"] for c in data["claims"]] == CLAIMS
    assert all(c["passed"] for c in data["claims"])
    assert all(set(c) >= {"literal", "restated", "recorded_verdict"} for c in data["claims"])
    env = data["environment"]
    for key in ("python", "platform", "git_commit", "packages", "certificate"):
        assert key in env
    for name in ("torch", "numpy", "sympy", "hypothesis"):
        assert env["packages"][name]
    figures = [certificate / f for f in data["figures"]]
    assert {f.name for f in figures} >= {"adder_logits_and_margin.png"}
    assert any(f.name.startswith("induction") for f in figures)
    for f in figures:
        assert f.read_bytes()[:8] == PNG_MAGIC and f.stat().st_size > 10_000
        assert f"]({f.relative_to(certificate).as_posix()})" in text
    assert (certificate / "index.html").stat().st_size > 100_000


def test_report_markdown_reads_as_a_document(certificate):
    text = (certificate / "REPORT.md").read_text()
    assert "Mechanistic Interpretability and Circuit Analysis" in text and "10.4" in text
    for cid in CLAIMS:
        section = text.split(f"## {cid}\n")[1].split("\n## ")[0]
        assert "**The section (" in section and "**Verdict: " in section
        assert "Why: **Statement" in section           # the proof's Statement paragraph
        assert "Proof: [proofs/" in section and ".md#" in section
    assert "```json" not in text                       # the evidence stays in report.json
    assert text.count("*Figure ") == len(json.loads(
        (certificate / "report.json").read_text())["figures"])
    assert "Figure 1.* Left: the trig-identity adder" in text or "*Figure 1.* The hand" in text


def test_proof_links_resolve_from_the_report_folder(certificate):
    text = (certificate / "REPORT.md").read_text()
    links = [part.split(")")[0] for part in text.split("](")[1:] if ".md#" in part.split(")")[0]]
    assert links
    for link in links:
        assert (certificate / link.split("#")[0]).resolve().is_file(), link


def test_markdown_marks_a_failed_claim():
    failed = registry.Result("x.y", "nowhere", "s", "refuted", False, {"why": "broken"}, 0.1,
                             registry.Finding(False), registry.Finding(False), "corrected")
    text = report_text.render_markdown([failed], report.environment(), [], Path("."))
    assert "**NO**" in text and "0 passed, 1 failed" in text
    assert "| fails | fails | refuted |" in text
    assert "Proof: not found" in text


def test_a_check_that_raised_is_shown():
    crashed = registry.Result("x.y", "nowhere", "s", registry.UNDETERMINED, False,
                              {"error": "literal: RuntimeError: boom"}, 0.1, None,
                              registry.Finding(True), None)
    text = report_text.render_markdown([crashed], report.environment(), [], Path("."))
    assert "could not be checked" in text and "A check raised: `literal: RuntimeError" in text


def test_certificate_records_the_package_version_and_the_commit():
    prov = report.provenance()
    assert prov["version"] == report.package_version() or prov["version"].startswith("(not")
    commit = report.git_commit()
    assert prov["commit"] == commit
    if commit is not None:
        assert len(commit.split("+")[0]) == 40 and prov["source"].startswith("git checkout")


def test_an_installed_copy_says_it_is_not_a_git_checkout(monkeypatch, tmp_path):
    # a folder inside some checkout is not the checkout: its top level differs
    assert report.git_commit(root=tmp_path) is None
    monkeypatch.setattr(report, "_git", lambda *args: None)
    prov = report.provenance()
    assert prov["commit"] is None and prov["source"].startswith("not a git checkout")
    assert "None" not in prov["source"]


def test_package_version_absent_is_said(monkeypatch):
    monkeypatch.setattr(report, "DISTRIBUTION", "no-such-distribution-xyz")
    assert report.package_version() is None
    assert report.provenance()["version"].startswith("(not installed")


def test_proof_excerpt_finds_statement_and_verdict():
    ex = report_text.proof_excerpt("framework.heads_additive")
    assert ex is not None and ex["file"] == "proofs/framework.md"
    assert ex["statement"].startswith("**Statement") and ex["verdict_line"].startswith(
        "**Verdict:**")
    assert len(ex["statement"]) <= report_text.WHY_LIMIT + 4
    assert report_text.proof_excerpt("no.such_claim") is None
    assert report_text.proof_excerpt("framework.heads_additive", Path("/nonexistent")) is None


@pytest.mark.parametrize("args, words", [
    (["report"], "the following arguments are required: directory"),
    (["report", "out", "--grok-run", "no/such/run.json"], "--grok-run must name an existing"),
    (["report", "README.md"], "is a file, not a folder"),
    (["report", "out", "--model", "no/such/folder"], "--model must name a model folder"),
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
    page = (out / "index.html").read_text()
    for chart in ("chart-acc", "chart-loss", "chart-norm"):
        assert f"drawChart('{chart}'" in page
    assert "restricted loss" in page and "excluded loss" in page


def test_report_rejects_a_file_that_is_not_a_grok_run(tmp_path):
    from verify import cli
    bogus = tmp_path / "bogus.json"
    bogus.write_text(json.dumps({"history": {}}))
    assert cli.main(["report", str(tmp_path / "out"), "--claim", "demo_2.param_count",
                     "--grok-run", str(bogus)]) == 2
    assert not (tmp_path / "out").exists()  # rejected before anything is written


def test_without_circuitsvis_the_page_is_refused_before_any_work(monkeypatch, tmp_path, capsys):
    import importlib.util

    from verify import cli
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "circuitsvis" else real(name, *a))
    assert cli.main(["report", str(tmp_path / "out"), "--claim", "demo_2.param_count"]) == 2
    assert "--no-html" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_adder_margin_curves_agree_with_the_closed_form_and_bound():
    from verify import figures
    curves = figures.adder_margin_curves(list(range(2, 24)))
    for p, measured, closed, bound in zip(curves["p"], curves["measured"],
                                          curves["closed_form"], curves["bound"]):
        assert abs(measured - closed) <= 1e-9 * max(1.0, closed), p
        assert bound <= closed + 1e-12, p
    assert figures.caption_for("adder_logits_and_margin.png").startswith("Left:")
    assert "lower bound" in figures.caption_for("adder_logits_and_margin.png")
    assert figures.caption_for("induction_cat_sat.png").startswith("The same construction")
    assert figures.caption_for("induction_other.png") == figures.CAPTIONS["induction"]
    assert figures.caption_for("unknown_thing.png") == "unknown thing"


def test_every_option_of_the_report_and_claims_parsers_has_help():
    import argparse

    from verify import cli
    for parser in (report.parser(), cli.claims_parser()):
        for action in parser._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, action.option_strings or action.dest
