"""`python -m verify report DIR`: a certificate of what the checks found, with figures.

Writes DIR/REPORT.md (a document: per claim the statement, the verdict, why, the proof, the
figures with captions; `verify.report_text`), DIR/report.json (every check's evidence, plus
the environment: package version from the installed metadata, the git commit or "not a git
checkout", Python, platform, library versions), DIR/index.html (the same, browsable offline,
with interactive attention patterns and curves; `verify.web_report`) and DIR/figures/*.png
(`verify.figures.FIGURES`). ``--grok-run FILE`` adds the curves of a `python -m verify grok`
run; ``--model DIR`` a trained model folder's attention patterns; ``--all`` the slow claims.
DIR and the input files are checked before any claim runs.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from verify import registry
from verify.cli_util import OneLineParser, UsageError, check_output_dir

# torch-free at import: `python -m verify report FILE` is refused before torch loads

HELP = "write a certificate: REPORT.md, report.json, index.html (browsable offline), figures"
PACKAGES = ("torch", "numpy", "sympy", "hypothesis", "matplotlib", "mpmath", "safetensors",
            "circuitsvis", "transformer-lens")
DISTRIBUTION = "circuit-proofs"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent   # the folder holding verify/


def environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"certificate": provenance(), "python": sys.version.split()[0],
            "platform": platform.platform(), "machine": platform.machine(),
            "packages": versions, "git_commit": git_commit(),
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def package_version() -> str | None:
    """circuit-proofs's version from the installed metadata (None: not installed)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def provenance() -> dict[str, Any]:
    """Which code wrote the certificate: {version, commit, source} where source says in words
    whether the code is a git checkout (and at which commit) or an installed copy."""
    version = package_version()
    commit = git_commit()
    if commit is not None:
        source = f"git checkout at commit {commit}"
    else:
        source = f"not a git checkout (code in {PACKAGE_ROOT})"
    return {"version": version if version is not None else "(not installed; source tree)",
            "commit": commit, "source": source}


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True,
                             cwd=PACKAGE_ROOT, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit(root: Path | None = None) -> str | None:
    """HEAD (+"+uncommitted" when the tree is dirty) when the folder holding verify/ is the top
    of a git checkout; None otherwise (e.g. a `pip install .` copy in site-packages, even when
    the virtual environment lies inside some checkout)."""
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != (root or PACKAGE_ROOT).resolve():
        return None
    head = _git("rev-parse", "HEAD")
    if head is None:
        return None
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return head + ("+uncommitted" if dirty else "")


def parser() -> OneLineParser:
    ap = OneLineParser(prog="python -m verify report", description=HELP + ".")
    ap.add_argument("directory", type=Path,
                    help="folder to write into (created; must not be a file or read-only)")
    ap.add_argument("--all", action="store_true", help="include the slow (training) claims")
    ap.add_argument("--grok-run", type=Path, default=None, metavar="FILE",
                    help="JSON written by `python -m verify grok`, to plot its curves")
    ap.add_argument("--model", type=Path, default=None, metavar="DIR",
                    help="a trained model folder (config.json + model.safetensors): show its "
                    "attention patterns too")
    ap.add_argument("--claim", nargs="+", metavar="ID", help="only these claims")
    ap.add_argument("--no-html", action="store_true", help="skip index.html")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return ap


def check_paths(argv: list[str]) -> None:
    """The output folder, checked before anything heavy is imported (the command line calls
    this first; usage errors are left to `main`)."""
    try:
        ns, _ = parser().parse_known_args(argv)
    except UsageError:
        return
    check_output_dir(ns.directory, option="report DIR")


def main(argv: list[str]) -> int:
    ns = parser().parse_args(argv)
    directory: Path = check_output_dir(ns.directory, option="report DIR")
    from verify import report_text, web_report
    from verify.cli import run_with_progress
    from verify.display import table
    from verify.figures import FIGURES, load_grok_run

    grok_run = None
    if ns.grok_run is not None:
        if not ns.grok_run.is_file():
            raise UsageError(f"--grok-run must name an existing JSON file, got {ns.grok_run}")
        grok_run = load_grok_run(ns.grok_run)  # fail before the checks run, not after
    if ns.model is not None and not ns.model.is_dir():
        raise UsageError(f"--model must name a model folder, got {ns.model}")
    if not ns.no_html and importlib.util.find_spec("circuitsvis") is None:
        raise UsageError("index.html needs circuitsvis for its attention views: "
                         "pip install 'circuit-proofs[report]', or pass --no-html")
    claims = registry.get_claims(ns.claim) if ns.claim else [
        c for c in registry.all_claims() if ns.all or not c.slow]
    results = run_with_progress(claims, quiet=ns.quiet)
    figure_dir = directory / "figures"
    figure_dir.mkdir(parents=True, exist_ok=True)
    figures: list[Path] = []
    options = {"grok_run": ns.grok_run}
    for name, make in FIGURES.items():
        print(f"drawing {name} ...", file=sys.stderr, flush=True)
        figures += list(make(figure_dir, options))
    env = environment()
    (directory / "report.json").write_text(json.dumps(
        {"environment": env, "claims": [r.as_json() for r in results],
         "figures": [f.relative_to(directory).as_posix() for f in figures]}, indent=2,
        default=str))
    (directory / "REPORT.md").write_text(
        report_text.render_markdown(results, env, figures, directory))
    written = ["REPORT.md", "report.json"]
    if not ns.no_html:
        print("writing index.html ...", file=sys.stderr, flush=True)
        page = web_report.render_html(results, env, figures, directory,
                                      web_report.attention_views(ns.model), grok_run,
                                      web_report.adder_margins())
        (directory / "index.html").write_text(page, encoding="utf-8")
        written.append("index.html")
    print(table(("claim", "literal", "restated", "verdict", "passed"),
                [(r.id, *[report_text.cell(f) for f in (r.literal, r.restated)], r.verdict,
                  "yes" if r.passed else "NO") for r in results]))
    print(f"\nwrote {', '.join(str(directory / w) for w in written)} and "
          f"{len(figures)} figures")
    return 0 if all(r.passed for r in results) else 1
