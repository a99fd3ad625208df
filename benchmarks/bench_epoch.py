"""Seconds per training epoch and peak RSS per model, each model in a fresh process.

1. amazon-baby (real interactions, LATTICE split) with GENERATED item features (4096-d image-like,
   384-d text-like; the papers' real features are not available here), every model.
2. --scale: 100k users × 100k items × 2M interactions (synthetic, generated features 384-d and
   128-d): one MM-GEF epoch (kNN through FAISS above 50k items), to show nothing allocates N × N.

    python benchmarks/bench_epoch.py [--epochs 3] [--models mf lightgcn ...] [--allocators system jemalloc]
                                     [--kernels compiled torch] [--scale] [--name F --note TEXT]

``--kernels``: sparse products by mmgef's compiled kernel (``mmgef.graphs.native``), by torch's (``MMGEF_NATIVE=0``),
or each model under both.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from mmgef.graphs.native import KERNELS, kernel_environ

WORKER = r"""
import json, sys, time
import numpy as np, torch
from mmgef.config import resolve_run_config
from mmgef.runs import prepare
from mmgef.models.base import Batch
from mmgef.training.sampling import UniformSampler
from mmgef.training.trainer import epoch_seed, peak_rss_mb

model, data, epochs, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cfg = resolve_run_config(model=model, data=data, sets=["progress=false", f"batch_size={batch}"])
t0 = time.perf_counter()
p = prepare(cfg)
setup = time.perf_counter() - t0
times = []
if p.model.trainable:
    sampler = UniformSampler(p.split.train)
    opt = torch.optim.Adam(p.model.parameters(), lr=1e-3)
    for epoch in range(epochs):
        rng = np.random.default_rng(epoch_seed(0, epoch))
        p.model.train(); p.model.on_epoch_start(epoch)
        t = time.perf_counter()
        for users, pos, neg in sampler.batches(cfg.train.batch_size, rng):
            loss = p.model.loss(Batch(torch.as_tensor(users), torch.as_tensor(pos), torch.as_tensor(neg)))
            opt.zero_grad(); loss.backward(); opt.step()
        times.append(time.perf_counter() - t)
steady = times[1:] or times
print(json.dumps({"model": model, "setup_s": setup, "epoch_s": float(np.mean(steady)) if steady else 0.0,
                  "first_epoch_s": times[0] if times else 0.0,
                  "peak_rss_mb": peak_rss_mb()}))
"""


def generated_baby(root: Path, shared: Path) -> Path:
    import numpy as np

    root.mkdir(parents=True, exist_ok=True)
    for f in ("train.json", "val.json", "test.json", "item2id.json", "user2id.json"):
        (root / f).unlink(missing_ok=True)
        (root / f).symlink_to((shared / f).resolve())
    n_items = len(json.loads((shared / "item2id.json").read_text()))
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(64, 4096)).astype(np.float32)
    assign = rng.integers(0, 64, n_items)
    np.save(root / "image.npy", (centers[assign] + rng.normal(size=(n_items, 4096)).astype(np.float32)))
    np.save(root / "text.npy", (centers[assign][:, :384] + rng.normal(size=(n_items, 384)).astype(np.float32)))
    return root


def scale_dataset(root: Path) -> Path:
    """100k users × 100k items, 2M interactions with Zipf popularity, native layout."""
    import numpy as np
    import pandas as pd

    root.mkdir(parents=True, exist_ok=True)
    (root / "features").mkdir(exist_ok=True)
    n, m, nnz = 100_000, 100_000, 2_000_000
    rng = np.random.default_rng(0)
    pop = 1.0 / np.arange(1, m + 1) ** 0.8
    items = rng.choice(m, size=int(nnz * 1.05), p=pop / pop.sum())
    users = rng.integers(0, n, size=len(items))
    key = np.unique(users.astype(np.int64) * m + items)[:nnz]
    df = pd.DataFrame({"user_id": key // m, "item_id": key % m})
    df.to_csv(root / "interactions.csv", index=False)
    pd.DataFrame({"item_id": np.arange(m)}).to_csv(root / "items.csv", index=False)
    np.save(root / "features" / "text.npy", rng.normal(size=(m, 384)).astype(np.float32))
    np.save(root / "features" / "image.npy", rng.normal(size=(m, 128)).astype(np.float32))
    return root


def run(model: str, data: Path, epochs: int, batch_size: int = 2048, allocator: str = "system",
        kernel: str = "compiled") -> dict:
    from mmgef.training.allocator import allocator_environ

    env = allocator_environ(allocator, kernel_environ(kernel, {**os.environ,
                                                               "MMGEF_ROOT": str(Path(__file__).resolve().parents[1])}))
    out = subprocess.run([sys.executable, "-c", WORKER, model, str(data), str(epochs), str(batch_size)],
                         capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        return {"model": model, "error": out.stderr.strip().splitlines()[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--models", nargs="+",
                    default=["cb", "mf", "lightgcn", "ngcf", "vbpr", "lattice", "mmgef", "mmgcn", "grcn", "freedom"])
    ap.add_argument("--allocators", nargs="+", default=["system"], choices=["system", "jemalloc"],
                    help="memory allocator of the training process (MMGEF_ALLOCATOR); each model runs under each")
    ap.add_argument("--kernels", nargs="+", default=["compiled"], choices=KERNELS,
                    help="sparse products by mmgef's compiled kernel or torch's (MMGEF_NATIVE=0); each model under each")
    ap.add_argument("--scale", action="store_true", help="also time one MM-GEF epoch at 100k × 100k")
    ap.add_argument("--scale-batch", type=int, default=8192, help="BPR batch size of the 100k run")
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon-baby")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--name", default="epoch_speed", help="report file name (without .md)")
    ap.add_argument("--note", default="", help="a line on the conditions (e.g. other jobs sharing the cores)")
    args = ap.parse_args()
    import torch

    from mmgef.experiments.report import code_version

    cmd = "python benchmarks/bench_epoch.py " + " ".join(sys.argv[1:])
    lines = [f"# Seconds per epoch and peak RSS (torch {torch.__version__}, {torch.get_num_threads()} threads, CPU)", "",
             f"`{cmd.strip()}` at {code_version()}.", ""]
    lines += [args.note, ""] if args.note else []
    with tempfile.TemporaryDirectory() as tmp:
        data = generated_baby(Path(tmp) / "baby-generated", args.shared)
        lines += [("## amazon-baby interactions (19,445 users, 7,050 items, 118,551 train) with GENERATED features "
                   "(image-like 4096-d, text-like 384-d)"), "",
                  "| model | allocator | kernel | s / epoch (steady) | first epoch s | setup s | peak RSS MB |",
                  "|---|---|---|---|---|---|---|"]
        for model in args.models:
            for allocator, kernel in itertools.product(args.allocators, args.kernels):
                r = run(model, data, args.epochs, allocator=allocator, kernel=kernel)
                row = (f"| {model} | {allocator} | {kernel} | {r['epoch_s']:.2f} | {r['first_epoch_s']:.2f} | "
                       f"{r['setup_s']:.2f} | {r['peak_rss_mb']:.0f} |" if "error" not in r
                       else f"| {model} | {allocator} | {kernel} | error: {r['error']} | | | |")
                print(row, flush=True)
                lines.append(row)
        if args.scale:
            data = scale_dataset(Path(tmp) / "scale")
            lines += ["", (f"## 100k users × 100k items × 2M interactions (synthetic, GENERATED 384-d + 128-d features), "
                       f"batch {args.scale_batch}, random 8:1:1 split (the data has no given split)"), "",
                      "| model | s / epoch | setup s (load, split, graphs) | peak RSS MB |", "|---|---|---|---|"]
            for model in ("mmgef",):
                r = run(model, data, 1, args.scale_batch)
                row = (f"| {model} | {r['first_epoch_s']:.1f} | {r['setup_s']:.1f} | {r['peak_rss_mb']:.0f} |"
                       if "error" not in r else f"| {model} | error: {r['error']} | | |")
                print(row, flush=True)
                lines.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
