"""Cost against size: synthetic catalogues from 10k items up, every stage timed (issue 17).

Users = items, ~20 interactions per user with long-tail popularity, 128-d image-like + 384-d
text-like features (``mmgef data synth``'s generator). Per size the data is generated once and
written in the native layout; then LightGCN, LATTICE and MM-GEF each run in a fresh process (so peak
RSS is theirs): data loading, the 8:1:1 split, the kNN graph of the raw features (exact below 50k
items, FAISS IVF above), the co-occurrence graph, the model build, ``--epochs`` training epochs
with ``steps_per_epoch`` (the linear-cost mode; their median) and, where ``--full-up-to`` allows, one with full
propagation per batch (today's default), and evaluation of 10k sampled users over all items.
Writes ``benchmarks/results/scale/scale.{csv,md}`` and ``scale.png`` (log-log, with the fitted
exponent per stage). One thread per process by default: the 2-core machine's default for a training;
``--threads 2`` gives one job the whole machine (``--set threads=2`` in a training).

    python benchmarks/bench_scale.py [--sizes 10000 30000 100000] [--models lightgcn lattice mmgef] [--threads 1]
                                     [--allocator system|jemalloc] [--kernel compiled|torch] [--epochs 3]
                                     [--tag NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mmgef.graphs.native import KERNELS, kernel_environ

RESULTS = Path(__file__).parent / "results" / "scale"
STEPS = 32
POOL = 4096  # the generator's candidate pool at every size: cost O(users × pool), the same distribution throughout

WORKER = Path(__file__).with_name("scale_worker.py")  # one model's stages, in a process of its own


def generate(n: int, root: Path) -> float:
    from mmgef.data.formats import write_native
    from mmgef.data.synthetic import SyntheticConfig, generate

    t = time.perf_counter()
    write_native(generate(SyntheticConfig(n_users=n, n_items=n, mean_interactions=20, image_dim=128, text_dim=384,
                                          reviews=False, candidate_pool=POOL)), root)
    return time.perf_counter() - t


def run_worker(model: str, root: str, full: bool, sets: list[str], threads: int, allocator: str = "system",
               kernel: str = "compiled", epochs: int = 1) -> dict:
    """One model's stages in a fresh process (its own peak RSS) under ``allocator`` (MMGEF_ALLOCATOR), its sparse
    products by ``kernel`` (MMGEF_NATIVE); stage lines go straight to the console (stderr): a 1M-item worker runs for
    half an hour."""
    from mmgef.training.allocator import allocator_environ

    env = kernel_environ(kernel, {**os.environ, "OMP_NUM_THREADS": str(threads)})
    res = subprocess.run([sys.executable, str(WORKER), model, root, str(STEPS), str(int(full)), json.dumps(sets), str(threads),
                          str(epochs)],
                         env=allocator_environ(allocator, env),
                         stdout=subprocess.PIPE, text=True)
    if res.returncode:
        raise SystemExit(f"{model} at {root} with {threads} threads failed (exit {res.returncode}); its last stage lines are above")
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def fit_exponent(x: pd.Series, y: pd.Series) -> float:
    ok = (x > 0) & (y > 0)
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0]) if ok.sum() >= 2 else float("nan")


def plot(df: pd.DataFrame, stages: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(df["series"]))
    cols = min(3, len(models))
    rows = -(-len(models) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.2 * rows), squeeze=False)
    for ax in axes.flat[len(models):]:
        ax.set_visible(False)
    for ax, model in zip(axes.flat, models):
        part = df[df["series"] == model]
        for stage in stages:
            if stage in part and part[stage].notna().sum() >= 1:
                b = fit_exponent(part["interactions"], part[stage])
                ax.loglog(part["interactions"], part[stage], "o-", label=f"{stage.removesuffix('_s')} (slope {b:.2f})")
        ax.set_title(model)
        ax.set_xlabel("interactions")
        ax.set_ylabel("seconds")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    ap.add_argument("--models", nargs="+", default=["lightgcn", "lattice", "mmgef"])
    ap.add_argument("--full-up-to", type=int, default=30_000, help="largest size that also times a full-propagation epoch")
    ap.add_argument("--append", action="store_true", help="keep the committed rows of other sizes / models (scale.csv)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1],
                    help="torch / OpenMP threads of each worker (its 'threads' setting); several: one worker each, same data")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="config override for every model, e.g. knn_method=faiss-pca")
    ap.add_argument("--allocator", default="system", choices=["system", "jemalloc"],
                    help="memory allocator of every worker (MMGEF_ALLOCATOR); rows before session 27 are glibc's")
    ap.add_argument("--kernel", default="compiled", choices=KERNELS,
                    help="sparse products by mmgef's compiled kernel or torch's (MMGEF_NATIVE=0); rows before session 35 are torch's")
    ap.add_argument("--epochs", type=int, default=3, help="linear-mode epochs per model and size; the table gives their "
                                                           "median (rows before session 41: one epoch)")
    ap.add_argument("--tag", default="", help="names this round's rows: kept beside earlier rows of the same settings, "
                                               "with their own fit and panel")
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            gen = generate(n, Path(tmp))
            print(f"{n:>9,} items: generated in {gen:.1f} s", flush=True)
            for model in args.models:
                for threads in args.threads:
                    row = {"items": n, "users": n, "model": model, "threads": threads, "allocator": args.allocator,
                           "kernel": args.kernel, "tag": args.tag, "epochs": args.epochs, "generate_s": gen,
                           "settings": " ".join([*args.sets, *([f"threads={threads}"] if threads != 1 else [])]),
                           **run_worker(model, tmp, n <= args.full_up_to, args.sets, threads, args.allocator, args.kernel,
                                                 args.epochs)}
                    row["interactions"] = round(row["train_pairs"] / 0.8)
                    rows.append(row)
                    print("   " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
    from mmgef.experiments.report import code_version
    from mmgef.report import markdown_table

    df = pd.DataFrame(rows)
    if args.append and (RESULTS / "scale.csv").exists():
        old = pd.read_csv(RESULTS / "scale.csv")
        old["threads"] = old["threads"].fillna(1).astype(int) if "threads" in old else 1
        old["allocator"] = old["allocator"].fillna("system") if "allocator" in old else "system"
        old["kernel"] = old["kernel"].fillna("torch") if "kernel" in old else "torch"
        old["tag"] = old["tag"].fillna("") if "tag" in old else ""
        old["epochs"] = old["epochs"].fillna(1).astype(int) if "epochs" in old else 1
        key = ["items", "model", "threads", "allocator", "kernel", "tag"]
        keep = ~old.set_index(key).index.isin(df.set_index(key).index)
        df = pd.concat([old[keep], df], ignore_index=True).sort_values("items", kind="stable")
    stages = [c for c in ("load_s", "split_s", "knn_s", "cooccurrence_s", "build_s", "epoch_linear_s", "epoch_full_s",
                          "eval_10k_users_s") if c in df]
    df["tag"] = df["tag"].fillna("")
    # one series per model, thread count, allocator, kernel and tag: a fit across them would measure those, not the growth
    df["series"] = (df["model"] + np.where(df["threads"] > 1, " (" + df["threads"].astype(str) + " threads)", "")
                    + np.where(df["allocator"] != "system", " (" + df["allocator"] + ")", "")
                    + np.where(df["kernel"] == "compiled", " (compiled)", "")
                    + np.where(df["tag"] != "", " [" + df["tag"] + "]", ""))
    RESULTS.mkdir(parents=True, exist_ok=True)
    df.drop(columns="series").to_csv(RESULTS / "scale.csv", index=False)
    plot(df, stages, RESULTS / "scale.png")
    slopes = [[m, *(round(fit_exponent(df[df.series == m]["interactions"], df[df.series == m][s]), 2) for s in stages)]
              for m in dict.fromkeys(df["series"])]
    df["settings"] = df["settings"].fillna("") if "settings" in df else ""
    show = df[["items", "model", "threads", "allocator", "kernel", "tag", "epochs", "settings", "interactions", *stages, "peak_rss_mb"]].round(2)
    cmd = "python benchmarks/bench_scale.py " + " ".join(sys.argv[1:])
    (RESULTS / "scale.md").write_text(
        f"# Cost against size (synthetic, users = items, ~20 interactions each, 1 thread unless settings say threads=2)\n\n`{cmd.strip()}` at "
        f"{code_version()}{' (rows of other sizes or models: the committed scale.csv, see git log)' if args.append else ''}. epoch_linear: `steps_per_epoch={STEPS}` (the batch grows with the data), the median of "
        "`epochs` epochs (epoch_linear_runs: each one's seconds); epoch_full: "
        "batch 2048, one full propagation per batch (the default). eval: 10,000 sampled users over all items.\n\n"
        + markdown_table(list(show.columns), show.values.tolist())
        + "\n\n## Fitted exponent (log seconds against log interactions)\n\n"
        + markdown_table(["model", *(s.removesuffix("_s") for s in stages)], slopes)
        + "\n\n![cost against size](scale.png)\n")
    print((RESULTS / "scale.md").read_text())


if __name__ == "__main__":
    main()
