"""What the negative sampler's positive check costs per epoch as the data grows.

Each draw (user, item) must not be a training pair. The check was one binary search over all the training keys
(``user * n_items + item``, sorted); the users of a batch come in random order, so at 20M keys each search walks
~24 cache misses. Timed here over one epoch's draws (``--steps`` batches of pairs / steps, as
``train.steps_per_epoch`` makes them) on the random user–item graph of the epoch-growth investigation (users =
items, 20 interactions each, Zipf 0.9): that global search in draw order, the same with the draws sorted first
(``sampling.sorted_contains``, the fallback without a C compiler), the compiled search within the user's own keys
(``native.rows_contain``), and a whole epoch of ``UniformSampler.batches`` (shuffle, gathers, draws and checks) as
training runs it. All three checks must give the same answers (the script asserts it).

    python benchmarks/bench_sampler.py [--sizes 10000 100000 1000000] [--steps 32] [--name sampler]

Writes ``benchmarks/results/scale/<name>.md`` and ``.json``; one thread (run it with nothing else on the cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from random_graph import zipf_interactions

from mmgef.experiments.report import code_version
from mmgef.graphs import native
from mmgef.training.sampling import UniformSampler, sorted_contains

OUT = Path(__file__).parent / "results" / "scale"


def global_search(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The check as it was: one binary search over all keys per query, in draw order."""
    pos = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    return keys[pos] == queries


def measure(n: int, steps: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    users, items = zipf_interactions(n, rng)
    train = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=(n, n))
    sampler = UniformSampler(train)
    batch = -(-len(sampler) // steps)
    draws = [(u, rng.integers(0, n, len(u))) for u in np.array_split(sampler.users[rng.permutation(len(sampler))], steps)]
    checks = {
        "global search": lambda u, q: global_search(sampler.keys, q),
        "sorted draws": lambda u, q: sorted_contains(sampler.keys, q),
        "per-user kernel": lambda u, q: native.rows_contain(sampler.indptr, sampler.keys, u, q),
    }
    row: dict[str, float] = {"items": n, "train_pairs": len(sampler), "batch": batch}
    answers = {}
    for name, check in checks.items():
        t = time.perf_counter()
        answers[name] = [check(u, u * n + i) for u, i in draws]
        row[name] = time.perf_counter() - t
    first = answers["global search"]
    for name, got in answers.items():
        assert all(np.array_equal(a, b) for a, b in zip(first, got)), f"{name} answers differently"
    t = time.perf_counter()
    for _ in sampler.batches(batch, np.random.default_rng(1)):
        pass
    row["epoch of batches"] = time.perf_counter() - t
    print(f"  {n:,} items: " + ", ".join(f"{k} {v:.2f} s" for k, v in row.items() if k in checks or k.startswith("epoch")),
          file=sys.stderr, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--steps", type=int, default=32, help="batches per epoch (train.steps_per_epoch)")
    ap.add_argument("--name", default="sampler")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if native.kernel() is None:
        raise SystemExit("no compiled kernel (no C compiler, or MMGEF_NATIVE=0): nothing to compare")
    rows = [measure(n, args.steps) for n in args.sizes]
    cols = ["global search", "sorted draws", "per-user kernel", "epoch of batches"]
    lines = [f"# The negative sampler's positive check, seconds per epoch ({args.steps} batches, one thread)", "",
             f"`python benchmarks/bench_sampler.py --sizes {' '.join(map(str, args.sizes))} --steps {args.steps}` at "
             f"{code_version()}; users = items, 20 interactions each, Zipf 0.9. The three checks answer alike "
             "(asserted); *epoch of batches* is `UniformSampler.batches` whole (shuffle, gathers, draws, the kernel's "
             "checks).", "",
             "| items | training pairs | " + " | ".join(cols) + " |", "|---:" * (2 + len(cols)) + "|"]
    lines += [f"| {r['items']:,} | {r['train_pairs']:,} | " + " | ".join(f"{r[c]:.2f}" for c in cols) + " |" for r in rows]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    (OUT / f"{args.name}.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
