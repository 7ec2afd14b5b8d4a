"""The registry's verdict rule and the proof index, each line seen to matter (mutation testing).

Written so that every mutant of verify/registry.py and verify/proof_index.py that changes
behaviour (a flipped condition, a changed message, a dropped restore) fails a test here; the
equivalent ones are listed in mutation-equivalents.md."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from verify import proof_index, registry
from verify.registry import Claim, Finding, Result, derive_verdict, run_claim

YES = lambda: Finding(True, {"a": 1})  # noqa: E731
NO = lambda: Finding(False, {"b": 2})  # noqa: E731


# --- derive_verdict and Finding -------------------------------------------------------------


@pytest.mark.parametrize("literal, restated, expected", [
    (True, True, "confirmed"), (True, False, "confirmed"), (False, True, "corrected"),
    (False, False, "refuted"), (None, True, "undetermined"), (True, None, "undetermined"),
    (False, None, "undetermined"), (None, False, "undetermined")])
def test_derive_verdict_table(literal, restated, expected):
    assert derive_verdict(literal, restated) == expected


def test_finding_normalizes_holds_and_refuses_non_dict_evidence():
    f = Finding(np.bool_(True), {"x": 1})
    assert f.holds is True and type(f.holds) is bool
    assert Finding(torch.tensor(False)).holds is False
    assert Finding(True).evidence == {}
    with pytest.raises(TypeError, match="^evidence must be a dict, got NoneType$"):
        Finding(True, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^evidence must be a dict, got list$"):
        Finding(True, [1])  # type: ignore[arg-type]
    assert Finding(False, {"k": 2}).as_json() == {"holds": False, "evidence": {"k": 2}}


def test_claim_decorators_attach_and_return_the_check():
    c = Claim("t.x", "src", "stmt", slow=True)
    assert (c.id, c.source, c.statement, c.slow) == ("t.x", "src", "stmt", True)
    assert c.literal_check is None and c.restated_check is None
    assert c.literal(YES) is YES and c.restated(NO) is NO
    assert c.literal_check is YES and c.restated_check is NO
    assert repr(c) == "Claim('t.x')"
    assert Claim("t.y", "s", "x").slow is False


def test_result_json_has_every_field():
    r = Result("t.x", "src", "stmt", "corrected", True, {"e": 1}, 1.234567, Finding(False, {}),
               Finding(True, {"r": 1}), "corrected")
    assert r.as_json() == {
        "id": "t.x", "source": "src", "statement": "stmt", "verdict": "corrected", "passed": True,
        "evidence": {"e": 1}, "seconds": 1.2346, "literal": {"holds": False, "evidence": {}},
        "restated": {"holds": True, "evidence": {"r": 1}}, "recorded_verdict": "corrected"}
    bare = Result("t.x", "s", "x", "undetermined", False, {}, 0.0).as_json()
    assert bare["literal"] is None and bare["restated"] is None and bare["recorded_verdict"] is None


# --- the registry of claims -----------------------------------------------------------------


@pytest.fixture
def empty_registry(monkeypatch):
    """No claims, and no claim modules to import (others' modules may be mid-edit)."""
    import verify.claims

    monkeypatch.setattr(registry, "_CLAIMS", {})
    monkeypatch.setattr(verify.claims, "__path__", [])
    return registry._CLAIMS


def test_claim_registers_once(empty_registry):
    c = registry.claim("t.x", source="s", statement="x", slow=True)
    assert empty_registry == {"t.x": c} and c.slow and c.source == "s" and c.statement == "x"
    assert registry.claim("t.y", source="s", statement="y").slow is False
    with pytest.raises(ValueError, match=r"^claim id 't.x' registered twice$"):
        registry.claim("t.x", source="s", statement="again")


def test_all_claims_follow_the_design_order_then_unknown_ids_sorted(empty_registry):
    for cid in ("z.b", "z.a", "demo_2.param_count", "framework.qk_ov_factorization"):
        registry.claim(cid, source="s", statement="x")
    assert [c.id for c in registry.all_claims()] == [
        "framework.qk_ov_factorization", "demo_2.param_count", "z.a", "z.b"]


def test_all_claims_imports_every_claim_module(monkeypatch, tmp_path):
    import verify.claims

    (tmp_path / "t_probe.py").write_text(
        "from verify.registry import claim\nclaim('t.probe', source='s', statement='x')\n")
    monkeypatch.setattr(registry, "_CLAIMS", {})
    monkeypatch.setattr(verify.claims, "__path__", [str(tmp_path)])
    try:
        assert [c.id for c in registry.all_claims()] == ["t.probe"]
    finally:
        import sys
        sys.modules.pop("verify.claims.t_probe", None)


def test_get_claims_keeps_the_given_order_and_names_an_unknown_id(empty_registry):
    ids = ["demo_2.param_count", "framework.heads_additive"]
    for cid in ids:
        registry.claim(cid, source="s", statement="x")
    assert [c.id for c in registry.get_claims(ids)] == ids
    with pytest.raises(ValueError, match=r"^unknown claim id 'no.such'; `python -m verify "
                                         r"--list` lists them$"):
        registry.get_claims(["demo_2.param_count", "no.such", "also.none"])


def test_single_thread_sets_one_thread_and_restores():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with registry.single_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), registry.single_thread():
            raise RuntimeError
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# --- running a claim --------------------------------------------------------------------------


def boom() -> Finding:
    raise RuntimeError("boom")


def test_run_check_reports_missing_raised_and_wrong_types():
    assert registry._run_check(None, "literal") == (None, "no literal check is registered")
    assert registry._run_check(boom, "restated") == (None, "RuntimeError: boom")
    assert registry._run_check(lambda: 1, "literal") == (
        None, "the literal check returned int, not a Finding")
    found, error = registry._run_check(YES, "literal")
    assert error is None and found.holds and found.evidence == {"a": 1}


def test_run_claim_derives_compares_and_times():
    recorded = {"t.x": "corrected"}
    r = run_claim(Claim("t.x", "src", "stmt", literal=NO, restated=YES), recorded)
    assert (r.id, r.source, r.statement) == ("t.x", "src", "stmt")
    assert r.verdict == "corrected" and r.passed and r.recorded == "corrected"
    assert r.evidence == {"literal": {"b": 2}, "restated": {"a": 1}}
    assert r.literal.holds is False and r.restated.holds is True
    assert 0 <= r.seconds < 60
    assert not run_claim(Claim("t.x", "s", "x", literal=YES, restated=YES), recorded).passed
    assert not run_claim(Claim("t.x", "s", "x", literal=NO, restated=YES), {}).passed
    # an undetermined verdict never passes, even where proofs/ would record that word
    undecided = run_claim(Claim("t.x", "s", "x", literal=boom, restated=YES),
                          {"t.x": "undetermined"})
    assert undecided.verdict == "undetermined" and not undecided.passed


def test_run_claim_collects_both_errors_and_keeps_the_other_evidence():
    r = run_claim(Claim("t.x", "s", "x", literal=boom), {"t.x": "refuted"})
    assert r.evidence == {"literal": None, "restated": None,
                          "error": "literal: RuntimeError: boom; restated: no restated check "
                                   "is registered"}
    assert r.literal is None and r.restated is None
    r = run_claim(Claim("t.x", "s", "x", literal=YES, restated=boom), {"t.x": "confirmed"})
    assert r.evidence == {"literal": {"a": 1}, "restated": None,
                          "error": "restated: RuntimeError: boom"}
    assert "error" not in run_claim(Claim("t.x", "s", "x", literal=YES, restated=NO), {}).evidence
    r = run_claim(Claim("t.x", "s", "x", restated=lambda: 1), {})
    assert r.evidence["error"] == ("literal: no literal check is registered; restated: the "
                                   "restated check returned int, not a Finding")


def test_run_claim_runs_checks_on_one_thread():
    seen = []

    def probe() -> Finding:
        seen.append(torch.get_num_threads())
        return Finding(True)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run_claim(Claim("t.x", "s", "x", literal=probe, restated=probe), {})
        assert seen == [1, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_run_claim_reads_proofs_when_no_record_is_given():
    fake = Claim("demo_2.param_count", "s", "x", literal=YES, restated=YES)
    assert run_claim(fake).recorded == proof_index.recorded_verdicts()[fake.id] is not None


# --- the proof index ------------------------------------------------------------------------

DOC = """# Title

## a.one

text
**Verdict:** corrected (why)

## `b.two`

### a subsection
**Verdict:** refuted

## c.three
no verdict here

## Not a claim
**Verdict:** confirmed

# d.four
#### deeper heading
  **Verdict:** confirmed

## e.five
**Verdict:** first
**Verdict:** second
"""


@pytest.fixture
def proofs(tmp_path):
    folder = tmp_path / "proofs"
    folder.mkdir()
    (folder / "b.md").write_text(DOC)
    (folder / "a.md").write_text("## a.one\n**Verdict:** confirmed\n## f.six\n# g.seven\n")
    (folder / "notes.txt").write_text("## h.eight\n**Verdict:** confirmed\n")
    return folder


def test_proof_sections_find_each_claim_heading_and_its_verdict(proofs):
    found = proof_index.proof_sections(proofs)
    assert sorted(found) == ["a.one", "b.two", "c.three", "d.four", "e.five", "f.six", "g.seven"]
    first, second = found["a.one"]  # a.md is read before b.md
    assert first == proof_index.ProofSection("a.one", "proofs/a.md", "aone", "confirmed")
    assert second == proof_index.ProofSection("a.one", "proofs/b.md", "aone", "corrected")
    assert found["b.two"][0].verdict == "refuted"   # under a deeper heading: still this claim's
    assert found["b.two"][0].anchor == "btwo"
    assert found["c.three"][0].verdict is None      # the next heading of its level ends it
    assert found["d.four"][0].verdict == "confirmed"  # indented line, deeper heading inside
    assert found["e.five"][0].verdict == "first"
    assert found["f.six"][0].verdict is None        # "# g.seven" (a higher level) ends it
    assert proof_index.verdicts_in_proofs(proofs) == {
        "a.one": "confirmed", "b.two": "refuted", "c.three": None, "d.four": "confirmed",
        "e.five": "first", "f.six": None, "g.seven": None}


def test_github_anchor():
    assert proof_index.github_anchor("  `a.b_c` Text, Here!  ") == "ab_c-text-here"
    assert proof_index.github_anchor("A-B c") == "a-b-c"


def test_recorded_verdicts_prefer_proofs_then_the_packaged_copy(proofs, tmp_path, monkeypatch):
    packaged = tmp_path / "recorded.json"
    proof_index.write_recorded_verdicts(packaged, proofs)
    assert packaged.read_text() == (
        '{\n "a.one": "confirmed",\n "b.two": "refuted",\n "c.three": null,\n "d.four": '
        '"confirmed",\n "e.five": "first",\n "f.six": null,\n "g.seven": null\n}\n')
    written = json.loads(packaged.read_text())
    assert written == proof_index.verdicts_in_proofs(proofs)
    assert proof_index.recorded_verdicts(proofs, tmp_path / "none.json") == written
    packaged.write_text(json.dumps({"x.y": "refuted"}))
    assert proof_index.recorded_verdicts(proofs, packaged) == written
    assert proof_index.recorded_verdicts(tmp_path / "gone", packaged) == {"x.y": "refuted"}
    assert proof_index.recorded_verdicts(tmp_path / "gone", tmp_path / "none.json") == {}
    assert proof_index.recorded_verdicts() == proof_index.verdicts_in_proofs()
    monkeypatch.setattr(proof_index, "RECORDED", packaged)  # the packaged copy by default
    assert proof_index.recorded_verdicts(tmp_path / "gone") == {"x.y": "refuted"}
