"""Device names checked once at the boundary, so a missing GPU is a one-line error, not a CUDA traceback."""

from __future__ import annotations

import os
import re

import torch

from mmgef.errors import ConfigError

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")


def resolve_device(name: str, option: str = "train.device") -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``mps``, available on this machine."""
    fix = "--set device=cpu" if option == "train.device" else f"{option} cpu"
    if not _DEVICE.match(name):
        raise ConfigError(f"{option} '{name}': not a device name. Fix: use cpu, cuda, cuda:N or mps (e.g. {fix}).")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"{option} '{name}' asked for but no CUDA device is available. Fix: {fix}.")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"{option} '{name}': this machine has {torch.cuda.device_count()} CUDA device(s). "
                              f"Fix: use cuda:0 .. cuda:{torch.cuda.device_count() - 1}.")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{option} 'mps' asked for but MPS is not available. Fix: {fix}.")
    return torch.device(name)


def default_threads(workers: int = 1) -> int:
    """One core fewer than this process may use, and no more than the 1-minute load average leaves free (≥ 1);
    with several data-parallel ``workers`` (which are the neighbours), the free cores shared out among them.

    torch's own default takes every core, so a second job (a sweep, a notebook, the service) oversubscribes
    the machine, and OpenMP threads spinning for a descheduled peer made two LightGCN trainings on 2 cores
    30× slower each (benchmarks/results/threads). One core left over keeps room for the neighbour; the load
    average catches jobs already running (it lags by about a minute, so it cannot see one started together)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    busy = round(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    if workers > 1:
        return max(1, (cores - busy) // workers)
    return max(1, min(cores - 1, cores - busy))


def set_threads(requested: int | None, workers: int = 1) -> int:
    """Set torch's intra-op threads to ``requested``, or to ``default_threads(workers)``; returns the count."""
    n = requested or default_threads(workers)
    torch.set_num_threads(n)
    return n
