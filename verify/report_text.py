"""The certificate's words: what it cites, where each claim's proof is, and REPORT.md itself.

REPORT.md reads as a document: for each claim the section's statement, the verdict, a short
paragraph saying why (the **Statement** paragraph of its section in proofs/, and the verdict
line there), the link to the proof and the figures with captions. The evidence stays in
report.json.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from verify import proof_index, registry

SECTION = ('"Mechanistic Interpretability and Circuit Analysis", section 10.4 of the textbook; '
           "circuit-proofs is its proof companion")
THE_SECTION = "The section's statement"
WHY_LIMIT = 900           # characters of the proof's Statement paragraph quoted per claim
_LABEL = re.compile(r"^\*\*([A-Z][^*]*?)[.:]?\*\*")


def outcome(finding: registry.Finding | None, what: str) -> str:
    if finding is None:
        return f"{what} could not be checked (the check raised or is missing)"
    return f"{what} {'holds' if finding.holds else 'fails'}"


def proof_excerpt(claim_id: str, proofs: Path = proof_index.PROOFS) -> dict[str, Any] | None:
    """{file, anchor, statement, verdict_line} of the claim's first section in proofs/, or
    None when proofs/ is absent or has no section for it."""
    if not proofs.is_dir():
        return None
    sections = proof_index.proof_sections(proofs).get(claim_id)
    if not sections:
        return None
    s = sections[0]
    lines = (proofs.parent / s.file).read_text().splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.lstrip("#").strip().strip("`") == claim_id and line.startswith("#"))
    body: list[str] = []
    for line in lines[start + 1:]:
        if line.startswith("#") and not line.startswith("#" * 4):
            break
        body.append(line)
    paragraphs = [p.strip() for p in "\n".join(body).split("\n\n") if p.strip()]
    statement = next((p for p in paragraphs if p.startswith("**Statement")), None)
    verdict_line = next((p for p in paragraphs if p.startswith("**Verdict:**")), None)
    return {"file": s.file, "anchor": s.anchor,
            "statement": _shorten(statement) if statement else None,
            "verdict_line": _shorten(verdict_line) if verdict_line else None}


def _shorten(text: str, limit: int = WHY_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def proof_link(excerpt: dict[str, Any] | None, directory: Path) -> str | None:
    """A link from ``directory`` to the proof section (relative, so it works on disk)."""
    if excerpt is None:
        return None
    target = proof_index.ROOT / excerpt["file"]
    rel = os.path.relpath(target, Path(directory).resolve())
    return f"{Path(rel).as_posix()}#{excerpt['anchor']}"


def caption(figure: Path) -> str:
    from verify.figures import caption_for
    return caption_for(figure.name)


def render_markdown(results: list[registry.Result], env: dict[str, Any], figures: list[Path],
                    directory: Path) -> str:
    passed = sum(r.passed for r in results)
    cert = env["certificate"]
    lines = ["# circuit-proofs: what the section's claims come to", "",
             f"A certificate for {SECTION}. Each claim has two checks: the **literal** one tests "
             "the section's statement as it stands, the **restated** one tests the project's "
             "restatement proved in proofs/. The verdict follows from the two (literal holds; "
             "else restatement holds; else neither); *passed* says both checks ran and the "
             "verdict is the one proofs/ records.", "",
             f"{len(results)} claims checked, {passed} passed, {len(results) - passed} failed. "
             f"circuit-proofs {cert['version']}, {cert['source']}; {env['date_utc']}, "
             f"Python {env['python']} on {env['platform']}. The evidence of every check is in "
             "`report.json`; `index.html` is the same report with interactive figures.", "",
             "| claim | literal | restated | verdict | passed | proof |",
             "|---|---|---|---|---|---|"]
    excerpts = {r.id: proof_excerpt(r.id) for r in results}
    for r in results:
        link = proof_link(excerpts[r.id], directory)
        lines.append(f"| [`{r.id}`](#{proof_index.github_anchor(r.id)}) | "
                     f"{cell(r.literal)} | {cell(r.restated)} | {r.verdict} | "
                     f"{'yes' if r.passed else '**NO**'} | "
                     f"{f'[proof]({link})' if link else '-'} |")
    lines.append("")
    for r in results:
        ex = excerpts[r.id]
        lines += [f"## {r.id}", "", f"**The section ({r.source}) says:** {r.statement}", "",
                  f"**Verdict: {r.verdict}.** {outcome(r.literal, THE_SECTION)}"
                  f" as written; {outcome(r.restated, 'our restatement').lower()}. "
                  f"proofs/ records *{r.recorded}*; {'passed' if r.passed else 'NOT passed'} "
                  f"({r.seconds:.2f} s).", ""]
        if "error" in r.evidence:
            lines += [f"A check raised: `{r.evidence['error']}`", ""]
        if ex and ex["statement"]:
            lines += [f"Why: {ex['statement']}", ""]
        if ex and ex["verdict_line"] and len(ex["verdict_line"].split()) > 2:  # more than a word
            lines += [f"In proofs/: {ex['verdict_line']}", ""]
        link = proof_link(ex, directory)
        lines += [f"Proof: [{ex['file']}#{ex['anchor']}]({link})" if ex and link else
                  "Proof: not found (proofs/ is not beside this installation)", ""]
    if figures:
        lines += ["## Figures", ""]
        for i, f in enumerate(figures, 1):
            lines += [f"![{f.stem}]({f.relative_to(directory).as_posix()})", "",
                      f"*Figure {i}.* {caption(f)}", ""]
    lines += ["## How to cite", "", f"Cite the textbook section ({SECTION}); `CITATION.cff` "
              "has this repository's metadata.", ""]
    return "\n".join(lines)


def cell(finding: registry.Finding | None) -> str:
    return "error" if finding is None else ("holds" if finding.holds else "fails")
