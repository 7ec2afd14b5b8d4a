"""Output paths and sizes are refused before any work: one line on stderr, exit status 2.

Each case runs the real command line in a subprocess and checks that nothing ran first (no
progress line, no file written) and, in process, that the refusal takes well under a second.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from constructions import modular, validation
from verify import benchmarks, cli, cli_util, inspect_cmd

REFUSAL_SECONDS = 1.0      # in process: checks come before any claim, training or benchmark


def run(*args: str, user: str | None = None) -> subprocess.CompletedProcess:
    prefix: list[str] = []
    if user is not None:     # root writes into read-only folders: run as an unprivileged user
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    return subprocess.run([*prefix, sys.executable, "-m", "verify", *args], capture_output=True,
                          text=True, timeout=300)


def refused(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    for w in words:
        assert w in result.stderr, result.stderr


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    f = tmp_path / "a_file.txt"
    f.write_text("not a folder")
    return f


@pytest.mark.parametrize("args, words", [
    (["report", "{file}"], ["report DIR", "is a file, not a folder"]),
    (["report", "{file}/sub"], ["report DIR", "is a file, not a folder"]),
    (["grok", "--out", "{file}", "--steps", "100000"], ["--out", "is a file"]),
    (["inspect", "induction", "--plot", "{file}"], ["--plot", "is a file"]),
    (["bench", "induction", "--json", "{tmp}/missing/x.json"], ["--json", "does not exist"]),
    (["bench", "adder", "--json={tmp}"], ["--json", "is a folder, not a file"]),
])
def test_bad_output_paths_are_refused_before_any_work(args, words, a_file, tmp_path):
    args = [a.format(file=a_file, tmp=tmp_path) for a in args]
    result = run(*args)
    refused(result, *words)
    assert "[1/" not in result.stdout + result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file.txt"]


@pytest.mark.parametrize("args", [
    ["report", "{file}"], ["grok", "--out", "{file}"], ["inspect", "induction", "--plot", "{file}"],
    ["bench", "induction", "--json", "{tmp}/no/x.json"], ["train-induction", "--out", "{file}"]])
def test_refusal_comes_before_torch_is_imported(args, a_file, tmp_path):
    """Within a second as a user sees it: the path checks run before the heavy imports."""
    args = [a.format(file=a_file, tmp=tmp_path) for a in args]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "verify", *args],
                            capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - start
    assert result.returncode == 2
    imported = [line.split("|")[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")]
    assert "torch" not in imported and "verify.cli" in imported
    assert result.stderr.splitlines()[-1].startswith("error: ")
    assert seconds < 10 * REFUSAL_SECONDS      # ~0.2 s idle; slack for a loaded machine


@pytest.mark.parametrize("args", [["report", "{file}"], ["grok", "--out", "{file}"],
                                  ["bench", "induction", "--json", "{tmp}/no/x.json"]])
def test_refusal_is_fast_in_process(args, a_file, tmp_path, capsys):
    args = [a.format(file=a_file, tmp=tmp_path) for a in args]
    cli.main(args)                 # imports done once
    capsys.readouterr()
    start = time.perf_counter()
    assert cli.main(args) == 2
    assert time.perf_counter() - start < REFUSAL_SECONDS
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None,
                    reason="running as root without setpriv: a read-only folder is writable")
def test_a_read_only_folder_is_refused():
    base = Path(tempfile.mkdtemp())         # a folder every user may search (not pytest's)
    try:
        base.chmod(0o755)
        ro = base / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        user = "nobody" if os.geteuid() == 0 else None
        refused(run("report", str(ro), user=user), "report DIR", "is not writable")
        refused(run("report", str(ro / "new"), user=user), "report DIR", "is not writable")
        refused(run("bench", "induction", "--json", str(ro / "x.json"), user=user),
                "--json", "is not writable")
        assert list(ro.iterdir()) == []
        closed = base / "closed"                    # a folder that cannot even be searched
        closed.mkdir(mode=0o700)
        if user is not None:
            refused(run("report", str(closed / "out"), user=user), "report DIR")
    finally:
        shutil.rmtree(base)


def test_an_unsearchable_parent_is_one_line(monkeypatch):
    def denied(self):  # noqa: ANN001
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(Path, "exists", denied)
    with pytest.raises(cli_util.UsageError, match="report DIR: cannot use 'x': Permission"):
        cli_util.check_output_dir("x", option="report DIR")
    with pytest.raises(cli_util.UsageError, match="--json: cannot use 'y': Permission"):
        cli_util.check_output_file("y", option="--json")


# --- sizes that cannot fit ------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["inspect", "adder", "--p", "100000000"], ["inspect adder --p 100000000", "needs about"]),
    (["bench", "induction", "--vocab", "1000000000"], ["bench induction (vocab 1000000000"]),
    (["bench", "induction", "--n-seqs", "1000000000"], ["1000000000 sequences"]),
    (["bench", "adder", "--p", "7", "3000000"], ["bench adder --p 3000000"]),
    (["grok", "--p", "100000"], ["grok --p 100000"]),
    (["bench", "analyze", "--vocab", "1000000000"], ["bench analyze (vocab 1000000000"]),
    (["train-induction", "--vocab", "1000000000"], ["train-induction (vocab 1000000000"]),
    (["train-induction", "--d-model", "10000000"], ["d_model 10000000"]),
])
def test_sizes_that_cannot_fit_are_refused_with_the_estimate(args, words):
    result = run(*args)
    refused(result, *words, "of memory, more than the", "--max-memory GB to override")


def test_max_memory_lowers_and_raises_the_limit(capsys):
    # p = 7: 3 frequencies; far below any machine's limit, far above a limit of 1 kB
    assert cli.main(["inspect", "adder", "--p", "7", "--max-memory", "1e-6"]) == 2
    assert "needs about" in capsys.readouterr().err
    assert cli.main(["inspect", "adder", "--p", "7", "--max-memory=1"]) == 0
    assert "certificate" in capsys.readouterr().out


def test_a_builder_over_the_limit_is_reported_as_a_usage_error(monkeypatch, capsys):
    # the estimate is skipped: the Transformer's own guard still refuses, one line, exit 2
    monkeypatch.setitem(inspect_cmd.ESTIMATES, "adder", lambda argv: [])
    assert cli.main(["inspect", "adder", "--p", "7", "--max-memory", "1e-6"]) == 2
    err = capsys.readouterr().err
    assert "a Transformer with" in err and "--max-memory GB" in err


def test_adder_estimate_is_the_allocated_size():
    [(what, estimate)] = inspect_cmd.adder_estimate(["--p", "11"])
    built = modular.build_adder(11)
    params = sum(p.numel() * p.element_size() for p in built.transformer.parameters())
    assert estimate == params + 36 * len(built.freqs)
    [(_, two)] = inspect_cmd.adder_estimate(["--p", "11", "--freqs", "1", "2"])
    assert two < estimate
    assert inspect_cmd.adder_estimate(["--p", "1"]) == []          # the parser reports it
    assert inspect_cmd.adder_estimate(["--p", "x"]) == []


def test_induction_estimate_covers_the_weights():
    from constructions import induction
    [(what, estimate)] = benchmarks.induction_estimate(["--vocab", "8", "--length", "16"])
    model = induction.build_induction_model(8, 16)
    assert estimate >= 3 * model.cfg.parameter_bytes()
    assert benchmarks.induction_estimate(["--vocab", "0"]) == []
    assert benchmarks.adder_estimate(["--p", "1"]) == []


def test_guard_memory_bound_is_inclusive():
    cli_util.guard_memory([("x", 1000)], limit=1000)                 # at the bound
    with pytest.raises(cli_util.UsageError, match="x needs about 1 kB.*999 bytes allowed"):
        cli_util.guard_memory([("x", 1000)], limit=999)              # just below
    with pytest.raises(cli_util.UsageError, match="second"):
        cli_util.guard_memory([("first", 10), ("second", 2000)], limit=1000)


@pytest.mark.parametrize("argv, rest, limit", [
    (["--p", "5"], ["--p", "5"], None),
    (["--p", "5", "--max-memory", "2"], ["--p", "5"], 2 * 10**9),
    (["--max-memory=0.5", "--p", "5"], ["--p", "5"], 5 * 10**8),
    (["--max-memory", "1e-12"], [], 1),
])
def test_pop_max_memory(argv, rest, limit):
    assert cli_util.pop_max_memory(argv) == (rest, limit)


@pytest.mark.parametrize("value", ["0", "inf", "nan", "-3", "many"])
def test_pop_max_memory_refuses_bad_values(value):
    with pytest.raises(cli_util.UsageError, match="--max-memory must be a number of GB"):
        cli_util.pop_max_memory(["--max-memory", value])


def test_option_values_and_kinds(tmp_path):
    argv = ["--out", "a", "--json=b", "--out", "--flag", "--json", "c"]
    assert cli_util.option_values(argv, "--out") == ["a"]
    assert cli_util.option_values(argv, "--json") == ["b", "c"]
    with pytest.raises(ValueError, match="must be 'dir' or 'file'"):
        cli_util.check_output_options(["--out", "x"], {"--out": "folder"})
    cli_util.check_output_options(["--out", str(tmp_path / "new")], {"--out": "dir"})


def test_memory_limit_default_is_a_share_of_ram(monkeypatch):
    monkeypatch.delenv(validation.MEMORY_ENV, raising=False)
    assert 0 < validation.memory_limit() <= validation.physical_memory()


def test_grok_estimate_grows_as_p_cubed():
    [(_, small)] = cli.grok_estimate(["--p", "10"])
    [(_, large)] = cli.grok_estimate(["--frac", "0.3", "--p", "100"])
    assert small == 6 * 10**2 * 8 + 3 * 10**3 * 4 and large == 6 * 10**4 * 8 + 3 * 10**6 * 4
    assert cli.grok_estimate([]) == [] and cli.grok_estimate(["--p", "x"]) == []
    assert cli.grok_estimate(["--p", "1"]) == []


def test_grok_max_memory_is_taken_by_the_command_line(capsys):
    assert cli.main(["grok", "--p", "11", "--max-memory", "1e-6"]) == 2
    assert "grok --p 11 needs about" in capsys.readouterr().err


def test_train_induction_estimate_covers_the_optimizer_state():
    from constructions.transformer import Config
    [(_, estimate)] = cli.train_induction_estimate([])
    cfg = Config(n_layers=2, n_heads=4, d_model=64, d_head=16, d_vocab=33, n_ctx=33)
    assert estimate > 4 * cfg.parameter_bytes()
    [(_, bigger)] = cli.train_induction_estimate(["--batch", "64"])
    assert bigger > estimate
    assert cli.train_induction_estimate(["--vocab", "0"]) == []      # its parser says why
    assert cli.train_induction_estimate(["--batch", "0"]) == []
    assert cli.train_induction_estimate(["--vocab", "x"]) == []


def test_analyze_estimate_covers_the_weights():
    from constructions.transformer import Config
    [(_, estimate)] = benchmarks.analyze_estimate(["--vocab", "64", "--n-ctx", "16"])
    cfg = Config(n_layers=2, n_heads=8, d_model=256, d_head=32, d_vocab=64, n_ctx=16)
    assert estimate > 2 * cfg.parameter_bytes()
    assert benchmarks.analyze_estimate(["--n-seqs", "0"]) == []
