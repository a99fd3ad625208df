"""Item–item graph learning shared by LATTICE and MM-GEF.

A content graph is a sum of *pieces*, each with exactly k neighbours per item (``KGraph``: index
and weight tensors of shape [N, k]). Propagation over a piece is a gather, O(N·k·d), and keeps
gradients for the weights, so a graph learned from projected features trains its projection
(LATTICE's structure learning) without any N × N matrix. Between rebuilds the graph is frozen
into a sparse CSR matrix (plus its transpose) and propagation is one sparse product per layer.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from mmgef.graphs.knn import edge_cosine, knn_indices
from mmgef.graphs.sparse import rows_to_csr, spmm, to_torch_csr
from mmgef.models.base import ModelContext, Recommender


class Graph(Protocol):
    def mm(self, x: torch.Tensor) -> torch.Tensor: ...


class KGraph(NamedTuple):
    """k weighted neighbours per item; ``weight`` may carry gradients."""

    idx: torch.Tensor
    weight: torch.Tensor

    def mm(self, x: torch.Tensor) -> torch.Tensor:
        return (self.weight.unsqueeze(-1) * x[self.idx]).sum(1)

    def scaled(self, coef: torch.Tensor | float) -> KGraph:
        return KGraph(self.idx, self.weight * coef)


class DiffGraph:
    """A sum of KGraph pieces, differentiable in the piece weights."""

    def __init__(self, pieces: list[KGraph]) -> None:
        self.pieces = pieces

    def mm(self, x: torch.Tensor) -> torch.Tensor:
        return sum(p.mm(x) for p in self.pieces)  # type: ignore[return-value]

    def freeze(self) -> FrozenGraph:
        n = self.pieces[0].idx.shape[0]
        idx = torch.cat([p.idx for p in self.pieces], dim=1)
        weight = torch.cat([p.weight.detach() for p in self.pieces], dim=1)
        return FrozenGraph(*rows_to_csr(idx, weight, n))


class FrozenGraph:
    """A constant sparse graph; gradients flow only into the propagated embeddings."""

    def __init__(self, adj: torch.Tensor, adj_t: torch.Tensor) -> None:
        self.adj, self.adj_t = adj, adj_t

    @classmethod
    def from_scipy(cls, m: sp.spmatrix, device: torch.device) -> FrozenGraph:
        m = sp.csr_matrix(m, dtype=np.float32)
        return cls(to_torch_csr(m, device), to_torch_csr(m.T.tocsr(), device))

    def mm(self, x: torch.Tensor) -> torch.Tensor:
        return spmm(self.adj, x, self.adj_t)


def knn_graph(x: torch.Tensor | list[torch.Tensor], k: int, method: str = "auto", idx: torch.Tensor | None = None) -> KGraph:
    """Cosine kNN graph of the rows of ``x`` (or of a list of feature blocks): neighbours chosen
    without gradient, weights with it."""
    if idx is None:
        idx = knn_indices(x, k, method)  # type: ignore[arg-type]
    return KGraph(idx, edge_cosine(x, idx))


def sym_normalize(pieces: list[KGraph]) -> list[KGraph]:
    """D^-1/2 (Σ pieces) D^-1/2 with D the row sums of the sum (LATTICE's normalised Laplacian).

    Items whose rows sum to zero (e.g. all-zero features) get zero weights instead of NaN.
    """
    deg = sum(p.weight.sum(1) for p in pieces)
    inv = torch.where(deg > 0, deg.clamp_min(1e-12).pow(-0.5), torch.zeros_like(deg))  # type: ignore[union-attr]
    return [KGraph(p.idx, p.weight * inv[:, None] * inv[p.idx]) for p in pieces]


def propagate(graph: Graph, h: torch.Tensor, n_layers: int) -> torch.Tensor:
    for _ in range(n_layers):
        h = graph.mm(h)
    return h


class ItemGraphRecommender(Recommender):
    """A backbone recommender whose item vectors get h/‖h‖ from convolution over an item graph.

    Subclasses implement ``build_content_graph()``. On the first training batch after a rebuild is
    due the freshly built graph is used with gradients into the feature projections; every other
    batch (and evaluation) uses that graph frozen. ``item_graph`` may wrap it (MM-GEF adds E^c).
    """

    def __init__(self, ctx: ModelContext, backbone: Recommender, item_layers: int, rebuild_every: int) -> None:
        super().__init__(ctx)
        self.backbone = backbone
        self.item_layers = item_layers
        self.rebuild_every = rebuild_every
        self._build_due = True
        self._frozen: FrozenGraph | None = None
        with torch.no_grad():
            self.out_dim = backbone.embeddings()[1].shape[1]
        # NGCF concatenates its layers, so its item vectors are wider than its ID embeddings:
        # the graph branch then starts from ID embeddings of its own, of the output width.
        self.graph_item_emb: nn.Embedding | None = None
        if self.out_dim != backbone.item_emb.embedding_dim:  # type: ignore[union-attr]
            self.graph_item_emb = nn.Embedding(ctx.n_items, self.out_dim)
            nn.init.xavier_uniform_(self.graph_item_emb.weight)

    def on_epoch_start(self, epoch: int) -> None:
        self.backbone.on_epoch_start(epoch)
        if epoch % self.rebuild_every == 0:
            self._build_due = True

    def build_content_graph(self) -> DiffGraph:
        raise NotImplementedError

    def content_graph(self, build: bool) -> Graph:
        """The fresh differentiable graph when ``build``, else the frozen one (built once if missing)."""
        if build or self._frozen is None:
            with torch.set_grad_enabled(build and torch.is_grad_enabled()):
                graph = self.build_content_graph()
            self._frozen = graph.freeze()
            return graph if build else self._frozen
        return self._frozen

    def item_graph(self, build: bool) -> Graph:
        return self.content_graph(build)

    def initial_h(self) -> torch.Tensor:
        """Item vectors the convolution starts from: the backbone's item ID embeddings by default."""
        if self.graph_item_emb is not None:
            return self.graph_item_emb.weight
        return self.backbone.item_emb.weight  # type: ignore[no-any-return]

    def item_graph_embeddings(self) -> torch.Tensor:
        build = self.training and self._build_due
        graph = self.item_graph(build)
        if build:
            self._build_due = False
        return propagate(graph, self.initial_h(), self.item_layers)

    normalize_h = True  # LATTICE and MM-GEF add h/‖h‖; FREEDOM adds h as it is

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        users, items = self.backbone.embeddings()
        h = self.item_graph_embeddings()
        return users, items + (F.normalize(h, dim=1) if self.normalize_h else h)


def build_backbone(name: str, embedding_dim: int, n_layers: int | None, ctx: ModelContext,
                   edge_dropout: float = 0.0) -> Recommender:
    from mmgef.models.registry import build_model

    params: dict = {"embedding_dim": embedding_dim}
    if n_layers is not None and name != "mf":
        params["n_layers"] = n_layers
    if edge_dropout > 0:  # LightGCN's pruned training graph; other backbones reject the key
        params["edge_dropout"] = edge_dropout
    return build_model(name, params, ctx)


def projection(in_dim: int, out_dim: int) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim)
    nn.init.xavier_uniform_(layer.weight)
    return layer


def projections(content: dict[str, np.ndarray], out_dim: int) -> nn.ModuleDict:
    """One ``projection`` per modality, from its feature width to ``out_dim``."""
    return nn.ModuleDict({m: projection(x.shape[1], out_dim) for m, x in content.items()})


class ContentFeatures(nn.Module):
    """Each modality's fixed item-feature matrix, as a non-persistent buffer: it follows the model
    to its device but is not saved with the weights (it comes from the dataset)."""

    def __init__(self, content: dict[str, np.ndarray], device: torch.device) -> None:
        super().__init__()
        self.names = list(content)
        for m, x in content.items():
            self.register_buffer(f"feat_{m}", torch.from_numpy(x).to(device), persistent=False)

    def __getitem__(self, m: str) -> torch.Tensor:
        return getattr(self, f"feat_{m}")  # type: ignore[no-any-return]
