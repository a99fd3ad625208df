"""How much of a gap between two models is the sampling noise of the evaluated users?

Runs of model A and model B (pairs of the same seed, e.g. from one ``mmgef reproduce`` folder) are re-scored user
by user on validation and test (``Evaluator.per_user``; their means are the runs' results.json). For each split the
table gives both means over the seeds, the standard error of one model's mean over users (std / √users: what a
single number carries from the choice of users alone), and the mean difference with a paired bootstrap 95%
interval over users of the seed-averaged per-user difference (seeds average training noise away; the users stay the
ones the dataset happens to hold). Where each seed evaluates other users or targets (a split drawn per seed: random,
cold), each seed's users are resampled on their own and the seeds' mean differences averaged. A gap whose interval
covers 0 is not one the data can show.

    python benchmarks/paired_users.py --a RUN_A0 RUN_A1 ... --b RUN_B0 RUN_B1 ... --name lattice_parts \\
        --label-a "MM-GEF+" --label-b LATTICE

Writes ``benchmarks/results/<name>/paired_users.{md,csv}`` (a table per call is appended to the Markdown).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from mmgef.experiments.report import code_version
from mmgef.report import markdown_table
from mmgef.runs import load_run
from mmgef.training.trainer import make_evaluators

RESULTS = Path(__file__).resolve().parent / "results"
TITLE = ("# User-level paired tests\n\nEach table: two models' seed runs re-scored user by user on validation and test "
         "(the means are their results.json); the interval is a bootstrap over users of the seed-averaged difference "
         "(users resampled seed by seed where each seed has its own split). It is the noise of the choice of users given "
         "these trainings, not the training noise across seeds, which the reports' paired t-test over seeds covers.\n")


def per_user(run_dir: Path, metrics: list[str]) -> dict[str, tuple[str, dict[str, np.ndarray]]]:
    """{split: (digest of the evaluated users and their target items, {metric: the users' values})} of a finished
    run, checked against its results.json."""
    p = load_run(run_dir)
    saved = json.loads((run_dir / "results.json").read_text())
    out = {}
    for split, ev in zip(("valid", "test"), make_evaluators(p.split, p.cfg.train, p.device)):
        values = ev.per_user(p.model.scores)
        for m in metrics:
            if not np.isclose(values[m].mean(), saved[split][m], atol=1e-6):
                raise SystemExit(f"{run_dir}: {split} {m} re-scored {values[m].mean():.6f}, results.json says "
                                 f"{saved[split][m]:.6f}. Fix: re-run it on the data it was trained on.")
        targets = ev.target[ev.users]
        digest = hashlib.sha256(ev.users.tobytes() + targets.indptr.tobytes() + targets.indices.tobytes()).hexdigest()
        out[split] = (digest, {m: values[m] for m in metrics})
    return out


def bootstrap_ci(diffs: list[np.ndarray], n: int, seed: int = 0) -> tuple[float, float]:
    """95% interval of the mean over ``diffs`` (one array per group of users, averaged with equal weight) when each
    group's users are drawn again with replacement."""
    rng = np.random.default_rng(seed)
    means = np.array([np.mean([d[rng.integers(0, len(d), len(d))].mean() for d in diffs]) for _ in range(n)])
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def compare(a: list[Path], b: list[Path], metrics: list[str], n_boot: int) -> list[dict]:
    ua = [per_user(r, metrics) for r in a]
    ub = [per_user(r, metrics) for r in b]
    rows = []
    for split in ("valid", "test"):
        targets = [u[split][0] for u in ua]
        for x, y, ra, rb in zip(ua, ub, a, b):
            if x[split][0] != y[split][0]:
                raise SystemExit(f"{ra} and {rb}: {split} evaluates other users or targets. Fix: pair runs of the same "
                                 "seed and split.")
        shared = len(set(targets)) == 1
        for m in metrics:
            va, vb = [u[split][1][m] for u in ua], [u[split][1][m] for u in ub]
            if shared:  # the same targets in every seed: average each user over the seeds, resample users once
                va, vb = [np.mean(va, axis=0)], [np.mean(vb, axis=0)]
            diffs = [x - y for x, y in zip(va, vb)]
            lo, hi = bootstrap_ci(diffs, n_boot)
            mean_a, mean_b = np.mean([x.mean() for x in va]), np.mean([y.mean() for y in vb])
            rows.append({"split": split, "metric": m, "users": int(np.mean([len(x) for x in va])), "seeds": len(a),
                         "mean_a": mean_a, "mean_b": mean_b, "se_a": _se(va), "se_b": _se(vb), "diff": mean_a - mean_b,
                         "ci_low": lo, "ci_high": hi,
                         "users_differ": float(np.mean([np.mean(np.abs(d) > 1e-12) for d in diffs]))})
    return rows


def _se(groups: list[np.ndarray]) -> float:
    """Standard error over users of the equal-weight mean of the groups' means."""
    return float(np.sqrt(np.sum([g.var(ddof=1) / len(g) for g in groups])) / len(groups))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", type=Path, nargs="+", required=True, help="finished runs of model A, one per seed")
    ap.add_argument("--b", type=Path, nargs="+", required=True, help="runs of model B, the same seeds in the same order")
    ap.add_argument("--label-a", default="A")
    ap.add_argument("--label-b", default="B")
    ap.add_argument("--metrics", nargs="+", default=["recall@20", "ndcg@20"])
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--name", default="paired_users", help="benchmarks/results/<name>/")
    args = ap.parse_args()
    if len(args.a) != len(args.b):
        raise SystemExit(f"--a has {len(args.a)} runs and --b {len(args.b)}. Fix: pass one run per seed to each, same order.")
    rows = compare(args.a, args.b, args.metrics, args.bootstrap)
    table = markdown_table(
        ["split", "metric", "users", "seeds", args.label_a, args.label_b, "s.e. over users (A / B)", "A − B",
         "95% interval (users resampled)", "users scored differently"],
        [[r["split"], r["metric"], r["users"], r["seeds"], f"{r['mean_a']:.4f}", f"{r['mean_b']:.4f}",
          f"{r['se_a']:.4f} / {r['se_b']:.4f}", f"{r['diff']:+.4f}", f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]",
          f"{r['users_differ']:.1%}"] for r in rows])
    out = RESULTS / args.name
    out.mkdir(parents=True, exist_ok=True)
    text = (f"\n## {args.label_a} (A) against {args.label_b} (B)\n\n`python benchmarks/paired_users.py` at {code_version()}; "
            f"runs A: {', '.join(str(r) for r in args.a)}; runs B: {', '.join(str(r) for r in args.b)}.\n\n{table}\n")
    md = out / "paired_users.md"
    if not md.exists():
        md.write_text(TITLE)
    with open(md, "a") as fh:
        fh.write(text)
    frame = pd.DataFrame([{"a": args.label_a, "b": args.label_b, **r} for r in rows])
    csv = out / "paired_users.csv"
    frame.to_csv(csv, mode="a", header=not csv.exists(), index=False)
    print(text)


if __name__ == "__main__":
    main()
