"""One model's training as the scale benchmarks run it, in a fresh process of its own (issue 17).

``bench_scale`` runs this file as its worker; ``bench_memory_phases`` imports ``prepare`` and ``train_epoch`` and
wraps their stages and steps in its memory phases — so both measure the same training: loaded and split as ``mmgef
train`` does, the model built from the dataset's feature dict (handed over, as ``runs.prepare`` hands it), Adam, the
uniform sampler and ``steps_per_epoch`` steps per epoch (the linear-cost mode; the batch grows with the data).

    python benchmarks/scale_worker.py MODEL ROOT STEPS FULL SETS_JSON THREADS EPOCHS   # prints one JSON line of figures
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mmgef.config import RunConfig, resolve_run_config
from mmgef.data.registry import load_dataset
from mmgef.data.split import Split, make_split
from mmgef.eval.evaluator import Evaluator
from mmgef.graphs.cooccurrence import cooccurrence_graph
from mmgef.graphs.knn import knn_indices
from mmgef.graphs.modules import set_gather_precision
from mmgef.models.base import Batch, ModelContext, Recommender
from mmgef.models.registry import build_model
from mmgef.training.allocator import reuse_freed_memory
from mmgef.training.sampling import UniformSampler
from mmgef.training.trainer import peak_rss_mb

Stage = Callable[[str], AbstractContextManager[Any]]


def _unmeasured(name: str) -> AbstractContextManager[None]:
    return nullcontext()


@dataclass
class Prepared:
    """What a training holds once its model is built: the dataset's features are gone (the model owns them)."""

    cfg: RunConfig
    split: Split
    model: Recommender
    opt: torch.optim.Optimizer
    sampler: UniformSampler

    def batch_size(self) -> int:
        return self.cfg.train.batch_for(len(self.sampler))


def prepare(model_name: str, root: str, sets: list[str], steps: int, stage: Stage = _unmeasured,
            graphs_apart: bool = False) -> Prepared:
    """Load, split and build ``model_name`` on the catalogue at ``root``, each stage inside ``stage(name)``;
    ``graphs_apart`` also times the raw features' kNN graph and the co-occurrence graph on their own (the model builds
    its own: these are the graph-build figures, not inputs to it)."""
    cfg = resolve_run_config(model=model_name, data=root, sets=["progress=false", *sets])
    with stage("load"):
        ds = load_dataset(root, ["image", "text"] if model_name != "lightgcn" else [])
    with stage("split"):
        split = make_split(ds, "random", 0)
    if graphs_apart and model_name != "lightgcn":
        with stage("knn"):
            knn_indices([torch.from_numpy(ds.content[m]) for m in ("image", "text")], 10, cfg.params.knn_method)
    if graphs_apart and model_name == "mmgef":
        with stage("cooccurrence"):
            cooccurrence_graph(split.train)
    # handed over as runs.prepare hands them (the model may normalise the features in place instead of copying them)
    ctx = ModelContext(ds.n_users, ds.n_items, split.train, ds.content, ds.user_content, ds.joint_modalities, owns_content=True)
    with stage("build"):
        model = build_model(cfg.params, ctx, cfg.train.reg)
    set_gather_precision(model, cfg.train.gather_precision)  # as runs.prepare does
    ds.content = {}
    del ctx  # it holds the dataset's feature dict too: the trainer keeps neither once the model is built
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    cfg.train.steps_per_epoch = steps
    if cfg.train.reuse_freed_memory:  # as the trainer does, after the build
        reuse_freed_memory()
    return Prepared(cfg, split, model, opt, UniformSampler(split.train))


def train_epoch(run: Prepared, batch_size: int, number: int, step_phase: Stage = _unmeasured) -> None:
    """One epoch of BPR steps with the epoch's own seed; each step's forward, backward and optimizer step inside
    ``step_phase`` (and the whole step inside ``step_phase("epoch N step S")``)."""
    rng = np.random.default_rng(number)
    run.model.train()
    run.model.on_epoch_start(number)
    for step, (users, pos, neg) in enumerate(run.sampler.batches(batch_size, rng)):
        with step_phase(f"epoch {number} step {step}"):
            with step_phase("forward"):
                loss = run.model.loss(Batch(torch.as_tensor(users), torch.as_tensor(pos), torch.as_tensor(neg)))
            with step_phase("backward"):
                run.opt.zero_grad()
                loss.backward()
            with step_phase("optimizer"):
                run.opt.step()
            del loss


def main(argv: list[str]) -> None:
    model_name, root, steps, full, sets, threads, epochs = (argv[0], argv[1], int(argv[2]), argv[3] == "1",
                                                            json.loads(argv[4]), int(argv[5]), int(argv[6]))
    torch.set_num_threads(threads)
    out: dict[str, Any] = {}

    @contextmanager
    def timed(name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        key = f"{name}_s"
        out[key] = time.perf_counter() - start
        print(f"      {model_name} {key.removesuffix('_s')}: {out[key]:.1f} s, peak RSS {peak_rss_mb():,.0f} MB",
              file=sys.stderr, flush=True)

    run = prepare(model_name, root, sets, steps, timed, graphs_apart=True)
    out["train_pairs"] = int(run.split.train.nnz)
    # several epochs, as a training runs them: the median is the figure (one epoch at 10k lasts a second, and this
    # machine's speed drifts 10-20% from minute to minute); the first also plans the user-item graph's push once
    runs, cpus = [], []
    for number in range(1, epochs + 1):
        cpu, faults = time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        with timed("epoch_linear"):
            train_epoch(run, run.batch_size(), number)
        runs.append(out["epoch_linear_s"])
        cpus.append(time.process_time() - cpu)  # user + system: steady when other jobs share the cores
        if number == 1:
            out["epoch_linear_page_faults"] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    out["epoch_linear_s"], out["epoch_linear_cpu_s"] = float(np.median(runs)), float(np.median(cpus))
    out["epoch_linear_first_s"], out["epoch_linear_runs"] = runs[0], " ".join(f"{r:.3f}" for r in runs)
    if full:
        with timed("epoch_full"):
            train_epoch(run, run.cfg.train.batch_size, 1)
    run.model.eval()
    ev = Evaluator(run.split.test, [run.split.train, run.split.valid], [20], sample_users=10_000)
    with timed("eval_10k_users"):
        ev.evaluate(run.model.scores)
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
