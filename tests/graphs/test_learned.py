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


def test_kgraph_product_gradients_equal_the_gather_formula_across_chunks(monkeypatch):
    import mmgef.graphs.learned as learned

    monkeypatch.setattr(learned, "rows_per_chunk", lambda row_elements, cap: 7)  # 50 rows: 8 chunks, the last short
    torch.manual_seed(0)
    idx = torch.randint(0, 50, (50, 4))
    x = torch.randn(50, 3, dtype=torch.float64, requires_grad=True)
    w = torch.rand(50, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: learned.KGraph(idx, w).mm(x), (x, w))
    want = (w.unsqueeze(-1) * x[idx]).sum(1)
    got = learned.KGraph(idx, w).mm(x)
    assert torch.allclose(got, want)
    g = torch.randn(50, 3, dtype=torch.float64)
    gx, gw = torch.autograd.grad(want, (x, w), g)
    hx, hw = torch.autograd.grad(got, (x, w), g)
    assert torch.allclose(gx, hx) and torch.allclose(gw, hw)
