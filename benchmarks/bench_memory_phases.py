"""Where a training's peak RSS is set: resident memory per phase of MM-GEF's linear-mode epochs (issue 17).

One fresh process (under ``--allocator``) loads a synthetic catalogue (``bench_scale``'s generator), builds MM-GEF
and trains ``--epochs`` epochs of ``steps_per_epoch=32`` (``scale_worker``'s training, the one ``bench_scale``
times), with the learned graph's rebuild, its neighbour search or candidate refinement, and each step's forward,
backward and optimizer step wrapped in named phases; a thread samples the resident set every 3 ms. Prints, and writes to
``benchmarks/results/scale/memory_phases[_TAG].{csv,md}``, every phase that raised the process's peak: by how much,
and the allocator's live bytes before and after it (jemalloc's ``stats.allocated``; empty under glibc). RSS minus
live bytes is what the allocator holds freed, plus the libraries' pages.

    python benchmarks/bench_memory_phases.py [--size 300000] [--epochs 4] [--data DIR] [--allocator jemalloc]
                                             [--set key=value ...] [--tag NAME]
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
from bench_scale import RESULTS, STEPS, generate

WORKER = r"""
import ctypes, json, os, sys, threading, time
from contextlib import contextmanager
import torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[5])  # the benchmarks folder: the training is bench_scale's
import mmgef.graphs.learned as learned
import mmgef.models.item_graph as item_graph
import mmgef.models.mmgef as mmgef_model
from scale_worker import prepare, train_epoch

root, epochs, steps, sets = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
PAGE = os.sysconf("SC_PAGE_SIZE")
def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE / 2**20
libc = ctypes.CDLL(None)
def live_mb():  # jemalloc's bytes in live allocations (its stats refresh on "epoch"); None without jemalloc
    if not hasattr(libc, "mallctl"):
        return None
    one, size = ctypes.c_uint64(1), ctypes.c_size_t(8)
    libc.mallctl(b"epoch", None, None, ctypes.byref(one), size)
    value, size = ctypes.c_size_t(0), ctypes.c_size_t(ctypes.sizeof(ctypes.c_size_t))
    if libc.mallctl(b"stats.allocated", ctypes.byref(value), ctypes.byref(size), None, 0):
        return None
    return value.value / 2**20
peak, names = [0.0], []
def sample():
    while True:
        peak[0] = max(peak[0], rss_mb())
        time.sleep(0.003)
threading.Thread(target=sample, daemon=True).start()
@contextmanager
def phase(name):
    names.append(name)
    before, live = rss_mb(), live_mb()
    outer, peak[0] = peak[0], before
    start = time.perf_counter()
    try:
        yield
    finally:
        top = max(peak[0], rss_mb())
        print(json.dumps({"phase": "/".join(names), "rss_before_mb": before, "peak_mb": top, "live_before_mb": live,
                          "live_after_mb": live_mb(), "seconds": time.perf_counter() - start}), flush=True)
        names.pop()
        peak[0] = max(outer, top)
def wrapped(fn, name):
    def run(*args, **kwargs):
        with phase(name):
            return fn(*args, **kwargs)
    return run
# the kNN graphs' search, refinement and weights, the refinement's candidates, the co-occurrence graph
for module, name in ((learned, "knn_indices"), (learned, "refine_topk"), (learned, "edge_cosine"),
                     (item_graph, "LocalCandidates"), (mmgef_model, "collaborative_item_graph")):
    setattr(module, name, wrapped(getattr(module, name), name))
run = prepare("mmgef", root, sets, steps, phase)
run.model.build_content_graph = wrapped(run.model.build_content_graph, "rebuild")
for number in range(1, epochs + 1):
    train_epoch(run, run.batch_size(), number, phase)
"""


def run(root: Path, epochs: int, sets: list[str], allocator: str) -> pd.DataFrame:
    """The worker's phases, one row each, in the order they ended."""
    from mmgef.training.allocator import allocator_environ

    env = allocator_environ(allocator, {**os.environ, "OMP_NUM_THREADS": "1"})
    res = subprocess.run([sys.executable, "-c", WORKER, str(root), str(epochs), str(STEPS), json.dumps(sets),
                          str(Path(__file__).parent)], env=env,
                         stdout=subprocess.PIPE, text=True)
    if res.returncode:
        raise SystemExit(f"the worker failed (exit {res.returncode}); its messages are above")
    return pd.DataFrame([json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")])


def peak_raisers(phases: pd.DataFrame, min_mb: float = 5.0) -> pd.DataFrame:
    """Where the process's running peak rose by at least ``min_mb``, in the order the phases ended: within a phase
    (an inner phase ends first and takes its rise, so an outer one shows only its own code's), or before it, in code
    outside the named phases (its resident set on entry above the peak so far)."""
    rows, top = [], 0.0
    for row in phases.itertuples(index=False):
        if row.rss_before_mb >= top + min_mb:
            rows.append({"phase": f"(before {row.phase}, outside the phases)", "peak_mb": row.rss_before_mb,
                         "peak_rise_mb": row.rss_before_mb - top})
        top = max(top, row.rss_before_mb)
        if row.peak_mb >= top + min_mb:
            rows.append({**row._asdict(), "peak_rise_mb": row.peak_mb - top})
        top = max(top, row.peak_mb)
    return pd.DataFrame(rows)


def _mb(x: object) -> str:
    return "" if x is None or x != x else f"{x:,.0f}" if isinstance(x, float) else str(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=300_000, help="items = users of the synthetic catalogue")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--data", type=Path, help="a catalogue bench_scale's generator wrote (made in a temporary folder if absent)")
    ap.add_argument("--allocator", default="jemalloc", choices=["system", "jemalloc"])
    ap.add_argument("--set", dest="sets", action="append",
                    default=["knn_method=faiss-pca", "modality_graphs=false", "graph_refresh=local"],
                    help="config override (default: bench_scale's 1M settings)")
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or Path(tmp)
        if not (root / "interactions.csv").is_file():
            generate(args.size, root)
        phases = run(root, args.epochs, args.sets, args.allocator)
    from mmgef.experiments.report import code_version
    from mmgef.report import markdown_table

    raised = peak_raisers(phases)
    epochs = phases[phases.phase.str.fullmatch(r"epoch \d+ step \d+")].copy()
    epochs["epoch"] = epochs.phase.str.split().str[1].astype(int)
    per_epoch = epochs.groupby("epoch").agg(seconds=("seconds", "sum"), peak_mb=("peak_mb", "max")).reset_index()
    stem = "memory_phases" + (f"_{args.tag}" if args.tag else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    phases.to_csv(RESULTS / f"{stem}.csv", index=False)
    cols = ["phase", "rss_before_mb", "peak_mb", "peak_rise_mb", "live_before_mb", "live_after_mb", "seconds"]
    shown = [[_mb(r.get(c)) if c != "seconds" else ("" if r.get(c) != r.get(c) else f"{r[c]:.1f}") for c in cols]
             for r in raised.to_dict("records")]
    epoch_rows = [[int(r.epoch), f"{r.seconds:.1f}", _mb(r.peak_mb)] for r in per_epoch.itertuples()]
    text = (f"# Resident memory per training phase, MM-GEF, {len(per_epoch)} epochs ({args.allocator})\n\n"
            f"`python benchmarks/bench_memory_phases.py {' '.join(sys.argv[1:])}` at {code_version()}.\n\n"
            "## Where the peak rose (by 5 MB or more)\n\n" + markdown_table(cols, shown)
            + "\n\n## Per epoch\n\n" + markdown_table(["epoch", "seconds", "peak_mb"], epoch_rows) + "\n")
    (RESULTS / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
