"""Seconds and page faults per training step at a given size (issue 17's investigation of the epoch's growth).

A random user–item graph (users = items, 20 interactions each, Zipf 0.9 popularity), a step of
``steps_per_epoch=32`` (batch = interactions / 32), one thread; LATTICE and MM-GEF get clustered 128-d "image" and 384-d "text"
features. Prints the epoch's first step (where LATTICE and MM-GEF rebuild their learned graph), then seconds per
step, minor page faults per step (fresh kernel pages) and microseconds per item. Run it with environment variables to compare allocators, e.g. ``THP_MEM_ALLOC_ENABLE=1`` or
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647``. ``--profile`` runs the first step and the timed steps
under ``torch.profiler`` (their seconds then include its overhead) and prints each one's ops by self CPU time.

    python benchmarks/bench_step.py 300000 lightgcn n_layers=2
    python benchmarks/bench_step.py 300000 mmgef knn_method=faiss-pca modality_graphs=false graph_refresh=local
    python benchmarks/bench_step.py 1000000 mmgef --profile knn_method=faiss-pca modality_graphs=false graph_refresh=local
"""

from __future__ import annotations

import resource
import sys
import time
from contextlib import nullcontext

import numpy as np
import scipy.sparse as sp
import torch
from random_graph import zipf_interactions
from torch.profiler import ProfilerActivity, profile

from mmgef.config import resolve_run_config
from mmgef.graphs.modules import set_gather_precision
from mmgef.models.base import Batch, ModelContext
from mmgef.models.registry import build_model
from mmgef.training.sampling import UniformSampler


def main() -> None:
    torch.set_num_threads(1)
    n, model_name, sets = int(sys.argv[1]), sys.argv[2], [a for a in sys.argv[3:] if a != "--profile"]
    profiled = "--profile" in sys.argv[3:]
    rng = np.random.default_rng(0)
    users, items = zipf_interactions(n, rng)
    train = sp.csr_matrix((np.ones(len(items), np.float32), (users, items)), shape=(n, n))
    train.data[:] = 1
    content = {}
    if model_name != "lightgcn":
        centres = rng.standard_normal((1000, 512)).astype(np.float32)
        feats = centres[rng.integers(0, 1000, n)] + rng.standard_normal((n, 512)).astype(np.float32)
        content = {"image": np.ascontiguousarray(feats[:, :128]), "text": np.ascontiguousarray(feats[:, 128:])}
    cfg = resolve_run_config(model=model_name, data="lastfm2k", sets=["progress=false", *sets])
    model = build_model(cfg.params, ModelContext(n, n, train, content, {}, frozenset(), owns_content=True), 1e-4)
    set_gather_precision(model, cfg.train.gather_precision)
    opt = torch.optim.Adam([q for q in model.parameters() if q.requires_grad], lr=1e-3)
    batches = UniformSampler(train).batches(-(-train.nnz // 32), np.random.default_rng(0))
    model.train()
    model.on_epoch_start(1)

    def step() -> None:
        u, pos, neg = next(batches)
        loss = model.loss(Batch(torch.as_tensor(u), torch.as_tensor(pos), torch.as_tensor(neg)))
        opt.zero_grad()
        loss.backward()
        opt.step()

    def profiler() -> profile | nullcontext:
        return profile(activities=[ProfilerActivity.CPU]) if profiled else nullcontext()

    with profiler() as first:
        t = time.perf_counter()
        step()  # the epoch's first batch: a learned-graph model rebuilds its graph here
        rebuild = time.perf_counter() - t
    step()  # warm-up
    with profiler() as steady:
        faults, t = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        for _ in range(4):
            step()
        dt, faults = (time.perf_counter() - t) / 4, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / 4
    for name, prof in (("the first step", first), ("4 steps", steady)) if profiled else ():
        print(f"ops of {name}, by self CPU time:\n{prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=20)}")
    print(f"{n:,} items, {model_name} {' '.join(sets)}: first (rebuild) step {rebuild:.2f} s; then {dt:.3f} s/step, "
          f"{faults:,.0f} minor faults/step, {dt / n * 1e6:.2f} µs per item, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
