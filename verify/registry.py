"""The claim registry: every claim of the section, with a check that can fail.

A claim has an id (the table of DESIGN.md), the section it comes from, the section's claim in
brief, and a check. A check returns an `Outcome`: ``verdict`` is about the section's claim
(confirmed / corrected / refuted), ``passed`` is about our evidence (the check ran and came out
as its proof in proofs/ says). Claim modules live in ``verify/claims`` and register themselves
with the `claim` decorator; `all_claims` imports them all.
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
UNDETERMINED = "undetermined"  # only when a check crashed: no verdict, and passed is False

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
)


@dataclass
class Outcome:
    """What a check found."""

    verdict: str                          # confirmed | corrected | refuted (the section's claim)
    passed: bool                          # our evidence came out as the proof says
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        self.passed = bool(self.passed)


@dataclass(frozen=True)
class Claim:
    id: str
    source: str                            # where in the section: "section 1", "Worked Example 1"
    statement: str                         # the section's claim, in brief
    check: Callable[[], Outcome]
    slow: bool = False                     # run only with --claim ID or --all


@dataclass
class Result:
    """One run of one claim's check, as `python -m verify --json` prints it."""

    id: str
    source: str
    statement: str
    verdict: str
    passed: bool
    evidence: dict[str, Any]
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "statement": self.statement,
                "verdict": self.verdict, "passed": self.passed, "evidence": self.evidence,
                "seconds": round(self.seconds, 4)}


_CLAIMS: dict[str, Claim] = {}


def claim(id: str, *, source: str, statement: str, slow: bool = False
          ) -> Callable[[Callable[[], Outcome]], Callable[[], Outcome]]:
    """Register the decorated zero-argument check under ``id``."""
    def register(check: Callable[[], Outcome]) -> Callable[[], Outcome]:
        if id in _CLAIMS:
            raise ValueError(f"claim id {id!r} registered twice")
        _CLAIMS[id] = Claim(id=id, source=source, statement=statement, check=check, slow=slow)
        return check
    return register


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
def single_thread() -> Iterator[None]:
    """Run torch on one thread, then restore. Checks are many small tensor operations: on a
    loaded 2-core machine OpenMP's spinning threads made them 10-20x slower (0.8 s vs 17 s)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_claim(c: Claim) -> Result:
    """Run one check on one thread; an exception inside a check is a failed check."""
    start = time.perf_counter()
    try:
        with single_thread():
            outcome = c.check()
    except Exception as error:  # noqa: BLE001 - a crashing check is reported, not hidden
        outcome = Outcome("refuted", False, {"error": f"{type(error).__name__}: {error}"})
        outcome.verdict = UNDETERMINED
    return Result(c.id, c.source, c.statement, outcome.verdict, outcome.passed, outcome.evidence,
                  time.perf_counter() - start)
