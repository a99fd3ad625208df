"""Where a model's Recall@20 comes from: test targets split by their item's number of training interactions.

A model can lose overall while winning on most items, if it trades hits on the few popular items (which
hold most of the hits) for hits on the many others. For each seed run of the chosen rows of a report
(reloaded from their saved weights; ``reproduced`` checks the overall Recall@20 is the report's), the test
targets are cut into buckets by their item's training degree — items without training interactions, then
quintiles of the rest, counted over the test pairs — and for each bucket this measures, every item ranked:

- ``R@20``: Recall@20 over that bucket's targets alone (the other items still compete for the 20 slots);
- ``top-20 share``: the share of the top-20 slots held by the bucket's items (all items of that degree
  range, not only the targets): how much room the model gives them — beside the bucket's share of the
  training pairs and of the test pairs, which differ where the held-out interactions are drawn unlike the
  training ones (a popularity shift).

    python benchmarks/bench_degree_buckets.py benchmarks/results/lattice_parts --labels "MM-GEF+ (k = 50)" ...
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from bench_cold_exposure import K, columns, find_run, labelled_seed_runs, report_runs_parser, top_items

from mmgef.eval.evaluator import Evaluator
from mmgef.experiments.report import code_version
from mmgef.io import write_text
from mmgef.runs import load_run

N_QUANTILES = 5


def degree_buckets(train_degree: np.ndarray, target_items: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(label, item ids) per bucket: untrained items, then degree ranges holding about equal shares of the
    test pairs on trained items (bucket edges from the targets' degrees, so each bucket has targets)."""
    out = [("0 (untrained)", np.flatnonzero(train_degree == 0))]
    warm = train_degree[target_items][train_degree[target_items] > 0]
    edges = np.unique(np.quantile(warm, np.linspace(0, 1, N_QUANTILES + 1)[1:-1]).round())
    lo = 1
    for hi in [*edges.astype(int), int(train_degree.max())]:
        if hi >= lo:
            out.append((f"{lo}–{hi}", np.flatnonzero((train_degree >= lo) & (train_degree <= hi))))
            lo = hi + 1
    return out


@torch.no_grad()
def measure(run_dir: Path) -> dict[str, dict[str, float]]:
    p = load_run(run_dir)
    s = p.split
    exclude = [s.train, s.valid]
    degree = np.asarray(s.train.sum(axis=0)).ravel()

    def score(users: torch.Tensor, items: slice) -> torch.Tensor:
        return p.model.scores(users, items)

    every = Evaluator(s.test, exclude, [K])
    top = top_items(every, score, run_dir)
    out = {"all": {"R@20": every.evaluate(score)[f"recall@{K}"], "pairs": float(s.test.nnz)}}
    for label, items in degree_buckets(degree, s.test.tocoo().col):
        targets = columns(s.test, items, True)
        if not targets.nnz:
            continue
        member = torch.zeros(s.train.shape[1], dtype=torch.bool)
        member[torch.as_tensor(items, dtype=torch.long)] = True
        out[label] = {"R@20": Evaluator(targets, exclude, [K]).evaluate(score)[f"recall@{K}"], "pairs": float(targets.nnz),
                      "share": float(member[top].float().mean()), "train_share": float(degree[items].sum() / degree.sum()),
                      "test_share": targets.nnz / s.test.nnz}
    return out


def plot(per: dict[tuple[str, str], list[dict[str, dict[str, float]]]], path: Path) -> None:
    """Per dataset: Recall@20 by bucket (log scale) and the buckets' shares of the top 20, one bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(d for d, _ in per))
    fig, axes = plt.subplots(len(datasets), 2, figsize=(13, 4.2 * len(datasets)), squeeze=False)
    for row, dataset in zip(axes, datasets):
        models = {label: runs for (d, label), runs in per.items() if d == dataset}
        buckets = [b for b in next(iter(models.values()))[0] if b != "all"]
        width = 0.8 / len(models)
        for i, (label, runs) in enumerate(models.items()):
            x = np.arange(len(buckets)) + (i - (len(models) - 1) / 2) * width
            for ax, key in zip(row, ("R@20", "share")):
                ax.bar(x, [statistics.mean(m[b][key] for m in runs) for b in buckets], width, label=label[:60])
        for ax, title in zip(row, ("Recall@20 over the bucket's test targets", "share of the top-20 slots")):
            ax.set_xticks(np.arange(len(buckets)), buckets, fontsize=8)
            ax.set_xlabel("training interactions of the target item")
            ax.set_title(f"{dataset}: {title}")
            ax.grid(True, axis="y", alpha=0.3)
        row[0].set_yscale("log")
        row[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    args = report_runs_parser(__doc__, "the rows to measure", Path("benchmarks/results/degree_buckets")).parse_args()
    torch.set_num_threads(1)
    rows = labelled_seed_runs(args.report, args.labels)
    per: dict[tuple[str, str], list[dict[str, dict[str, float]]]] = defaultdict(list)
    for r in rows:
        m = measure(find_run(args.runs, r))
        if abs(m["all"]["R@20"] - float(r["test_recall@20"])) > 1e-6:
            raise SystemExit(f"{r['label']} seed {r['seed']}: reloaded Recall@20 {m['all']['R@20']:.6f} is not the "
                             f"report's {float(r['test_recall@20']):.6f}. Fix: pass the --runs that made this report.")
        per[(r["dataset"], r["label"])].append(m)
        print(f"{r['dataset']} {r['label']} seed {r['seed']}: R@20 {m['all']['R@20']:.4f}", flush=True)
    cmd = "python benchmarks/bench_degree_buckets.py " + " ".join(
        [str(args.report), "--labels", *(f'"{x}"' for x in args.labels)])
    lines = ["# Test Recall@20 by the target item's training degree", "",
             f"`{cmd}` at {code_version()}; every row: mean over its {len(next(iter(per.values())))} seed runs, "
             "reloaded from their saved weights (each reproduces the report's overall Recall@20). Per bucket: "
             "R@20 over the bucket's targets alone, every item ranked / share of the top-20 slots held by the "
             "bucket's items.", ""]
    for dataset in dict.fromkeys(d for d, _ in per):
        ms = {label: v for (d, label), v in per.items() if d == dataset}
        buckets = list(next(iter(ms.values()))[0])
        first = next(iter(ms.values()))[0]
        lines += [f"## {dataset}", "",
                  "| model | " + " | ".join(f"{b} ({int(first[b]['pairs'])} pairs)" for b in buckets) + " |",
                  "|---|" + "---|" * len(buckets)]
        for label, runs in ms.items():
            cells = []
            for b in buckets:
                rec = statistics.mean(m[b]["R@20"] for m in runs)
                cells.append(f"{rec:.4f}" if b == "all" else
                             f"{rec:.4f} / {statistics.mean(m[b]['share'] for m in runs):.2f}")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("| *share of the training / test pairs* | | " + " | ".join(
            f"{first[b]['train_share']:.2f} / {first[b]['test_share']:.2f}" for b in buckets[1:]) + " |")
        lines.append("")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.report.name}.md"
    write_text(path, "\n".join(lines + [f"![Recall@20 and top-20 share by bucket]({args.report.name}.png)", ""]))
    plot(per, args.out / f"{args.report.name}.png")
    print("\n".join(lines))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
