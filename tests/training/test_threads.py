"""Thread defaults that leave room for a neighbouring job (issue 17)."""

from __future__ import annotations

import os

import pytest
import torch

from mmgef.config import resolve_run_config
from mmgef.devices import default_threads, set_threads


@pytest.mark.parametrize(("cores", "load", "want"), [(2, 0.0, 1), (16, 0.2, 15), (16, 6.4, 10), (8, 30.0, 1), (1, 0.0, 1)])
def test_default_threads_leave_a_core_and_the_busy_ones(monkeypatch, cores, load, want):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(cores)))
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert default_threads() == want


def test_set_threads_applies_the_request_and_restores(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setattr("mmgef.devices.default_threads", lambda workers=1: 2)
        assert set_threads(None) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_thread_count_does_not_change_a_runs_identity():
    a = resolve_run_config(model="lightgcn", data="synthetic")
    b = resolve_run_config(model="lightgcn", data="synthetic", sets=["threads=3"])
    assert b.train.threads == 3 and a.digest() == b.digest()


def test_importing_mmgef_asks_openmp_to_sleep_when_idle():
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", "import os, mmgef; print(os.environ['OMP_WAIT_POLICY'])"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert out == "PASSIVE"
