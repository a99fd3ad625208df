"""Graphs a model holds, as ``nn.Module``s whose tensors are buffers.

So ``model.to(device)`` moves every graph, and ``state_dict`` holds exactly the graphs that cannot
be rebuilt from the data: the frozen learned item graph is a *persistent* buffer (the best weights
include the graph they were evaluated with); graphs derived from the training data alone
(user–item adjacency, co-occurrence, FREEDOM's raw-feature graph) are non-persistent and rebuilt
when a run is loaded (its data fingerprint guarantees the same data).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from mmgef.graphs.bipartite import bipartite_adjacency
from mmgef.graphs.cooccurrence import CooccurrenceWeight, cooccurrence_graph
from mmgef.graphs.learned import KGraph
from mmgef.graphs.propagation import Graph
from mmgef.graphs.pruning import prune_edges
from mmgef.graphs.sparse import Matrix, for_product, rows_to_csr, spmm, sym_normalize, to_torch_csr


class SparseGraph(nn.Module):
    """A constant sparse matrix A (CSR buffer, plus Aᵀ when A is not symmetric); ``mm(x)`` = A x.

    The products take A and Aᵀ as ``for_product`` gives them (column blocks on CPU for graphs that outgrow the
    cache), made once per pair of buffers, device, width of ``x`` and ``table_dtype`` (``set_gather_precision``);
    the cache holds the buffers it was made from and is checked by identity, so moving the model or replacing a
    buffer renews it. It is never saved."""

    def __init__(self, m: sp.spmatrix, symmetric: bool) -> None:
        super().__init__()
        self.register_buffer("adj", to_torch_csr(m), persistent=False)
        self.register_buffer("adj_t", None if symmetric else to_torch_csr(sp.csr_matrix(m).T.tocsr()), persistent=False)
        self.table_dtype = torch.float32
        self._cache_made_from: tuple[torch.Tensor, torch.Tensor | None, torch.device, int, torch.dtype] | None = None
        self._cache_operands: tuple[Matrix, Matrix | None] | None = None

    def mm(self, x: torch.Tensor) -> torch.Tensor:
        made = self._cache_made_from
        if self._cache_operands is None or made is None or made[0] is not self.adj or made[1] is not self.adj_t \
                or made[2:] != (x.device, x.shape[1], self.table_dtype):
            self._cache_operands = (for_product(self.adj, x, self.table_dtype),
                                    None if self.adj_t is None else for_product(self.adj_t, x, self.table_dtype))
            self._cache_made_from = (self.adj, self.adj_t, x.device, x.shape[1], self.table_dtype)
        return spmm(self._cache_operands[0], x, self._cache_operands[1])


GATHER_PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def set_gather_precision(model: nn.Module, precision: str) -> int:
    """Make the constant graphs' products in ``model`` (``SparseGraph``, ``FrozenKnnGraph``: user–item graphs, E^c,
    frozen kNN graphs) read their dense operand as ``precision`` (``train.gather_precision``; ``RoundedTable``).
    Returns how many graphs it set. Graphs built per step (a learned graph's pieces, ``NeighbourSum``) stay float32."""
    graphs = [m for m in model.modules() if isinstance(m, (SparseGraph, FrozenKnnGraph))]
    for graph in graphs:
        graph.table_dtype = GATHER_PRECISIONS[precision]
    return len(graphs)


class CoInteractionGraph(nn.Module):
    """D^-1/2 C D^-1/2 with C_ij the number of partners nodes i and j share (i ≠ j): every co-interacting pair,
    never built. For the binary partner × node matrix M, C = MᵀM − diag(MᵀM), so C x = Mᵀ(M x) − deg ⊙ x: two
    products with M's interactions instead of one with every co-interacting pair (TikTok's item graph: 59k
    interactions against 7.9M pairs). The same graph as ``sym_normalize(cooccurrence_graph(m, None))``, summed in
    another order."""

    def __init__(self, partners: sp.csr_matrix) -> None:
        super().__init__()
        m = sp.csr_matrix(partners, dtype=np.float32)
        m.data[:] = 1.0
        deg = np.diff(m.tocsc().indptr).astype(np.float64)  # diag(MᵀM): a node's partners
        row_sum = m.T @ (m @ np.ones(m.shape[1])) - deg  # C 1
        scale = np.zeros_like(row_sum)
        scale[row_sum > 0] = row_sum[row_sum > 0] ** -0.5
        self.register_buffer("m", to_torch_csr(m), persistent=False)
        self.register_buffer("m_t", to_torch_csr(m.T.tocsr()), persistent=False)
        self.register_buffer("deg", torch.from_numpy(deg.astype(np.float32))[:, None], persistent=False)
        self.register_buffer("scale", torch.from_numpy(scale.astype(np.float32))[:, None], persistent=False)

    def mm(self, x: torch.Tensor) -> torch.Tensor:
        y = x * self.scale
        return (spmm(self.m_t, spmm(self.m, y, self.m_t), self.m) - self.deg * y) * self.scale


def collaborative_item_graph(train: sp.csr_matrix, form: str, k: int, weight: CooccurrenceWeight = "count",
                             shrink: float = 0.0, min_count: int = 1) -> SparseGraph:
    """E^c: co-occurrence C_ij / max C. ``topk`` keeps the k largest per row, symmetrically normalised;
    ``all_pairs`` keeps every co-occurring pair as it is (MM-GEF Eq. 3–4 as written). ``weight``,
    ``shrink`` and ``min_count``: how support turns counts into weights (``cooccurrence_graph``)."""
    c = cooccurrence_graph(train, k if form == "topk" else None, weight=weight, shrink=shrink, min_count=min_count)
    if form == "topk":
        return SparseGraph(sym_normalize(c), symmetric=False)
    return SparseGraph(c, symmetric=True)


class WeightedSumGraph:
    """Σ_g a_g ⊙ (A_g x); ``weights`` is [G] (one per graph) or [N, G] (per item and graph). Built per
    forward from a model's graphs and weights (MM-GEF's soft attention); it holds no state of its own."""

    def __init__(self, graphs: list[Graph], weights: torch.Tensor) -> None:
        self.graphs, self.weights = graphs, weights

    def mm(self, x: torch.Tensor) -> torch.Tensor:
        out = 0
        for g, graph in enumerate(self.graphs):
            w = self.weights[g] if self.weights.dim() == 1 else self.weights[:, g : g + 1]
            out = out + w * graph.mm(x)
        return out  # type: ignore[return-value]


class PrunedBipartiteGraph(SparseGraph):
    """FREEDOM's degree-sensitively pruned user–item graph, resampled by ``resample()`` each epoch.

    Sampling draws from torch's global generator, which the trainer seeds per epoch, so a resumed
    run resamples exactly the graph an uninterrupted one would. A resample replaces the ``adj`` buffer, which
    renews ``SparseGraph``'s product cache.
    """

    def __init__(self, train: sp.csr_matrix, edge_dropout: float) -> None:
        super().__init__(bipartite_adjacency(train), symmetric=True)
        self.train_matrix = train
        self.keep_ratio = 1.0 - edge_dropout

    def resample(self) -> None:
        kept = prune_edges(self.train_matrix, self.keep_ratio)
        self.adj = to_torch_csr(bipartite_adjacency(kept), self.adj.device)


class FrozenKnnGraph(nn.Module):
    """k weighted out-neighbours per row, frozen: persistent ``idx`` / ``weight`` buffers ``[N, K]``.

    Products go through a CSR copy (and its transpose, each as ``for_product`` gives it for the width of ``x``) made
    once per stored graph; the copy is a cache keyed by the buffers' identity and version, so loading a state dict
    or moving the model invalidates it, and it is never saved.
    """

    def __init__(self, n: int, width: int, persistent: bool = True) -> None:
        super().__init__()
        self.register_buffer("idx", torch.zeros(n, width, dtype=torch.long), persistent=persistent)
        self.register_buffer("weight", torch.zeros(n, width), persistent=persistent)
        self.table_dtype = torch.float32  # ``set_gather_precision``
        self._cache_key: tuple[object, ...] | None = None
        self._cache_operands: tuple[Matrix, Matrix] | None = None

    @classmethod
    def of(cls, piece: KGraph, persistent: bool = True) -> FrozenKnnGraph:
        graph = cls(piece.idx.shape[0], piece.idx.shape[1], persistent)
        graph.store(piece.idx, piece.weight)
        return graph

    def piece(self) -> KGraph:
        """The stored graph as a constant ``KGraph`` piece (to be mixed into a learned graph)."""
        return KGraph(self.idx, self.weight)

    @torch.no_grad()
    def store(self, idx: torch.Tensor, weight: torch.Tensor) -> None:
        if idx.shape != self.idx.shape:
            raise ValueError(f"graph of shape {tuple(idx.shape)} stored into a slot of {tuple(self.idx.shape)}")
        self.idx.copy_(idx)
        self.weight.copy_(weight.detach())

    def mm(self, x: torch.Tensor) -> torch.Tensor:
        key = (self.idx.data_ptr(), self.idx._version, self.weight.data_ptr(), self.weight._version, x.device, x.shape[1],
               self.table_dtype)
        if self._cache_operands is None or key != self._cache_key:
            adj, adj_t = rows_to_csr(self.idx, self.weight, self.idx.shape[0])
            self._cache_operands = (for_product(adj, x, self.table_dtype), for_product(adj_t, x, self.table_dtype))
            self._cache_key = key
        return spmm(self._cache_operands[0], x, self._cache_operands[1])
