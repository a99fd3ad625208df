"""The co-occurrence graph C / max C, top-k per row."""

import numpy as np
import scipy.sparse as sp

from mmgef.graphs.cooccurrence import cooccurrence_graph, topk_per_row
from mmgef.graphs.sparse import sym_normalize


def test_cooccurrence_by_hand():
    # users: u0 {0,1,2}, u1 {0,1}, u2 {1,3}
    r = sp.csr_matrix(np.array([[1, 1, 1, 0], [1, 1, 0, 0], [0, 1, 0, 1]], dtype=np.float32))
    c = cooccurrence_graph(r, topk=None, max_entries=3).toarray()
    want = np.array([[0, 2, 1, 0], [2, 0, 1, 1], [1, 1, 0, 0], [0, 1, 0, 0]], dtype=np.float32) / 2
    assert np.allclose(c, want)
    c1 = cooccurrence_graph(r, topk=1).toarray()
    assert ((c1 > 0).sum(1) <= 1).all() and c1[1, 0] == 1.0


def test_isolated_item_in_cf_graph_gives_no_nan():
    r = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0]], dtype=np.float32))  # item 2 never seen
    c = sym_normalize(cooccurrence_graph(r, 10)).toarray()
    assert np.isfinite(c).all() and c[2].sum() == 0


def test_topk_per_row_keeps_largest():
    m = sp.csr_matrix(np.array([[0.1, 0.5, 0.3, 0.0], [0.0, 0.0, 0.2, 0.9]], dtype=np.float32))
    t = topk_per_row(m, 2).toarray()
    assert np.allclose(t, [[0, 0.5, 0.3, 0], [0, 0, 0.2, 0.9]])


def test_topk_per_row_matches_brute_force_with_ties_and_negatives():
    rng = np.random.default_rng(3)
    dense = rng.choice([-1.5, -0.25, 0.0, 0.25, 0.5, 2.0], size=(40, 30)).astype(np.float32)
    m = sp.csr_matrix(dense)
    perm = rng.permutation(m.nnz)  # unsorted columns within rows, as a sparse product leaves them
    rows = np.repeat(np.arange(40), np.diff(m.indptr))
    shuffled = sp.csr_matrix((m.data[perm], (rows[perm], m.indices[perm])), shape=m.shape)
    for k in (1, 3, 29):
        want = np.zeros_like(dense)
        for r in range(40):
            cols = np.flatnonzero(dense[r])
            best = sorted(cols, key=lambda c: (-dense[r, c], c))[:k]  # ties: the smaller column first
            want[r, best] = dense[r, best]
        assert np.array_equal(topk_per_row(shuffled, k).toarray(), want)


def test_chunks_bounded_by_entries_give_the_same_graph():
    from mmgef.graphs.cooccurrence import chunk_bounds

    rng = np.random.default_rng(0)
    r = sp.random(300, 120, density=0.05, random_state=1, format="csr", dtype=np.float32)
    whole = cooccurrence_graph(r, topk=5, max_entries=10**12).toarray()
    for budget in (1, 50, 2_000):
        assert np.array_equal(cooccurrence_graph(r, topk=5, max_entries=budget).toarray(), whole)
    cost = rng.integers(0, 100, 1000).astype(float)
    bounds = chunk_bounds(cost, 500)
    assert bounds[0][0] == 0 and bounds[-1][1] == 1000 and all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert all(cost[a:b].sum() <= 500 + cost[a:b].max() for a, b in bounds)
    assert chunk_bounds(np.array([]), 10) == []


def test_confidence_weights_by_hand():
    # users: u0 {0,1,2}, u1 {0,1}, u2 {1,3}; item degrees d = [2, 3, 1, 1]
    r = sp.csr_matrix(np.array([[1, 1, 1, 0], [1, 1, 0, 0], [0, 1, 0, 1]], dtype=np.float32))
    jac = cooccurrence_graph(r, topk=None, weight="jaccard").toarray()
    want = {(0, 1): 2 / 3, (0, 2): 1 / 2, (1, 2): 1 / 3, (1, 3): 1 / 3}
    for (i, j), w in want.items():
        assert np.isclose(jac[i, j], w / (2 / 3)) and np.isclose(jac[j, i], jac[i, j])
    shr = cooccurrence_graph(r, topk=None, weight="shrunk", shrink=1.0).toarray()
    want = {(0, 1): 2 / np.sqrt(6) * 2 / 3, (0, 2): 1 / np.sqrt(2) / 2, (1, 2): 1 / np.sqrt(3) / 2}
    for (i, j), w in want.items():
        assert np.isclose(shr[i, j], w / want[0, 1])
    # a pair seen once between two popular items now weighs less than the pair seen twice, whatever the counts
    assert shr[1, 3] < shr[0, 1]
    kept = cooccurrence_graph(r, topk=None, min_count=2).toarray()
    assert np.count_nonzero(kept) == 2 and kept[0, 1] == kept[1, 0] == 1.0


def test_inverse_user_frequency_by_hand():
    # users: u0 {0,1,2} (|I_u| = 3), u1 {0,1} (2), u2 {1,3} (2)
    r = sp.csr_matrix(np.array([[1, 1, 1, 0], [1, 1, 0, 0], [0, 1, 0, 1]], dtype=np.float32))
    iuf = cooccurrence_graph(r, topk=None, weight="iuf", max_entries=3).toarray()
    want = {(0, 1): 1 / 3 + 1 / 2, (0, 2): 1 / 3, (1, 2): 1 / 3, (1, 3): 1 / 2}
    for (i, j), w in want.items():
        assert np.isclose(iuf[i, j], w / (5 / 6)) and np.isclose(iuf[j, i], iuf[i, j])
    assert np.count_nonzero(iuf) == 2 * len(want)
    # the pair (1, 3), linked by a user with two items, now outweighs (1, 2), linked by one with three;
    # by count they tie
    assert iuf[1, 3] > iuf[1, 2]
    # min_count counts users, not weights: only (0, 1) is seen twice
    kept = cooccurrence_graph(r, topk=None, weight="iuf", min_count=2).toarray()
    assert np.count_nonzero(kept) == 2 and kept[0, 1] == kept[1, 0] == 1.0


def test_inverse_user_frequency_damps_a_heavy_user():
    # 50 light users each link items 0 and 1; one heavy user touches all 200 items, linking 0 with 2..199 too.
    # Pair (0, 1) wins under both weights, but by count (0, 2) keeps 1/51 of it, by iuf ≈ 1/5000.
    light = np.zeros((50, 200), dtype=np.float32)
    light[:, :2] = 1
    r = sp.csr_matrix(np.vstack([light, np.ones((1, 200), dtype=np.float32)]))
    count = cooccurrence_graph(r, topk=None).toarray()
    iuf = cooccurrence_graph(r, topk=None, weight="iuf").toarray()
    assert np.isclose(count[0, 2] / count[0, 1], 1 / 51)
    assert np.isclose(iuf[0, 2] / iuf[0, 1], (1 / 200) / (50 / 2 + 1 / 200))


def test_the_factored_co_interaction_graph_is_the_built_one():
    """CoInteractionGraph multiplies through the interactions; it must equal (and differentiate like) the graph of
    every co-interacting pair, built and symmetrically normalised, including an isolated node and repeated counts."""
    import torch

    from mmgef.graphs.modules import CoInteractionGraph, SparseGraph

    m = sp.random(40, 25, density=0.12, format="csr", random_state=3, dtype=np.float32)
    m.data[:] = np.arange(len(m.data)) % 3 + 1  # counts above 1 count once, as in the built graph
    m = sp.hstack([m, sp.csr_matrix(([1.0], ([0], [0])), shape=(40, 1))]).tolil()  # node 25: one partner
    m[0, :25] = 0  # ... whom it shares with nobody: isolated
    m = m.tocsr()
    m.eliminate_zeros()
    c = cooccurrence_graph(m, topk=None)
    built = SparseGraph(sym_normalize((c + c.T) / 2), symmetric=True)
    factored = CoInteractionGraph(m)
    x = torch.randn(26, 5, requires_grad=True)
    a, b = built.mm(x), factored.mm(x)
    assert torch.allclose(a, b, atol=1e-6) and torch.equal(b[25], torch.zeros(5))
    ga, = torch.autograd.grad((a * a).sum(), x)
    gb, = torch.autograd.grad((b * b).sum(), x)
    assert torch.allclose(ga, gb, atol=1e-6)
