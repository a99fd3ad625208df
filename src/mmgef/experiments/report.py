"""Experiment reports: results.csv, summary.md (paper-style tables), claims.md, PNG plots.

Tables have one column group per dataset (and per extra split, e.g. "lastfm2k (given)" next to the
cold-start "lastfm2k"). Plots: bar charts with error bars, cold vs warm bars, sensitivity curves.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mmgef.experiments.runner import Cell, Runner
from mmgef.experiments.spec import ExperimentSpec, placeholders
from mmgef.io import write_text

METRICS = ("recall@20", "precision@20", "ndcg@20")
HEADLINE = ("recall@20", "ndcg@20")  # claims, published numbers and sensitivity curves
TIE = 5e-5  # means closer than this on every headline metric are "equal", not a direction (below the 4 decimals shown)
NOISE_P = 0.05  # a claim whose paired p is at or above this for every headline metric is marked "inside the noise"
MIX = "mix "  # results.csv column prefix of the learned mixing weights


def code_version() -> str:
    """The checked-out commit in backticks, marked when the tree has uncommitted changes (reports and benchmarks
    cite it). Changes under ``benchmarks/results`` do not count: a benchmark writes its tables there before it cites
    the commit that made them."""
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown (not a git checkout)"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ":(top,exclude)benchmarks/results")
    return f"`{commit}`" + (" (with uncommitted changes)" if changed else "")


def provenance() -> str:
    """'Made by commit … with: mmgef …' — the code version and the command."""
    import sys

    return f"Made by commit {code_version()} with: `{' '.join(['mmgef', *sys.argv[1:]])}`"


def results_frame(runner: Runner, cells: list[Cell]) -> pd.DataFrame:
    rows = []
    shared_grid: set[str] = set()  # a sweep_search=once row's search, listed under its first swept value only
    for c in cells:
        chosen = {cfg.digest() for cfg in c.seeds}
        for stage, configs in (("grid", [cfg for _, cfg in c.grid]), ("seed", c.seeds)):
            for cfg in configs:
                if stage == "grid" and cfg.digest() in chosen:
                    continue  # reported once, as a seed run
                if stage == "grid" and c.fixed:
                    if cfg.digest() in shared_grid:
                        continue
                    shared_grid.add(cfg.digest())
                r = runner.results(cfg)
                rows.append({
                    "label": c.label, "dataset": c.dataset, "split": c.split, "column": c.column, "model": cfg.model,
                    "sweep_param": c.sweep[0] if c.sweep else "", "sweep_value": c.sweep[1] if c.sweep else "", "seed": cfg.seed, "stage": stage,
                    "chosen": cfg.digest() in chosen, "params": json.dumps(cfg.params_dict(), sort_keys=True), "digest": cfg.digest(),
                    "best_epoch": r["best_epoch"], "seconds_per_epoch": r["seconds_per_epoch"],
                    "train_seconds": r.get("train_seconds", 0.0),
                    "stalled_seconds": stalled_seconds(runner.run_dir(cfg) / "history.jsonl"),
                    **{f"valid_{k}": v for k, v in r["valid"].items()}, **{f"test_{k}": v for k, v in r["test"].items()},
                    **{f"{MIX}{k}": v for k, v in r.get("mixing_weights", {}).items()},
                })
    return pd.DataFrame(rows)


STALL_FACTOR, STALL_MIN_SECONDS = 20, 60  # an epoch this many times its run's median, and a minute longer, was paused


def stalled_seconds(history: Path) -> float:
    """Seconds of a run's training time that its machine spent not running it: the excess over the run's median
    epoch of every epoch above ``STALL_FACTOR`` × that median and ``STALL_MIN_SECONDS`` longer. Epoch times are wall
    times, so a run paused (SIGSTOP, a suspended laptop) mid-epoch carries the pause in its total; the report keeps
    the measured totals and says how much of them this is. 0 where the history is missing or too short to tell."""
    try:
        seconds = [json.loads(line)["train_seconds"] for line in history.read_text().splitlines() if line.strip()]
    except (OSError, ValueError, KeyError):
        return 0.0
    if len(seconds) < 3:
        return 0.0
    median = float(np.median(seconds))
    return float(sum(t - median for t in seconds if t > STALL_FACTOR * median and t - median > STALL_MIN_SECONDS))


def _paired_p(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import ttest_rel

    if len(a) < 2 or np.allclose(a - b, (a - b)[0]):
        return float("nan")
    return float(ttest_rel(a, b).pvalue)


def summary_tables(df: pd.DataFrame, cells: list[Cell], columns: list[str], metrics: tuple[str, ...] = METRICS,
                   p_column: bool = True) -> str:
    """Rows = models, columns = datasets × ``metrics`` (+ the paired test of test Recall@20 if ``p_column``)."""
    seeds = df[df["chosen"]]
    # rows in spec order across every column (a row may be run on some datasets only: its other cells are "–")
    keys = list(dict.fromkeys((c.row.label, c.sweep) for c in cells if c.column in columns))
    label_of = {(c.column, c.row.label, c.sweep): c.label for c in cells}
    shown = {k: next(c.label for c in cells if (c.row.label, c.sweep) == k) for k in keys}
    lines = ["| model | " + " | ".join(f"{d} {m}" for d in columns for m in metrics) + (" | p vs best baseline |" if p_column else " |"),
             "|---" * (1 + p_column + len(columns) * len(metrics)) + "|"]
    best = {(d, m): seeds[seeds.column == d].groupby("label")[f"test_{m}"].mean().max() for d in columns for m in metrics}
    pvals: dict[tuple[str, str], float] = {}
    for d in columns:
        sub = seeds[seeds.column == d]
        base_labels = [c.label for c in cells if c.column == d and c.row.baseline]
        if base_labels:  # best baseline chosen on VALIDATION, never on test
            best_base = max(base_labels, key=lambda lab: sub[sub.label == lab]["valid_recall@20"].mean())
            ref = sub[sub.label == best_base].sort_values("seed")["test_recall@20"].to_numpy()
            for c in (c for c in cells if c.column == d):
                vals = sub[sub.label == c.label].sort_values("seed")["test_recall@20"].to_numpy()
                if len(vals) == len(ref) > 1 and c.label != best_base:
                    pvals[(c.label, d)] = _paired_p(vals, ref)
    for key in keys:
        cells_out = [shown[key]]
        ps = []
        for d in columns:
            lab_d = label_of.get((d, *key), "")
            sub = seeds[(seeds.column == d) & (seeds.label == lab_d)]
            for m in metrics:
                vals = sub[f"test_{m}"].to_numpy()
                cell = (f"{vals.mean():.4f}" + (f" ± {vals.std(ddof=1):.4f}" if len(vals) > 1 else "")) if len(vals) else "–"
                cells_out.append(f"**{cell}**" if len(vals) and np.isclose(vals.mean(), best[(d, m)]) else cell)
            if (lab_d, d) in pvals:
                ps.append(f"{d}: {pvals[(lab_d, d)]:.3g}")
        lines.append("| " + " | ".join(cells_out + (["; ".join(ps) or "–"] if p_column else [])) + " |")
    return "\n".join(lines)


def paired_verdict(better: pd.DataFrame, worse: pd.DataFrame) -> tuple[str, str]:
    """Whether ``better``'s seed runs beat ``worse``'s on both headline test metrics, paired by seed: the verdict
    ("holds", "does not hold", "mixed", with ", inside the noise" where no paired p is below NOISE_P) and its numbers."""
    wins, gaps = [], []
    for m in HEADLINE:
        a = better.sort_values("seed")[f"test_{m}"].to_numpy()
        b = worse.sort_values("seed")[f"test_{m}"].to_numpy()
        p = _paired_p(a, b) if len(a) == len(b) else float("nan")
        wins.append((a.mean() > b.mean(), f"{m} {a.mean():.4f} vs {b.mean():.4f}" + ("" if np.isnan(p) else f", p = {p:.2g}"), p))
        gaps.append(abs(a.mean() - b.mean()))
    numbers = "; ".join(t for _, t, _ in wins)
    if max(gaps) < TIE:
        return "equal, means within 0.00005", numbers  # e.g. one model chosen by two searches
    verdict = "holds" if all(w for w, _, _ in wins) else "does not hold" if not any(w for w, _, _ in wins) else "mixed"
    if verdict != "mixed" and not any(p < NOISE_P for _, _, p in wins):  # one direction, but the seeds cannot tell them apart
        verdict += ", inside the noise"
    return verdict, numbers


def claims_table(df: pd.DataFrame, cells: list[Cell], spec_claims: list, columns: list[str]) -> str:
    seeds = df[df["chosen"]]
    lines = ["| claim | " + " | ".join(columns) + " |", "|---" * (1 + len(columns)) + "|"]
    for claim in spec_claims:
        out = [claim.text]
        for d in columns:
            names = {c.label: c.label for c in cells if c.column == d}
            names.update({c.row.label: c.label for c in cells if c.column == d and not c.sweep})
            sub = seeds[seeds.column == d]
            better = names.get(claim.better)
            worse = _strongest(sub, [names.get(w) for w in ([claim.worse] if isinstance(claim.worse, str) else claim.worse)])
            if better is None or worse is None or sub[sub.label == better].empty:
                out.append("not run")
                continue
            verdict, numbers = paired_verdict(sub[sub.label == better], sub[sub.label == worse])
            against = "" if isinstance(claim.worse, str) else f"vs {worse}: "
            out.append(f"{verdict} ({against}{numbers})")
        lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines)


def write_claims(path: Path, spec: ExperimentSpec, df: pd.DataFrame, cells: list[Cell], datasets: list[str],
                 note: str = "") -> None:
    """claims.md: every claim of the spec with its verdict on each column. ``df`` is the report's results.csv, so the
    verdicts can be re-made from a report alone (``benchmarks/remake_claims.py``); ``note`` says so under the title."""
    ran = set(df["column"])
    columns = [c for c in dict.fromkeys(c.column for c in cells) if c in ran]
    write_text(path, f"# Claims tested by {spec.name}\n\n" + (f"{note}\n\n" if note else "")
               + "Test Recall@20 and NDCG@20, mean over seeds. A verdict is the direction of both means; \"inside the "
               f"noise\" marks one where neither metric's paired t-test over seeds gives p < {NOISE_P}."
               + _modality_names(spec, datasets) + "\n\n" + claims_table(df, cells, spec.claims, columns) + "\n")


def _modality_names(spec: ExperimentSpec, datasets: list[str]) -> str:
    """What a claim's modality letters stand for on each dataset (a claim's text is one for every dataset)."""
    names = {d: placeholders(spec, d) for d in datasets}
    letters = sorted({k for n in names.values() for k in n if any(f"${k}" in row.label for row in spec.rows)})
    if not letters:
        return ""
    return (f" Modalities {' / '.join(letters)}: "
            + "; ".join(f"{d}: {' / '.join(n.get(k, '–') for k in letters)}" for d, n in names.items() if n) + ".")


def _strongest(runs: pd.DataFrame, labels: list[str | None]) -> str | None:
    """Of the labels that ran, the one with the highest mean test Recall@20."""
    means = {lab: runs[runs.label == lab][f"test_{HEADLINE[0]}"].mean() for lab in labels
             if lab is not None and not runs[runs.label == lab].empty}
    return max(means, key=means.__getitem__) if means else None


def _table_runs(df: pd.DataFrame) -> pd.DataFrame:
    """The chosen seed runs of ordinary rows (sweep lines go to the sensitivity curves)."""
    return df[df["chosen"] & (df["sweep_param"] == "")]


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def bar_charts(df: pd.DataFrame, out_dir: Path, title: str) -> list[Path]:
    plt = _pyplot()
    paths = []
    seeds = _table_runs(df)
    for d, sub in seeds.groupby("column", sort=False):
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
        paths.append(_save(fig, out_dir / f"{_slug(d)}_test_metrics.png"))
    return paths


def published_side_by_side(df: pd.DataFrame, cells: list[Cell], published_csv: str, tables: list[str],
                           columns: list[str]) -> str:
    """Our test Recall@20 / NDCG@20 next to the papers' numbers for the rows both have: a row matches the CSV's
    label named by its ``published_as``, else its own label without a trailing † (a row not in the original
    table — the rival's own paper may still report it). ``tables`` ('<paper> <table>') limits the CSV."""
    pub = pd.read_csv(published_csv)
    pub = pub[pub["metric"].isin(HEADLINE)]
    if tables:
        pub = pub[(pub["paper"] + " " + pub["table"]).isin(tables)]
    seeds = _table_runs(df)
    theirs_label = {c.label: c.row.published_as or c.label.rstrip("†") for c in cells if c.column == columns[0]}
    labels = [lab for lab in dict.fromkeys(seeds["label"]) if theirs_label.get(lab) in set(pub["label"])]
    if not labels:
        return ""
    theirs = pub.assign(column=pub["paper"] + " " + pub["table"] + ": " + pub["dataset"]).pivot_table(
        index="label", columns=["column", "metric"], values="value", aggfunc="first")
    pub_cols = list(theirs.columns)
    head = ([f"ours: {c} {m}" for c in columns for m in HEADLINE]
            + [f"published ({d}) {m}" for d, m in pub_cols])
    lines = ["| model | " + " | ".join(head) + " |", "|---" * (1 + len(head)) + "|"]
    for lab in labels:
        ours = [seeds[(seeds.column == c) & (seeds.label == lab)][f"test_{m}"].mean() for c in columns for m in HEADLINE]
        pubs = [theirs.loc[theirs_label[lab], col] for col in pub_cols]
        name = lab if theirs_label[lab] == lab.rstrip("†") else f"{lab} (published: {theirs_label[lab]})"
        lines.append("| " + name + " | " + " | ".join("–" if pd.isna(v) else f"{v:.4f}" for v in ours + pubs) + " |")
    sources = "; ".join(sorted(set(pub["paper"] + " " + pub["table"])))
    return ("\n\n## Published numbers beside ours\n\nThe published columns are the papers' own numbers (" + sources + "; "
            "transcribed with their source in configs/published/published.csv), measured on OTHER DATA — Amazon or "
            "MovieLens with CLIP or the papers' own features and splits — not on the datasets above: compare the "
            "order of the models, not the values.\n\n" + "\n".join(lines))


def search_cost(df: pd.DataFrame, cells: list[Cell]) -> str:
    """What tuning cost per row: grid points tried on validation and the training seconds they took."""
    lines = ["| model | dataset | grid points | grid training s | seed runs training s | chosen |", "|---|---|---|---|---|---|"]
    for c in cells:
        runs = df[(df.label == c.label) & (df.column == c.column)]
        # a once-searched value's seed 0 is its own run, and so is every seed of a row that takes its settings
        searched_with_seed_0 = runs.chosen & (runs.seed == 0) & (not c.fixed) & (c.settings_source is None)
        grid_s = runs[(runs.stage == "grid") | searched_with_seed_0]["train_seconds"].sum()
        seed_s = runs[runs.chosen & ~searched_with_seed_0]["train_seconds"].sum()
        chosen = json.dumps(c.chosen) if c.chosen else "(no search)"
        if c.settings_source:
            chosen += f" (taken from {c.settings_source.label})"
        lines.append(f"| {c.label} | {c.column} | {len(c.grid)} | {grid_s:.0f} | {seed_s:.0f} | {chosen} |")
    total = df["train_seconds"].sum()
    stalled = df[df["stalled_seconds"] > 0] if "stalled_seconds" in df else df.iloc[:0]
    paused = (f" Of that, {stalled['stalled_seconds'].sum():.0f} s are epochs of {len(stalled)} runs that took more than "
              f"{STALL_FACTOR}× their run's median epoch (the machine paused them; wall times are kept as measured)."
              if len(stalled) else "")
    return (f"\n\n## Hyper-parameter search and its cost\n\nEvery grid point is trained once (seed 0) and chosen on "
            f"validation {HEADLINE[0]}; the chosen point is then trained with every seed (its seed-0 run is reused). A "
            f"sweep searched once lists its search under its first value; every value's seeds are its own runs. A row "
            f"that takes another row's chosen settings (as the papers' ablations do) searches nothing of its own. "
            f"Training seconds exclude evaluation; total over all runs: {total:.0f} s.{paused}\n\n" + "\n".join(lines))


def mixing_weights_table(df: pd.DataFrame, cells: list[Cell]) -> str:
    """Each row's learned mixing weights (``Recommender.mixing_weights``) at its chosen settings, mean ± std over
    the seeds whose results recorded them (runs older than the record have none), so a reader sees which graph or
    modality a model leaned on for each dataset."""
    names = [c for c in df.columns if c.startswith(MIX)]
    lines = []
    for c in cells:
        runs = df[df.chosen & (df.label == c.label) & (df.column == c.column)]
        got = runs[runs[names].notna().any(axis=1)] if names else runs.iloc[:0]
        if got.empty:
            continue
        parts = [f"{n[len(MIX):]} {got[n].mean():.3f}" + (f" ± {got[n].std(ddof=1):.3f}" if len(got) > 1 else "")
                 for n in names if got[n].notna().any()]
        lines.append(f"| {c.label} | {c.column} | {len(got)} of {len(runs)} | {'; '.join(parts)} |")
    if not lines:
        return ""
    return ("\n\n## Learned mixing weights\n\nAt each row's chosen settings, of the best-validation weights, mean ± std "
            "over seeds (`mmgef inspect RUN_DIR` prints one run's): the attention over the item graphs that make "
            "E^u (per-item attention: its mean over items), softmax modality weights, gates (1 = ungated).\n\n"
            "| model | dataset | seeds | weights |\n|---|---|---|---|\n" + "\n".join(lines))


def _slug(column: str) -> str:
    return column.replace(" (", "_").replace(")", "").replace(" ", "_")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def cold_vs_warm(df: pd.DataFrame, out_dir: Path, main_split: str, warm_split: str) -> list[Path]:
    """Grouped bars per dataset: each model's test Recall@20 on the cold split next to the warm one."""
    plt = _pyplot()
    paths = []
    seeds = _table_runs(df)
    for d, sub in seeds.groupby("dataset", sort=False):
        agg = sub.groupby(["label", "split"], sort=False)["test_recall@20"].agg(["mean", "std"]).fillna(0)
        labels = list(dict.fromkeys(sub[sub.split == main_split]["label"]))
        fig, ax = plt.subplots(figsize=(8, 0.55 * len(labels) + 1.5))
        for i, (split, color) in enumerate(((warm_split, "#95a5a6"), (main_split, "#2c3e50"))):
            ys = [j + (0.2 if i else -0.2) for j in range(len(labels))]
            stats = [agg.loc[(lab, split)] if (lab, split) in agg.index else pd.Series({"mean": 0.0, "std": 0.0}) for lab in labels]
            ax.barh(ys, [s["mean"] for s in stats], 0.38, xerr=[s["std"] for s in stats], color=color, capsize=3,
                    label=f"{split} split")
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()
        ax.set_xlabel("test recall@20 (mean ± std over seeds)")
        ax.legend(loc="lower right")
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(f"{d}: cold-start items ({main_split}) vs all items ({warm_split})")
        paths.append(_save(fig, out_dir / f"{d}_cold_vs_warm.png"))
    return paths


def sensitivity_curves(df: pd.DataFrame, cells: list[Cell], out_dir: Path) -> list[Path]:
    """One figure per swept parameter: a panel per dataset and metric (own y-scale), a line per row."""
    plt = _pyplot()
    seeds = df[df["chosen"] & (df["sweep_param"] != "")]
    family = {c.label: c.label.rsplit(" ", 1)[0] for c in cells if c.sweep}
    metrics = HEADLINE
    paths = []
    for param, sub in seeds.groupby("sweep_param", sort=False):
        columns = list(dict.fromkeys(sub["column"]))
        fig, axes = plt.subplots(len(metrics), len(columns), figsize=(5 * len(columns), 3.2 * len(metrics)), squeeze=False)
        for j, column in enumerate(columns):
            part = sub[sub.column == column]
            for fam, rows in part.assign(family=part["label"].map(family)).groupby("family", sort=False):
                agg = rows.groupby("sweep_value")[[f"test_{m}" for m in metrics]].agg(["mean", "std"]).sort_index()
                xs = [float(x) for x in agg.index]
                for i, m in enumerate(metrics):
                    axes[i, j].errorbar(xs, agg[(f"test_{m}", "mean")], yerr=agg[(f"test_{m}", "std")].fillna(0),
                                        marker="o", capsize=3, label=fam)
            for i, m in enumerate(metrics):
                axes[i, j].set_title(f"{column}: test {m}")
                axes[i, j].set_xlabel(param)
                axes[i, j].grid(alpha=0.3)
            axes[0, j].legend(fontsize=8)
        n_seeds = int(sub.groupby("label")["seed"].nunique().max())
        fig.suptitle(f"Sensitivity to {param} (mean ± std over {n_seeds} seed{'s' if n_seeds > 1 else ''})")
        paths.append(_save(fig, out_dir / f"sensitivity_{param}.png"))
    return paths


def write_report(runner: Runner, cells: list[Cell], datasets: list[str], wall_seconds: float,
                 made_by: str = "") -> Path:
    """``made_by``: the commit and command that made the report (``provenance()``, printed under its title)."""
    out = runner.exp_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    df = results_frame(runner, cells)
    df.to_csv(out / "results.csv", index=False)
    spec = runner.spec
    header = (f"# {spec.name}\n\n" + (f"{made_by}\n\n" if made_by else "") + f"{spec.description}\n\n"
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
    columns = list(dict.fromkeys(c.column for c in cells))
    body = summary_tables(df, cells, columns)
    for k in spec.report_k:
        body += f"\n\nRecall and NDCG @{k}:\n\n" + summary_tables(df, cells, columns, (f"recall@{k}", f"ndcg@{k}"), p_column=False)
    if any(len(c.grid) > 1 for c in cells):
        body += search_cost(df, cells)
    body += mixing_weights_table(df, cells)
    if spec.published:
        body += published_side_by_side(df, cells, spec.published, spec.published_tables, columns)
    write_text(out / "summary.md", header + body + "\n")
    if spec.claims:
        write_claims(out / "claims.md", spec, df, cells, datasets)
    bar_charts(df, out, spec.name)
    if spec.warm_split:
        cold_vs_warm(df, out, spec.split, spec.warm_split)
    if any(c.sweep for c in cells):
        sensitivity_curves(df, cells, out)
    return out


def plan_table(rows: list[dict], workers: int) -> str:
    """``Runner.preview`` as a Markdown table with totals and a wall-time estimate for ``workers`` processes."""
    lines = ["| row | dataset | grid finished / all | seed runs to do | mean s per finished run |", "|---|---|---|---|---|"]
    todo, known_s, unknown = 0, 0.0, 0
    for r in rows:
        grid_todo = r["grid"] - (r["grid_done"] or 0)
        runs_todo = grid_todo + r["seeds_todo"]
        todo += runs_todo
        if r["mean_train_seconds"] is None:
            unknown += runs_todo
        else:
            known_s += runs_todo * r["mean_train_seconds"]
        grid = "–" if not r["grid"] else f"{'?' if r['grid_done'] is None else r['grid_done']} / {r['grid']}"
        mean = "–" if r["mean_train_seconds"] is None else f"{r['mean_train_seconds']:.0f}"
        lines.append(f"| {r['label']} | {r['dataset']} | {grid} | {'' if r['exact'] else '≤ '}{r['seeds_todo']} | {mean} |")
    lines += ["", f"{todo} runs to do at most; the ones with a time estimate need about {known_s:.0f} s of training, "
                  f"{known_s / max(1, workers):.0f} s of wall time at {workers} workers"
              + (f" ({unknown} more runs with none: no finished run of their row yet)." if unknown else ".")]
    return "\n".join(lines)
