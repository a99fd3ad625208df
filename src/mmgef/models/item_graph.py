"""The item-graph branch shared by LATTICE, MM-GEF and FREEDOM, composed with a CF backbone.

``ItemGraphRecommender`` = a backbone recommender (MF / NGCF / LightGCN) + an item–item graph:
h = ``item_layers`` convolutions over the graph from the item ID embeddings, and the item vectors
become backbone items + h/‖h‖ (LATTICE, MM-GEF) or + h (FREEDOM).

``LearnedGraphRecommender`` adds LATTICE's structure learning: on the first training batch after a
rebuild is due the graph is built afresh from trainable projections, with gradients into them;
its frozen copy (a persistent buffer) serves every other batch and evaluation. The frozen copy is
saved with the weights, so the best checkpoint holds the very graph it was evaluated with, and so
is a copy of the parameters it was built from (``ParamSnapshot``): over a changed catalogue (items
added to the service) the graph is rebuilt from those, not from the weights trained after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from mmgef.graphs.knn import LocalCandidates, Method
from mmgef.graphs.learned import DiffGraph, KGraph, knn_graph, normalize_knn
from mmgef.graphs.modules import FrozenKnnGraph
from mmgef.graphs.propagation import Graph, propagate
from mmgef.models.base import ModelContext, Recommender, id_embedding
from mmgef.models.lightgcn import LightGCN
from mmgef.models.mf import MF
from mmgef.models.ngcf import NGCF
from mmgef.params import LightGCNParams, MFParams, NGCFParams


class ItemGraphRecommender(Recommender):
    """A backbone whose item vectors get the convolution of an item graph added (see module doc)."""

    def __init__(self, ctx: ModelContext, reg: float, backbone: Recommender, item_layers: int,
                 normalize_h: bool = True, h_gate: str = "none") -> None:
        super().__init__(ctx, reg)
        self.backbone = backbone
        self.item_layers = item_layers
        self.normalize_h = normalize_h
        self.h_gate = ContentGate(h_gate == "degree", ctx.train) if h_gate != "none" else None
        self.out_dim = backbone.item_dim()
        # NGCF concatenates its layers, so its item vectors are wider than its ID embeddings:
        # the graph branch then starts from ID embeddings of its own, of the output width.
        self.graph_item_emb: nn.Embedding | None = None
        if self.out_dim != backbone.item_emb.embedding_dim:  # type: ignore[union-attr]
            self.graph_item_emb = id_embedding(ctx.n_items, self.out_dim)

    def on_epoch_start(self, epoch: int) -> None:
        self.backbone.on_epoch_start(epoch)

    @torch.no_grad()
    def mixing_weights(self) -> dict[str, float]:
        return {} if self.h_gate is None else {"h gate": self.h_gate.mean_value()}

    def item_graph(self) -> Graph:
        raise NotImplementedError

    def initial_h(self) -> torch.Tensor:
        """Item vectors the convolution starts from: the backbone's item ID embeddings by default."""
        if self.graph_item_emb is not None:
            return self.graph_item_emb.weight
        return self.backbone.item_emb.weight  # type: ignore[no-any-return]

    def item_graph_embeddings(self, graph: Graph | None = None) -> torch.Tensor:
        """h: the convolution over ``graph`` (the model's ``item_graph()`` by default), normalised and gated."""
        h = propagate(self.item_graph() if graph is None else graph, self.initial_h(), self.item_layers)
        h = F.normalize(h, dim=1) if self.normalize_h else h
        return h if self.h_gate is None else self.h_gate(h)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        users, items = self.backbone.embeddings()
        return users, items + self.item_graph_embeddings()


def standardised_log_degree(train: sp.csr_matrix) -> torch.Tensor:
    """z-score of log(1 + training interactions) per item: what degree-aware parts condition on."""
    log_deg = np.log1p(np.asarray(train.getnnz(axis=0), dtype=np.float64))
    return torch.from_numpy(((log_deg - log_deg.mean()) / max(float(log_deg.std()), 1e-9)).astype(np.float32))


class ContentGate(nn.Module):
    """How much of a content-derived vector (the item-graph vector h, or MM-GEF's content term) an item takes
    (MM-GEF+): 2σ(c) for all items, or 2σ(c + d·z_i) with z_i its standardised log degree (``by_degree``), so
    head items can take less content than tail items. c = d = 0 at the start: a gate of 1, the ungated model."""

    def __init__(self, by_degree: bool, train: sp.csr_matrix) -> None:
        super().__init__()
        self.c = nn.Parameter(torch.zeros(()))
        self.d = nn.Parameter(torch.zeros(())) if by_degree else None
        if by_degree:
            self.register_buffer("z", standardised_log_degree(train), persistent=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        logit = self.c if self.d is None else self.c + self.d * self.z[:, None]
        return 2 * torch.sigmoid(logit) * h

    @torch.no_grad()
    def mean_value(self) -> float:
        """The gate averaged over items (1 = the ungated model, 0 = closed)."""
        logit = self.c if self.d is None else self.c + self.d * self.z
        return float((2 * torch.sigmoid(logit)).mean())


class ParamSnapshot(nn.Module):
    """A saved copy of some parameters, taken when the learned graph is built from them.

    A checkpoint written before snapshots existed has none: loading it leaves ``taken`` false and
    ``applied`` then uses the parameters as they are.
    """

    def __init__(self, params: dict[str, nn.Parameter]) -> None:
        super().__init__()
        self.names = list(params)
        for k, (name, p) in enumerate(params.items()):
            self.register_buffer(f"p{k}", p.detach().clone())
        self.register_buffer("taken", torch.tensor(False))

    def take(self, params: dict[str, nn.Parameter]) -> None:
        with torch.no_grad():
            for k, name in enumerate(self.names):
                getattr(self, f"p{k}").copy_(params[name])
            self.taken.fill_(True)

    @contextmanager
    def applied(self, params: dict[str, nn.Parameter]) -> Iterator[None]:
        """The parameters hold the snapshot inside the block and their own values again after it."""
        if not bool(self.taken):
            yield
            return
        with torch.no_grad():
            own = {name: p.detach().clone() for name, p in params.items()}
            for k, name in enumerate(self.names):
                params[name].copy_(getattr(self, f"p{k}"))
            try:
                yield
            finally:
                for name, p in params.items():
                    p.copy_(own[name])

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        missing: list[str] = args[2]  # (local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        before = len(missing)
        super()._load_from_state_dict(state_dict, prefix, *args)
        ours = [k for k in missing[before:] if k.startswith(prefix)]
        if ours:  # an older checkpoint: no snapshot in it
            for k in ours:
                missing.remove(k)
            self.taken.fill_(False)


class LearnedGraphRecommender(ItemGraphRecommender):
    """An item graph rebuilt every ``rebuild_every`` epochs from trainable projections (LATTICE, MM-GEF).

    Subclasses implement ``build_content_graph()``, name in ``graph_sources`` the attributes
    (modules or parameters) it reads, and call ``init_graph()`` at the end of their constructor,
    which builds the first graph and sizes its frozen slot.
    """

    graph_sources: tuple[str, ...] = ()

    def __init__(self, ctx: ModelContext, reg: float, backbone: Recommender, item_layers: int,
                 rebuild_every: int, normalize_h: bool = True, h_gate: str = "none", refresh: str = "full",
                 full_refresh_every: int = 10) -> None:
        super().__init__(ctx, reg, backbone, item_layers, normalize_h, h_gate)
        self.rebuild_every = rebuild_every
        self.refresh, self.full_refresh_every = refresh, full_refresh_every
        # ``refresh=local``: each learned kNN graph's last neighbour lists, by name, and the rebuilds since the last
        # full search. Not saved: a loaded or resumed model's next rebuild is a full search.
        self._last_idx: dict[str, torch.Tensor] = {}
        self._since_full = 0
        # Set by on_epoch_start, consumed by that epoch's first training batch. A run resumed
        # between rebuilds finds it False and keeps the frozen graph its checkpoint restored.
        self._build_due = False

    def build_content_graph(self) -> DiffGraph:
        raise NotImplementedError

    def learned_knn(self, name: str, x: torch.Tensor, k: int, method: Method, extra: list[torch.Tensor]) -> KGraph:
        """The kNN graph of the projected features ``x`` (graph ``name``). With ``refresh=local`` a rebuild between
        full searches only re-ranks each item's last neighbours, theirs, ``extra`` lists and k random items
        (``LocalCandidates``): O(N·k²·d) against the full search's O(N^1.5·d) with IVF, for projections that
        move a little per epoch. Every ``full_refresh_every``-th rebuild is a full search."""
        last = self._last_idx.get(name)
        candidates = None if last is None else LocalCandidates(last, extra, k)
        graph = knn_graph(x, k, method, candidates)
        if self.refresh == "local":
            self._last_idx[name] = graph.idx
        return graph

    def modality_knn_mix(self, projected: dict[str, torch.Tensor], w: torch.Tensor, k: int, method: Method,
                         extra: list[list[torch.Tensor]]) -> list[KGraph]:
        """LATTICE's learned graph, norm(Σ_m w_m Ã^m) (``w``: the modality weights): one kNN graph per modality of its
        projected content, ``extra[i]`` the candidate lists ``learned_knn`` re-ranks for the i-th modality."""
        return normalize_knn([self.learned_knn(m, x, k, method, extra[i]).scaled(w[i])
                              for i, (m, x) in enumerate(projected.items())])

    def _start_rebuild(self) -> None:
        """Before a training rebuild: forget the last graphs when a full search is due."""
        self._since_full += 1
        if self._since_full >= self.full_refresh_every:
            self._last_idx.clear()
        if not self._last_idx:
            self._since_full = 0

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._last_idx.clear()  # the loaded weights' graph was not built from these lists
        super()._load_from_state_dict(*args, **kwargs)

    def source_params(self) -> dict[str, nn.Parameter]:
        """The parameters the learned graph is built from, by name."""
        return self.parameters_of(self.graph_sources)

    def parameters_of(self, attrs: tuple[str, ...]) -> dict[str, nn.Parameter]:
        """The parameters the named attributes hold (a parameter, or a module's), by name; an absent or None one
        holds none."""
        out: dict[str, nn.Parameter] = {}
        for attr in attrs:
            obj = getattr(self, attr, None)
            if isinstance(obj, nn.Parameter):
                out[attr] = obj
            elif isinstance(obj, nn.Module):
                out.update({f"{attr}.{n}": p for n, p in obj.named_parameters()})
        return out

    def init_graph(self) -> None:
        with torch.no_grad():
            graph = self.build_content_graph()
            self.frozen = FrozenKnnGraph(self.n_items, graph.width)
            self.frozen.store(*graph.rows())
        self.graph_source = ParamSnapshot(self.source_params())

    def rebuild_frozen_graph(self) -> None:
        """Build the frozen graph again, over this model's items, from the parameters the stored one was
        built from: the graph the run would have had over these items."""
        params = self.source_params()
        self._last_idx.clear()  # over other items: a full search
        with torch.no_grad(), self.graph_source.applied(params):
            self.frozen.store(*self.build_content_graph().rows())

    def on_epoch_start(self, epoch: int) -> None:
        super().on_epoch_start(epoch)
        if epoch % self.rebuild_every == 0:
            self._build_due = True

    def content_graph(self) -> Graph:
        """The fresh differentiable graph on a rebuild batch (stored frozen as it is built), else the frozen one."""
        if self.training and self._build_due:
            self._build_due = False
            self._start_rebuild()
            graph = self.build_content_graph()
            self.frozen.store(*graph.rows())
            self.graph_source.take(self.source_params())
            return graph
        return self.frozen

    def item_graph(self) -> Graph:
        return self.content_graph()


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

    def __init__(self, content: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.names = list(content)
        for m, x in content.items():
            self.register_buffer(f"feat_{m}", torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), persistent=False)

    def __getitem__(self, m: str) -> torch.Tensor:
        return getattr(self, f"feat_{m}")  # type: ignore[no-any-return]


def build_backbone(name: str, embedding_dim: int, n_layers: int | None, ctx: ModelContext,
                   edge_dropout: float = 0.0) -> Recommender:
    """The CF model an item-graph recommender adds to (its own loss is never used, so no L2 weight)."""
    layers = {} if n_layers is None else {"n_layers": n_layers}
    if name == "mf":
        return MF(MFParams(embedding_dim=embedding_dim), ctx)
    if name == "ngcf":
        return NGCF(NGCFParams(embedding_dim=embedding_dim, **layers), ctx)
    return LightGCN(LightGCNParams(embedding_dim=embedding_dim, edge_dropout=edge_dropout, **layers), ctx)
