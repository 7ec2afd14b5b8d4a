"""One source of truth for verdicts: proofs/ records them, checks derive them, README lists them.

``python -m verify.docs`` rewrites README.md's claims table (between the ``claims-table``
markers) and ``verify/recorded_verdicts.json`` from the registry and the verdicts written in
proofs/; tests/test_consistency.py fails
when proofs/, README.md and the checks disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

from verify import registry
from verify.proof_index import (  # noqa: F401 - re-exported for tests and the report
    PROOFS,
    ROOT,
    ProofSection,
    github_anchor,
    proof_sections,
    write_recorded_verdicts,
)

README = ROOT / "README.md"
BEGIN, END = "<!-- claims-table -->", "<!-- /claims-table -->"


def claims_table(claims: list[registry.Claim], sections: dict[str, list[ProofSection]]) -> str:
    rows = ["| claim | section | the section says | verdict | proof |", "|---|---|---|---|---|"]
    for c in claims:
        proof = sections.get(c.id, [None])[0]
        verdict = proof.verdict if proof else "?"
        link = f"[{proof.file}]({proof.file}#{proof.anchor})" if proof else "missing"
        slow = " (slow)" if c.slow else ""
        statement = c.statement.replace("|", "\\|")  # a bare | would end the table cell
        rows.append(f"| `{c.id}`{slow} | {c.source} | {statement} | {verdict} | {link} |")
    return "\n".join(rows)


def readme_table(readme: Path = README) -> str:
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{readme} has no {BEGIN} ... {END} block")
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def write_readme_table(readme: Path = README) -> None:
    text = readme.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    table = claims_table(registry.all_claims(), proof_sections())
    readme.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")


if __name__ == "__main__":
    write_readme_table()
    write_recorded_verdicts()
    print(f"rewrote the claims table of {README} and verify/recorded_verdicts.json",
          file=sys.stderr)
