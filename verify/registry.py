"""The claim registry and the one rule that turns evidence into a verdict.

Every claim of the section has two checks, each returning a `Finding` (does it hold, and the
evidence):

- **literal**: the section's statement, tested as it stands (its numbers, its construction, its
  words; made precise only where unavoidable, and the check's docstring says where);
- **restated**: the project's restatement, as proved in proofs/.

`derive_verdict` is the only place that names verdicts: literal holds -> confirmed; literal
fails and the restatement holds -> corrected; both fail -> refuted; a check that raised ->
undetermined. ``passed`` is about our evidence: both checks ran and the derived verdict is the
one proofs/ records. Claim modules in ``verify/claims`` register with `claim` and attach their
checks with the ``.literal`` / ``.restated`` decorators; `all_claims` imports them all.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

VERDICTS = ("confirmed", "corrected", "refuted")
UNDETERMINED = "undetermined"  # a check raised: no verdict, and passed is False

# The order of DESIGN.md's table; `--list` and the report follow it.
CLAIM_ORDER = (
    "framework.qk_ov_factorization",
    "framework.heads_additive",
    "framework.path_expansion",
    "worked_example_1.qk_matrix",
    "induction.previous_token_head",
    "induction.induction_head",
    "induction.two_layers_required",
    "worked_example_2.cat_sat",
    "demo_1.ideal_pattern",
    "demo_1.is_induction_head",
    "modular.trig_identity",
    "modular.adder_exact",
    "worked_example_3.mod5",
    "grokking.memorization_norm",
    "grokking.generalization_norm",
    "grokking.phases",
    "demo_2.param_count",
    "induction.formation",
    "induction.primary_icl_mechanism",
)


def derive_verdict(literal_holds: bool | None, restated_holds: bool | None) -> str:
    """The verdict on the section's claim from its two checks (None: that check raised)."""
    if literal_holds is None or restated_holds is None:
        return UNDETERMINED
    if literal_holds:
        return "confirmed"
    return "corrected" if restated_holds else "refuted"


@dataclass
class Finding:
    """What one check found: whether the statement it tests holds, and why."""

    holds: bool
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.holds, bool):
            self.holds = bool(self.holds)  # numpy / torch booleans
        if not isinstance(self.evidence, dict):
            raise TypeError(f"evidence must be a dict, got {type(self.evidence).__name__}")

    def as_json(self) -> dict[str, Any]:
        return {"holds": self.holds, "evidence": self.evidence}


Check = Callable[[], Finding]


class Claim:
    """One claim: where the section makes it, what it says, and its two checks."""

    def __init__(self, id: str, source: str, statement: str, *, slow: bool = False,
                 literal: Check | None = None, restated: Check | None = None) -> None:
        self.id, self.source, self.statement, self.slow = id, source, statement, slow
        self.literal_check, self.restated_check = literal, restated

    def literal(self, check: Check) -> Check:
        """Decorator: the check of the section's statement as it stands."""
        self.literal_check = check
        return check

    def restated(self, check: Check) -> Check:
        """Decorator: the check of the project's restatement (proofs/)."""
        self.restated_check = check
        return check

    def __repr__(self) -> str:
        return f"Claim({self.id!r})"


@dataclass
class Result:
    """One run of one claim's checks, as `python -m verify --json` prints it."""

    id: str
    source: str
    statement: str
    verdict: str
    passed: bool
    evidence: dict[str, Any]
    seconds: float
    literal: Finding | None = None
    restated: Finding | None = None
    recorded: str | None = None          # the verdict proofs/ records

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "statement": self.statement,
                "verdict": self.verdict, "passed": self.passed, "evidence": self.evidence,
                "seconds": round(self.seconds, 4),
                "literal": self.literal.as_json() if self.literal else None,
                "restated": self.restated.as_json() if self.restated else None,
                "recorded_verdict": self.recorded}


_CLAIMS: dict[str, Claim] = {}


def claim(id: str, *, source: str, statement: str, slow: bool = False) -> Claim:
    """Register a claim; attach its checks with ``@c.literal`` and ``@c.restated``."""
    if id in _CLAIMS:
        raise ValueError(f"claim id {id!r} registered twice")
    _CLAIMS[id] = c = Claim(id, source, statement, slow=slow)
    return c


def all_claims() -> list[Claim]:
    """Every registered claim, in DESIGN.md's order (unknown ids last, sorted)."""
    import verify.claims as package
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"verify.claims.{module.name}")
    rank = {cid: i for i, cid in enumerate(CLAIM_ORDER)}
    return sorted(_CLAIMS.values(), key=lambda c: (rank.get(c.id, len(rank)), c.id))


def get_claims(ids: list[str]) -> list[Claim]:
    """The claims named, in the order given; ValueError naming an unknown id."""
    known = {c.id: c for c in all_claims()}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"unknown claim id {unknown[0]!r}; `python -m verify --list` lists them")
    return [known[i] for i in ids]


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch on ``n`` threads, then restore the previous number."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def single_thread() -> contextlib.AbstractContextManager[None]:
    """Run torch on one thread, then restore. Checks are many small tensor operations: on a
    loaded 2-core machine OpenMP's spinning threads made them 10-20x slower (0.8 s vs 17 s)."""
    return torch_threads(1)


def _run_check(check: Check | None, name: str) -> tuple[Finding | None, str | None]:
    """Run one check; (finding, None), or (None, the error) when it is missing or raised."""
    if check is None:
        return None, f"no {name} check is registered"
    try:
        finding = check()
    except Exception as error:  # noqa: BLE001 - a crashing check is reported, not hidden
        return None, f"{type(error).__name__}: {error}"
    if not isinstance(finding, Finding):
        return None, f"the {name} check returned {type(finding).__name__}, not a Finding"
    return finding, None


def run_claim(c: Claim, recorded: dict[str, str | None] | None = None) -> Result:
    """Run both checks on one thread and derive the verdict; ``passed`` when both ran and the
    verdict is the one proofs/ records (``recorded``: {id: verdict}, read from proofs/ if None)."""
    from verify.proof_index import recorded_verdicts

    expected = (recorded_verdicts() if recorded is None else recorded).get(c.id)
    start = time.perf_counter()
    with single_thread():
        literal, literal_error = _run_check(c.literal_check, "literal")
        restated, restated_error = _run_check(c.restated_check, "restated")
    verdict = derive_verdict(literal.holds if literal else None,
                             restated.holds if restated else None)
    evidence: dict[str, Any] = {
        "literal": literal.evidence if literal else None,
        "restated": restated.evidence if restated else None}
    errors = {k: v for k, v in (("literal", literal_error), ("restated", restated_error)) if v}
    if errors:
        evidence["error"] = "; ".join(f"{k}: {v}" for k, v in errors.items())
    passed = verdict != UNDETERMINED and verdict == expected
    return Result(c.id, c.source, c.statement, verdict, passed, evidence,
                  time.perf_counter() - start, literal, restated, expected)
