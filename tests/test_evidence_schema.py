"""The evidence each fast claim reports: its key paths, pinned in tests/data/evidence_keys.json.

A check's evidence is what a reader (and `--json`) sees; a renamed or dropped evidence key is a
change of the public output, so it must show up as a failing test and a reviewed regeneration,
not pass silently. Every fast claim runs once per session (one test per claim); for its
literal and its restated Finding we collect every key path of the evidence: nested dicts give
``outer.inner``, lists of dicts give ``outer[].inner``. Keys that are data (an integer modulus,
a claim id) are kept too: they are deterministic for the default inputs.

Regenerate the golden file after an intended change, and review its diff:

    python -m tests.test_evidence_schema
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from verify import registry

GOLDEN = Path(__file__).resolve().parent / "data" / "evidence_keys.json"
MAX_DEPTH = 4  # deeper structure is data (tables), not schema


def key_paths(value: Any, prefix: str = "", depth: int = 0) -> set[str]:
    """Every key path of a JSON-like value: ``a``, ``a.b``, ``a[].c`` (lists of dicts)."""
    if depth >= MAX_DEPTH:
        return set()
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            paths.add(path)
            paths |= key_paths(inner, path, depth + 1)
    elif isinstance(value, (list, tuple)):
        for inner in value:
            paths |= key_paths(inner, f"{prefix}[]", depth + 1)
    return paths


def fast_claim_ids() -> list[str]:
    return [c.id for c in registry.all_claims() if not c.slow]


def schema_of(result: registry.Result) -> dict[str, list[str]]:
    """{"literal": sorted key paths, "restated": sorted key paths} of one claim's run."""
    if result.literal is None or result.restated is None:
        raise AssertionError(f"{result.id}: a check did not run: {result.evidence.get('error')}")
    return {"literal": sorted(key_paths(result.literal.evidence)),
            "restated": sorted(key_paths(result.restated.evidence))}


def current_schema() -> dict[str, dict[str, list[str]]]:
    recorded = {c: None for c in fast_claim_ids()}  # verdicts are irrelevant here
    return {c.id: schema_of(registry.run_claim(c, recorded))
            for c in registry.get_claims(fast_claim_ids())}


@pytest.fixture(scope="module")
def golden() -> dict[str, dict[str, list[str]]]:
    if not GOLDEN.is_file():
        pytest.fail(f"{GOLDEN} is missing: run `python -m tests.test_evidence_schema`")
    return json.loads(GOLDEN.read_text())


def test_golden_lists_exactly_the_fast_claims(golden):
    assert sorted(golden) == sorted(fast_claim_ids()), (
        "the fast claims changed: run `python -m tests.test_evidence_schema` and review the diff")


@pytest.mark.parametrize("claim_id", fast_claim_ids())
def test_evidence_keys_are_the_recorded_ones(golden, claim_id):
    """One test per claim, running it once (both checks): a mutation tool that maps tests to
    the code they run then pairs each check with the test that compares its keys."""
    [c] = registry.get_claims([claim_id])
    found = schema_of(registry.run_claim(c, {claim_id: None}))
    assert claim_id in golden, f"{claim_id} is not in {GOLDEN.name}: regenerate it"
    for side in ("literal", "restated"):
        expected, got = set(golden[claim_id][side]), set(found[side])
        missing, extra = sorted(expected - got), sorted(got - expected)
        assert not missing and not extra, (
            f"{claim_id} {side} evidence keys changed: missing {missing}, new {extra}; if "
            "intended, run `python -m tests.test_evidence_schema` and review the diff")


def test_key_paths_nest_and_descend_into_lists():
    value = {"a": 1, "b": {"c": [1, 2]}, "d": [{"e": 1}, {"f": {"g": 2}}]}
    assert key_paths(value) == {"a", "b", "b.c", "d", "d[].e", "d[].f", "d[].f.g"}
    deep = {"1": {"2": {"3": {"4": {"5": 0}}}}}
    assert key_paths(deep) == {"1", "1.2", "1.2.3", "1.2.3.4"}  # MAX_DEPTH = 4 levels


def main(argv: list[str]) -> int:
    if argv:
        print("usage: python -m tests.test_evidence_schema  (rewrites tests/data/evidence_keys.json)",
              file=sys.stderr)
        return 2
    with registry.single_thread():
        schema = current_schema()
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({len(schema)} claims)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
