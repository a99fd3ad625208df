"""Sparse products with a cheap backward; the re-weighted edge list."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import mmgef.graphs.sparse as sparse_mod
from mmgef.graphs import native
from mmgef.graphs.bipartite import bipartite_adjacency
from mmgef.graphs.modules import FrozenKnnGraph, PrunedBipartiteGraph, SparseGraph, set_gather_precision
from mmgef.graphs.propagation import propagate
from mmgef.graphs.sparse import (
    ColumnBlocks,
    EdgeList,
    PushedRows,
    RoundedTable,
    RowSplit,
    column_block_width,
    index_dtype,
    rows_to_csr,
    sparse_product,
    spmm,
    take_rows,
    to_torch_csr,
)


def test_symmetric_spmm_gradient_matches_dense():
    rng = np.random.default_rng(0)
    m = sp.random(20, 20, density=0.2, random_state=0, format="csr", dtype=np.float32)
    m = (m + m.T).tocsr()
    x = torch.tensor(rng.normal(size=(20, 4)), dtype=torch.float32, requires_grad=True)
    spmm(to_torch_csr(m), x).pow(2).sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    (torch.from_numpy(m.toarray()) @ x2).pow(2).sum().backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-5)


def test_edge_list_product_and_gradients_match_a_dense_matrix():
    torch.manual_seed(0)
    rows = torch.tensor([2, 0, 1, 0, 2])
    cols = torch.tensor([1, 3, 0, 0, 2])  # unsorted on purpose
    edges = EdgeList(rows, cols, 3, 4)
    values = torch.rand(5, dtype=torch.float64, requires_grad=True)
    x = torch.rand(4, 2, dtype=torch.float64, requires_grad=True)
    out = edges.mm(values.float(), x.float())
    dense = torch.zeros(3, 4, dtype=torch.float64).index_put((rows, cols), values)
    assert torch.allclose(out.double(), dense @ x, atol=1e-6)
    g = torch.rand(3, 2)
    (out * g).sum().backward()
    v_ref, x_ref = values.detach().clone().requires_grad_(), x.detach().clone().requires_grad_()
    ((torch.zeros(3, 4, dtype=torch.float64).index_put((rows, cols), v_ref) @ x_ref) * g.double()).sum().backward()
    assert torch.allclose(values.grad, v_ref.grad, atol=1e-5) and torch.allclose(x.grad, x_ref.grad, atol=1e-5)


@pytest.mark.parametrize("symmetric", [True, False])
def test_layer_mean_value_and_gradient_match_dense(symmetric):
    """LightGCN's layer mean: mean(x, Ax, A²x, A³x) and its gradient Σ (Aᵀ)ˡ g / (L+1), for a symmetric A
    (one stored matrix) and a non-symmetric one (A and Aᵀ stored)."""
    rng = np.random.default_rng(1)
    m = sp.random(15, 15, density=0.25, random_state=1, format="csr", dtype=np.float32)
    m = (m + m.T).tocsr() if symmetric else m
    x = torch.tensor(rng.normal(size=(15, 3)), dtype=torch.float32, requires_grad=True)
    graph = SparseGraph(m, symmetric=symmetric)
    y = propagate(graph, x, 3, pool="mean")
    weights = torch.tensor(rng.normal(size=(15, 3)), dtype=torch.float32)
    (y * weights).sum().backward()
    dense = torch.from_numpy(m.toarray())
    x2 = x.detach().clone().requires_grad_(True)
    want = (x2 + dense @ x2 + dense @ dense @ x2 + dense @ dense @ dense @ x2) / 4
    (want * weights).sum().backward()
    assert torch.allclose(y, want, atol=1e-5)
    assert torch.allclose(x.grad, x2.grad, atol=1e-5)


@pytest.mark.parametrize("compiled", [True, False])
def test_sparse_product_ignores_what_its_output_held_whatever_its_index_width(monkeypatch, compiled):
    rng = np.random.default_rng(0)
    m = sp.random(300, 200, density=0.05, format="csr", dtype=np.float32, random_state=1)
    a, x = to_torch_csr(m), torch.from_numpy(rng.normal(size=(200, 16)).astype(np.float32))
    if not compiled:
        monkeypatch.setattr(native, "kernel", lambda: None)
    # a fresh output may hold anything: fill every new buffer with NaN, and the product must not see it
    empty = torch.empty
    monkeypatch.setattr(torch, "empty", lambda *s, **k: empty(*s, **k).fill_(float("nan")))
    y = sparse_product(a, x)
    # int32 indices (the product's own width) and the int64 ones torch makes by default give the same values
    assert a.crow_indices().dtype == a.col_indices().dtype == torch.int32
    a64 = torch.sparse_csr_tensor(a.crow_indices().long(), a.col_indices().long(), a.values(), a.shape, check_invariants=True)
    assert torch.equal(y, sparse_product(a64, x))
    assert torch.equal(y, torch.sparse.mm(a64, x))  # compiled or not: saved runs reproduce their metrics exactly
    assert np.allclose(y.numpy(), m @ x.numpy(), atol=1e-5)


def test_csr_indices_widen_to_int64_only_past_int32():
    assert index_dtype(7050, 7050, 280_000) == torch.int32
    assert index_dtype(2**31 - 1) == torch.int32
    assert index_dtype(1_000_000, 1_000_000, 2**31) == torch.int64


@pytest.mark.parametrize("n_layers", [0, 1, 3])
def test_running_layer_mean_and_last_layer_agree_with_the_stacked_layers_and_leave_x_alone(n_layers):
    """The in-place running sum: the same values as the mean of the stacked layers, a new tensor even with no
    layer, and the input untouched."""
    m = sp.random(12, 12, density=0.3, random_state=2, format="csr", dtype=np.float32)
    graph = SparseGraph(m + m.T, symmetric=True)
    x = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
    before = x.clone()
    stacked = propagate(graph, x, n_layers, pool="stack")
    mean = propagate(graph, x, n_layers, pool="mean")
    assert torch.allclose(mean, stacked.mean(1), atol=1e-6)
    assert torch.equal(propagate(graph, x, n_layers, pool="last"), stacked[:, -1])
    assert mean.data_ptr() != x.data_ptr()
    assert torch.equal(x, before)


@pytest.mark.parametrize("width", [1, 7, 16, 40, 100])
def test_a_product_in_column_blocks_is_the_whole_product_summed_in_another_order(width):
    m = sp.random(30, 40, density=0.15, random_state=1, format="csr", dtype=np.float32)
    # columns 16–31 empty: a block without a non-zero is left out
    m = sp.csr_matrix(m.multiply(np.r_[np.ones(16), np.zeros(16), np.ones(8)][None, :]), dtype=np.float32)
    m.eliminate_zeros()
    x = torch.randn(40, 5, generator=torch.Generator().manual_seed(0))
    blocks = ColumnBlocks(to_torch_csr(m), width)
    assert len(blocks.parts) <= -(-40 // width) and all(part._nnz() > 0 for *_, part in blocks.parts)
    assert torch.allclose(sparse_product(blocks, x), torch.from_numpy(m.toarray()) @ x, atol=1e-5)
    empty = ColumnBlocks(to_torch_csr(sp.csr_matrix((30, 40), dtype=np.float32)), width)
    assert not empty.parts and sparse_product(empty, x).abs().sum() == 0


def test_column_blocks_only_where_the_table_outgrows_the_cache_and_the_blocks_are_fewer_than_a_rows_entries():
    width = sparse_mod.BLOCK_BYTES // (4 * 64)
    assert column_block_width(26_495, 64, 9.0) is None  # Baby's user–item graph: one block's slice holds the table
    assert column_block_width(200_000, 64, 19.4) == width  # 100k users + 100k items: 7 blocks
    assert column_block_width(2_000_000, 64, 19.6) is None  # a million users = items: 62 passes over the output
    assert column_block_width(600_000, 64, 10.0) is None and column_block_width(300_000, 64, 10.0) == width


@pytest.mark.parametrize("symmetric", [True, False])
def test_a_graph_in_column_blocks_gives_the_same_products_and_gradients(monkeypatch, symmetric):
    monkeypatch.setattr(sparse_mod, "BLOCK_BYTES", 4 * 3 * 10)  # 10 columns per block at width 3: 6 blocks of 60
    m = sp.random(60, 60, density=0.15, random_state=2, format="csr", dtype=np.float32)  # 9 a row: blocks pay
    m = (m + m.T).tocsr() if symmetric else m
    graph = SparseGraph(m, symmetric=symmetric)
    x = torch.randn(60, 3, generator=torch.Generator().manual_seed(1), requires_grad=True)
    out = propagate(graph, x, 2, "mean")
    assert all(isinstance(op, ColumnBlocks) for op in graph._cache_operands if op is not None)
    out.pow(2).sum().backward()
    x_ref = x.detach().clone().requires_grad_(True)
    a = torch.from_numpy(m.toarray())
    ref = (x_ref + a @ x_ref + a @ (a @ x_ref)) / 3
    ref.pow(2).sum().backward()
    assert torch.allclose(out, ref, atol=1e-5) and torch.allclose(x.grad, x_ref.grad, atol=1e-4)
    graph.mm(torch.randn(60, 100))  # a wider table: 1 column per block, 60 blocks for 9 a row: the whole matrix
    assert graph._cache_operands[0] is graph.adj


def test_a_resampled_graph_renews_its_column_blocks(monkeypatch):
    monkeypatch.setattr(sparse_mod, "BLOCK_BYTES", 4 * 2 * 8)  # 8 columns per block at width 2
    rng = np.random.default_rng(3)
    train = sp.csr_matrix((rng.random((30, 20)) < 0.9).astype(np.float32))  # 50 nodes: ~11 a row kept, 7 blocks
    graph = PrunedBipartiteGraph(train, edge_dropout=0.5)
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    for seed in range(3):
        torch.manual_seed(seed)
        graph.resample()
        assert torch.allclose(graph.mm(x), graph.adj.to_dense() @ x, atol=1e-5)
        assert isinstance(graph._cache_operands[0], ColumnBlocks)


def test_rows_that_share_their_columns_keep_the_whole_product(monkeypatch):
    monkeypatch.setattr(sparse_mod, "BLOCK_BYTES", 4 * 4 * 100)  # 100 columns per block at width 4: 10 blocks
    n, rng = 1000, np.random.default_rng(4)
    rows = np.repeat(np.arange(n), 16)
    x = torch.randn(n, 4)
    for cols, blocked in (((rows + rng.integers(-25, 26, rows.size)) % n, False), (rng.integers(0, n, rows.size), True)):
        adj = to_torch_csr(sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(n, n)))
        assert column_block_width(n, 4, adj._nnz() / n) == 100  # blocks would be few enough: the spread decides
        assert (sparse_mod.stretch_spread(adj, 100) > 2) == blocked
        assert isinstance(sparse_mod.for_product(adj, x), ColumnBlocks) == blocked


def _user_item_train(n_users: int, n_items: int, seed: int, per_user: int = 8) -> sp.csr_matrix:
    """Users of ``per_user`` items each, drawn by a steep popularity (a few hot items); the first user and the last
    item have no edge."""
    rng = np.random.default_rng(seed)
    p = np.arange(1, n_items) ** -1.2
    items = rng.choice(n_items - 1, size=(n_users - 1) * per_user, p=p / p.sum())
    users = np.repeat(np.arange(1, n_users), per_user)
    train = sp.csr_matrix((np.ones(items.size, np.float32), (users, items)), shape=(n_users, n_items))
    train.data[:] = 1
    return train


def test_bipartite_sides_part_users_from_items_and_nothing_else():
    train = _user_item_train(40, 25, seed=0)
    assert sparse_mod.bipartite_sides(to_torch_csr(bipartite_adjacency(train))) == [(0, 40), (40, 65)]
    assert sparse_mod.bipartite_sides(to_torch_csr(bipartite_adjacency(train, self_loops=True))) == [(0, 65)]
    m = sp.random(30, 30, density=0.2, random_state=0, format="csr", dtype=np.float32)
    assert sparse_mod.bipartite_sides(to_torch_csr(m + m.T)) == [(0, 30)]
    assert sparse_mod.bipartite_sides(to_torch_csr(sp.csr_matrix((5, 5), dtype=np.float32))) == [(0, 5)]
    assert sparse_mod.bipartite_sides(to_torch_csr(train)) == [(0, 40)]  # not square: no sides


@pytest.mark.skipif(native.kernel() is None, reason="no C compiler: no pushed products")
def test_item_rows_push_where_the_popular_items_stay_cached_and_the_users_do_not(monkeypatch):
    adj = to_torch_csr(bipartite_adjacency(_user_item_train(400, 300, seed=1)))
    users, items = (sparse_mod.row_slice(adj, lo, hi) for lo, hi in sparse_mod.bipartite_sides(adj))
    assert torch.equal(items.to_dense(), adj.to_dense()[400:])
    monkeypatch.setattr(sparse_mod, "BLOCK_BYTES", 4 * 3 * 30)  # 30 rows of 3 floats cached
    assert sparse_mod.pushes(items, 3) and not sparse_mod.pushes(users, 3)  # hot items: write them, read users in order
    assert not sparse_mod.pushes(items, 4000)  # a cache of one row: no side finds it there
    monkeypatch.setattr(sparse_mod, "BLOCK_BYTES", 4 * 3 * 700)  # every row cached: gathers as they are
    assert not sparse_mod.pushes(items, 3)
    monkeypatch.setattr(sparse_mod, "BLOCK_BYTES", 4 * 3 * 30)
    monkeypatch.setenv(native.NATIVE_ENV, "0")
    native.kernel.cache_clear()
    try:
        assert not sparse_mod.pushes(items, 3)  # no compiled kernel, no push
    finally:
        native.kernel.cache_clear()


@pytest.mark.skipif(native.kernel() is None, reason="no C compiler: no pushed products")
def test_only_a_user_item_graphs_sides_push_not_an_item_graph_with_hot_rows(monkeypatch):
    monkeypatch.setattr(sparse_mod, "BLOCK_BYTES", 4 * 3 * 30)  # 30 rows of 3 floats cached
    train = _user_item_train(400, 300, seed=3)
    knn = _user_item_train(300, 300, seed=4)  # 8 neighbours per item, drawn by popularity
    item_graph_t = to_torch_csr(knn.T.tocsr())  # a kNN graph's transpose: popular neighbours' rows are the hot ones
    assert sparse_mod.pushes(item_graph_t, 3)  # the share test alone would push it
    assert isinstance(sparse_mod.for_product(item_graph_t, torch.zeros(300, 3)), torch.Tensor)
    planned = sparse_mod.for_product(to_torch_csr(bipartite_adjacency(train)), torch.zeros(700, 3))
    assert isinstance(planned, RowSplit) and [type(p) for *_, p in planned.parts] == [torch.Tensor, PushedRows]


@pytest.mark.skipif(native.kernel() is None, reason="no C compiler: no pushed products")
@pytest.mark.parametrize("threads", [1, 2])
def test_a_pushed_graph_gives_the_same_products_and_gradients_bit_for_bit(monkeypatch, threads):
    monkeypatch.setattr(native, "PARALLEL_WORK", 0)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    train = _user_item_train(400, 300, seed=2)
    results = []
    for cached_rows in (10_000, 30):  # the whole product, then users gathered and items pushed
        monkeypatch.setattr(sparse_mod, "BLOCK_BYTES", 4 * 3 * cached_rows)
        graph = SparseGraph(bipartite_adjacency(train), symmetric=True)
        x = torch.randn(700, 3, generator=torch.Generator().manual_seed(5), requires_grad=True)
        out = propagate(graph, x, 3, "mean")
        out.pow(2).sum().backward()
        results.append((out.detach(), x.grad, graph._cache_operands[0]))
    (whole, whole_grad, whole_op), (split, split_grad, split_op) = results
    assert whole_op is not None and isinstance(whole_op, torch.Tensor)
    assert isinstance(split_op, RowSplit) and [type(p) for *_, p in split_op.parts] == [torch.Tensor, PushedRows]
    assert torch.equal(whole, split) and torch.equal(whole_grad, split_grad)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("cached_rows", [10_000, 30])  # the whole product; what would push from a float32 table
def test_bfloat16_gathers_round_the_table_and_the_gradient_and_nothing_else(monkeypatch, compiled, cached_rows):
    monkeypatch.setattr(sparse_mod, "BLOCK_BYTES", 4 * 3 * cached_rows)
    if not compiled:
        monkeypatch.setenv(native.NATIVE_ENV, "0")
    native.kernel.cache_clear()
    try:
        graph = SparseGraph(bipartite_adjacency(_user_item_train(400, 300, seed=2)), symmetric=True)
        model = torch.nn.Module()
        model.graph = graph
        assert set_gather_precision(model, "bfloat16") == 1
        x = torch.randn(700, 3, generator=torch.Generator().manual_seed(5), requires_grad=True)
        up = torch.randn(700, 3, generator=torch.Generator().manual_seed(6))
        y = graph.mm(x)
        y.backward(up)
        plan = graph._cache_operands[0]
        assert isinstance(plan, RoundedTable) and plan.dtype is torch.bfloat16
        parts = plan.plan.parts if isinstance(plan.plan, RowSplit) else []
        assert not any(isinstance(part, PushedRows) for *_, part in parts)  # a rounded table is gathered, never pushed
        a = graph.adj.to_dense()
        rounded = x.detach().to(torch.bfloat16).float()
        assert not torch.equal(rounded, x.detach())  # the test would see a missing rounding
        assert torch.allclose(y, a @ rounded, atol=1e-5) and torch.equal(y, sparse_product(graph.adj, rounded))
        assert torch.equal(x.grad, sparse_product(graph.adj, up.to(torch.bfloat16).float()))
        assert (y - a @ x.detach()).abs().max() > 1e-4  # the product did read the rounded table
    finally:
        native.kernel.cache_clear()


def test_gather_precision_reaches_every_constant_graph_and_renews_their_plans():
    knn = FrozenKnnGraph(50, 3)
    knn.store(torch.randint(0, 50, (50, 3), generator=torch.Generator().manual_seed(0)), torch.rand(50, 3))
    model = torch.nn.Module()
    model.knn, model.graph = knn, SparseGraph(bipartite_adjacency(_user_item_train(30, 20, seed=1)), symmetric=True)
    x = torch.randn(50, 8)
    exact = knn.mm(x)
    assert set_gather_precision(model, "bfloat16") == 2
    rounded = knn.mm(x)
    assert isinstance(knn._cache_operands[0], RoundedTable) and not torch.equal(rounded, exact)
    assert torch.allclose(rounded, exact, rtol=2e-2, atol=2e-2)
    set_gather_precision(model, "float32")
    assert torch.equal(knn.mm(x), exact) and isinstance(knn._cache_operands[0], torch.Tensor)
    assert set_gather_precision(torch.nn.Linear(2, 2), "bfloat16") == 0


@pytest.mark.parametrize("repeats", [False, True])
def test_rows_to_csr_is_the_coalesced_matrix_and_its_transpose(repeats):
    gen = torch.Generator().manual_seed(0)
    idx, weight = torch.randint(0, 300, (200, 12), generator=gen), torch.rand(200, 12, generator=gen)
    if repeats:  # two pieces side by side may share a neighbour: its weights add up
        idx[:, 6:] = torch.where(torch.rand(200, 6, generator=gen) < 0.5, idx[:, :6], idx[:, 6:])
    keep = torch.ones_like(idx, dtype=torch.bool)
    for r in range(200):  # a third copy could sum in another order: extra copies become zero weights on column 299
        seen: dict[int, int] = {}
        for j, c in enumerate(idx[r].tolist()):
            seen[c] = seen.get(c, 0) + 1
            keep[r, j] = seen[c] <= 2 and c != 299
    idx, weight = torch.where(keep, idx, 299), torch.where(keep, weight, 0.0)
    rows = torch.arange(200).repeat_interleave(12)
    a, a_t = rows_to_csr(idx, weight, 300)
    for got, (r, c, shape) in ((a, (rows, idx.reshape(-1), (200, 300))), (a_t, (idx.reshape(-1), rows, (300, 200)))):
        want = torch.sparse_coo_tensor(torch.stack([r, c]), weight.reshape(-1), shape, check_invariants=True)
        want = want.coalesce().to_sparse_csr()
        assert torch.equal(got.crow_indices().long(), want.crow_indices()) and torch.equal(got.col_indices().long(), want.col_indices())
        assert torch.equal(got.values(), want.values())
    assert torch.equal(a.to_dense().T, a_t.to_dense())


@pytest.mark.parametrize("shape", [(50,), (10, 5)])
def test_take_rows_is_advanced_indexing_bit_for_bit_values_and_gradients(shape):
    gen = torch.Generator().manual_seed(0)
    table = torch.randn(40, 8, generator=gen, requires_grad=True)
    idx = torch.randint(0, 40, shape, generator=gen)  # repeated ids: their gradients add up
    up = torch.randn(*shape, 8, generator=gen)
    took = take_rows(table, idx)
    (grad,) = torch.autograd.grad(took, table, up)
    indexed = table[idx]
    (want,) = torch.autograd.grad(indexed, table, up)
    assert took.shape == (*shape, 8) and torch.equal(took, indexed) and torch.equal(grad, want)
    layers = torch.randn(40, 3, 8, generator=gen)  # a [n, layers, d] stack, as MixGCF takes rows of
    assert torch.equal(take_rows(layers, idx), layers[idx])
