"""Which memory allocator the process uses, and glibc malloc settings for the training loop.

``exec_with_allocator`` (the ``mmgef`` command calls it first) re-runs the command under jemalloc, as
``MMGEF_ALLOCATOR`` says: ``auto`` (default: jemalloc where a library is found, else the system's), ``jemalloc``
(an error if none is found) or ``system`` (glibc). glibc's heap fragments under a training step's mix of block
sizes: MM-GEF on Baby-size data peaked at 704 MB with ~200 MB of its heap in use; under jemalloc, which keeps
blocks of one size class together, 597 MB in the same time per epoch, and at 100k+ items it also stops the
page faults of glibc's fresh mappings for large blocks (benchmarks/results/epoch_speed_allocator.md,
benchmarks/results/scale/allocator_jemalloc.md). The library is found without a download: ``MMGEF_JEMALLOC``
(a path), else the copy Ray's wheel ships (Ray is a dependency), else the system's ``libjemalloc``.

glibc settings: freed blocks stay in the heap for the next step.

Every optimizer step allocates and frees the same large tensors (each propagation layer's table, its
gradient, Adam's temporaries). glibc serves a block above its mmap threshold (which it raises to at
most 32 MB) with a fresh ``mmap`` and returns it to the kernel when freed, so once the tables pass
32 MB (about 130k nodes × 64 floats) every step page-faults and zeroes all of them again: at 300k
items MM-GEF's epoch spent a quarter of its time there (benchmarks/results/scale/allocator.md).
Serving every block from the heap and never trimming it lets a step reuse the pages the previous one
freed. Blocks that fragmentation leaves unused would then stay resident and the heap would creep (at
100k items +540 MB over 16 epochs), so ``release_freed_memory`` hands every free page back once per
epoch: one step's worth of faults per epoch instead of every step's. Within an epoch fragmentation still
costs memory (MM-GEF at 300k items: peak 7.7 GB against 4.3 GB), so it is an option (``train.reuse_freed_memory``),
off by default.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import os
import platform
import sys
from pathlib import Path
from typing import Any

from mmgef.errors import ConfigError

ALLOCATOR_ENV = "MMGEF_ALLOCATOR"  # auto | jemalloc | system
JEMALLOC_ENV = "MMGEF_JEMALLOC"  # a libjemalloc.so to preload instead of the one found
ALLOCATORS = ("auto", "jemalloc", "system")
# jemalloc's settings unless MALLOC_CONF says otherwise: keep freed pages for the next step (no decay) and serve
# large blocks from the ordinary arenas (by default those above 8 MB get an arena that returns them at once), so a
# step reuses what the last one freed instead of page-faulting it in again (LightGCN at 100k items: 94k page faults
# per epoch against 10M with jemalloc's defaults and 5.3M with glibc's). One arena (``narenas:1``) for every thread:
# torch's intra-op threads seldom allocate, and each thread's cache still serves small blocks, while one arena per
# thread kept freed blocks apart (MM-GEF, 2 threads: on Baby-size data peak 595–597 MB against 602–604 MB at the same
# speed; at 100k items the same; at 1M items 14.7 against 15.9 GB, epoch 343 against 354 s;
# benchmarks/results/epoch_speed_session32.md).
JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1,oversize_threshold:0,narenas:1"
# Under jemalloc, torch also advises every block of 2 MB or more for transparent huge pages (``madvise``; torch's own
# ``THP_MEM_ALLOC_ENABLE``, read once at its first allocation, so set before the re-run): a sparse product's random
# row gathers from a table past the TLB's reach then need one TLB entry per 2 MB instead of per 4 kB. MM-GEF's
# training step (one thread) 9–14% shorter from 100k items up (1M: 7.28 → 6.29 s; 300k interleaved: 1.60 →
# 1.45–1.47 s), at 10k and on Baby-size data unchanged, peak RSS unchanged but once (+7%); a 100k epoch 4% shorter
# (interleaved), a 1M one level (233 against 230 s, an hour apart; benchmarks/results/scale/huge_pages.md). Only with
# jemalloc, which keeps the freed pages for the next step; glibc would map and fault in fresh huge pages every step.
# ``THP_MEM_ALLOC_ENABLE=0`` turns it off.
HUGE_PAGES_ENV = "THP_MEM_ALLOC_ENABLE"
_EXEC_MARK = "MMGEF_ALLOCATOR_EXEC"  # set on the re-run, so a preload that did not take cannot loop

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from glibc's malloc.h
M_MMAP_MAX = -4
NEVER_TRIM = 2**31 - 1  # the largest value mallopt takes (a C int)


def _glibc_function(name: str) -> Any:
    """A function of the process's C library where that is glibc, else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return getattr(ctypes.CDLL(None), name, None)


def reuse_freed_memory() -> bool:
    """Tell glibc to keep freed blocks for reuse (no mmap for large blocks, no heap trimming).

    Process-wide and not undone, like ``torch.set_num_threads``. Returns False where the C library is
    not glibc (macOS, musl): those allocators keep their own policy. Results do not depend on it.
    """
    mallopt = _glibc_function("mallopt")
    return mallopt is not None and bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))


def release_freed_memory() -> None:
    """Return the heap's free pages to the kernel (glibc's ``malloc_trim``; elsewhere nothing)."""
    trim = _glibc_function("malloc_trim")
    if trim is not None:
        trim(0)


def allocator_choice() -> str:
    """The allocator ``MMGEF_ALLOCATOR`` names (default ``auto``), checked."""
    name = os.environ.get(ALLOCATOR_ENV, "auto").strip().lower() or "auto"
    if name not in ALLOCATORS:
        raise ConfigError(f"{ALLOCATOR_ENV}={name!r}: unknown allocator. Fix: set it to one of {', '.join(ALLOCATORS)}.")
    return name


def jemalloc_library() -> str | None:
    """A jemalloc shared library to preload: ``MMGEF_JEMALLOC``, else Ray's bundled copy, else the system's."""
    explicit = os.environ.get(JEMALLOC_ENV)
    if explicit:
        if not Path(explicit).is_file():
            raise ConfigError(f"{JEMALLOC_ENV}={explicit}: no such file. Fix: point it at a libjemalloc.so, or unset it "
                              f"to use the one Ray ships.")
        return explicit
    spec = importlib.util.find_spec("ray")  # locates the package without importing it (Ray's import is slow)
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        bundled = Path(folder) / "core" / "libjemalloc.so"
        if bundled.is_file():
            return str(bundled)
    return ctypes.util.find_library("jemalloc")  # a soname such as libjemalloc.so.2, which LD_PRELOAD resolves


def jemalloc_loaded() -> bool:
    """Whether jemalloc is mapped into this process (preloaded)."""
    try:
        with open("/proc/self/maps") as fh:
            return any("jemalloc" in line for line in fh)
    except OSError:
        return False


def allocator_environ(name: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default this process's) for a child process that should use allocator ``name``."""
    env = dict(os.environ if environ is None else environ)
    env[ALLOCATOR_ENV] = name
    if name == "system":  # a jemalloc this process was started with is not handed down
        kept = [x for x in env.pop("LD_PRELOAD", "").split(":") if x and "jemalloc" not in Path(x).name]
        if kept:
            env["LD_PRELOAD"] = ":".join(kept)
    elif name == "jemalloc":
        _preload(env, _required_library())
    return env


def _required_library() -> str:
    """``jemalloc_library()``, or the one-line error that none was found."""
    lib = jemalloc_library()
    if lib is None:
        raise ConfigError(f"{ALLOCATOR_ENV}=jemalloc: no jemalloc library found (Ray's wheel ships one; is Ray "
                          f"installed?). Fix: set {JEMALLOC_ENV} to a libjemalloc.so, or {ALLOCATOR_ENV}=system.")
    return lib


def _preload(env: dict[str, str], lib: str) -> None:
    """Put ``lib`` first in ``env``'s LD_PRELOAD (once), and mmgef's jemalloc settings and torch's huge pages unless
    MALLOC_CONF and THP_MEM_ALLOC_ENABLE are set."""
    if lib not in env.get("LD_PRELOAD", "").split(":"):
        env["LD_PRELOAD"] = ":".join(x for x in (lib, env.get("LD_PRELOAD", "")) if x)
    env.setdefault("MALLOC_CONF", JEMALLOC_CONF)
    env.setdefault(HUGE_PAGES_ENV, "1")


def exec_with_allocator() -> None:
    """Re-run this process (same interpreter, same arguments) under the allocator ``MMGEF_ALLOCATOR`` asks for.

    An allocator is chosen when a process starts (``LD_PRELOAD``), so the command line re-executes itself once,
    before it has done anything; its worker processes inherit the environment. Returns when nothing is to do
    (``system``, ``auto`` without a library, jemalloc already loaded, not Linux, or the re-run already happened)."""
    choice = allocator_choice()
    if choice == "system" or platform.system() != "Linux" or jemalloc_loaded() or os.environ.get(_EXEC_MARK):
        return
    lib = jemalloc_library() if choice == "auto" else _required_library()
    if lib is None:
        return
    env = {**os.environ, ALLOCATOR_ENV: "jemalloc", _EXEC_MARK: "1"}
    _preload(env, lib)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, list(sys.orig_argv), env)
