"""The training loop's allocator setting: a freed large tensor's pages are reused, not faulted in again."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from mmgef.config import RunConfig

# Allocate, touch and free a 64 MB tensor (above glibc's largest mmap threshold) 19 times; count the minor page
# faults of the last 16. With the setting the first block's pages serve the rest.
PROBE = r"""
import json, resource, sys
import torch
if sys.argv[1] == "1":
    from mmgef.training.allocator import reuse_freed_memory
    assert reuse_freed_memory()
def step():
    x = torch.ones(1 << 24)
    x.sum()
    del x
for _ in range(3):  # the heap settles: a block may first land beside the one freed before it
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(16):
    step()
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
"""
PAGES = 16 * (64 << 20) // 4096


def minor_faults(reuse: bool) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, str(int(reuse))], capture_output=True, text=True, check=True)
    return int(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_freed_tensors_are_reused_instead_of_faulted_in_again() -> None:
    assert minor_faults(reuse=False) > PAGES // 2  # glibc's default: every 64 MB block is a fresh mapping
    assert minor_faults(reuse=True) < PAGES // 3


def test_the_setting_does_not_change_a_runs_identity() -> None:
    off = RunConfig.model_validate({"model": "lightgcn", "data": {"name": "builtin"}})
    on = off.model_copy(deep=True)
    on.train.reuse_freed_memory = True
    assert on.digest() == off.digest()


def trained_run(out, model: str, sets: list[str], env: dict[str, str]) -> tuple[list[dict], dict]:
    """``mmgef train`` of ``model`` for 3 epochs in a fresh process: its history lines and test metrics."""
    cmd = [sys.executable, "-m", "mmgef.cli", "train", "--model", model, "--out", str(out)]
    for item in ("epochs=3", "threads=1", "progress=false", *sets):
        cmd += ["--set", item]
    subprocess.run(cmd, check=True, capture_output=True, env={**env, "OMP_NUM_THREADS": "1"})
    history = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    return history, json.loads((out / "results.json").read_text())["test"]


def test_a_training_with_the_setting_gives_the_same_run(tmp_path) -> None:
    """In fresh processes (the setting is process-wide): same losses every epoch, same test metrics."""
    outcome = {}
    for reuse in ("false", "true"):
        history, test = trained_run(tmp_path / reuse, "lightgcn", [f"reuse_freed_memory={reuse}"], dict(os.environ))
        assert all(h["peak_rss_mb"] > 0 for h in history)
        outcome[reuse] = ([h["loss"] for h in history], test)
    assert outcome["true"] == outcome["false"]


# ---------------------------------------------------------------- MMGEF_ALLOCATOR (jemalloc through a re-run)

LOADED = ("from mmgef.training.allocator import exec_with_allocator, jemalloc_loaded\n"
          "exec_with_allocator()\nprint(jemalloc_loaded())")


def run_probe(allocator: str, script: str = LOADED, **env: str) -> subprocess.CompletedProcess:
    """``script`` in a fresh process asking for ``allocator``, with none of this process's allocator settings."""
    clean = {k: v for k, v in os.environ.items()
             if k not in ("LD_PRELOAD", "MMGEF_ALLOCATOR_EXEC", "MMGEF_JEMALLOC", "THP_MEM_ALLOC_ENABLE")}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**clean, "MMGEF_ALLOCATOR": allocator, **env})


@pytest.mark.skipif(platform.system() != "Linux", reason="preloading is Linux's LD_PRELOAD")
def test_the_process_reruns_itself_under_jemalloc_when_asked() -> None:
    from mmgef.training.allocator import jemalloc_library

    if jemalloc_library() is None:
        pytest.skip("no jemalloc here (Ray's wheel ships one)")
    assert run_probe("jemalloc").stdout.split() == ["True"]
    assert run_probe("auto").stdout.split() == ["True"]  # the default where a library is found
    assert run_probe("system").stdout.split() == ["False"]


def test_an_unknown_allocator_or_library_path_is_a_one_line_error(tmp_path) -> None:
    bad = subprocess.run([sys.executable, "-m", "mmgef.cli", "models"], capture_output=True, text=True,
                         env={**os.environ, "MMGEF_ALLOCATOR": "tcmalloc"})
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: MMGEF_ALLOCATOR='tcmalloc': unknown allocator. Fix: set it to one of auto, jemalloc, system."
    missing = run_probe("jemalloc", MMGEF_JEMALLOC=str(tmp_path / "libjemalloc.so"))
    assert missing.returncode != 0 and f"MMGEF_JEMALLOC={tmp_path / 'libjemalloc.so'}: no such file" in missing.stderr


def test_a_child_environment_names_the_library_once() -> None:
    from mmgef.training.allocator import allocator_environ, jemalloc_library

    lib = jemalloc_library()
    if lib is None:
        pytest.skip("no jemalloc here")
    env = allocator_environ("jemalloc", {"LD_PRELOAD": "libother.so"})
    assert env["LD_PRELOAD"] == f"{lib}:libother.so" and env["MMGEF_ALLOCATOR"] == "jemalloc"
    assert allocator_environ("jemalloc", env)["LD_PRELOAD"] == env["LD_PRELOAD"]
    assert "LD_PRELOAD" not in allocator_environ("system", {})
    assert allocator_environ("system", env)["LD_PRELOAD"] == "libother.so"  # jemalloc is not handed down


# A touched 64 MB tensor: whether its mapping was advised for huge pages (``hg`` among the mapping's flags in
# /proc/self/smaps) and how much of it huge pages back (where the kernel has them to give)
HUGE = r"""
import json
from mmgef.training.allocator import exec_with_allocator
exec_with_allocator()
import torch
big = torch.ones(1 << 24)
at = big.data_ptr()
inside, advised, huge_kb = False, False, 0
with open("/proc/self/smaps") as fh:
    for line in fh:
        head = line.split()[0]
        if "-" in head and ":" not in head:  # a mapping's first line: its address range
            lo, hi = (int(a, 16) for a in head.split("-"))
            inside = lo <= at < hi
        elif inside and head == "AnonHugePages:":
            huge_kb = int(line.split()[1])
        elif inside and head == "VmFlags:":
            advised = "hg" in line.split()[1:]
print(json.dumps({"advised": advised, "huge_kb": huge_kb}))
"""


def huge_page_probe(allocator: str, **env: str) -> dict:
    out = run_probe(allocator, HUGE, **env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_jemalloc_comes_with_torchs_huge_pages_unless_the_environment_says_otherwise() -> None:
    from mmgef.training.allocator import allocator_environ, jemalloc_library

    if platform.system() != "Linux" or jemalloc_library() is None:
        pytest.skip("no jemalloc to preload here")
    assert allocator_environ("jemalloc", {})["THP_MEM_ALLOC_ENABLE"] == "1"
    assert allocator_environ("jemalloc", {"THP_MEM_ALLOC_ENABLE": "0"})["THP_MEM_ALLOC_ENABLE"] == "0"
    assert "THP_MEM_ALLOC_ENABLE" not in allocator_environ("system", {})
    on = huge_page_probe("jemalloc")
    assert on["advised"]
    assert not huge_page_probe("jemalloc", THP_MEM_ALLOC_ENABLE="0")["advised"]
    assert not huge_page_probe("system")["advised"]
    mode = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if mode.is_file() and "[never]" not in mode.read_text():  # the kernel backs an advised range with huge pages
        assert on["huge_kb"] >= 2048


def test_a_training_under_jemalloc_gives_the_same_run(tmp_path) -> None:
    """The allocator changes where tensors live, not what they hold: same losses every epoch, same test metrics."""
    from mmgef.training.allocator import allocator_environ, jemalloc_library

    if platform.system() != "Linux" or jemalloc_library() is None:
        pytest.skip("no jemalloc to preload here")
    outcome = {}
    for allocator in ("system", "jemalloc"):
        history, test = trained_run(tmp_path / allocator, "mmgef", [], allocator_environ(allocator))
        outcome[allocator] = ([h["loss"] for h in history], test)
    assert outcome["jemalloc"] == outcome["system"]
