"""glibc malloc settings for the training loop: freed blocks stay in the heap for the next step.

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
import platform
from typing import Any

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
