"""Where proofs/ records each claim: the heading that is the claim id and its **Verdict:** line.

The verdict a claim's checks should produce is written once, in proofs/, beside the proof.
`recorded_verdicts` reads it from proofs/ (a checkout) or, where the package was installed
without the repository, from ``verify/recorded_verdicts.json``, which ``python -m verify.docs``
writes from proofs/ (a test keeps the two equal).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROOFS = ROOT / "proofs"
RECORDED = Path(__file__).resolve().parent / "recorded_verdicts.json"
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


def verdicts_in_proofs(proofs: Path = PROOFS) -> dict[str, str | None]:
    """{claim id: the verdict written under its heading} (the first section of each id)."""
    return {cid: found[0].verdict for cid, found in proof_sections(proofs).items()}


def recorded_verdicts(proofs: Path | None = None, recorded: Path | None = None
                      ) -> dict[str, str | None]:
    """The verdict proofs/ records for each claim: from proofs/ itself when the checkout has it,
    else from the copy shipped with the package (defaults: PROOFS and RECORDED)."""
    proofs = PROOFS if proofs is None else proofs
    recorded = RECORDED if recorded is None else recorded
    if proofs.is_dir():
        return verdicts_in_proofs(proofs)
    if recorded.is_file():
        return dict(json.loads(recorded.read_text()))
    return {}


def write_recorded_verdicts(path: Path = RECORDED, proofs: Path = PROOFS) -> None:
    path.write_text(json.dumps(verdicts_in_proofs(proofs), indent=1, sort_keys=True) + "\n")
