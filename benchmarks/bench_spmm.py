"""Why a propagation costs more per interaction as the graph grows: one sparse × dense product, timed.

A random user–item graph (users = items, 20 interactions per user, Zipf 0.9 item popularity over a random
permutation of ids), symmetrically normalised as LightGCN's, times a 64-d embedding table: seconds per product
and nanoseconds per non-zero, with the node ids as generated and sorted by degree (hot rows side by side), and
with and without PyTorch's transparent-huge-page allocator (``THP_MEM_ALLOC_ENABLE=1``, fewer TLB misses on
random gathers). Each configuration runs in a fresh process (the allocator reads its variable at start).
``--blocks W …`` also times the product split into column blocks of W nodes (``ColumnBlocks``; ids as generated, no
huge pages): each block's slice of the table fits the cache, and each block adds its part to the whole output (one
more pass over it per block), the same sums in another order; the row names the graph's ``stretch_spread``, which
decides whether the library blocks. ``--graph knn``: n items with 10 random neighbours each instead of the user–item
graph; ``--graph banded --band B``: users = items whose 20 items lie within ±B ids of their own (neighbouring rows
share columns). ``--blocks-only`` skips the degree-order and huge-page rows. ``--chosen`` adds the product as the
library plans it (``for_product``: a user–item graph's item rows pushed, ``PushedRows``, where that pays).
``--kernels``: each row with mmgef's compiled kernel (``mmgef.graphs.native``, the default where a C compiler works), torch's addmm (``MMGEF_NATIVE=0``),
or both.

    python benchmarks/bench_spmm.py [--sizes 100000 1000000] [--threads 1] [--blocks 16384 32768]
                                    [--graph bipartite|knn|banded] [--band 1000] [--blocks-only]
                                    [--kernels compiled torch] [--chosen]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

from mmgef.graphs.native import KERNELS, kernel_environ

WORKER = r"""
import json, sys, time
import numpy as np, scipy.sparse as sp, torch
from mmgef.graphs.sparse import ColumnBlocks, RowSplit, for_product, sparse_product, stretch_spread, sym_normalize, to_torch_csr
n, order, threads, width = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[5])
graph, band = sys.argv[6], int(sys.argv[7])
sys.path.insert(0, sys.argv[4])
from random_graph import zipf_interactions
torch.set_num_threads(threads)
rng = np.random.default_rng(0)
if graph == "knn":  # n items, 10 random neighbours each (a kNN graph's shape, none of its locality)
    a = sp.csr_matrix((np.full(10 * n, 0.1, np.float32), (np.repeat(np.arange(n), 10), rng.integers(0, n, 10 * n))), shape=(n, n))
else:  # banded: each user's 20 items within ±band ids of its own (neighbouring rows share their columns)
    users, items = zipf_interactions(n, rng) if graph == "bipartite" else (
        np.repeat(np.arange(n), 20), (np.repeat(np.arange(n), 20) + rng.integers(-band, band + 1, 20 * n)) % n)
    r = sp.csr_matrix((np.ones(len(items), np.float32), (users, items)), shape=(n, n))
    a = sym_normalize(sp.bmat([[None, r], [r.T, None]]))
if order == "degree":
    perm = np.argsort(-a.getnnz(axis=1), kind="stable")
    a = a[perm][:, perm].tocsr()
x = torch.randn(a.shape[1], 64)
adj = to_torch_csr(a)
if width < 0:  # as the library chooses
    m = for_product(adj, x)
    parts = m.parts if isinstance(m, RowSplit) else [(0, a.shape[0], m)]
    plan = ", ".join(f"rows {lo:,}-{hi:,} {type(p).__name__}" for lo, hi, p in parts)
else:
    m = ColumnBlocks(adj, width) if width else adj
    plan = ""
spread = stretch_spread(adj, width) if width > 0 else float("nan")
def product():
    return sparse_product(m, x)
product()
t = time.perf_counter()
for _ in range(5):
    product()
s = (time.perf_counter() - t) / 5
print(json.dumps({"nnz": int(a.nnz), "s_per_product": s, "ns_per_nnz": s / a.nnz * 1e9, "spread": spread, "plan": plan}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--blocks", type=int, nargs="*", default=[], help="column block widths (nodes) to time as well")
    ap.add_argument("--graph", default="bipartite", choices=["bipartite", "knn", "banded"])
    ap.add_argument("--band", type=int, default=1000, help="--graph banded: each user's items lie within ± this many ids")
    ap.add_argument("--blocks-only", action="store_true", help="only the as-generated whole product and the blocked ones")
    ap.add_argument("--chosen", action="store_true", help="also the product as the library plans it (for_product)")
    ap.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=KERNELS)
    args = ap.parse_args()
    size = {"bipartite": "users = items", "knn": "items (10 neighbours each)",
            "banded": f"users = items (items within ±{args.band:,})"}[args.graph]
    print(f"| {size} | ids | huge pages | kernel | non-zeros | s per product | ns per non-zero |\n"
          "|---|---|---|---|---|---|---|")
    for n in args.sizes:
        runs = [(order, thp, 0) for order in ("as generated", "degree") for thp in (False, True)]
        runs = runs[:1] if args.blocks_only else runs
        planned = [("as generated", False, w) for w in args.blocks] + ([("as generated", False, -1)] if args.chosen else [])
        for (order, thp, width), kernel in itertools.product(runs + planned, args.kernels):
            env = kernel_environ(kernel, {**os.environ, "OMP_NUM_THREADS": str(args.threads)})
            env.pop("THP_MEM_ALLOC_ENABLE", None)
            if thp:
                env["THP_MEM_ALLOC_ENABLE"] = "1"
            out = subprocess.run([sys.executable, "-c", WORKER, str(n), order.split()[0], str(args.threads),
                                  str(Path(__file__).resolve().parent), str(width), args.graph, str(args.band)], env=env,
                                 check=True, capture_output=True, text=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            ids = (f"{order}, as planned: {row['plan']}" if width < 0 else
                   f"{order}, column blocks of {width:,} (spread {row['spread']:.2f})" if width else order)
            print(f"| {n:,} | {ids} | {'yes' if thp else 'no'} | {kernel} | {row['nnz']:,} | {row['s_per_product']:.3f} | "
                  f"{row['ns_per_nnz']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
