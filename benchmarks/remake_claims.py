"""Re-make a report's claims.md from its results.csv, with today's verdict rules and the spec's claims.

A report's verdicts are a function of its results.csv (every run's test metrics) and its spec's claims, so when the
rules change (session 30 added "inside the noise") the committed reports can be brought up to date without their
run folders, which are not kept. The numbers stay the report's; claims.md says it was re-made, at which commit, and
that summary.md names the commit and command that made the runs.

    python benchmarks/remake_claims.py                      # every report under benchmarks/results with a spec
    python benchmarks/remake_claims.py benchmarks/results/lattice_table2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from mmgef.experiments.report import code_version, write_claims
from mmgef.experiments.runner import Runner
from mmgef.experiments.spec import load_spec

REPO = Path(__file__).resolve().parents[1]


def spec_name(report: Path) -> str | None:
    """The experiment a report belongs to: summary.md's title."""
    summary = report / "summary.md"
    if not summary.exists():
        return None
    first = summary.read_text().splitlines()[0]
    return first[2:].strip() if first.startswith("# ") else None


def remake(report: Path, version: str) -> bool:
    name = spec_name(report)
    spec_file = REPO / "configs" / "experiments" / f"{name}.yaml"
    if name is None or not spec_file.exists() or not (report / "results.csv").exists():
        return False
    spec = load_spec(spec_file)
    if not spec.claims:
        return False
    df = pd.read_csv(report / "results.csv")
    datasets = list(dict.fromkeys(df["dataset"]))  # the report's own column order (its command's --datasets)
    cells = Runner(spec, Path("/nonexistent")).plan(datasets)
    shown = report.relative_to(REPO) if report.is_relative_to(REPO) else report
    write_claims(report / "claims.md", spec, df, cells, datasets,
                 note=f"Verdicts re-made from this folder's results.csv at commit {version} (`python "
                      f"benchmarks/remake_claims.py {shown}`); the runs and their numbers are the report's (summary.md "
                      "names the commit and command that made them).")
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("reports", nargs="*", type=Path, help="report folders (default: every one under benchmarks/results)")
    args = ap.parse_args()
    reports = [p.resolve() for p in args.reports] or sorted(p.parent for p in (REPO / "benchmarks" / "results").glob("**/claims.md"))
    version = code_version()  # before the first file is re-written, which would make the tree "changed"
    for report in reports:
        print(f"{'re-made' if remake(report, version) else 'skipped'}: {report}")


if __name__ == "__main__":
    main()
