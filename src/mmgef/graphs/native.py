"""Compiled CPU kernels for gathers of table rows by index, where torch's own ops wait on memory.

``csr_dense``: a sparse CSR matrix times a dense table. torch's CPU product (``addmm``) runs 60–100 ns per non-zero
once the table outgrows the cache (a 64-d table, one thread); ``kernels.c`` — a row loop that sums 16 or 64 floats at
a time and prefetches the table rows it will gather (into L1, 16 non-zeros ahead, or into L2, 24 ahead, from a table
larger than ``FAR_TABLE_BYTES``) — runs 19–40 ns on the same products
(``benchmarks/bench_spmm.py``, ``benchmarks/results/scale/spmm.md``). ``csr_push``: the same product from Aᵀ, each
table row read once, in order, and added into the output rows it reaches (where those are few and hot and the
gathers would miss the cache: a user–item graph's item rows). Both also read a bfloat16 table, widened to float32
as each row is read (``train.gather_precision``, ``sparse.RoundedTable``). ``row_dots``: each query row's dot products
with its candidate rows (a kNN search's exact re-scoring), without torch's gathered copy of every candidate row.
``rows_contain``: whether each (row, key) query is in a CSR matrix's sorted row (the negative sampler's check).

mmgef compiles the file on first use with the C compiler ``CC`` names (default ``cc``), for this CPU
(``-march=native``), into ``MMGEF_CACHE_DIR`` (default ``~/.cache/mmgef``); the file's name is a digest of the
source, compiler, flags and CPU, so a changed source or another machine sharing the folder gets its own build. Where no compiler works, torch's ops are used (a warning
says so); ``MMGEF_NATIVE=0`` asks for torch's outright. ``csr_dense`` sums a row's non-zeros in their stored order,
as torch does, each rounded as torch rounds it: a multiply then an add (``-ffp-contract=off``), or one fused
multiply-add where torch's product fuses them (``torch_fuses_products``: MKL on CPUs with AVX-512). So the products
are the same bit for bit and a run saved with either evaluates to the same metrics with the other. ``row_dots`` sums in
another order than torch's bmm (last bits), so it only ranks candidates, never weighs an edge.

Threads: ``torch.get_num_threads()`` Python threads each take a range of rows holding an equal share of the work
(ctypes releases the GIL for the call), for calls of at least ``PARALLEL_WORK`` gathered rows.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import subprocess
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import torch

NATIVE_ENV = "MMGEF_NATIVE"  # 0: torch's products
KERNELS = ("compiled", "torch")  # what a child process may be asked to use (``kernel_environ``)
CACHE_ENV = "MMGEF_CACHE_DIR"
SOURCE = Path(__file__).with_name("kernels.c")
FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-shared", "-fPIC")
PARALLEL_WORK = 1 << 20  # below this a second thread's start-up costs more than it saves (Baby's graph: 0.24M)
_I64, _PTR = ctypes.c_int64, ctypes.c_void_p
_INT = ctypes.c_int
_SIGNATURES = {**{f"csr_dense_{width}{table}": (_I64, _I64, _I64, *[_PTR] * 5, _I64, _INT, _INT)
                  for width in ("i32", "i64") for table in ("", "_bf16")},
               **{f"csr_push_{width}{table}": (_I64, _I64, _I64, _I64, *[_PTR] * 5, _I64, _INT, _INT)
                  for width in ("i32", "i64") for table in ("", "_bf16")},
               "row_dots": (_I64, _I64, _I64, _I64, _I64, _PTR, _PTR, _PTR, _PTR, _INT),
               "rows_contain": (_I64, *[_PTR] * 5)}
# the tables a product kernel reads, by the suffix of its name: bfloat16 ones are widened to float32 as they are read
_TABLE_SUFFIX = {torch.float32: "", torch.bfloat16: "_bf16"}
# A table bigger than this is "far" (mostly in memory): the kernels prefetch its rows into L2, further ahead, rather
# than into L1 (kernels.c). Baby's and a 10k-item catalogue's 64-d tables (2-5 MB) are near, 100k items' (26 MB) far.
FAR_TABLE_BYTES = 8 << 20


def _far(table: torch.Tensor) -> int:
    return int(table.numel() * table.element_size() > FAR_TABLE_BYTES)


def _cpu_signature() -> str:
    """What ``-march=native`` compiles for: the CPU's model and instruction-set flags."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    return "\n".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags", "Features"))}))


def _cache_dir() -> Path:
    if folder := os.environ.get(CACHE_ENV):
        return Path(folder)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mmgef"


def compile_kernels(cc: str, target: Path, defines: tuple[str, ...] = ()) -> None:
    """Build the kernels into ``target`` atomically: concurrent workers may race, and each sees a whole file.
    ``defines`` (``-DNAME=value``) override the source's tunable constants (``benchmarks/bench_prefetch.py``)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".so.tmp")
    os.close(fd)
    try:
        subprocess.run([cc, *FLAGS, *defines, str(SOURCE), "-o", tmp], check=True, capture_output=True, text=True,
                       timeout=120)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


@functools.cache
def torch_fuses_products() -> bool:
    """Whether torch's CSR × dense product adds each term with one rounding (a fused multiply-add) rather than two.
    MKL, which torch's CPU product calls, fuses on CPUs with AVX-512 (seen on an Intel Xeon) and does not on others
    (an AMD EPYC): the kernels are built to round as torch does here. Asked of torch once per process: one row of 256
    terms of a 64-column table, against the same sum taken in NumPy's float32 term by term (a multiply, then an add)."""
    gen = torch.Generator().manual_seed(0)
    n = 256
    values, table = torch.rand(n, generator=gen), torch.randn(n, 64, generator=gen)
    row = _probe_matrix(values[None, :])
    unfused = np.zeros(64, np.float32)
    for v, x in zip(values.numpy(), table.numpy()):
        unfused = unfused + v * x
    return not np.array_equal(torch.sparse.mm(row, table)[0].numpy(), unfused)


def _probe_matrix(dense: torch.Tensor) -> torch.Tensor:
    """``dense`` as a CSR tensor with int32 indices (a product's own width), without torch's "beta" warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        adj = dense.to_sparse_csr()
        return torch.sparse_csr_tensor(adj.crow_indices().int(), adj.col_indices().int(), adj.values(), adj.shape,
                                       check_invariants=False)


def build_defines() -> tuple[str, ...]:
    """The ``-D`` flags every build of the kernels takes on this machine (``torch_fuses_products``)."""
    return ("-DFUSED_MADD",) if torch_fuses_products() else ()


@functools.cache
def kernel() -> ctypes.CDLL | None:
    """The compiled kernels (built on the first call of a process), or None where torch's ops are to be used."""
    if os.environ.get(NATIVE_ENV, "1") == "0":
        return None
    cc = os.environ.get("CC", "cc")
    defines = build_defines()
    digest = hashlib.sha256("\0".join([SOURCE.read_text(), cc, *FLAGS, *defines, _cpu_signature()]).encode()).hexdigest()[:16]
    target = _cache_dir() / f"kernels-{digest}.so"
    try:
        if not target.exists():
            compile_kernels(cc, target, defines)
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as err:
        detail = getattr(err, "stderr", None) or err
        warnings.warn(f"mmgef could not build its CPU kernels with {cc!r} into {target.parent} ({str(detail).strip()}); "
                      f"sparse products use torch's, 2-3x slower. Set CC to a C compiler or {CACHE_ENV} to a writable "
                      f"folder, or {NATIVE_ENV}=0 to use torch's without this warning.", RuntimeWarning, stacklevel=2)
        return None
    for name, argtypes in _SIGNATURES.items():
        getattr(lib, name).argtypes = argtypes
        getattr(lib, name).restype = None
    return lib


def kernel_environ(name: str, environ: dict[str, str]) -> dict[str, str]:
    """``environ`` for a child process whose sparse products should use ``name`` (one of ``KERNELS``)."""
    if name not in KERNELS:
        raise ValueError(f"kernel {name!r}: expected one of {', '.join(KERNELS)}")
    return {**environ, NATIVE_ENV: "1" if name == "compiled" else "0"}


@functools.cache
def _pool(pid: int, threads: int) -> ThreadPoolExecutor:
    """Row-range workers; keyed by process id, as a forked child inherits the pool object but not its threads."""
    return ThreadPoolExecutor(threads, thread_name_prefix="mmgef-kernels")


def _applies(m: torch.Tensor, x: torch.Tensor, out: torch.Tensor, out_rows: int) -> bool:
    """Whether a product kernel computes ``out`` ([out_rows, width of x], float32) from the CPU float32 CSR matrix
    ``m`` and a float32 or bfloat16 table ``x`` of a width torch sums as the kernels do (``sums_as_torch``)."""
    return (m.layout is torch.sparse_csr and m.device.type == "cpu" and x.device.type == "cpu"
            and m.dtype is torch.float32 and x.dtype in _TABLE_SUFFIX and x.dim() == 2
            and out.dtype is torch.float32 and out.is_contiguous() and out.shape == (out_rows, x.shape[1])
            and sums_as_torch(x.shape[1]))


@functools.cache
def sums_as_torch(width: int) -> bool:
    """Whether the product kernels give torch's product of a ``width``-column table bit for bit on this machine. MKL
    picks its order of summation by width: on an Intel Xeon (AVX-512) it sums tables of 4 to 24 columns in steps of
    4 in an order of its own, not term by term along the row. The kernels decline such widths (torch's product is
    taken), so a run computes the same numbers with or without them. Asked once per width and process: a 64 × 48
    matrix with about 16 terms per row, against torch's."""
    lib = kernel()
    if lib is None:
        return False
    gen = torch.Generator().manual_seed(width)
    adj = _probe_matrix(torch.rand(64, 48, generator=gen) * (torch.rand(64, 48, generator=gen) < 1 / 3))
    table = torch.randn(48, width, generator=gen)
    out = torch.empty(64, width)
    _dense_rows(lib, adj, table, out, accumulate=False)(0, 64)
    return torch.equal(out, torch.sparse.mm(adj, table))


def _product_kernel(lib: ctypes.CDLL, kind: str, crow: torch.Tensor, x: torch.Tensor) -> Callable[..., None]:
    """``kind``'s kernel (``csr_dense`` or ``csr_push``) for the index width of ``crow`` and the table type of ``x``."""
    return getattr(lib, f"{kind}_{'i32' if crow.dtype is torch.int32 else 'i64'}{_TABLE_SUFFIX[x.dtype]}")


def csr_dense(adj: torch.Tensor, x: torch.Tensor, out: torch.Tensor, accumulate: bool) -> bool:
    """``out = adj @ x`` (``out += adj @ x`` with ``accumulate``) by the compiled kernel; a bfloat16 ``x`` is widened
    to float32 as it is read. False, with nothing written, where it does not apply: no kernel, not a CPU CSR matrix,
    not float32 (``x``: or bfloat16), ``out`` not contiguous, or a width torch sums otherwise (``sums_as_torch``)."""
    lib = kernel()
    if lib is None or not _applies(adj, x, out, adj.shape[0]):
        return False
    if adj.shape[1] != x.shape[0]:  # the kernel trusts its indices: a short table would be read past its end
        raise ValueError(f"sparse product of a {tuple(adj.shape)} matrix with a {tuple(x.shape)} table")
    x = x.contiguous()
    crow = adj.crow_indices()
    _in_row_ranges(_dense_rows(lib, adj, x, out, accumulate), adj.shape[0], adj.values().numel(),
                   lambda shares: torch.searchsorted(crow, shares.to(crow.dtype)))
    return True


def _dense_rows(lib: ctypes.CDLL, adj: torch.Tensor, x: torch.Tensor, out: torch.Tensor,
                accumulate: bool) -> Callable[[int, int], None]:
    """The gather kernel for rows [lo, hi) of ``adj @ x`` into ``out`` (contiguous ``x``; the caller checked the
    shapes): what ``csr_dense`` runs per thread and ``sums_as_torch`` probes."""
    crow, col, values = adj.crow_indices(), adj.col_indices(), adj.values()
    run = _product_kernel(lib, "csr_dense", crow, x)
    n_rows = adj.shape[0]
    pointers = (crow.data_ptr(), col.data_ptr(), values.data_ptr(), x.data_ptr(), out.data_ptr(), x.shape[1],
                int(accumulate), _far(x))
    return lambda lo, hi: run(n_rows, lo, hi, *pointers)


def csr_push(adj_t: torch.Tensor, dest_crow: torch.Tensor, x: torch.Tensor, out: torch.Tensor, accumulate: bool) -> bool:
    """``out = A @ x`` (``+=`` with ``accumulate``) from ``adj_t`` = Aᵀ as CSR: each row of ``x`` is read once, in
    order, and added into the rows of ``out`` it reaches (``kernels.c``: where A's rows gather from a table too big
    to cache but their own rows are few and hot). ``dest_crow``: A's own row pointer (shares the rows among threads).
    The sums are ``csr_dense``'s over A's sorted rows, bit for bit. False, with nothing written, where the kernel
    does not apply (as ``csr_dense``)."""
    lib = kernel()
    if lib is None or not _applies(adj_t, x, out, adj_t.shape[1]):
        return False
    if adj_t.shape[0] != x.shape[0] or dest_crow.shape != (adj_t.shape[1] + 1,):
        raise ValueError(f"sparse push of a {tuple(adj_t.shape)} transposed matrix with a {tuple(x.shape)} table "
                         f"and {dest_crow.numel()} row pointers")
    x = x.contiguous()
    crow, col, values = adj_t.crow_indices(), adj_t.col_indices(), adj_t.values()
    run = _product_kernel(lib, "csr_push", crow, x)
    n_src, n_dst = adj_t.shape
    pointers = (crow.data_ptr(), col.data_ptr(), values.data_ptr(), x.data_ptr(), out.data_ptr(), x.shape[1],
                int(accumulate), _far(out))  # the push prefetches the rows it writes
    _in_row_ranges(lambda lo, hi: run(n_src, n_dst, lo, hi, *pointers), n_dst, values.numel(),
                   lambda shares: torch.searchsorted(dest_crow, shares.to(dest_crow.dtype)))
    return True


def row_dots(x: torch.Tensor, idx: torch.Tensor, queries: torch.Tensor) -> torch.Tensor | None:
    """``out[i, j] = queries[i] · x[idx[i, j]]`` (no gradient), or None where the kernel does not apply (no kernel,
    not CPU float32 tables with int64 indices)."""
    lib = kernel()
    if (lib is None or x.device.type != "cpu" or x.dtype is not torch.float32 or queries.dtype is not torch.float32
            or idx.dtype is not torch.int64 or idx.dim() != 2 or queries.device.type != "cpu"):
        return None
    (n, k), d = idx.shape, x.shape[1]
    if queries.shape != (n, d):
        raise ValueError(f"row dots of {n} queries of {tuple(queries.shape)} against a table of {tuple(x.shape)}")
    if idx.numel() and not (0 <= int((bounds := torch.aminmax(idx)).min) and int(bounds.max) < x.shape[0]):
        raise ValueError(f"row dots: candidate ids outside the table's {x.shape[0]} rows")
    x, idx, queries = x.detach().contiguous(), idx.contiguous(), queries.detach().contiguous()
    out = torch.empty(n, k)
    pointers = (idx.data_ptr(), x.data_ptr(), queries.data_ptr(), out.data_ptr(), _far(x))
    _in_row_ranges(lambda lo, hi: lib.row_dots(n, lo, hi, k, d, *pointers), n, n * k,
                   lambda shares: torch.div(shares, k, rounding_mode="floor"))
    return out


def rows_contain(indptr: np.ndarray, keys: np.ndarray, rows: np.ndarray, queries: np.ndarray) -> np.ndarray | None:
    """``out[q]``: whether ``queries[q]`` is in ``keys[indptr[rows[q]]:indptr[rows[q] + 1]]`` (each such slice
    sorted; int64 arrays), or None where no kernel is built. One thread: a training batch's check takes milliseconds."""
    lib = kernel()
    if lib is None:
        return None
    indptr, keys, rows, queries = (np.ascontiguousarray(a, dtype=np.int64) for a in (indptr, keys, rows, queries))
    if rows.shape != queries.shape:
        raise ValueError(f"rows_contain: {rows.size} rows for {queries.size} queries")
    if rows.size and not (0 <= rows.min() and rows.max() < len(indptr) - 1):
        raise ValueError(f"rows_contain: row ids outside the matrix's {len(indptr) - 1} rows")
    out = np.empty(rows.shape, dtype=np.uint8)
    lib.rows_contain(rows.size, rows.ctypes.data, queries.ctypes.data, indptr.ctypes.data, keys.ctypes.data,
                     out.ctypes.data)
    return out.view(bool)


def _in_row_ranges(run: Callable[[int, int], None], n_rows: int, work: int,
                   row_of: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """``run(lo, hi)`` over [0, n_rows): at once, or on ``torch.get_num_threads()`` threads, each a range of rows
    holding an equal share of ``work`` (``row_of`` maps shares of work to the rows they start)."""
    threads = torch.get_num_threads()
    if threads < 2 or work < PARALLEL_WORK or n_rows < threads:
        run(0, n_rows)
        return
    cuts = [0, *row_of(torch.arange(1, threads, dtype=torch.int64) * work // threads).tolist(), n_rows]
    parts = [(lo, hi) for lo, hi in zip(cuts[:-1], cuts[1:]) if hi > lo]
    list(_pool(os.getpid(), threads).map(lambda part: run(*part), parts))
