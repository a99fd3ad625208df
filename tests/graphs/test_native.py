"""The compiled CSR × dense kernel: the same products as torch's, in place, any width, any thread count."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mmgef.graphs import native
from mmgef.graphs.sparse import sparse_product, to_torch_csr

pytestmark = pytest.mark.skipif(native.kernel() is None, reason="no C compiler: torch's products are used")
SUMS_AS_TORCH = native.sums_as_torch


@pytest.fixture(autouse=True)
def every_width(monkeypatch):
    """The kernels at every width, also those that torch's product sums in an order of its own on this machine and
    the library hands to torch (``sums_as_torch``): their loops are the ones tested here."""
    monkeypatch.setattr(native, "sums_as_torch", lambda width: True)


def _torch_product(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """torch's product taken over the table zero-padded to 64 columns, where MKL sums term by term along each row on
    every CPU seen; narrower tables it may sum otherwise. Each column's sum is its own: padding changes none."""
    return torch.sparse.mm(a, torch.nn.functional.pad(x, (0, max(0, 64 - x.shape[1]))))[:, : x.shape[1]]


def _matrix(rows: int, cols: int, dtype: torch.dtype, seed: int = 0) -> tuple[sp.csr_matrix, torch.Tensor]:
    m = sp.random(rows, cols, density=0.08, format="csr", dtype=np.float32, random_state=seed)
    m.data[m.indptr[rows // 2] : m.indptr[rows // 2 + 1]] = 0  # an empty row: its output must still be written
    m.eliminate_zeros()
    a = to_torch_csr(m)
    crow, col = a.crow_indices().to(dtype), a.col_indices().to(dtype)
    return m, torch.sparse_csr_tensor(crow, col, a.values(), a.shape, check_invariants=True)


def _transpose(m: sp.csr_matrix, dtype: torch.dtype) -> torch.Tensor:
    """mᵀ as the CSR tensor ``csr_push`` reads, its indices of ``dtype``."""
    t = to_torch_csr(m.T.tocsr())
    return torch.sparse_csr_tensor(t.crow_indices().to(dtype), t.col_indices().to(dtype), t.values(), t.shape,
                                   check_invariants=True)


@pytest.mark.parametrize("dim", [16, 64, 7, 130])  # widths with their own loop, and generic ones
@pytest.mark.parametrize("index", [torch.int32, torch.int64])
@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_writes_or_adds_the_product(monkeypatch, dim, index, threads):
    monkeypatch.setattr(native, "PARALLEL_WORK", 0)  # let 2 threads split even a small matrix
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    m, a = _matrix(257, 190, index)
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(190, dim)).astype(np.float32))
    want = m @ x.numpy()
    out = torch.full((257, dim), float("nan"))
    assert native.csr_dense(a, x, out, accumulate=False)
    assert np.allclose(out.numpy(), want, atol=1e-5)
    out = torch.ones(257, dim)
    assert native.csr_dense(a, x, out, accumulate=True)
    assert np.allclose(out.numpy(), want + 1, atol=1e-5)


def test_kernel_sums_as_torch_does_and_threads_change_no_bit(monkeypatch):
    m, a = _matrix(3000, 2000, torch.int32, seed=3)
    x = torch.randn(2000, 64, generator=torch.Generator().manual_seed(0))
    one = torch.empty(3000, 64)
    assert native.csr_dense(a, x, one, accumulate=False)
    monkeypatch.setattr(native, "PARALLEL_WORK", 0)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    three = torch.empty(3000, 64)
    assert native.csr_dense(a, x, three, accumulate=False)
    assert torch.equal(one, three)  # each row is summed in its stored order, whoever sums it
    assert torch.equal(one, torch.sparse.mm(a, x))  # each term rounded as torch rounds it (torch_fuses_products)


def _sequential_product(fused: bool):
    """A stand-in for torch.sparse.mm summing each row in stored order, each term with one rounding (fused: through
    float64, exact for a float32 product) or two."""
    def product(a, x):
        crow, col, val, table = a.crow_indices(), a.col_indices(), a.values().numpy(), x.numpy()
        out = np.zeros((a.shape[0], x.shape[1]), np.float32)
        for r in range(a.shape[0]):
            for j in range(int(crow[r]), int(crow[r + 1])):
                term = np.float64(val[j]) * table[col[j]].astype(np.float64) if fused else val[j] * table[col[j]]
                out[r] = (out[r] + term).astype(np.float32)
        return torch.from_numpy(out)
    return product


@pytest.mark.parametrize("fused", [False, True])
def test_the_probe_tells_a_fused_product_from_a_multiply_then_add(monkeypatch, fused):
    monkeypatch.setattr(torch.sparse, "mm", _sequential_product(fused))
    native.torch_fuses_products.cache_clear()
    try:
        assert native.torch_fuses_products() is fused
        assert native.build_defines() == (("-DFUSED_MADD",) if fused else ())
    finally:
        native.torch_fuses_products.cache_clear()


def test_a_width_torch_sums_otherwise_goes_to_torch(monkeypatch):
    monkeypatch.setattr(native, "sums_as_torch", SUMS_AS_TORCH)
    real_mm = torch.sparse.mm
    SUMS_AS_TORCH.cache_clear()
    try:
        assert SUMS_AS_TORCH(64) and SUMS_AS_TORCH(130)  # the kernels are built to round as torch does
        SUMS_AS_TORCH.cache_clear()
        # a torch that sums in float64: no width is summed alike, the kernels decline, the product is torch's
        monkeypatch.setattr(torch.sparse, "mm", lambda a, x: real_mm(a.to(torch.float64), x.double()).float())
        _, a = _matrix(40, 30, torch.int32)
        x = torch.randn(30, 64, generator=torch.Generator().manual_seed(0))
        out = torch.full((40, 64), float("nan"))
        assert not SUMS_AS_TORCH(64) and not native.csr_dense(a, x, out, accumulate=False)
        assert out.isnan().all()  # nothing written
        monkeypatch.setattr(torch.sparse, "mm", real_mm)
        assert torch.equal(sparse_product(a, x), torch.sparse.mm(a, x))  # torch's float32 product
    finally:
        SUMS_AS_TORCH.cache_clear()


def test_kernel_declines_what_it_does_not_compute_and_refuses_a_short_table():
    _, a = _matrix(20, 10, torch.int32)
    out = torch.empty(20, 4)
    assert not native.csr_dense(a.to(torch.float64), torch.randn(10, 4, dtype=torch.float64), out.double(), False)
    assert not native.csr_dense(a.to_sparse_coo(), torch.randn(10, 4), out, False)
    assert not native.csr_dense(a, torch.randn(10, 4), torch.empty(4, 20).T, False)  # output not contiguous
    with pytest.raises(ValueError, match=r"\(20, 10\) matrix with a \(9, 4\) table"):
        native.csr_dense(a, torch.randn(9, 4), out, False)


def test_a_transposed_table_gives_the_same_product():
    m, a = _matrix(50, 40, torch.int32)
    x = torch.randn(4, 40).T  # not contiguous: the kernel reads rows, so it takes a contiguous copy
    out = torch.empty(50, 4)
    assert native.csr_dense(a, x, out, accumulate=False)
    assert np.allclose(out.numpy(), m @ x.numpy(), atol=1e-5)


@pytest.fixture
def fresh_kernel():
    native.kernel.cache_clear()
    yield
    native.kernel.cache_clear()


def test_no_compiler_means_torch_products_and_a_warning(monkeypatch, tmp_path, fresh_kernel):
    monkeypatch.setenv(native.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.warns(RuntimeWarning, match="could not build its CPU kernels.*MMGEF_NATIVE=0"):
        assert native.kernel() is None
    m, a = _matrix(30, 20, torch.int32)
    x = torch.randn(20, 8)
    assert torch.equal(sparse_product(a, x), torch.sparse.mm(a, x))  # torch's product, bit for bit
    assert list(tmp_path.iterdir()) == []  # no half-written library left behind


def test_the_build_is_cached_per_source_and_compiler(monkeypatch, tmp_path, fresh_kernel):
    monkeypatch.setenv(native.CACHE_ENV, str(tmp_path))
    assert native.kernel() is not None
    built = sorted(p.name for p in tmp_path.iterdir())
    assert len(built) == 1 and built[0].startswith("kernels-") and built[0].endswith(".so")
    native.kernel.cache_clear()
    monkeypatch.setattr(native, "compile_kernels", lambda *a: pytest.fail("rebuilt a library that was there"))
    assert native.kernel() is not None
    native.kernel.cache_clear()
    monkeypatch.setenv(native.NATIVE_ENV, "0")
    assert native.kernel() is None


def test_sparse_product_goes_through_the_kernel(monkeypatch):
    calls = []
    run = native.csr_dense
    monkeypatch.setattr(native, "csr_dense", lambda *a: calls.append(a[0].shape) or run(*a))
    m, a = _matrix(30, 20, torch.int32)
    y = sparse_product(a, torch.ones(20, 3))
    assert calls == [(30, 20)]
    assert np.allclose(y.numpy(), m @ np.ones((20, 3), np.float32), atol=1e-6)


@pytest.mark.parametrize("dim", [7, 64, 130])
@pytest.mark.parametrize("threads", [1, 2])
def test_row_dots_score_each_query_against_its_candidates(monkeypatch, dim, threads):
    monkeypatch.setattr(native, "PARALLEL_WORK", 0)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    gen = torch.Generator().manual_seed(dim)
    x, queries = torch.randn(80, dim, generator=gen), torch.randn(33, dim, generator=gen)
    idx = torch.randint(0, 80, (33, 9), generator=gen)
    got = native.row_dots(x, idx, queries)
    assert got is not None and got.shape == (33, 9)
    assert torch.allclose(got, torch.einsum("nd,nkd->nk", queries, x[idx]), atol=1e-5)


def test_row_dots_decline_other_types_and_refuse_ids_outside_the_table():
    x, queries = torch.randn(10, 4), torch.randn(3, 4)
    assert native.row_dots(x.double(), torch.zeros(3, 2, dtype=torch.long), queries.double()) is None
    assert native.row_dots(x, torch.zeros(3, 2, dtype=torch.int32), queries) is None
    with pytest.raises(ValueError, match="outside the table's 10 rows"):
        native.row_dots(x, torch.tensor([[0, 1], [2, 10], [3, 4]]), queries)
    with pytest.raises(ValueError, match="outside the table"):
        native.row_dots(x, torch.tensor([[0, 1], [2, -1], [3, 4]]), queries)
    with pytest.raises(ValueError, match="3 queries"):
        native.row_dots(x, torch.zeros(3, 2, dtype=torch.long), torch.randn(2, 4))


def test_kernel_environ_names_the_kernel_a_child_process_uses():
    assert native.kernel_environ("torch", {"A": "1"}) == {"A": "1", native.NATIVE_ENV: "0"}
    assert native.kernel_environ("compiled", {})[native.NATIVE_ENV] == "1"
    with pytest.raises(ValueError, match="kernel 'mkl': expected one of compiled, torch"):
        native.kernel_environ("mkl", {})


@pytest.mark.parametrize("dim", [16, 64, 7, 130])
@pytest.mark.parametrize("index", [torch.int32, torch.int64])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_push_writes_or_adds_the_product_bit_for_bit_as_the_gather(monkeypatch, dim, index, threads):
    monkeypatch.setattr(native, "PARALLEL_WORK", 0)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    m, a = _matrix(257, 190, index)
    a_t = _transpose(m, index)
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(190, dim)).astype(np.float32))
    gathered = torch.empty(257, dim)
    assert native.csr_dense(a, x, gathered, accumulate=False)
    out = torch.full((257, dim), float("nan"))
    assert native.csr_push(a_t, a.crow_indices(), x, out, accumulate=False)
    assert torch.equal(out, gathered)  # each row gets its terms in ascending column order, as the gather sums them
    out = torch.ones(257, dim)
    assert native.csr_push(a_t, a.crow_indices(), x, out, accumulate=True)
    assert np.allclose(out.numpy(), m @ x.numpy() + 1, atol=1e-5)


def test_push_declines_what_it_does_not_compute_and_refuses_mismatched_shapes():
    m, a = _matrix(20, 10, torch.int32)
    a_t = to_torch_csr(m.T.tocsr())
    out = torch.empty(20, 4)
    as_double = torch.randn(10, 4, dtype=torch.float64)
    assert not native.csr_push(a_t.to(torch.float64), a.crow_indices(), as_double, out.double(), False)
    assert not native.csr_push(a_t, a.crow_indices(), torch.randn(10, 4), torch.empty(4, 20).T, False)
    with pytest.raises(ValueError, match=r"\(10, 20\) transposed matrix with a \(9, 4\) table"):
        native.csr_push(a_t, a.crow_indices(), torch.randn(9, 4), out, False)
    with pytest.raises(ValueError, match="and 20 row pointers"):
        native.csr_push(a_t, a.crow_indices()[:-1], torch.randn(10, 4), out, False)


@pytest.mark.parametrize("far_bytes", [0, 1 << 40])  # every table far (L2 prefetches), every table near (L1)
def test_far_and_near_prefetches_give_the_same_numbers(monkeypatch, far_bytes):
    monkeypatch.setattr(native, "FAR_TABLE_BYTES", far_bytes)
    gen = torch.Generator().manual_seed(3)
    a = torch.rand(40, 30, generator=gen).mul_(torch.rand(40, 30, generator=gen) < 0.3).to_sparse_csr()
    x = torch.randn(30, 64, generator=gen)
    out = torch.empty(40, 64)
    assert native.csr_dense(a, x, out, accumulate=False)
    assert torch.equal(out, torch.sparse.mm(a, x))
    a_t = a.to_dense().T.contiguous().to_sparse_csr()
    pushed = torch.empty(40, 64)
    assert native.csr_push(a_t, a.crow_indices(), x, pushed, accumulate=False)
    assert torch.equal(pushed, out)
    idx = torch.randint(0, 30, (40, 5), generator=gen)
    q = torch.randn(40, 64, generator=gen)
    assert torch.allclose(native.row_dots(x, idx, q), torch.einsum("nd,nkd->nk", q, x[idx]), atol=1e-5)


@pytest.mark.parametrize("dim", [16, 64, 7, 130])
@pytest.mark.parametrize("index", [torch.int32, torch.int64])
@pytest.mark.parametrize("far_bytes, threads", [(0, 1), (1 << 40, 2)])
def test_a_bfloat16_table_is_read_widened_bit_for_bit_as_its_float32_copy(monkeypatch, dim, index, far_bytes, threads):
    monkeypatch.setattr(native, "FAR_TABLE_BYTES", far_bytes)
    monkeypatch.setattr(native, "PARALLEL_WORK", 0)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    m, a = _matrix(257, 190, index)
    a_t = _transpose(m, index)
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(190, dim)).astype(np.float32)).to(torch.bfloat16)
    want = _torch_product(a, x.float())  # the widening is exact; the sums are the float32 ones
    gathered, pushed = torch.full((257, dim), float("nan")), torch.full((257, dim), float("nan"))
    assert native.csr_dense(a, x, gathered, accumulate=False)
    assert native.csr_push(a_t, a.crow_indices(), x, pushed, accumulate=False)
    assert torch.equal(gathered, want) and torch.equal(pushed, want)
    assert native.csr_dense(a, x, gathered, accumulate=True)
    assert torch.allclose(gathered, 2 * want, atol=1e-5)
    assert not native.csr_dense(a, x, torch.empty(257, dim, dtype=torch.bfloat16), False)  # the output stays float32


def test_rows_contain_finds_exactly_the_pairs_of_each_row():
    rng = np.random.default_rng(0)
    m = sp.random(300, 50, density=0.1, format="csr", random_state=1)
    m.data[m.indptr[7] : m.indptr[8]] = 0  # an empty row
    m.eliminate_zeros()
    m.sort_indices()
    keys = np.repeat(np.arange(300), np.diff(m.indptr)) * 50 + m.indices
    rows = rng.integers(0, 300, 5000)
    queries = rows * 50 + rng.integers(0, 50, 5000)
    rows[:20] = rng.choice(np.flatnonzero(np.diff(m.indptr)[:-1] > 0), 20)  # non-empty rows with a next row
    queries[:10] = keys[m.indptr[rows[:10] + 1] - 1]  # its own last key: in it
    queries[10:20] = keys[m.indptr[rows[10:20] + 1]]  # the next row's first key, right after its own: not in it
    got = native.rows_contain(m.indptr.astype(np.int64), keys, rows, queries)
    pairs = set(keys.tolist())
    truth = np.array([q in pairs and q // 50 == r for q, r in zip(queries.tolist(), rows.tolist())])
    assert got is not None and got.dtype == bool and np.array_equal(got, truth)
    assert truth.sum() > 100 and (~truth).sum() > 100
    with pytest.raises(ValueError, match="outside the matrix's 300 rows"):
        native.rows_contain(m.indptr.astype(np.int64), keys, np.array([300]), np.array([0]))
    with pytest.raises(ValueError, match="2 rows for 1 queries"):
        native.rows_contain(m.indptr.astype(np.int64), keys, np.array([0, 1]), np.array([0]))
