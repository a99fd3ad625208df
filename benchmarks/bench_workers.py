"""Data-parallel training against one process on the same cores (issue 17).

Each row is one `mmgef train` for a fixed number of epochs (no early stop, so epochs are comparable):
one worker with one thread, one worker with every core's threads, and W workers with one thread each
(`--workers W`: every step takes W × batch_size pairs, each worker propagates on its slice, gradients
averaged), at the default learning rate and at W times it (the linear scaling rule for a W-fold batch). Reports seconds per epoch, the speed-up over one thread, and validation / test Recall@20 at
the best epoch, so the cost of the larger global batch is visible beside its speed. Writes
``benchmarks/results/workers/workers.{csv,md}``. Stop other jobs first: the machine must be otherwise idle.

    python benchmarks/bench_workers.py [--workers 2] [--runs lastfm2k:lightgcn:40 lastfm2k:mmgef:40 amazon-baby:lightgcn:10]
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

RESULTS = Path(__file__).parent / "results" / "workers"


def train(data: str, model: str, epochs: int, workers: int, threads: int, lr_scale: float, out: Path) -> dict:
    from mmgef.config import resolve_run_config

    lr = resolve_run_config(model=model, data=data).train.lr * lr_scale
    cmd = [sys.executable, "-m", "mmgef.cli", "train", "--model", model, "--data", data, "--out", str(out),
           "--workers", str(workers), "--set", f"threads={threads}", "--set", f"epochs={epochs}", "--set", f"lr={lr}",
           "--set", "patience=1000", "--set", "progress=false"]
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if res.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr[-2000:]}")
    return json.loads((out / "results.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", nargs="+", default=["lastfm2k:lightgcn:40", "lastfm2k:mmgef:40", "amazon-baby:lightgcn:10"],
                    help="DATA:MODEL:EPOCHS")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.runs:
            data, model, epochs = spec.split(":")
            w = args.workers
            for label, workers, threads, lr_scale in [("1 process, 1 thread", 1, 1, 1), (f"1 process, {cores} threads", 1, cores, 1),
                                                      (f"{w} workers × 1 thread", w, 1, 1),
                                                      (f"{w} workers × 1 thread, lr × {w}", w, 1, w)]:
                r = train(data, model, int(epochs), workers, threads, lr_scale,
                          Path(tmp) / f"{data}-{model}-{workers}-{threads}-{lr_scale}")
                rows.append({"data": data, "model": model, "mode": label, "epochs": r["epochs"],
                             "s_per_epoch": r["seconds_per_epoch"], "valid_recall@20": r["valid"]["recall@20"],
                             "test_recall@20": r["test"]["recall@20"], "best_epoch": r["best_epoch"],
                             "peak_rss_mb_rank0": r["peak_rss_mb"]})
                print(rows[-1], flush=True)
    from mmgef.experiments.report import code_version
    from mmgef.report import markdown_table

    df = pd.DataFrame(rows)
    base = df.groupby(["data", "model"])["s_per_epoch"].transform("first")
    df.insert(5, "speed_up", (base / df["s_per_epoch"]).round(2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    df.to_csv(RESULTS / "workers.csv", index=False)
    cmd = "python benchmarks/bench_workers.py " + " ".join(sys.argv[1:])
    (RESULTS / "workers.md").write_text(
        f"# Data-parallel training on {cores} cores\n\n`{cmd.strip()}` at {code_version()}. Fixed epochs, batch_size 2048 "
        f"per worker (so {args.workers} workers take {args.workers} × 2048 pairs per step), the model's default lr (the last row of each "
        "group scales it with the global batch); Recall@20 at the "
        "best validation epoch. speed_up: seconds per epoch of one thread / this row's.\n\n"
        + markdown_table(list(df.columns), df.round(4).values.tolist()) + "\n")
    print((RESULTS / "workers.md").read_text())


if __name__ == "__main__":
    main()
