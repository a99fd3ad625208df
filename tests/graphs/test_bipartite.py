"""The normalised user–item adjacency and propagation over it."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mmgef.graphs.bipartite import bipartite_adjacency
from mmgef.graphs.modules import SparseGraph
from mmgef.graphs.propagation import propagate


def test_bipartite_adjacency_is_symmetric_and_degree_normalised():
    r = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], dtype=np.float32))
    a = bipartite_adjacency(r).toarray()
    assert np.allclose(a, a.T)
    # edge (user 0, item 1): degrees 2 and 2 → 1/2; (user 1, item 1): degrees 1 and 2 → 1/sqrt(2)
    assert a[0, 2 + 1] == pytest.approx(0.5) and a[1, 2 + 1] == pytest.approx(2 ** -0.5)
    assert a[2 + 2].sum() == 0  # an item without interactions stays isolated, no NaN


def test_lightgcn_propagation_is_layer_mean():
    a = bipartite_adjacency(sp.csr_matrix(np.eye(3, dtype=np.float32)))
    e = torch.randn(6, 2)
    dense = torch.from_numpy(a.toarray())
    want = (e + dense @ e + dense @ dense @ e) / 3
    assert torch.allclose(propagate(SparseGraph(a, symmetric=True), e, 2, pool="mean"), want, atol=1e-6)
    stacked = propagate(SparseGraph(a, symmetric=True), e, 2, pool="stack")
    assert stacked.shape == (6, 3, 2) and torch.allclose(stacked[:, 2], dense @ dense @ e, atol=1e-6)
    assert torch.allclose(propagate(SparseGraph(a, symmetric=True), e, 2), dense @ dense @ e, atol=1e-6)
