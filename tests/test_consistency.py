"""One source of truth: the registry, the design's claim ids, proofs/ and README's table agree;
every verdict is derived from the checks (never written in a claim module); and a check whose
outcome flips makes the consistency test fail."""

from __future__ import annotations

import re

import pytest

from verify import docs, proof_index, registry
from verify.registry import Claim, Finding, derive_verdict, run_claim

DESIGN = docs.ROOT.parent / "shared" / "DESIGN.md"
CLAIMS_DIR = docs.ROOT / "verify" / "claims"


def test_registry_holds_exactly_the_design_claim_ids():
    assert [c.id for c in registry.all_claims()] == list(registry.CLAIM_ORDER)


@pytest.mark.skipif(not DESIGN.is_file(), reason="the project's design notes are not part of "
                    "this checkout (they live beside it in the maintainers' workspace)")
def test_design_table_lists_the_registry_ids():
    ids = re.findall(r"^\| ([a-z_0-9]+\.[a-z_0-9]+) \|", DESIGN.read_text(), flags=re.M)
    assert ids == list(registry.CLAIM_ORDER)


def test_every_claim_has_both_checks_and_one_proof_section_with_a_verdict_and_command():
    sections = docs.proof_sections()
    ids = {c.id for c in registry.all_claims()}
    assert set(sections) == ids, (set(sections) ^ ids)
    for c in registry.all_claims():
        assert c.literal_check is not None and c.restated_check is not None, c.id
        found = sections[c.id]
        assert len(found) == 1, f"{c.id} has {len(found)} sections in proofs/"
        assert found[0].verdict in registry.VERDICTS, f"{c.id}: no **Verdict:** line"
        text = (docs.ROOT / found[0].file).read_text()
        assert f"python -m verify --claim {c.id}" in text, f"{c.id}: no command in {found[0].file}"


def test_readme_claims_table_is_generated_from_registry_and_proofs():
    expected = docs.claims_table(registry.all_claims(), docs.proof_sections())
    assert docs.readme_table() == expected, "run `python -m verify.docs` to regenerate it"


def test_packaged_verdicts_are_the_ones_in_proofs():
    import json
    assert json.loads(proof_index.RECORDED.read_text()) == proof_index.verdicts_in_proofs(), (
        "run `python -m verify.docs` to regenerate verify/recorded_verdicts.json")


def test_no_claim_module_writes_a_verdict():
    for path in sorted(CLAIMS_DIR.glob("*.py")):
        text = path.read_text().lower()
        for word in registry.VERDICTS:
            assert word not in text, f"{path.name} contains {word!r}: verdicts are derived"


@pytest.mark.parametrize("literal, restated, expected", [
    (True, True, "confirmed"), (True, False, "confirmed"), (False, True, "corrected"),
    (False, False, "refuted"), (None, True, registry.UNDETERMINED),
    (True, None, registry.UNDETERMINED), (None, None, registry.UNDETERMINED)])
def test_the_verdict_rule(literal, restated, expected):
    assert derive_verdict(literal, restated) == expected


ALL = [c.id for c in registry.all_claims()]  # slow ones too: CI runs every check once, here


@pytest.mark.parametrize("claim_id", ALL)
def test_derived_verdict_is_the_one_proofs_record(claim_id):
    [c] = registry.get_claims([claim_id])
    result = run_claim(c)
    assert result.literal is not None and result.restated is not None, result.evidence
    assert result.recorded == docs.proof_sections()[claim_id][0].verdict
    assert result.passed, (result.verdict, result.recorded, result.evidence)


def _flipped(c: Claim) -> Claim:
    """The same claim with its literal check's outcome inverted."""
    def flipped() -> Finding:
        f = c.literal_check()
        return Finding(not f.holds, f.evidence)
    return Claim(c.id, c.source, c.statement, literal=flipped, restated=c.restated_check)


FAST = [c for c in registry.all_claims() if not c.slow]


@pytest.mark.parametrize("claim_id", [c.id for c in FAST])
def test_a_flipped_literal_outcome_fails_the_consistency_check(claim_id):
    [c] = registry.get_claims([claim_id])
    recorded = proof_index.recorded_verdicts()
    before, after = run_claim(c, recorded), run_claim(_flipped(c), recorded)
    assert before.passed and not after.passed
    assert after.verdict != before.verdict


def test_passed_needs_both_checks_and_the_recorded_verdict():
    yes = lambda: Finding(True, {})  # noqa: E731
    no = lambda: Finding(False, {})  # noqa: E731

    def boom() -> Finding:
        raise RuntimeError("boom")

    recorded = {"t.x": "corrected"}
    assert run_claim(Claim("t.x", "s", "x", literal=no, restated=yes), recorded).passed
    assert not run_claim(Claim("t.x", "s", "x", literal=yes, restated=yes), recorded).passed
    assert not run_claim(Claim("t.x", "s", "x", literal=no, restated=yes), {}).passed
    crashed = run_claim(Claim("t.x", "s", "x", literal=boom, restated=yes), recorded)
    assert crashed.verdict == registry.UNDETERMINED and not crashed.passed
    assert "boom" in crashed.evidence["error"]
    missing = run_claim(Claim("t.x", "s", "x", literal=no), recorded)
    assert missing.verdict == registry.UNDETERMINED and "no restated check" in missing.evidence["error"]
    wrong_type = run_claim(Claim("t.x", "s", "x", literal=lambda: True, restated=yes), recorded)
    assert wrong_type.verdict == registry.UNDETERMINED and "not a Finding" in wrong_type.evidence["error"]
    row = run_claim(Claim("t.x", "s", "x", literal=no, restated=yes), recorded).as_json()
    assert row["literal"] == {"holds": False, "evidence": {}} and row["recorded_verdict"] == "corrected"


def test_proof_documents_and_index_exist():
    for name in ("framework.md", "induction.md", "modular-addition.md", "grokking.md",
                 "errata.md", "README.md"):
        assert (docs.PROOFS / name).is_file(), name
    index = (docs.PROOFS / "README.md").read_text()
    for path in sorted(docs.PROOFS.glob("*.md")):
        if path.name != "README.md":
            assert path.name in index, f"proofs/README.md does not list {path.name}"


def test_anchor_rule_matches_github():
    assert docs.github_anchor("framework.qk_ov_factorization") == "frameworkqk_ov_factorization"
    assert docs.github_anchor("The `cat` sat!") == "the-cat-sat"
