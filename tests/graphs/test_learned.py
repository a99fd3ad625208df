"""Differentiable kNN pieces and their frozen copy."""

import torch

from mmgef.graphs.learned import DiffGraph, knn_graph, normalize_knn
from mmgef.graphs.modules import FrozenKnnGraph


def test_zero_feature_item_is_isolated_without_nan(caplog):
    x = torch.randn(30, 6)
    x[4] = 0
    g = normalize_knn([knn_graph(x, 5)])[0]
    assert torch.isfinite(g.weight).all()
    assert g.weight[4].abs().sum() == 0
    assert "all-zero features" in caplog.text


def test_learned_graph_passes_gradients_to_projection():
    torch.manual_seed(0)
    x = torch.randn(40, 12)
    proj = torch.nn.Linear(12, 8)
    g = DiffGraph(normalize_knn([knn_graph(proj(x), 5)]))
    h = torch.randn(40, 4)
    g.mm(h).pow(2).sum().backward()
    assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0


def test_kgraph_matches_dense_and_frozen():
    torch.manual_seed(0)
    x = torch.randn(25, 5)
    g = normalize_knn([knn_graph(x, 4)])[0]
    dense = torch.zeros(25, 25)
    dense.scatter_(1, g.idx, g.weight)
    h = torch.randn(25, 3)
    assert torch.allclose(g.mm(h), dense @ h, atol=1e-6)
    frozen = FrozenKnnGraph.of(g)
    assert DiffGraph([g]).width == 4
    assert torch.allclose(frozen.mm(h), dense @ h, atol=1e-6)
    h2 = h.clone().requires_grad_(True)
    frozen.mm(h2).sum().backward()
    assert torch.allclose(h2.grad, dense.T @ torch.ones(25, 3), atol=1e-5)
