"""Why cold-start numbers with every item ranked sit near chance: how much room each model gives cold items.

On the cold split every validation and test item is cold (no training interaction), while the ranking
holds every item. A model can order the cold items well and still score almost no hit, if its warm items
outscore them all. For each finished run of a cold-start report (its seed runs, reloaded from their
saved weights) this measures on the test part:

- ``R@20 all``: Recall@20 with every item ranked, recomputed from the saved model (``reproduced`` says it
  equals the report's number, so the weights are the ones the report used);
- ``cold share``: the share of the top-20 slots held by untrained items (their share of the catalogue is
  printed above the table);
- ``R@20 cold only``: Recall@20 when only the test's cold items are ranked (the cold_eval=cold_only
  protocol): how well the model orders cold items among themselves;
- ``R@20 standardised``: every ranked, after each user's scores of untrained items are mapped onto the
  distribution of their scores of trained items (mean and spread from the item vectors: u·m and
  √(uᵀΣu) per group). A serving policy that gives new items the same footing, not a model; measured
  to show how much of the gap is exposure and how much is ordering;
- ``R@20 warm targets`` / ``R@20 new targets`` (``cold_targets=new+warm`` only, where the test holds warm and
  new items): Recall@20 over each kind of test item alone, every item ranked: what showing new items costs
  the warm ones.

    python benchmarks/bench_cold_exposure.py benchmarks/results/mmgef_plus_cold_tiktok --runs runs/experiments
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from mmgef.config import load_run_config
from mmgef.eval.evaluator import Evaluator, ScoreFn
from mmgef.io import write_text
from mmgef.models.new_items import standardise_new_items
from mmgef.runs import load_run

K = 20


def seed_runs(report: Path) -> list[dict[str, str]]:
    """The report's rows that make its mean ± std: each label's chosen grid run and its other seeds."""
    rows = list(csv.DictReader((report / "results.csv").open()))
    return [r for r in rows if r["stage"] == "seed" or r["chosen"] == "True"]


def labelled_seed_runs(report: Path, labels: list[str]) -> list[dict[str, str]]:
    """``seed_runs`` of the rows named ``labels``; a label the report lacks is one clear error."""
    rows = [r for r in seed_runs(report) if r["label"] in labels]
    missing = set(labels) - {r["label"] for r in rows}
    if missing:
        raise SystemExit(f"{report}/results.csv: no rows labelled {sorted(missing)}. Fix: copy the labels from its summary.md.")
    return rows


def report_runs_parser(doc: str, labels_help: str, out: Path) -> argparse.ArgumentParser:
    """The arguments of a script that re-reads some rows' saved runs of a report: report, --labels, --runs, --out."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report", type=Path, help="a report directory (its results.csv)")
    ap.add_argument("--labels", nargs="+", required=True, help=labels_help)
    ap.add_argument("--runs", type=Path, nargs="+", default=[Path("runs/experiments")],
                    help="directories holding experiment directories with the runs")
    ap.add_argument("--out", type=Path, default=out)
    return ap


def top_items(every: Evaluator, score: ScoreFn, run_dir: Path) -> torch.Tensor:
    """Each evaluated user's top-K items under ``score`` (``every``'s users, masks and K), in user batches."""
    step = every.batch_size
    blocks = [every.top_items(score, every.users[i:i + step]) for i in range(0, every.n_users, step)]
    if any(b is None for b in blocks):
        raise SystemExit(f"{run_dir}: the saved model gives non-finite scores. Fix: retrain the run.")
    return torch.cat(blocks)  # type: ignore[arg-type]


def find_run(roots: list[Path], row: dict[str, str]) -> Path:
    """The run the report used. The same config may have runs in several experiment folders (retrained at
    another commit): the one whose test Recall@20 is the report's, else the first in path order."""
    name = f"{row['model']}-{row['digest']}"
    for root in roots:
        hits = [h for h in sorted(root.glob(f"*/runs/{row['dataset']}/{name}")) if (h / "results.json").is_file()]
        for hit in hits:
            if abs(json.loads((hit / "results.json").read_text())["test"]["recall@20"] - float(row["test_recall@20"])) < 1e-9:
                return hit
        if hits:
            return hits[0]
    raise SystemExit(f"run {row['dataset']}/{name} ({row['label']}, seed {row['seed']}): not found under "
                     f"{', '.join(map(str, roots))}. Fix: pass the experiment directories with --runs.")


def standardised(users_emb: torch.Tensor, items_emb: torch.Tensor, cold: torch.Tensor) -> ScoreFn:
    """Scores where each user's untrained-item scores take the mean and spread of their trained-item scores
    (what ``new_item_scores=standardised`` does inside a model, applied here to a model trained without it)."""
    users, items = standardise_new_items(users_emb, items_emb, cold)

    def score(rows: torch.Tensor, block: slice) -> torch.Tensor:
        return users[rows] @ items[block].T

    return score


def columns(m: sp.csr_matrix, items: np.ndarray, keep: bool) -> sp.csr_matrix:
    """``m`` with only the columns ``items`` (``keep``) or with every other column."""
    mask = np.isin(np.arange(m.shape[1]), items) == keep
    out = (m @ sp.diags(mask.astype(m.dtype))).tocsr()
    out.eliminate_zeros()
    return out


@torch.no_grad()
def measure(run_dir: Path) -> dict[str, float]:
    p = load_run(run_dir)
    s = p.split
    users_emb, items_emb = (t.float() for t in p.model.cached_embeddings())
    untrained = s.untrained_items()
    cold = torch.zeros(items_emb.shape[0], dtype=torch.bool)
    cold[torch.as_tensor(untrained, dtype=torch.long)] = True
    exclude = [s.train, s.valid]

    def raw(users: torch.Tensor, items: slice) -> torch.Tensor:
        return p.model.scores(users, items)

    every = Evaluator(s.test, exclude, [K])
    top = top_items(every, raw, run_dir)
    new_targets, warm_targets = columns(s.test, untrained, True), columns(s.test, untrained, False)
    only_cold = Evaluator(new_targets, exclude, [K], candidates=s.cold_test_items)
    out = {"all": every.evaluate(raw)[f"recall@{K}"], "cold_share": float(cold[top].float().mean()),
           "cold_only": only_cold.evaluate(raw)[f"recall@{K}"],
           "standardised": every.evaluate(standardised(users_emb, items_emb, cold))[f"recall@{K}"],
           "catalogue_cold_share": float(cold.float().mean())}
    if warm_targets.nnz:
        out["warm_targets"] = Evaluator(warm_targets, exclude, [K]).evaluate(raw)[f"recall@{K}"]
        out["new_targets"] = Evaluator(new_targets, exclude, [K]).evaluate(raw)[f"recall@{K}"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="a cold-split report directory (its results.csv)")
    ap.add_argument("--runs", type=Path, nargs="+", default=[Path("runs/experiments")],
                    help="directories holding experiment directories with the runs")
    ap.add_argument("--labels", nargs="*", help="only these rows (default: every row)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/cold_exposure"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [r for r in seed_runs(args.report) if not args.labels or r["label"] in args.labels]
    if not rows or any(r["split"] != "cold" for r in rows):
        raise SystemExit(f"{args.report}/results.csv: needs runs of the cold split. Fix: pass a cold-start report.")
    per: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    records = []
    for r in rows:
        run = find_run(args.runs, r)
        if load_run_config(run / "config.yaml").data.cold_eval != "all":
            continue  # a cold_eval=cold_only row: its own R@20 is this table's "cold only" column
        m = measure(run)
        m["reported"] = float(r["test_recall@20"])
        per[(r["dataset"], r["label"])].append(m)
        records.append({"dataset": r["dataset"], "label": r["label"], "seed": r["seed"], **m})
        print(f"{r['dataset']} {r['label']} seed {r['seed']}: " + ", ".join(f"{k} {v:.4f}" for k, v in m.items()), flush=True)

    def cell(ms: list[dict[str, float]], key: str) -> str:
        vals = [m[key] for m in ms]
        return f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals) if len(vals) > 1 else 0.0:.4f}"

    shares = {ds: ms[0]["catalogue_cold_share"] for (ds, _), ms in per.items()}
    mixed = any("warm_targets" in ms[0] for ms in per.values())
    lines = [f"# Room for cold items: `{args.report.name}` (test part, Recall@{K}, mean ± std over seeds)", "",
             f"`python benchmarks/bench_cold_exposure.py {args.report}`. Untrained items' share of the catalogue: "
             + ", ".join(f"{ds} {share:.1%}" for ds, share in shares.items()) + ".", "",
             "| dataset | model | seeds | R@20 all | reproduced | cold share of top 20 | R@20 cold only | R@20 standardised |"
             + (" R@20 warm targets | R@20 new targets |" if mixed else ""),
             "|---|---|---|---|---|---|---|---|" + ("---|---|" if mixed else "")]
    for (ds, label), ms in per.items():
        same = all(abs(m["all"] - m["reported"]) < 1e-6 for m in ms)
        lines.append(f"| {ds} | {label} | {len(ms)} | {cell(ms, 'all')} | {'yes' if same else 'NO'} | {cell(ms, 'cold_share')} "
                     f"| {cell(ms, 'cold_only')} | {cell(ms, 'standardised')} |"
                     + (f" {cell(ms, 'warm_targets')} | {cell(ms, 'new_targets')} |" if mixed else ""))
    out = args.out / args.report.name
    write_text(out / "summary.md", "\n".join(lines) + "\n")
    table = io.StringIO()
    w = csv.DictWriter(table, fieldnames=list(records[0]))
    w.writeheader()
    w.writerows(records)
    write_text(out / "runs.csv", table.getvalue())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
