"""Experiment reports: results.csv, summary.md (paper-style tables), claims.md, PNG bar charts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mmgef.experiments.runner import Cell, Runner
from mmgef.io import write_text

METRICS = ("recall@20", "precision@20", "ndcg@20")


def results_frame(runner: Runner, cells: list[Cell]) -> pd.DataFrame:
    rows = []
    for c in cells:
        chosen = {cfg.digest() for cfg in c.seeds}
        for stage, configs in (("grid", [cfg for _, cfg in c.grid]), ("seed", c.seeds)):
            for cfg in configs:
                if stage == "grid" and cfg.digest() in chosen:
                    continue  # reported once, as a seed run
                r = runner.results(cfg)
                rows.append({
                    "label": c.label, "dataset": c.dataset, "model": cfg.model, "seed": cfg.seed, "stage": stage,
                    "chosen": cfg.digest() in chosen, "params": json.dumps(cfg.params, sort_keys=True), "digest": cfg.digest(),
                    "best_epoch": r["best_epoch"], "seconds_per_epoch": r["seconds_per_epoch"],
                    "train_seconds": r.get("train_seconds", 0.0),
                    **{f"valid_{k}": v for k, v in r["valid"].items()}, **{f"test_{k}": v for k, v in r["test"].items()},
                })
    return pd.DataFrame(rows)


def _paired_p(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import ttest_rel

    if len(a) < 2 or np.allclose(a - b, (a - b)[0]):
        return float("nan")
    return float(ttest_rel(a, b).pvalue)


def summary_tables(df: pd.DataFrame, cells: list[Cell], datasets: list[str]) -> str:
    seeds = df[df["chosen"]]
    labels = list(dict.fromkeys(c.label for c in cells if c.dataset == datasets[0]))
    by_pos = {d: [c for c in cells if c.dataset == d] for d in datasets}
    lines = ["| model | " + " | ".join(f"{d} {m}" for d in datasets for m in METRICS) + " | p vs best baseline |",
             "|---" * (2 + len(datasets) * len(METRICS)) + "|"]
    best = {(d, m): seeds[seeds.dataset == d].groupby("label")[f"test_{m}"].mean().max() for d in datasets for m in METRICS}
    pvals: dict[tuple[str, str], float] = {}
    for d in datasets:
        sub = seeds[seeds.dataset == d]
        base_labels = [c.label for c in by_pos[d] if c.row.baseline]
        if base_labels:  # best baseline chosen on VALIDATION, never on test
            best_base = max(base_labels, key=lambda lab: sub[sub.label == lab]["valid_recall@20"].mean())
            ref = sub[sub.label == best_base].sort_values("seed")["test_recall@20"].to_numpy()
            for c in by_pos[d]:
                vals = sub[sub.label == c.label].sort_values("seed")["test_recall@20"].to_numpy()
                if len(vals) == len(ref) and c.label != best_base:
                    pvals[(c.label, d)] = _paired_p(vals, ref)
    for pos, label in enumerate(labels):
        cells_out = [label]
        ps = []
        for d in datasets:
            lab_d = by_pos[d][pos].label
            sub = seeds[(seeds.dataset == d) & (seeds.label == lab_d)]
            for m in METRICS:
                vals = sub[f"test_{m}"].to_numpy()
                cell = f"{vals.mean():.4f} ± {vals.std(ddof=1) if len(vals) > 1 else 0:.4f}" if len(vals) else "–"
                cells_out.append(f"**{cell}**" if len(vals) and np.isclose(vals.mean(), best[(d, m)]) else cell)
            if (lab_d, d) in pvals:
                ps.append(f"{d}: {pvals[(lab_d, d)]:.3g}")
        lines.append("| " + " | ".join(cells_out) + " | " + ("; ".join(ps) or "–") + " |")
    return "\n".join(lines)


def claims_table(df: pd.DataFrame, cells: list[Cell], spec_claims: list, datasets: list[str]) -> str:
    seeds = df[df["chosen"]]
    lines = ["| claim | " + " | ".join(datasets) + " |", "|---" * (1 + len(datasets)) + "|"]
    for claim in spec_claims:
        out = [claim.text]
        for d in datasets:
            names = {c.row.label: c.label for c in cells if c.dataset == d}
            better, worse = names.get(claim.better), names.get(claim.worse)
            sub = seeds[seeds.dataset == d]
            if better is None or worse is None or sub[sub.label == better].empty or sub[sub.label == worse].empty:
                out.append("not run")
                continue
            wins = []
            for m in ("recall@20", "ndcg@20"):
                a, b = sub[sub.label == better][f"test_{m}"].mean(), sub[sub.label == worse][f"test_{m}"].mean()
                wins.append((a > b, f"{m} {a:.4f} vs {b:.4f}"))
            verdict = "holds" if all(w for w, _ in wins) else "does not hold" if not any(w for w, _ in wins) else "mixed"
            out.append(f"{verdict} ({'; '.join(t for _, t in wins)})")
        lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines)


def bar_charts(df: pd.DataFrame, out_dir: Path, title: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    seeds = df[df["chosen"]]
    for d, sub in seeds.groupby("dataset", sort=False):
        agg = sub.groupby("label", sort=False)[[f"test_{m}" for m in METRICS]].agg(["mean", "std"])
        fig, axes = plt.subplots(1, len(METRICS), figsize=(5 * len(METRICS), 0.45 * len(agg) + 1.5), sharey=True)
        for ax, m in zip(axes, METRICS):
            means, stds = agg[(f"test_{m}", "mean")], agg[(f"test_{m}", "std")].fillna(0)
            colors = ["#c0392b" if "MM-GEF" in lab else "#2980b9" if "LATTICE" in lab else "#7f8c8d" for lab in agg.index]
            ax.barh(range(len(agg)), means, xerr=stds, color=colors, capsize=3)
            ax.set_yticks(range(len(agg)), agg.index)
            ax.invert_yaxis()
            ax.set_xlabel(f"test {m} (mean ± std over seeds)")
            ax.grid(axis="x", alpha=0.3)
        fig.suptitle(f"{title} — {d}")
        fig.tight_layout()
        path = out_dir / f"{d}_test_metrics.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def write_report(runner: Runner, cells: list[Cell], datasets: list[str], wall_seconds: float) -> Path:
    out = runner.exp_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    df = results_frame(runner, cells)
    df.to_csv(out / "results.csv", index=False)
    spec = runner.spec
    chosen = "\n".join(f"- {c.label} on {c.dataset}: {json.dumps(c.chosen) if c.chosen else '(no grid)'}"
                       for c in cells if c.row.grid)
    header = (f"# {spec.name}\n\n{spec.description}\n\n"
              f"Test metrics at the best-validation epoch, mean ± std (sample) over {len(cells[0].seeds)} seeds; bold = best mean. "
              "Grids are searched with seed 0 on validation Recall@20 only. p = paired t-test over seeds of test Recall@20 "
              "against the best baseline (the baseline best on validation).\n"
              f"Datasets: {', '.join(datasets)} ({spec.split} split). Common settings: {json.dumps(spec.common)}. "
              f"Training time summed over the {len(df)} runs: {df['train_seconds'].sum():.0f} s (evaluation excluded; "
              f"runs execute in parallel); wall time of this invocation (finished runs are reused): {wall_seconds:.0f} s.\n")
    if len(datasets) > 1 and any(spec.modalities.get(d) for d in datasets):
        header += ("Rows are named with the first dataset's modalities; the same row on the other datasets uses theirs ("
                   + "; ".join(f"{d}: {' / '.join(spec.modalities.get(d, []))}" for d in datasets) + ").\n")
    header += "\n"
    body = summary_tables(df, cells, datasets)
    if chosen:
        body += "\n\nSettings chosen on validation:\n" + chosen
    write_text(out / "summary.md", header + body + "\n")
    if spec.claims:
        write_text(out / "claims.md", f"# Claims tested by {spec.name}\n\nTest Recall@20 and NDCG@20, mean over seeds.\n\n"
                   + claims_table(df, cells, spec.claims, datasets) + "\n")
    bar_charts(df, out, spec.name)
    return out
