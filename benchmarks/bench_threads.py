"""Two trainings side by side: does each keep its speed? (issue 17, contention-proof threads)

Runs the same short training alone and then two copies at once, in fresh processes, in two modes:

- ``mmgef``: the defaults — one core fewer than the machine has, and no more than other jobs leave free;
  idle OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``, set when mmgef is imported before torch);
- ``torch default``: every core per job and libgomp's spinning wait (torch imported first, threads = cores),
  what a job got before.

Prints seconds per epoch per job and the share of the lone job's speed each concurrent job keeps; writes
``benchmarks/results/threads/threads.{csv,md}``. Stop other jobs first: the machine must be otherwise idle.

    python benchmarks/bench_threads.py [--data lastfm2k] [--model lightgcn] [--epochs 4]
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

import pandas as pd

RESULTS = Path(__file__).parent / "results" / "threads"
LEGACY = "import torch, sys; from mmgef.cli import app; sys.argv = ['mmgef', *sys.argv[1:]]; app()"


def job(mode: str, model: str, data: str, epochs: int, out: Path) -> list[str]:
    args = ["train", "--model", model, "--data", data, "--out", str(out), "--set", f"epochs={epochs}",
            "--set", "patience=1000", "--set", f"eval_every={epochs}", "--set", "progress=false"]
    if mode == "torch default":  # torch loaded before mmgef: libgomp keeps its spinning wait policy
        cores = len(os.sched_getaffinity(0))
        return [sys.executable, "-c", LEGACY, *args, "--set", f"threads={cores}"]
    return [sys.executable, "-m", "mmgef.cli", *args]


def run_together(mode: str, n: int, model: str, data: str, epochs: int, root: Path) -> list[tuple[float, int]]:
    """Start ``n`` identical trainings at once; their seconds per epoch and thread counts."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    outs = [root / f"{mode.replace(' ', '-')}-{n}-{k}" for k in range(n)]
    procs = [subprocess.Popen(job(mode, model, data, epochs, out), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for out in outs]
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"training failed ({mode}):\n{err[-2000:]}")
    results = [json.loads((out / "results.json").read_text()) for out in outs]
    return [(r["seconds_per_epoch"], r["threads"]) for r in results]


def settle(seconds: float = 75.0) -> None:
    """Let the 1-minute load average forget the last jobs, so 'free cores' sees an idle machine again."""
    while os.getloadavg()[0] > 0.3 and seconds > 0:
        time.sleep(5)
        seconds -= 5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="lastfm2k")
    ap.add_argument("--model", default="lightgcn")
    ap.add_argument("--epochs", type=int, default=4)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("mmgef", "torch default"):
            settle()
            alone, threads = run_together(mode, 1, args.model, args.data, args.epochs, Path(tmp))[0]
            settle()
            pair = run_together(mode, 2, args.model, args.data, args.epochs, Path(tmp))
            for k, (s, t) in enumerate(pair):
                rows.append({"mode": mode, "job": k + 1, "threads alone / together": f"{threads} / {t}",
                             "alone s/epoch": round(alone, 3), "together s/epoch": round(s, 3),
                             "speed kept": round(alone / s, 3)})
            print(f"{mode:14s} alone {alone:.2f} s/epoch; two at once {', '.join(f'{s:.2f}' for s, _ in pair)} s/epoch")
    from mmgef.experiments.report import code_version
    from mmgef.report import markdown_table

    df = pd.DataFrame(rows)
    table = markdown_table(list(df.columns), df.values.tolist())
    RESULTS.mkdir(parents=True, exist_ok=True)
    df.to_csv(RESULTS / "threads.csv", index=False)
    cmd = "python benchmarks/bench_threads.py " + " ".join(sys.argv[1:])
    md = (f"# Two trainings at once on {os.cpu_count()} cores: {args.model} on {args.data}, {args.epochs} epochs\n\n"
          f"`{cmd.strip()}` at {code_version()}. speed_kept = lone job's s/epoch ÷ concurrent job's "
          "(≥ 0.40 is the target: two jobs sharing two cores can at best keep ≈ 0.5 each).\n\n"
          + table + "\n")
    (RESULTS / "threads.md").write_text(md)
    print(table)


if __name__ == "__main__":
    main()
