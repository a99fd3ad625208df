"""Does a popularity correction chosen on validation change which model wins? Every model gets the same one.

A held-out set can lean to rarer (or more popular) items than the training pairs (``mmgef data stats``:
``item_training_degree``; TikTok's does), and models differ in how much of their top 20 they give popular
items (``bench_degree_buckets.py``). This re-scores each saved run, without retraining, as

    s'(u, i) = s(u, i) − β · σ_u · z_i,

z_i the item's standardised log(1 + training degree), σ_u the spread of user u's scores over all items (so one
β means the same for every model's score scale), β from a grid. β is chosen per row on the validation
Recall@20 of its chosen grid run (seed 0), as the row's other settings were, and then applied to every seed's
test. β = 0 is the model as reported (checked: it reproduces the report's test Recall@20). Every row gets the
same grid, so the comparison keeps equal budgets.

    python benchmarks/bench_popularity_adjust.py benchmarks/results/lattice_parts --labels "MM-GEF+ (k = 50)" ...
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from bench_cold_exposure import K, find_run, labelled_seed_runs, report_runs_parser
from scipy import stats as scipy_stats

from mmgef.eval.evaluator import Evaluator
from mmgef.experiments.report import code_version
from mmgef.io import write_text
from mmgef.runs import load_run

BETAS = (-0.6, -0.4, -0.2, -0.1, 0.0, 0.1, 0.2, 0.4)


@torch.no_grad()
def recall_by_beta(run_dir: Path, betas: tuple[float, ...] = BETAS) -> dict[str, dict[float, float]]:
    """Validation and test Recall@20 of one saved run at every β."""
    p = load_run(run_dir)
    s = p.split
    log_degree = torch.from_numpy(np.log1p(np.diff(s.train.tocsc().indptr)).astype(np.float32))
    z = (log_degree - log_degree.mean()) / log_degree.std().clamp_min(1e-12)
    n_users, n_items = s.train.shape
    spread = torch.cat([p.model.scores(torch.arange(a, min(a + 1024, n_users)), slice(0, n_items)).float().std(dim=1)
                        for a in range(0, n_users, 1024)])

    def adjusted(beta: float):
        def score(users: torch.Tensor, items: slice) -> torch.Tensor:
            return p.model.scores(users, items) - beta * spread[users, None] * z[items][None, :]
        return score

    out: dict[str, dict[float, float]] = {"valid": {}, "test": {}}
    evaluators = {"valid": Evaluator(s.valid, [s.train], [K]), "test": Evaluator(s.test, [s.train, s.valid], [K])}
    for beta in betas:
        for part, ev in evaluators.items():
            out[part][beta] = ev.evaluate(adjusted(beta))[f"recall@{K}"]
    return out


def main() -> None:
    args = report_runs_parser(__doc__, "the rows to re-score", Path("benchmarks/results/popularity_adjust")).parse_args()
    torch.set_num_threads(1)
    rows = labelled_seed_runs(args.report, args.labels)
    per: dict[tuple[str, str], dict[int, dict[str, dict[float, float]]]] = defaultdict(dict)
    for r in rows:
        got = recall_by_beta(find_run(args.runs, r))
        if abs(got["test"][0.0] - float(r["test_recall@20"])) > 1e-6:
            raise SystemExit(f"{r['label']} seed {r['seed']}: β = 0 gives test Recall@20 {got['test'][0.0]:.6f}, not the "
                             f"report's {float(r['test_recall@20']):.6f}. Fix: pass the --runs that made this report.")
        per[(r["dataset"], r["label"])][int(r["seed"])] = got
        print(f"{r['dataset']} {r['label']} seed {r['seed']}: " + ", ".join(
            f"β {b:+.1f}: {got['valid'][b]:.4f} / {got['test'][b]:.4f}" for b in BETAS), flush=True)
    cmd = "python benchmarks/bench_popularity_adjust.py " + " ".join([str(args.report), "--labels", *(f'"{x}"' for x in args.labels)])
    lines = ["# A popularity correction chosen on validation, the same grid for every model", "",
             f"`{cmd}` at {code_version()}. s'(u, i) = s(u, i) − β·σ_u·z_i (z: standardised log(1 + training degree), "
             f"σ_u: the spread of u's scores); β ∈ {{{', '.join(f'{b:+.1f}' for b in BETAS)}}} chosen on seed 0's "
             "validation Recall@20, then every seed's test. p: paired t-test over seeds, chosen β against β = 0.", ""]
    for dataset in dict.fromkeys(d for d, _ in per):
        lines += [f"## {dataset}", "",
                  "| model | chosen β | validation R@20 at β = 0 → chosen | test R@20 at β = 0 | test R@20 at chosen β | p |",
                  "|---|---|---|---|---|---|"]
        for (d, label), seeds in per.items():
            if d != dataset:
                continue
            first = seeds[min(seeds)]
            beta = max(BETAS, key=lambda b: (first["valid"][b], -abs(b)))
            plain = [g["test"][0.0] for g in seeds.values()]
            tuned = [g["test"][beta] for g in seeds.values()]
            p = scipy_stats.ttest_rel(tuned, plain).pvalue if beta != 0.0 and len(seeds) > 1 else float("nan")
            lines.append(f"| {label} | {beta:+.1f} | {first['valid'][0.0]:.4f} → {first['valid'][beta]:.4f} | "
                         f"{statistics.mean(plain):.4f} ± {statistics.stdev(plain) if len(plain) > 1 else 0:.4f} | "
                         f"{statistics.mean(tuned):.4f} ± {statistics.stdev(tuned) if len(tuned) > 1 else 0:.4f} | {p:.3g} |")
        lines.append("")
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / f"{args.report.name}.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
