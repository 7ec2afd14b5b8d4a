"""One source of truth for verdicts: proofs/ states them, checks produce them, README lists them.

``python -m verify.docs`` rewrites README.md's claims table (between the ``claims-table``
markers) from the registry and the verdicts written in proofs/; tests/test_consistency.py fails
when proofs/, README.md and the checks disagree.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from verify import registry

ROOT = Path(__file__).resolve().parent.parent
PROOFS = ROOT / "proofs"
README = ROOT / "README.md"
BEGIN, END = "<!-- claims-table -->", "<!-- /claims-table -->"
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_VERDICT = re.compile(r"^\*\*Verdict:\*\*\s+([a-z]+)")
_CLAIM_ID = re.compile(r"`?([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)`?")


@dataclass(frozen=True)
class ProofSection:
    claim_id: str
    file: str           # relative to the repository root
    anchor: str         # GitHub's heading anchor
    verdict: str | None


def github_anchor(heading: str) -> str:
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def proof_sections(proofs: Path = PROOFS) -> dict[str, list[ProofSection]]:
    """Every heading of proofs/*.md that is exactly a claim id, with the verdict line under it."""
    found: dict[str, list[ProofSection]] = {}
    for path in sorted(proofs.glob("*.md")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            heading = _HEADING.match(line)
            if not heading:
                continue
            ident = _CLAIM_ID.fullmatch(heading.group(2).strip())
            if not ident:
                continue
            verdict = None
            for follow in lines[i + 1:]:
                nxt = _HEADING.match(follow)
                if nxt and len(nxt.group(1)) <= len(heading.group(1)):
                    break
                v = _VERDICT.match(follow.strip())
                if v:
                    verdict = v.group(1)
                    break
            found.setdefault(ident.group(1), []).append(ProofSection(
                ident.group(1), path.relative_to(proofs.parent).as_posix(),
                github_anchor(heading.group(2)), verdict))
    return found


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
    print(f"rewrote the claims table of {README}", file=sys.stderr)
