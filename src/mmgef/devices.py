"""Device names checked once at the boundary, so a missing GPU is a one-line error, not a CUDA traceback."""

from __future__ import annotations

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
