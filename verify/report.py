"""`python -m verify report DIR`: a certificate of what the checks found, with figures.

Writes DIR/REPORT.md (claim, verdict, passed, evidence, seconds), DIR/report.json (the same,
plus the environment: Python, torch, sympy, hypothesis, numpy versions, platform, git commit),
and DIR/figures/*.png from `verify.figures.FIGURES`. ``--grok-run FILE`` adds the
curves of a `python -m verify grok` run; ``--all`` includes the slow (training) claims.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from verify import registry
from verify.cli_util import OneLineParser, UsageError
from verify.display import table
from verify.figures import FIGURES, load_grok_run

PACKAGES = ("torch", "numpy", "sympy", "hypothesis", "matplotlib", "mpmath", "transformer-lens")


def environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "machine": platform.machine(), "packages": versions, "git_commit": git_commit(),
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parent, timeout=10).stdout.strip()
    return out.stdout.strip() + ("+uncommitted" if dirty else "")


def render_markdown(results: list[registry.Result], env: dict[str, Any],
                    figures: list[Path], directory: Path) -> str:
    passed = sum(r.passed for r in results)
    lines = ["# circuit-proofs certificate", "",
             f"{len(results)} claims checked, {passed} passed, {len(results) - passed} failed.",
             f"Commit `{env['git_commit']}`, {env['date_utc']}, Python {env['python']} on "
             f"{env['platform']}.", "",
             "| claim | source | verdict | passed | seconds |", "|---|---|---|---|---|"]
    lines += [f"| [`{r.id}`](#{r.id.replace('.', '')}) | {r.source} | {r.verdict} | "
              f"{'yes' if r.passed else '**NO**'} | {r.seconds:.2f} |" for r in results]
    lines += ["", "Verdicts are about the section's claims; `passed` says our check ran and "
              "came out as its proof in `proofs/` says.", "", "## Evidence", ""]
    for r in results:
        lines += [f"### {r.id}", "", f"*{r.source}:* {r.statement}", "",
                  f"**Verdict:** {r.verdict} · **passed:** {r.passed} · {r.seconds:.2f} s", "",
                  "```json", json.dumps(r.evidence, indent=2, default=str)[:6000], "```", ""]
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{f.stem}]({f.relative_to(directory).as_posix()})" for f in figures]
        lines.append("")
    lines += ["## Environment", "", "```json", json.dumps(env, indent=2), "```", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = OneLineParser(prog="python -m verify report")
    parser.add_argument("directory", type=Path, help="where to write REPORT.md and figures")
    parser.add_argument("--all", action="store_true", help="include slow (training) claims")
    parser.add_argument("--grok-run", type=Path, default=None,
                        help="JSON written by `python -m verify grok`, to plot its curves")
    parser.add_argument("--claim", nargs="+", metavar="ID", help="only these claims")
    ns = parser.parse_args(argv)
    if ns.grok_run is not None:
        if not ns.grok_run.is_file():
            raise UsageError(f"--grok-run must name an existing JSON file, got {ns.grok_run}")
        load_grok_run(ns.grok_run)  # fail before the checks run, not after
    directory: Path = ns.directory
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"directory {directory} exists and is not a directory")
    claims = registry.get_claims(ns.claim) if ns.claim else [
        c for c in registry.all_claims() if ns.all or not c.slow]
    results = []
    for c in claims:
        print(f"checking {c.id} ...", file=sys.stderr, flush=True)
        results.append(registry.run_claim(c))
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
    (directory / "REPORT.md").write_text(render_markdown(results, env, figures, directory))
    print(table(("claim", "verdict", "passed"),
                [(r.id, r.verdict, "yes" if r.passed else "NO") for r in results]))
    print(f"\nwrote {directory / 'REPORT.md'}, {directory / 'report.json'} and "
          f"{len(figures)} figures")
    return 0 if all(r.passed for r in results) else 1
