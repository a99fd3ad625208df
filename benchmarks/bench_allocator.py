"""Memory allocator policies against size: epoch time, page faults, RSS.

Per size the synthetic catalogue of ``bench_scale.py`` is generated once; each model then runs one
linear-cost epoch (``steps_per_epoch=32``), with the stages around it (loading, graph build, evaluation), in a
fresh process under each policy: ``glibc`` (the system
allocator's defaults), ``glibc+reuse`` (``reuse_freed_memory``: freed blocks kept in glibc's heap) and
``jemalloc`` (``MMGEF_ALLOCATOR=jemalloc`` with mmgef's jemalloc settings). CPU seconds (user + system) are reported beside wall seconds: they hold
when other jobs share the cores. ``--epochs E`` also trains MM-GEF with ``mmgef train`` for E epochs at the
first size with each policy and lists every epoch's seconds and peak RSS from its history (the trainer hands
free pages back once per epoch: does the heap still creep?). Writes ``benchmarks/results/scale/allocator.{csv,md}`` (``--name``).

    python benchmarks/bench_allocator.py [--sizes 100000 300000] [--models mmgef lightgcn] [--policies glibc jemalloc]
                                         [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from bench_scale import RESULTS, fit_exponent, generate, run_worker

# bench_scale's settings for MM-GEF at 100k items and up (LightGCN has no item graph: none)
SCALE_SETTINGS = {"mmgef": ["knn_method=faiss-pca", "modality_graphs=false", "graph_refresh=local"]}
# policy: (MMGEF_ALLOCATOR, reuse_freed_memory)
POLICIES = {"glibc": ("system", False), "glibc+reuse": ("system", True), "jemalloc": ("jemalloc", False)}
STAGES = ("load_s", "knn_s", "cooccurrence_s", "build_s", "eval_10k_users_s")


def train_epochs(root: str, epochs: int, policy: str, threads: int) -> list[dict]:
    """``mmgef train`` of MM-GEF for ``epochs`` epochs (validated once, at the end, on 2,000 users): its history."""
    from mmgef.training.allocator import allocator_environ

    allocator, reuse = POLICIES[policy]
    with tempfile.TemporaryDirectory() as out:
        sets = [*SCALE_SETTINGS["mmgef"], "steps_per_epoch=32", f"epochs={epochs}", f"eval_every={epochs}", "eval_users=2000",
                f"threads={threads}", "progress=false", f"reuse_freed_memory={str(reuse).lower()}"]
        cmd = [sys.executable, "-m", "mmgef.cli", "train", "--model", "mmgef", "--data", root, "--split", "random", "--out", out]
        for item in sets:
            cmd += ["--set", item]
        subprocess.run(cmd, check=True, env=allocator_environ(allocator, {**os.environ, "OMP_NUM_THREADS": str(threads)}),
                       stdout=subprocess.DEVNULL)
        return [json.loads(line) for line in (Path(out) / "history.jsonl").read_text().splitlines()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000])
    ap.add_argument("--models", nargs="+", default=["mmgef", "lightgcn"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    ap.add_argument("--epochs", type=int, default=0, help="also train MM-GEF this many epochs per setting at the first size")
    ap.add_argument("--name", default="allocator", help="output name under benchmarks/results/scale/")
    ap.add_argument("--set", dest="sets", action="append", default=None,
                    help=f"config override for every model (default: {SCALE_SETTINGS})")
    args = ap.parse_args()
    rows, history = [], {}
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            generate(n, Path(tmp))
            if args.epochs and not history:
                history = {policy: train_epochs(tmp, args.epochs, policy, args.threads) for policy in args.policies}
            for model in args.models:
                sets = SCALE_SETTINGS.get(model, []) if args.sets is None else args.sets
                for policy in args.policies:
                    allocator, reuse = POLICIES[policy]
                    res = run_worker(model, tmp, False, [*sets, f"reuse_freed_memory={str(reuse).lower()}"], args.threads,
                                     allocator)
                    rows.append({"items": n, "model": model, "settings": " ".join(sets), "policy": policy,
                                 "interactions": round(res["train_pairs"] / 0.8), "epoch_s": res["epoch_linear_s"],
                                 "epoch_cpu_s": res["epoch_linear_cpu_s"],
                                 "page_faults_m": res["epoch_linear_page_faults"] / 1e6, "peak_rss_mb": res["peak_rss_mb"],
                                 # the stages before and after the epoch, wall seconds: an allocator acts on them too
                                 **{k: res.get(k, float("nan")) for k in STAGES}})
                    print("   " + ", ".join(f"{k} {v}" for k, v in rows[-1].items()), flush=True)
    from mmgef.experiments.report import code_version
    from mmgef.report import markdown_table

    df = pd.DataFrame(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    df.to_csv(RESULTS / f"{args.name}.csv", index=False)
    slopes = [[m, r, round(fit_exponent(part["interactions"], part["epoch_cpu_s"]), 2)]
              for (m, r), part in df.groupby(["model", "policy"], sort=False)]
    cmd = "python benchmarks/bench_allocator.py " + " ".join(sys.argv[1:])
    (RESULTS / f"{args.name}.md").write_text(
        f"# One training epoch under each memory allocator policy ({', '.join(args.policies)}) "
        f"({args.threads} thread(s), synthetic, users = items, ~20 interactions each)\n\n`{cmd.strip()}` at {code_version()}; "
        f"`steps_per_epoch=32`. CPU seconds are user + system time of the training process.\n\n"
        + markdown_table(list(df.columns), df.round(3).values.tolist())
        + "\n\n## Fitted exponent of epoch CPU seconds against interactions\n\n"
        + markdown_table(["model", "policy", "exponent"], slopes) + "\n" + epochs_table(history, args.sizes[0]))
    print((RESULTS / f"{args.name}.md").read_text())


def epochs_table(history: dict[str, list[dict]], items: int) -> str:
    """Every epoch's training seconds and peak RSS so far, per policy (``--epochs``)."""
    if not history:
        return ""
    from mmgef.report import markdown_table

    rows = [[per[0]["epoch"], *(x for h in per for x in (h["train_seconds"], h["peak_rss_mb"]))] for per in zip(*history.values())]
    head = ["epoch", *(f"{p} {what}" for p in history for what in ("s", "peak RSS MB"))]
    return f"\n## MM-GEF trained with `mmgef train`, {items:,} items: every epoch\n\n" + markdown_table(head, rows) + "\n"


if __name__ == "__main__":
    main()
