"""kNN graph build: exact chunked search against FAISS HNSW and IVF, time and recall (issue 17).

Clustered synthetic item vectors (1,000 centres, Gaussian spread; 512-d = the 128-d image-like and
384-d text-like blocks of the scale benchmark, and 64-d = a learned graph's projections), k = 10, one
thread (what a training on this machine gets). Recall@10 of each approximate index is measured against
exact search on a seeded sample of 2,000 query items. Methods: exact, hnsw, ivf, pca-ivf (PCA to 64-d,
IVF, exact re-rank of 16·k candidates). Writes ``benchmarks/results/knn/knn.{csv,md}``;
the ``auto`` switch of ``mmgef.graphs.knn`` is set from this table.

    python benchmarks/bench_knn.py [--sizes 10000 30000 100000] [--dims 64 512] [--methods hnsw ivf pca-ivf]
                                   [--exact-up-to 100000] [--train-per-list 256 64] [--kmeans-iterations 25 10]
                                   [--lists-per-root 4 2] [--append]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mmgef.graphs.knn import KMEANS_ITERATIONS, LISTS_PER_ROOT, TRAIN_PER_LIST, exact_topk, faiss_topk

RESULTS = Path(__file__).parent / "results" / "knn"
K = 10
QUERIES = 2000


def clustered(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, d)).astype(np.float32)
    return centres[rng.integers(0, 1000, n)] + 1.0 * rng.standard_normal((n, d)).astype(np.float32)


def exact_neighbours(x: np.ndarray, queries: np.ndarray, k: int = K) -> np.ndarray:
    """The ground truth for the sampled ``queries``: exact cosine top-k of those rows against all rows."""
    xn = torch.nn.functional.normalize(torch.from_numpy(x), dim=1)
    return torch.topk(xn[queries] @ xn.T, k, dim=1).indices.numpy()


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    ap.add_argument("--dims", type=int, nargs="+", default=[64, 512])
    ap.add_argument("--exact-up-to", type=int, default=100_000, help="skip the full exact search above this size")
    ap.add_argument("--methods", nargs="+", default=["hnsw", "ivf", "pca-ivf"], help="FAISS kinds to time")
    ap.add_argument("--append", action="store_true", help="keep the committed rows of other sizes / dims (knn.csv)")
    ap.add_argument("--train-per-list", type=int, nargs="+", default=[TRAIN_PER_LIST],
                    help="IVF k-means training rows per list; each value one row per method (not the default: named)")
    ap.add_argument("--kmeans-iterations", type=int, nargs="+", default=[KMEANS_ITERATIONS],
                    help="IVF k-means iterations; each value one row per method (not the default: named)")
    ap.add_argument("--lists-per-root", type=float, nargs="+", default=[LISTS_PER_ROOT],
                    help="IVF lists per √N; each value one row per method (not the default: named)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import faiss

    faiss.omp_set_num_threads(1)
    rows = []
    for d in args.dims:
        for n in args.sizes:
            x = clustered(n, d)
            xt = torch.from_numpy(x)
            q = np.sort(np.random.default_rng(1).choice(n, min(QUERIES, n), replace=False))
            truth = exact_neighbours(x, q)
            timings: dict[str, tuple[float, float]] = {}
            if n <= args.exact_up_to:
                t = time.perf_counter()
                ex = exact_topk(xt, K).numpy()
                timings["exact"] = (time.perf_counter() - t, recall(ex[q], truth))
            runs = [(kind, per_list, iters, lists) for kind in args.methods
                    for per_list in (args.train_per_list if kind != "hnsw" else [TRAIN_PER_LIST])
                    for iters in (args.kmeans_iterations if kind != "hnsw" else [KMEANS_ITERATIONS])
                    for lists in (args.lists_per_root if kind != "hnsw" else [LISTS_PER_ROOT])]
            for kind, per_list, iters, lists in runs:
                t = time.perf_counter()
                got = faiss_topk(x, K, kind, train_per_list=per_list, kmeans_iterations=iters, lists_per_root=lists)
                label = ", ".join([kind, *([f"{per_list}/list"] if per_list != TRAIN_PER_LIST else []),
                                   *([f"{iters} k-means iterations"] if iters != KMEANS_ITERATIONS else []),
                                   *([f"{lists:g}·√N lists"] if lists != LISTS_PER_ROOT else [])])
                timings[label] = (time.perf_counter() - t, recall(got[q], truth))
            for method, (sec, rec) in timings.items():
                rows.append({"items": n, "dim": d, "method": method, "seconds": round(sec, 2), "recall@10": round(rec, 4)})
                print(f"n={n:>9,} d={d:>4} {method:6s} {sec:8.2f} s  recall@10 {rec:.4f}", flush=True)
    from mmgef.experiments.report import code_version
    from mmgef.report import markdown_table

    df = pd.DataFrame(rows)
    if args.append and (RESULTS / "knn.csv").exists():
        old = pd.read_csv(RESULTS / "knn.csv")
        new_keys = set(zip(df["items"], df["dim"], df["method"]))
        df = pd.concat([old[[key not in new_keys for key in zip(old["items"], old["dim"], old["method"])]], df],
                       ignore_index=True).sort_values(["dim", "items"], kind="stable")
    RESULTS.mkdir(parents=True, exist_ok=True)
    df.to_csv(RESULTS / "knn.csv", index=False)
    cmd = "python benchmarks/bench_knn.py " + " ".join(sys.argv[1:])
    (RESULTS / "knn.md").write_text(
        f"# kNN graph build, k = {K}, one thread\n\n`{cmd.strip()}` at {code_version()}. Recall@10 against exact "
        f"search on {QUERIES} sampled items (exact is 1 by definition, up to ties)"
        f"{'; rows of other sizes, dims or methods: the committed knn.csv (see git log)' if args.append else ''}. "
        "pca-ivf: PCA to 64-d, IVF on that, 16·k candidates re-scored exactly on the full vectors.\n\n"
        + markdown_table(list(df.columns), df.values.tolist()) + "\n")


if __name__ == "__main__":
    main()
