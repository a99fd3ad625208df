"""How far ahead, and into which cache, the product kernel should prefetch the table rows it will gather.

Builds ``mmgef/graphs/kernels.c`` once per variant of its prefetch for far tables (``-DFAR_AHEAD=distance
-DFAR_HINT=locality``, every call here on a far table: ``native.FAR_TABLE_BYTES``; ``__builtin_prefetch``'s
locality 0 = ``prefetchnta``, 1 = ``prefetcht2``, 2 = ``prefetcht1``, 3 = ``prefetcht0``) and times, on the random
user–item graph of ``bench_spmm`` (users = items, 20 interactions each, Zipf 0.9 popularity, a 64-d table, one
thread): the user rows' gathers (from items, the popular ones cached), the item rows' gathers (from users: random)
and the item rows pushed (``csr_push``). Rounds interleave the variants (the machine's speed drifts), and each cell
is the best of every round's three calls. All variants compute the same numbers; only the time differs.

    python benchmarks/bench_prefetch.py [--size 1000000] [--variants 16:0 24:2 …] [--rounds 4]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from random_graph import zipf_interactions

from mmgef.graphs import native

_P, _I = ctypes.c_void_p, ctypes.c_int64


def build(distance: int, locality: int, folder: Path) -> ctypes.CDLL:
    target = folder / f"kernels-{distance}-{locality}.so"
    native.compile_kernels(os.environ.get("CC", "cc"), target, (*native.build_defines(), f"-DFAR_AHEAD={distance}",
                                                                    f"-DFAR_HINT={locality}"))
    return ctypes.CDLL(str(target))


def csr_arrays(m: sp.csr_matrix) -> list[torch.Tensor]:
    return [torch.from_numpy(m.indptr.astype(np.int32)), torch.from_numpy(m.indices.astype(np.int32)),
            torch.from_numpy(m.data)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1_000_000, help="users = items")
    ap.add_argument("--variants", nargs="+", default=["16:0", "16:2", "24:2", "32:2", "24:3"],
                    help="distance:locality pairs (16:0 was the kernel's until session 37, 24:2 is it now)")
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(1)
    n = args.size
    users, items = zipf_interactions(n, np.random.default_rng(0))
    a = sp.csr_matrix((np.full(len(users), 0.05, np.float32), (users, items)), shape=(n, n))
    a.sum_duplicates()
    user_rows, item_rows = csr_arrays(a), csr_arrays(a.T.tocsr())
    x, out = torch.randn(n, 64), torch.empty(n, 64)
    with tempfile.TemporaryDirectory() as folder:
        libs = {v: build(*map(int, v.split(":")), Path(folder)) for v in args.variants}
        calls = {
            "user rows gathered": lambda lib: lib.csr_dense_i32(_I(n), _I(0), _I(n), *(_P(t.data_ptr()) for t in user_rows),
                                                                _P(x.data_ptr()), _P(out.data_ptr()), _I(64), 0, 1),
            "item rows gathered": lambda lib: lib.csr_dense_i32(_I(n), _I(0), _I(n), *(_P(t.data_ptr()) for t in item_rows),
                                                                _P(x.data_ptr()), _P(out.data_ptr()), _I(64), 0, 1),
            "item rows pushed": lambda lib: lib.csr_push_i32(_I(n), _I(n), _I(0), _I(n), *(_P(t.data_ptr()) for t in user_rows),
                                                             _P(x.data_ptr()), _P(out.data_ptr()), _I(64), 0, 1),
        }
        best = {(v, c): float("inf") for v in libs for c in calls}
        for _ in range(args.rounds):
            for v, lib in libs.items():
                for c, call in calls.items():
                    for _ in range(3):
                        t = time.perf_counter()
                        call(lib)
                        best[v, c] = min(best[v, c], time.perf_counter() - t)
    print(f"| {n:,} users = items: distance, locality | " + " | ".join(f"{c}, ms" for c in calls) + " |")
    print("|---|" + "---|" * len(calls))
    for v in libs:
        print(f"| {v} | " + " | ".join(f"{best[v, c] * 1e3:.0f}" for c in calls) + " |")


if __name__ == "__main__":
    main()
