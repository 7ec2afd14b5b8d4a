"""One source of truth: the registry, DESIGN.md's claim ids, proofs/ and README's table agree,
and the verdicts written in proofs/ are the verdicts the checks produce."""

from __future__ import annotations

import re

import pytest

from verify import docs, registry

DESIGN = docs.ROOT.parent / "shared" / "DESIGN.md"


def test_registry_holds_exactly_the_design_claim_ids():
    assert [c.id for c in registry.all_claims()] == list(registry.CLAIM_ORDER)


@pytest.mark.skipif(not DESIGN.is_file(), reason="../shared/DESIGN.md is not beside the checkout")
def test_design_table_lists_the_registry_ids():
    ids = re.findall(r"^\| ([a-z_0-9]+\.[a-z_0-9]+) \|", DESIGN.read_text(), flags=re.M)
    assert ids == list(registry.CLAIM_ORDER)


def test_every_claim_has_exactly_one_proof_section_with_a_verdict_and_command():
    sections = docs.proof_sections()
    ids = {c.id for c in registry.all_claims()}
    assert set(sections) == ids, (set(sections) ^ ids)
    for cid, found in sections.items():
        assert len(found) == 1, f"{cid} has {len(found)} sections in proofs/"
        assert found[0].verdict in registry.VERDICTS, f"{cid}: no **Verdict:** line"
        text = (docs.ROOT / found[0].file).read_text()
        assert f"python -m verify --claim {cid}" in text, f"{cid}: no command in {found[0].file}"


def test_readme_claims_table_is_generated_from_registry_and_proofs():
    expected = docs.claims_table(registry.all_claims(), docs.proof_sections())
    assert docs.readme_table() == expected, "run `python -m verify.docs` to regenerate it"


ALL = [c.id for c in registry.all_claims()]  # slow ones too: together about 25 s here


@pytest.mark.parametrize("claim_id", ALL)
def test_written_verdict_is_what_the_check_produces(claim_id):
    [claim] = registry.get_claims([claim_id])
    result = registry.run_claim(claim)
    assert result.passed, result.evidence
    assert result.verdict == docs.proof_sections()[claim_id][0].verdict


def test_proof_documents_and_index_exist():
    for name in ("framework.md", "induction.md", "modular-addition.md", "grokking.md",
                 "errata.md", "README.md"):
        assert (docs.PROOFS / name).is_file(), name
    index = (docs.PROOFS / "README.md").read_text()
    for name in ("framework.md", "induction.md", "modular-addition.md", "grokking.md",
                 "errata.md"):
        assert name in index


def test_anchor_rule_matches_github():
    assert docs.github_anchor("framework.qk_ov_factorization") == "frameworkqk_ov_factorization"
    assert docs.github_anchor("The `cat` sat!") == "the-cat-sat"
