"""The two kNN searches of MM-GEF's build on bench_scale's catalogue, by search and its lists (issue 17).

``bench_knn`` measures IVF on clustered vectors; the model build searches other data: the raw features (image + text,
512-d) and the learned graph's first search, 64-d projections by freshly initialised layers (as the model's
``proj_m``, averaged over the two modalities). This times both on a catalogue ``bench_scale``'s generator wrote, one
thread, for each ``--variants`` entry ``SEARCH:LISTS_PER_ROOT[:NPROBE]`` — ``pca-ivf`` (FAISS, ``knn_method=faiss-pca``;
at 64-d plain IVF) or ``ivf-gemm`` (``knn_method=ivf-gemm``) — with recall@10 against exact search on 3,000 sampled
items. Writes ``benchmarks/results/knn/STEM[_SIZEk].{csv,md}`` (no suffix at 300k items).

    python benchmarks/bench_ivf_catalogue.py [--size 300000 | --data DIR] [--variants pca-ivf:4 pca-ivf:2]
        [--stem ivf_catalogue]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from bench_knn import K, exact_neighbours, recall

from mmgef.graphs.knn import faiss_topk, ivf_gemm_topk

RESULTS = Path(__file__).parent / "results" / "knn"
QUERIES = 3000


def searches(root: Path) -> dict[str, np.ndarray]:
    """The raw features' concatenated unit blocks and the learned graph's first 64-d projections."""
    from mmgef.data.registry import load_dataset
    from mmgef.models.item_graph import projection

    ds = load_dataset(root, ["image", "text"])
    unit = {m: F.normalize(torch.from_numpy(ds.content[m]), dim=1) for m in ("image", "text")}
    torch.manual_seed(0)
    with torch.no_grad():
        learned = torch.stack([projection(x.shape[1], 64)(x) for x in unit.values()]).mean(0)
    return {"raw features (512-d)": torch.cat(list(unit.values()), 1).numpy(),
            "learned graph's first search (64-d)": learned.numpy()}


def search_with(variant: str, x: np.ndarray) -> np.ndarray:
    """Top-K of ``x`` by ``SEARCH:LISTS_PER_ROOT[:NPROBE]``."""
    method, lists, *probe = variant.split(":")
    probes = {"nprobe": int(probe[0])} if probe else {}  # else each search's own default
    if method == "pca-ivf":
        return faiss_topk(x, K, "pca-ivf", lists_per_root=float(lists), **probes)
    if method == "ivf-gemm":
        return ivf_gemm_topk(x, K, lists_per_root=float(lists), **probes)
    raise SystemExit(f"--variants {variant}: the search must be pca-ivf or ivf-gemm")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=300_000, help="items = users of the catalogue (when --data is absent)")
    ap.add_argument("--data", type=Path, help="a catalogue bench_scale's generator wrote")
    ap.add_argument("--variants", nargs="+", default=["pca-ivf:4", "pca-ivf:2"], help="SEARCH:LISTS_PER_ROOT[:NPROBE]")
    ap.add_argument("--stem", default="ivf_catalogue", help="the results' file name")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import faiss

    faiss.omp_set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or Path(tmp)
        if not (root / "interactions.csv").is_file():
            from bench_scale import generate

            generate(args.size, root)
        data = searches(root)
    rows = []
    for search, x in data.items():
        n = len(x)
        q = np.random.default_rng(1).choice(n, QUERIES, replace=False)
        truth = exact_neighbours(x, q)
        for variant in args.variants:
            start = time.perf_counter()
            got = search_with(variant, x)
            seconds = time.perf_counter() - start
            rows.append({"items": n, "search": search, "variant": variant, "seconds": round(seconds, 1),
                         "recall@10": round(recall(got[q], truth), 4)})
            print(rows[-1], flush=True)
    from mmgef.experiments.report import code_version
    from mmgef.report import markdown_table

    df = pd.DataFrame(rows)
    stem = args.stem + ("" if n == 300_000 else f"_{n // 1000}k")  # the 300k table is README's first
    RESULTS.mkdir(parents=True, exist_ok=True)
    df.to_csv(RESULTS / f"{stem}.csv", index=False)
    (RESULTS / f"{stem}.md").write_text(
        f"# MM-GEF's two kNN searches on bench_scale's catalogue, one thread\n\n"
        f"`python benchmarks/bench_ivf_catalogue.py {' '.join(sys.argv[1:])}` at {code_version()}. Recall@10 against "
        f"exact search on {QUERIES} sampled items. Variant = search:lists per √N[:lists "
        "probed, default 16]; pca-ivf re-scores 16·k candidates exactly (at 64-d it is plain IVF); ivf-gemm scores every "
        "list against its probed lists' rows by one matrix product.\n\n" + markdown_table(list(df.columns), df.values.tolist()) + "\n")
    print((RESULTS / f"{stem}.md").read_text())


if __name__ == "__main__":
    main()
