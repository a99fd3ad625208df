"""VBPR's content projection per epoch: the whole catalogue per batch (before) vs the batch's
distinct items (now), with the FLOP count of each and the time of the projection alone.

On Amazon Baby's training interactions (LATTICE split) with 4096-d + 384-d generated features
(the width of the papers' image + text features), batch 2048, embedding 64:

    python benchmarks/bench_vbpr.py [--shared ../shared/data/amazon-baby] [--out benchmarks/results]

The FLOP floor of one item's projection in training is forward 2·D·d plus the weight gradient
2·D·d (no gradient flows into the fixed features): 4·D·d. Whole-epoch s/epoch of the model are
in ``vbpr_batch_items.md`` from ``bench_epoch.py --models mf vbpr``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from mmgef.data.formats import read_lattice_json
from mmgef.data.split import make_split
from mmgef.training.sampling import UniformSampler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon-baby")
    ap.add_argument("--batch", type=int, default=2048)
    args = ap.parse_args()
    ds = read_lattice_json(args.shared, {})
    train = make_split(ds, "given", 0).train
    sampler = UniformSampler(train)
    width, dim, n_items = 4096 + 384, 64, ds.n_items
    feats = torch.randn(n_items, width)
    proj = torch.nn.Linear(width, dim)
    distinct = []
    batches = list(sampler.batches(args.batch, np.random.default_rng(0)))
    for _, pos, neg in batches:
        distinct.append(len(np.unique(np.concatenate([pos, neg]))))

    def timed(rows_per_batch: list[int]) -> float:
        t = time.perf_counter()
        for (_, pos, neg), rows in zip(batches, rows_per_batch):
            idx = torch.as_tensor(np.unique(np.concatenate([pos, neg]))) if rows < n_items else None
            out = proj(feats if idx is None else feats.index_select(0, idx))
            out.sum().backward()
        return time.perf_counter() - t

    full = [n_items] * len(batches)
    timed(full[:3])  # warm-up
    t_full, t_batch = timed(full), timed(distinct)
    flop = lambda rows: 4 * width * dim * sum(rows)  # noqa: E731
    print(f"# VBPR content projection per epoch (torch {torch.__version__}, {torch.get_num_threads()} threads, CPU)\n")
    print(f"amazon-baby: {len(batches)} batches of {args.batch}, {n_items} items, features {width}-d → {dim}-d; "
          f"distinct items per batch: mean {np.mean(distinct):.0f} (min {min(distinct)}, max {max(distinct)})\n")
    print("| projection of | rows projected / epoch | GFLOP / epoch (4·D·d per row) | projection alone s / epoch | GFLOP/s |")
    print("|---|---|---|---|---|")
    for name, rows, t in (("whole catalogue per batch (before)", full, t_full), ("batch's distinct items (now)", distinct, t_batch)):
        print(f"| {name} | {sum(rows):,} | {flop(rows) / 1e9:.0f} | {t:.2f} | {flop(rows) / 1e9 / t:.0f} |")


if __name__ == "__main__":
    main()
