"""Mutation testing, one group of modules at a time: ``python -m tests.mutation run GROUP``.

mutmut (3.x, the ``dev`` extra) changes one thing at a time in a module and runs the tests that
cover the changed function; a change that no test notices survives. This script makes the
measurement reproducible: it copies the project into a scratch folder, restricts mutmut there to
one group's modules and the tests that exercise them (``GROUPS``), runs ``mutmut run``, and
prints the per-module table from mutmut's own result files, leaving out the equivalent mutants
listed by name in ``mutation-equivalents.md``:

    score = killed / (mutants - equivalent)       (a mutant that times out counts as killed)

    python -m tests.mutation list                    # the groups and their modules
    python -m tests.mutation run induction-checks    # copy, configure, mutmut run, table
    python -m tests.mutation table /tmp/circuit-proofs-mutation/induction-checks

The scratch folder keeps mutmut's state, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "mutation-equivalents.md"
SCRATCH = Path(tempfile.gettempdir()) / "circuit-proofs-mutation"
COPIED = ("constructions", "verify", "tests", "proofs", "pyproject.toml")
NOT_SLOW = ("-m", "not slow", "-p", "no:cacheprovider")

# group: (modules mutated, the test files that exercise them, tests deselected because they
# need TransformerLens, a subprocess or minutes per run). tests/test_evidence_schema.py pins
# every fast claim's evidence keys, so it is selected wherever claim checks are mutated.
GROUPS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "constructions-core": (
        ("constructions/transformer.py", "constructions/attention_ops.py",
         "constructions/random_init.py", "constructions/validation.py",
         "constructions/exact.py", "constructions/interop.py"),
        ("tests/test_transformer.py", "tests/test_interop.py", "tests/test_mutants_transformer.py",
         "tests/test_mutants_validation.py", "tests/test_mutants_exact.py",
         "tests/test_mutants_interop.py", "tests/test_mutants_constructions.py"), ()),
    "constructions-circuits": (
        ("constructions/induction.py", "constructions/one_layer_induction.py",
         "constructions/pizza.py", "constructions/modular.py", "constructions/previous_token.py",
         "constructions/tiny_mlp.py"),
        ("tests/test_mutants_constructions.py", "tests/test_mutants_induction_construction.py",
         "tests/test_mutants_one_layer.py", "tests/test_mutants_pizza.py",
         "tests/test_mutants_modular_construction.py"), ()),
    "induction-checks": (
        ("verify/claims/induction.py", "verify/claims/induction_examples.py",
         "verify/induction_certificate.py", "verify/detectors.py"),
        ("tests/test_mutants_certificate.py", "tests/test_mutants_detectors.py",
         "tests/test_mutants_induction_claims.py", "tests/test_mutants_induction.py",
         "tests/test_induction_claims.py", "tests/test_detectors.py", "tests/test_induction.py",
         "tests/test_induction_one_layer.py", "tests/test_evidence_schema.py"),
        ("tests/test_induction.py::test_every_sequence_exact_in_sympy",
         "tests/test_detectors.py::test_detection_patterns_equal_transformer_lens",
         "tests/test_detectors.py::test_scores_equal_transformer_lens",
         "tests/test_induction_one_layer.py::test_cli_inspect_and_plot")),
    "induction-math": (
        ("verify/sequences.py", "verify/beta_threshold.py"),
        ("tests/test_mutants_certificate.py", "tests/test_beta_threshold.py",
         "tests/test_mutants_induction_math.py"),
        ("tests/test_beta_threshold.py::test_record_agrees_with_a_rerun",)),
    "modular-checks": (
        ("verify/claims/modular.py", "verify/adder_certificate.py", "verify/pizza_certificate.py",
         "verify/trig_identities.py", "verify/adder_pairs.py", "verify/rounding.py",
         "verify/reparametrization.py"),
        ("tests/test_modular.py", "tests/test_pizza.py", "tests/test_evidence_schema.py",
         "tests/test_framework.py", "tests/test_mutants_framework.py",
         "tests/test_mutants_modular.py", "tests/test_mutants_adder_certificate.py",
         "tests/test_mutants_pizza_certificate.py", "tests/test_mutants_modular_edges.py"),
        ("tests/test_modular.py::test_cli_inspect_and_claims_subprocess",
         "tests/test_modular.py::test_softmax_on_the_shapes_run_is_within_its_bound[200]")),
    "framework": (
        ("verify/claims/framework.py", "verify/claims/worked_example_1.py",
         "verify/claims/demo_2.py", "verify/registry.py", "verify/proof_index.py",
         "constructions/circuits.py"),   # the path expansion the framework claims check
        ("tests/test_framework.py", "tests/test_mutants_framework.py",
         "tests/test_mutants_registry.py", "tests/test_evidence_schema.py"), ()),
    "trained-induction": (
        ("verify/claims/trained_induction.py", "verify/analysis/scores.py",
         "verify/analysis/composition.py", "verify/analysis/ablation.py",
         "verify/analysis/load.py", "verify/formation/phase.py", "verify/formation/compare.py",
         "verify/formation/task.py"),
        ("tests/test_mutants_trained_induction.py", "tests/test_mutants_formation.py",
         "tests/test_mutants_analysis.py", "tests/test_evidence_schema.py"), ()),
    "grokking": (
        ("verify/claims/grokking.py", "verify/grokking/evidence.py",
         "verify/grokking/measures.py", "verify/grokking/phases.py",
         "verify/grokking/metrics.py", "verify/grokking/progress.py",
         "verify/grokking/record.py", "verify/grokking/norms.py", "verify/grokking/rescale.py",
         "verify/grokking/growth.py"),
        ("tests/test_mutants_grokking.py", "tests/test_mutants_grokking_measures.py",
         "tests/test_mutants_grokking_metrics.py", "tests/test_mutants_grokking_norms.py",
         "tests/test_mutants_grokking_record.py", "tests/test_mutants_grokking_edges.py",
         "tests/test_evidence_schema.py"), ()),
}

# mutable but not yet in a group, so not measured: no verdict is decided in them (storage, run
# setup and the analysis report's assembly); the closing note of issue 13 says so
UNMEASURED = {
    "verify/checkpoint.py": "checkpoint files (safetensors + JSON); resumption tests in test_grokking",
    "verify/formation/runio.py": "an induction-formation run's files",
    "verify/grokking/runio.py": "the grokking run JSON's writing and shape check",
    "verify/grokking/summary.py": "the grokking run's JSON summary (split out of train.py)",
    "verify/grokking/config.py": "RunConfig and the data split of the training loop",
    "verify/grokking/models.py": "the trained networks' definition and initialization",
    "verify/analysis/report.py": "assembles scores.py, composition.py and ablation.py's output",
}

# mutmut's exit codes per mutant (its meta files): 1 and 3 mean a test failed (killed);
# 0 survived; 5 and 33 no test covers the function; the rest are timeouts or kills by signal
KILLED, SURVIVED, NO_TESTS = {1, 3}, {0}, {5, 33}


def mutmut_section(modules: tuple[str, ...], tests: tuple[str, ...],
                   deselect: tuple[str, ...]) -> str:
    """The [tool.mutmut] keys that restrict a run to one group (TOML text)."""
    selection = [*tests, *NOT_SLOW, *(f"--deselect={t}" for t in deselect)]
    return (f"only_mutate = {json.dumps(list(modules))}\n"
            "timeout_multiplier = 8.0   # slowness on a loaded machine is not a kill\n"
            f"pytest_add_cli_args_test_selection = {json.dumps(selection)}\n")


def configure(pyproject: str, section: str) -> str:
    """``pyproject`` with its test selection replaced by ``section``."""
    pattern = re.compile(r"^pytest_add_cli_args_test_selection = \[.*?\]\n", re.S | re.M)
    if not pattern.search(pyproject):
        raise ValueError("pyproject.toml has no pytest_add_cli_args_test_selection list")
    return pattern.sub(lambda _: section, pyproject, count=1)


def prepare(group: str, scratch: Path) -> Path:
    """A scratch copy of the project configured for ``group`` (kept if it exists: resumable)."""
    modules, tests, deselect = GROUPS[group]
    folder = scratch / group
    if not (folder / "pyproject.toml").exists():
        folder.mkdir(parents=True, exist_ok=True)
        for name in COPIED:
            src, dst = ROOT / name, folder / name
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, dst)
        cfg = folder / "pyproject.toml"
        cfg.write_text(configure(cfg.read_text(), mutmut_section(modules, tests, deselect)))
    return folder


def equivalent_names(path: Path = EQUIVALENTS) -> set[str]:
    """Mutant names listed in the equivalents file (backticked ``pkg.mod.x_fn__mutmut_N``)."""
    return set(re.findall(r"`([\w.]+__mutmut_\d+)`", path.read_text()))


def module_counts(meta: Path, equivalent: set[str]) -> Counter:
    """killed / survived / equivalent / no tests / not run for one module's meta file."""
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    c: Counter = Counter(mutants=len(codes))
    for name, code in codes.items():
        if code is None:
            c["not run"] += 1
        elif code in SURVIVED:
            c["equivalent" if name in equivalent else "survived"] += 1
        elif code in NO_TESTS:
            c["no tests"] += 1
        else:
            c["killed"] += 1      # a failing test, or a timeout: the change was noticed
    return c


def score(c: Counter) -> float | None:
    """killed / (mutants run - equivalent); None when nothing was run."""
    judged = c["killed"] + c["survived"] + c["no tests"]
    return c["killed"] / judged if judged else None


def table(folder: Path, equivalent: set[str]) -> str:
    rows = ["| module | mutants | killed | survived | equivalent | no tests | not run | score |",
            "|---|---|---|---|---|---|---|---|"]
    for meta in sorted((folder / "mutants").rglob("*.py.meta")):
        c = module_counts(meta, equivalent)
        if not c["mutants"]:
            continue
        s = score(c)
        module = meta.relative_to(folder / "mutants").as_posix()[:-len(".meta")]
        rows.append(f"| {module} | {c['mutants']} | {c['killed']} | {c['survived']} | "
                    f"{c['equivalent']} | {c['no tests']} | {c['not run']} | "
                    f"{'-' if s is None else f'{100 * s:.1f}%'} |")
    return "\n".join(rows)


def run(group: str, scratch: Path, children: int) -> int:
    folder = prepare(group, scratch)
    globs = [m[:-3].replace("/", ".") + ".*" for m in GROUPS[group][0]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HYPOTHESIS_PROFILE": "dev"}
    print(f"mutmut in {folder}: {', '.join(GROUPS[group][0])}", flush=True)
    try:
        rc = subprocess.call(["mutmut", "run", "--max-children", str(children), *globs],
                             cwd=folder, env=env)
    except KeyboardInterrupt:
        print(f"\ninterrupted; run again to resume in {folder}", file=sys.stderr)
        return 130
    print(table(folder, equivalent_names()))
    return rc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.mutation",
        description="Mutation testing (mutmut), one group of modules at a time, in a scratch copy.")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the groups and their modules")
    r = sub.add_parser("run", help="mutate one group in a scratch copy and print its table")
    r.add_argument("group", choices=sorted(GROUPS))
    r.add_argument("--scratch", type=Path, default=SCRATCH, help=f"default {SCRATCH}")
    r.add_argument("--children", type=int, default=2, help="parallel mutants (default 2)")
    t = sub.add_parser("table", help="the per-module table of a scratch folder")
    t.add_argument("folder", type=Path)
    args = ap.parse_args(argv)
    if args.command == "list":
        for name, (modules, _, _) in GROUPS.items():
            print(f"{name}: {' '.join(modules)}")
        return 0
    if args.command == "run":
        if args.children < 1:
            ap.error(f"--children must be >= 1, got {args.children}")
        if shutil.which("mutmut") is None:
            ap.error("mutmut is not installed: pip install -e '.[dev,test]'")
        return run(args.group, args.scratch, args.children)
    if not (args.folder / "mutants").is_dir():
        ap.error(f"folder {args.folder} has no mutants/ (run `python -m tests.mutation run` first)")
    print(table(args.folder, equivalent_names()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
