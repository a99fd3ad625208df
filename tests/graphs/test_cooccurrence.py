"""The co-occurrence graph C / max C, top-k per row."""

import numpy as np
import scipy.sparse as sp

from mmgef.graphs.cooccurrence import cooccurrence_graph, topk_per_row
from mmgef.graphs.sparse import sym_normalize


def test_cooccurrence_by_hand():
    # users: u0 {0,1,2}, u1 {0,1}, u2 {1,3}
    r = sp.csr_matrix(np.array([[1, 1, 1, 0], [1, 1, 0, 0], [0, 1, 0, 1]], dtype=np.float32))
    c = cooccurrence_graph(r, topk=None, chunk_size=3).toarray()
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
