"""Data-parallel training on torch.distributed: local worker processes, or a Ray Train ``TorchTrainer``.

What W workers compute: every optimizer step takes one global batch of W × ``batch_size`` pairs from
the epoch's shuffled order. Every rank draws the same order and the same negatives from the epoch
seed and keeps its own slice, computes the loss on it, and the gradients are averaged weighted by
slice size, so every rank applies the same Adam step to the same weights. W workers therefore train
as one worker would with batch W × ``batch_size`` (up to float summation order; a test checks it),
and an epoch needs 1/W of the steps — for the graph models each step is a full propagation, which the
W processes run side by side. Rank 0 validates, decides early stopping for all, and alone writes the
run directory (history, checkpoints, weights, results).
"""

from __future__ import annotations

import datetime
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from mmgef.config import RunConfig
from mmgef.errors import ConfigError, MMGEFError


@dataclass(frozen=True)
class Group:
    """This process's place among the workers (``rank`` 0 of 1 when training alone)."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This rank's contiguous part of ``n`` items (sizes differ by at most one)."""
        return slice(n * self.rank // self.world, n * (self.rank + 1) // self.world)


ALONE = Group()


def backend_for(device: str) -> str:
    return "nccl" if device.startswith("cuda") else "gloo"


def worker_device(device: str, group: Group) -> str:
    """One GPU per rank when training on CUDA (``cuda`` or ``cuda:N`` both mean: start at that GPU)."""
    if not device.startswith("cuda") or group.world == 1:
        return device
    first = int(device.partition(":")[2] or 0)
    return f"cuda:{(first + group.rank) % max(1, torch.cuda.device_count())}"


def broadcast_parameters(params: Sequence[torch.Tensor]) -> None:
    """Rank 0's values everywhere: the ranks start from one model even where initialisation is not bit-reproducible."""
    for p in params:
        dist.broadcast(p.data, src=0)


def all_reduce_gradients(params: Sequence[torch.nn.Parameter], n_local: int, loss_sum: float) -> tuple[int, float]:
    """Average the ranks' gradients weighted by their slice sizes, in one all-reduce; returns the global pair count
    and loss sum.

    A rank whose slice is empty, or a parameter the loss did not reach, contributes zeros; a parameter no rank
    reached keeps ``grad = None`` (so Adam skips it, as it would in one process). Sparse gradients are made dense
    before the sum.
    """
    grads = [p.grad.to_dense() if p.grad is not None and p.grad.is_sparse else p.grad for p in params]
    parts = [(g.reshape(-1).float() * n_local) if g is not None else torch.zeros(p.numel(), device=p.device)
             for p, g in zip(params, grads)]
    reached = torch.tensor([float(g is not None) for g in grads], device=parts[0].device if parts else "cpu")
    flat = torch.cat([*parts, reached, torch.tensor([float(n_local), loss_sum], device=reached.device)])
    dist.all_reduce(flat)
    n_total, loss_total = int(flat[-2].item()), float(flat[-1].item())
    offset = 0
    for k, p in enumerate(params):
        size = p.numel()
        if flat[-(len(params) + 2) + k] > 0:
            p.grad = (flat[offset : offset + size] / max(1, n_total)).view_as(p).to(p.dtype)
        offset += size
    return n_total, loss_total


def broadcast_flag(value: bool, device: torch.device | str = "cpu") -> bool:
    """Rank 0's decision (e.g. stop early) for every rank."""
    flag = torch.tensor([float(value)], device=device)
    dist.broadcast(flag, src=0)
    return bool(flag.item())


def _local_worker(rank: int, cfg_json: str, run_dir: str, resume: bool, world: int, store_file: str) -> None:
    """One spawned process: join the group, train its shard, leave.

    The group meets in a file store, not a TCP store: a TCP store lives in rank 0's process, so rank 0
    leaving first could pull it from under a rank still tearing down, and a free port picked in the
    launcher can be taken before rank 0 binds it. After a clean finish the process ends with
    ``os._exit`` once multiprocessing's own finalisers ran: the run's files are written and closed, and
    skipping interpreter finalisation keeps the backend's C++ threads from being torn down in an order
    that aborts the process (``terminate called without an active exception``, seen once in CI as a
    worker dying with SIGABRT at the end of a run).
    """
    from mmgef.runs import train_worker

    cfg = RunConfig.model_validate_json(cfg_json)
    dist.init_process_group(backend_for(cfg.train.device), init_method=f"file://{store_file}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(hours=2))
    try:
        train_worker(cfg, Path(run_dir), resume, Group(rank, world))
        dist.barrier()  # the others wait while rank 0 tests and writes: no rank leaves the group early
    finally:
        dist.destroy_process_group()
    from multiprocessing import util

    util._exit_function()  # what multiprocessing runs on a child's exit: its finalisers (semaphores unlinked)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _one_line(err: BaseException) -> str:
    """The last line of a worker's traceback, without the exception's class path."""
    lines = [ln for ln in str(err).strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else repr(err)
    head, sep, rest = last.partition(": ")
    return rest if sep and "." in head and " " not in head else last


def launch_local(cfg: RunConfig, run_dir: Path, resume: bool) -> None:
    """Run ``cfg.train.workers`` processes on this machine (spawned, so each imports torch afresh) and wait."""
    import torch.multiprocessing as mp

    world = cfg.train.workers
    with tempfile.TemporaryDirectory(prefix="mmgef-group-") as meet:
        try:
            mp.start_processes(_local_worker, args=(cfg.model_dump_json(), str(run_dir), resume, world,
                                                    str(Path(meet) / "store")),
                               nprocs=world, join=True, start_method="spawn")
        except mp.ProcessRaisedException as err:
            raise MMGEFError(f"{run_dir}: data-parallel worker {err.error_index} failed: {_one_line(err)}") from None
        except mp.ProcessExitedException as err:
            raise MMGEFError(f"{run_dir}: data-parallel worker {err.error_index} died ({_death(err.exit_code)}). "
                             "Fix: resume with --resume (the last checkpoint is kept); if it recurs, fewer --workers.") from None


def _death(exit_code: int) -> str:
    """How a worker process ended, in words: a signal by name (SIGKILL usually means the memory ran out)."""
    if exit_code >= 0:
        return f"exit code {exit_code}"
    name = signal.Signals(-exit_code).name if -exit_code in signal.valid_signals() else f"signal {-exit_code}"
    return f"{name}; killed for memory?" if name == "SIGKILL" else name


def _ray_worker(config: dict) -> None:
    from ray import train as ray_train

    from mmgef.runs import train_worker

    ctx = ray_train.get_context()
    cfg = RunConfig.model_validate_json(config["cfg"])
    train_worker(cfg, Path(config["run_dir"]), config["resume"], Group(ctx.get_world_rank(), ctx.get_world_size()))
    dist.barrier()


def launch_ray(cfg: RunConfig, run_dir: Path, resume: bool, address: str) -> None:
    """Run the workers as a Ray Train ``TorchTrainer`` on a local Ray ('local') or the cluster at ``address``.

    Ray starts the processes and the torch.distributed group (gloo on CPU, nccl on GPU); rank 0 writes
    ``run_dir``, which on a cluster must be storage that rank 0's node shares with this one.
    """
    try:
        import ray
        from ray.train import RunConfig as RayRunConfig
        from ray.train import ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer
    except ImportError:
        raise ConfigError("--ray-address needs Ray Train. Fix: pip install 'mmgef[ray]'.") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=None if address == "local" else address, include_dashboard=False, log_to_driver=False)
    gpu = cfg.train.device.startswith("cuda")
    threads = cfg.train.threads or 1
    trainer = TorchTrainer(
        _ray_worker,
        train_loop_config={"cfg": cfg.model_dump_json(), "run_dir": str(run_dir.resolve()), "resume": resume},
        torch_config=TorchConfig(backend=backend_for(cfg.train.device), timeout_s=7200),
        scaling_config=ScalingConfig(num_workers=cfg.train.workers, use_gpu=gpu, resources_per_worker={"CPU": threads}),
        run_config=RayRunConfig(name=run_dir.name, storage_path=str(run_dir.resolve().parent / "ray_results"),
                                worker_runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads)}}),
    )
    try:
        trainer.fit()
    except Exception as err:  # Ray wraps a worker's error in its own TrainingFailedError
        raise MMGEFError(f"{run_dir}: Ray Train run failed: {_one_line(err)}") from None
    finally:
        if started:
            ray.shutdown()

