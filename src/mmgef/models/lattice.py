"""LATTICE (Zhang et al., MM 2021): learned per-modality item graphs on top of MF / NGCF / LightGCN.

Per modality m: a fixed kNN graph S̃^m on the raw features and a learned kNN graph Ã^m on W_m x + b_m,
rebuilt every ``rebuild_every`` epochs. With w = softmax(α):
    A = λ Σ_m w_m norm(S̃^m) + (1 − λ) norm(Σ_m w_m Ã^m)        (as in the reference code)
``item_layers`` convolutions over A from the item ID embeddings give h; the item vector becomes
x̃_i + h_i/‖h_i‖. Variants: ``feats`` convolves the projected content instead of the IDs;
``cf_feats`` adds the normalised projected content with no graph at all. ``use_cf_graph`` (MM-GEF's
"LATTICE + CF" row) convolves over (A + E^c)/2 with MM-GEF's co-occurrence graph E^c: the same
information MM-GEF has, merged with fixed weights instead of its soft attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmgef.features.fusion import select
from mmgef.graphs.learned import DiffGraph, knn_graph, normalize_knn
from mmgef.graphs.modules import FrozenKnnGraph, WeightedSumGraph, collaborative_item_graph
from mmgef.graphs.propagation import Graph
from mmgef.models.base import ModelContext
from mmgef.models.item_graph import (
    ContentFeatures,
    LearnedGraphRecommender,
    build_backbone,
    projections,
)
from mmgef.params import LatticeParams


class Lattice(LearnedGraphRecommender):
    graph_sources = ("proj", "modal_weight")

    def __init__(self, params: LatticeParams, ctx: ModelContext, reg: float = 0.0) -> None:
        backbone = build_backbone(params.backbone, params.embedding_dim, params.n_layers, ctx)
        super().__init__(ctx, reg, backbone, params.item_layers, params.rebuild_every,
                         refresh=params.graph_refresh, full_refresh_every=params.full_refresh_every)
        self.p = params
        content = select(ctx.content, params.modalities, "lattice")
        self.names = list(content)
        self.feats = ContentFeatures(content)
        self.proj = projections(content, params.proj_dim)
        self.modal_weight = nn.Parameter(torch.full((len(content),), 1.0 / len(content)))
        if params.variant != "lattice":
            self.content_proj = projections(content, self.out_dim)
        # The initial graphs come from the fixed raw features: built once, rebuilt from the data on load.
        with torch.no_grad():
            self.initial = nn.ModuleList(
                FrozenKnnGraph.of(normalize_knn([knn_graph(self.feats[m], params.knn_k, params.knn_method)])[0],
                                  persistent=False)
                for m in self.names)
        self.cf_graph = collaborative_item_graph(ctx.train, "topk", params.cf_k) if params.use_cf_graph else None
        self.init_graph()

    def build_content_graph(self) -> DiffGraph:
        w = F.softmax(self.modal_weight, dim=0)
        lam = self.p.lambda_coeff
        learned = self.modality_knn_mix({m: self.proj[m](self.feats[m]) for m in self.names}, w,
                                        self.p.knn_k, self.p.knn_method, [[g.idx] for g in self.initial])
        initial = [g.piece().scaled(lam * w[k]) for k, g in enumerate(self.initial)]
        return DiffGraph(initial + [g.scaled(1 - lam) for g in learned])

    @torch.no_grad()
    def mixing_weights(self) -> dict[str, float]:
        w = F.softmax(self.modal_weight, dim=0).tolist()
        return {**super().mixing_weights(), **{f"modality weight {m}": x for m, x in zip(self.names, w)}}

    def item_graph(self) -> Graph:
        if self.cf_graph is None:
            return self.content_graph()
        return WeightedSumGraph([self.content_graph(), self.cf_graph], torch.full((2,), 0.5, device=self.modal_weight.device))

    def projected_content(self) -> torch.Tensor:
        return torch.stack([self.content_proj[m](self.feats[m]) for m in self.names]).mean(0)

    def initial_h(self) -> torch.Tensor:
        return self.projected_content() if self.p.variant == "feats" else super().initial_h()

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.p.variant == "cf_feats":
            users, items = self.backbone.embeddings()
            return users, items + F.normalize(self.projected_content(), dim=1)
        return super().embeddings()
