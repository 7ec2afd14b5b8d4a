"""The mutation-testing driver (tests/mutation.py): its groups cover every mutable module once,
its configuration replaces the test selection, and its table counts as the README says."""

from __future__ import annotations

import fnmatch
import json
from collections import Counter
from pathlib import Path

import pytest

from tests import mutation

tomllib = pytest.importorskip("tomllib")   # Python >= 3.11

ROOT = Path(__file__).resolve().parent.parent


def _mutable_modules() -> list[str]:
    skip = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]["do_not_mutate"]
    files = sorted((ROOT / "constructions").rglob("*.py")) + sorted((ROOT / "verify").rglob("*.py"))
    return [p.relative_to(ROOT).as_posix() for p in files if p.name != "__init__.py"
            and not any(fnmatch.fnmatch(p.relative_to(ROOT).as_posix(), g) for g in skip)]


def test_every_mutable_module_is_in_one_group_or_listed_as_unmeasured():
    grouped = [m for modules, _, _ in mutation.GROUPS.values() for m in modules]
    assert len(grouped) == len(set(grouped))
    assert sorted(grouped + list(mutation.UNMEASURED)) == _mutable_modules()


def test_groups_name_files_and_tests_that_exist():
    for modules, tests, deselect in mutation.GROUPS.values():
        for path in (*modules, *tests, *(d.split("::")[0] for d in deselect)):
            assert (ROOT / path).is_file(), path


def test_configure_replaces_only_the_test_selection():
    text = (ROOT / "pyproject.toml").read_text()
    section = mutation.mutmut_section(("verify/rounding.py",), ("tests/test_modular.py",),
                                      ("tests/test_modular.py::x",))
    out = tomllib.loads(mutation.configure(text, section))["tool"]["mutmut"]
    assert out["only_mutate"] == ["verify/rounding.py"] and out["timeout_multiplier"] == 8.0
    assert out["pytest_add_cli_args_test_selection"] == [
        "tests/test_modular.py", "-m", "not slow", "-p", "no:cacheprovider",
        "--deselect=tests/test_modular.py::x"]
    old = tomllib.loads(text)["tool"]["mutmut"]
    assert {k: v for k, v in out.items() if k not in section} == {
        k: v for k, v in old.items() if k != "pytest_add_cli_args_test_selection"}
    with pytest.raises(ValueError, match="no pytest_add_cli_args_test_selection"):
        mutation.configure("[tool.mutmut]\n", section)


def test_table_counts_each_exit_code_and_leaves_out_equivalents(tmp_path):
    meta = tmp_path / "mutants" / "verify" / "m.py.meta"
    meta.parent.mkdir(parents=True)
    codes = {"a__mutmut_1": 1, "a__mutmut_2": 3, "a__mutmut_3": -24, "a__mutmut_4": 0,
             "a__mutmut_5": 0, "a__mutmut_6": 33, "a__mutmut_7": None}
    meta.write_text(json.dumps({"exit_code_by_key": codes}))
    (tmp_path / "mutants" / "verify" / "empty.py.meta").write_text('{"exit_code_by_key": {}}')
    c = mutation.module_counts(meta, {"a__mutmut_5"})
    assert c == Counter({"mutants": 7, "killed": 3, "survived": 1, "equivalent": 1,
                         "no tests": 1, "not run": 1})
    assert mutation.score(c) == 3 / 5 and mutation.score(Counter(mutants=2)) is None
    assert mutation.table(tmp_path, {"a__mutmut_5"}).splitlines()[2:] == [
        "| verify/m.py | 7 | 3 | 1 | 1 | 1 | 1 | 60.0% |"]


def test_equivalent_names_are_read_from_the_equivalents_file(tmp_path):
    f = tmp_path / "eq.md"
    f.write_text("- `verify.x.x_f__mutmut_3`\n| `verify.y.x_g__mutmut_12` | why |\n`not_a_name`\n")
    assert mutation.equivalent_names(f) == {"verify.x.x_f__mutmut_3", "verify.y.x_g__mutmut_12"}
    assert "verify.grokking.evidence.x_norm_rise__mutmut_17" in mutation.equivalent_names()


def test_command_line_lists_groups_and_refuses_bad_arguments(capsys, tmp_path):
    assert mutation.main(["list"]) == 0
    assert "induction-checks: verify/claims/induction.py" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        mutation.main(["run", "induction-checks", "--children", "0"])
    assert e.value.code == 2 and "--children must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        mutation.main(["table", str(tmp_path)])
    assert e.value.code == 2 and "has no mutants/" in capsys.readouterr().err
