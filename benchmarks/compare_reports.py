"""Pair one report's row with rivals that live in other reports: same dataset, split and seeds.

A row added to a finished comparison (issue 18's MM-GEF+ with its parts searched) need not re-train every rival:
each report's results.csv keeps every chosen seed run's test metrics, and the given and cold splits depend only on
the data and the seed, so seed s of the new row and seed s of a rival saw the same training and test interactions.
The verdicts are the claims' (``paired_verdict``: both headline metrics, paired t-test over seeds). Where several
reports hold a rival on one split, the first one named wins.

    python benchmarks/compare_reports.py benchmarks/results/mmgef_plus_parts --row "MM-GEF+ (parts searched)" \\
        --rivals-from benchmarks/results/mmgef_plus_k benchmarks/results/mmgef_plus_tiktok benchmarks/results/mmgef_plus \\
        --write benchmarks/results/mmgef_plus_parts/versus.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from mmgef.experiments.report import HEADLINE, bar_charts, code_version, paired_verdict
from mmgef.io import write_text

RIVALS = ["LightGCN", "LATTICE (LightGCN)", "LATTICE (k searched)", "FREEDOM", "GRCN", "MMGCN", "VBPR", "MM-GEF",
          "MM-GEF (k searched)"]
OURS = ["MM-GEF+", "MM-GEF+ (k searched)"]  # earlier forms of the same model: shown and paired, not rivals


def chosen_runs(report: Path) -> pd.DataFrame:
    df = pd.read_csv(report / "results.csv")
    return df[df["chosen"] & df["sweep_param"].isna()].assign(report=report.name)


def gather(reports: list[pd.DataFrame], labels: list[str], dataset: str, split: str) -> dict[str, pd.DataFrame]:
    """Each label's seed runs on (dataset, split) from the first report (``chosen_runs``) that holds them."""
    found: dict[str, pd.DataFrame] = {}
    for runs in reports:
        runs = runs[(runs.dataset == dataset) & (runs.split == split)]
        for label in labels:
            if label not in found and not (mine := runs[runs.label == label]).empty:
                found[label] = mine
    return found


def _mean_std(runs: pd.DataFrame, metric: str) -> str:
    vals = runs[f"test_{metric}"]
    return f"{vals.mean():.4f} ± {vals.std(ddof=1):.4f}"


def compare(report: Path, row: str, rival_reports: list[Path]) -> tuple[str, pd.DataFrame]:
    """The Markdown sections, one per (dataset, split) of ``row``, and every compared seed run (for the plots)."""
    ours = chosen_runs(report)
    ours = ours[ours.label == row]
    if ours.empty:
        raise SystemExit(f"{report}/results.csv has no chosen seed runs of row '{row}'. Fix: name a row of that report.")
    rival_runs = [chosen_runs(r) for r in rival_reports]  # read once, not once per split
    sections, compared = [], []
    for (dataset, split), mine in ours.groupby(["dataset", "split"], sort=False):
        others = gather(rival_runs, [lab for lab in RIVALS + OURS if lab != row], dataset, split)
        if missing := [lab for lab, runs in others.items() if set(runs.seed) != set(mine.seed)]:
            raise SystemExit(f"{dataset} ({split}): {missing} ran seeds other than {sorted(mine.seed)}. Fix: re-run with "
                             "the same seeds, or leave those reports out.")
        rivals = {lab: runs for lab, runs in others.items() if lab in RIVALS}
        strongest = max(rivals, key=lambda lab: rivals[lab][f"test_{HEADLINE[0]}"].mean())
        lines = [f"### {dataset}, {split} split ({len(mine)} seeds)", "",
                 f"{row}: recall@20 {_mean_std(mine, 'recall@20')}, ndcg@20 {_mean_std(mine, 'ndcg@20')}. Strongest rival "
                 f"on mean test recall@20: **{strongest}** — {row} vs it: **{paired_verdict(mine, rivals[strongest])[0]}**.",
                 "", f"| other row | from report | recall@20 | ndcg@20 | {row} vs it |", "|---|---|---|---|---|"]
        for lab, runs in sorted(others.items(), key=lambda kv: -kv[1][f"test_{HEADLINE[0]}"].mean()):
            verdict, numbers = paired_verdict(mine, runs)
            shown = lab if lab in RIVALS else f"{lab} (ours, earlier form)"
            lines.append(f"| {shown} | {runs.report.iloc[0]} | {_mean_std(runs, 'recall@20')} | {_mean_std(runs, 'ndcg@20')} "
                         f"| {verdict} ({numbers}) |")
        sections.append("\n".join(lines))
        compared += [runs.assign(column=f"{dataset} {split} vs rivals") for runs in (mine, *others.values())]
    return "\n\n".join(sections), pd.concat(compared).assign(sweep_param="")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("report", type=Path, help="the report folder whose row is compared")
    ap.add_argument("--row", required=True, help="its row label")
    ap.add_argument("--rivals-from", nargs="+", type=Path, required=True, help="report folders holding the rivals, first wins")
    ap.add_argument("--write", type=Path, help="also write the Markdown here, and a bar chart per split beside it")
    args = ap.parse_args()
    body, compared = compare(args.report, args.row, args.rivals_from)
    print(body)
    if args.write:
        command = ("python benchmarks/compare_reports.py " + str(args.report) + f' --row "{args.row}" --rivals-from '
                   + " ".join(map(str, args.rivals_from)) + f" --write {args.write}")
        write_text(args.write, f"# {args.row} against the rivals of earlier reports\n\nMade at commit {code_version()} with "
                   f"`{command}`. Test metrics at each run's best-validation epoch, mean ± std (sample) over seeds; each "
                   "verdict compares the two rows' test Recall@20 and NDCG@20 paired by seed (t-test); \"inside the noise\": "
                   "neither p < 0.05. The rivals' numbers are their own reports' (each report's summary.md names the "
                   "commit and command that made it).\n\n" + body + "\n")
        for png in bar_charts(compared, args.write.parent, f"{args.row} and the rivals of earlier reports"):
            print(f"wrote {png}")


if __name__ == "__main__":
    main()
