"""MM-GEF (Multi-Modal recommendation with Graph Early-Fusion).

1. Early fusion: the item's modality vectors, L2-normalised, are averaged into one vector, then
   projected by a trainable linear layer. When the modalities live in spaces of different sizes
   (audio 128-d, text 384-d) each gets its own trainable projection to the common size and the
   projections are averaged — the same model when one projection is shared, which is the paper's
   CLIP case where image and text already share a space.
2. E^m: cosine kNN graph (k=10) of the projected fused vectors, rebuilt every epoch with gradients
   into the projection, mixed as in LATTICE with the kNN graph of the raw fused features
   (λ·initial + (1−λ)·learned; λ = 0 gives the learned graph alone).
3. E^c: item co-occurrence C_ij / max C, top-k per row, symmetrically normalised.
4. Soft attention merges {E^m, E^c} into E^u: ``global`` = softmax of two learned scalars;
   ``item`` = per-item softmax of a linear map of the item's ID embedding (row i of E^u is
   a_i,m E^m_i + a_i,c E^c_i). ``use_attention=false`` fixes both weights to ½.
5. ``item_layers`` convolutions over E^u from the item ID embeddings give h; h/‖h‖ is added to
   LightGCN's item vectors; score = user · item; BPR.

``edge_dropout`` > 0 borrows FREEDOM's degree-sensitive pruning of the user–item graph for the
LightGCN part, and ``normalize_h=false`` adds h un-normalised as FREEDOM does (neither is in the
paper; options with their own rows in the cold-start table).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mmgef.config import Strict, later_field
from mmgef.features.fusion import l2_normalize, select
from mmgef.graphs.cooccurrence import cooccurrence_graph
from mmgef.graphs.sparse import sym_normalize as sym_normalize_sparse
from mmgef.models.base import ModelContext
from mmgef.models.item_graph import (
    ContentFeatures,
    DiffGraph,
    FrozenGraph,
    Graph,
    ItemGraphRecommender,
    build_backbone,
    knn_graph,
    projection,
    projections,
    sym_normalize,
)
from mmgef.models.lattice import check_lambda


class MMGEFParams(Strict):
    embedding_dim: int = Field(64, gt=0)
    n_layers: int = Field(2, ge=0, description="LightGCN layers")
    proj_dim: int = Field(64, gt=0, description="size of the projected fused content")
    knn_k: int = Field(10, gt=0)
    cf_k: int = Field(10, gt=0, description="neighbours kept per item in the co-occurrence graph")
    lambda_coeff: float = Field(0.9, description="weight of the raw-feature kNN graph inside E^m")
    item_layers: int = Field(1, ge=1)
    rebuild_every: int = Field(1, ge=1)
    modalities: list[str] | None = None
    use_cf_graph: bool = True
    use_attention: bool = True
    attention: Literal["global", "item"] = "global"
    knn_method: Literal["auto", "exact", "faiss"] = "auto"
    normalize_h: bool = later_field(True, description="add h/‖h‖ (the paper); false adds h as FREEDOM does")
    edge_dropout: float = later_field(0.0, ge=0.0, lt=1.0, description="FREEDOM's user–item edge pruning in "
                                      "the LightGCN part, resampled each epoch (0 = off, the paper's model)")


class AttentionGraph:
    """E^u h = Σ_g a_g ⊙ (E^g h); ``weights`` is [G] (global) or [N, G] (per item)."""

    def __init__(self, graphs: list[Graph], weights: torch.Tensor) -> None:
        self.graphs, self.weights = graphs, weights

    def mm(self, x: torch.Tensor) -> torch.Tensor:
        out = 0
        for g, graph in enumerate(self.graphs):
            w = self.weights[g] if self.weights.dim() == 1 else self.weights[:, g : g + 1]
            out = out + w * graph.mm(x)
        return out  # type: ignore[return-value]


class MMGEF(ItemGraphRecommender):
    def __init__(self, params: MMGEFParams, ctx: ModelContext) -> None:
        check_lambda(params.lambda_coeff)
        backbone = build_backbone("lightgcn", params.embedding_dim, params.n_layers, ctx, params.edge_dropout)
        super().__init__(ctx, backbone, params.item_layers, params.rebuild_every)
        self.p = params
        self.normalize_h = params.normalize_h
        content = {m: l2_normalize(x) for m, x in select(ctx.content, params.modalities, "mmgef").items()}
        self.names = list(content)
        dims = {x.shape[1] for x in content.values()}
        self.shared_space = len(dims) == 1
        if self.shared_space:  # average first, then one projection (the paper's CLIP case)
            fused = np.mean(np.stack(list(content.values())), axis=0)
            self.register_buffer("fused", torch.from_numpy(fused.astype(np.float32)).to(ctx.device), persistent=False)
            self.proj = projection(fused.shape[1], params.proj_dim)
            raw_for_graph = self.fused
        else:  # one projection per modality to a common size, then average
            self.feats = ContentFeatures(content, ctx.device)
            self.proj_m = projections(content, params.proj_dim)
            # similarity = mean of the per-modality cosines (the cosine of the concatenated unit vectors)
            raw_for_graph = [self.feats[m] for m in self.names]
        with torch.no_grad():
            self.initial = sym_normalize([knn_graph(raw_for_graph, params.knn_k, params.knn_method)])[0]
        self.cf_graph: FrozenGraph | None = None
        if params.use_cf_graph:
            co = sym_normalize_sparse(cooccurrence_graph(ctx.train, params.cf_k))
            self.cf_graph = FrozenGraph.from_scipy(co, ctx.device)
        n_graphs = 2 if params.use_cf_graph else 1
        self.att_global = nn.Parameter(torch.zeros(n_graphs))
        self.att_item = nn.Linear(params.embedding_dim, n_graphs) if params.attention == "item" else None

    def fused_projection(self) -> torch.Tensor:
        if self.shared_space:
            return self.proj(self.fused)
        return torch.stack([self.proj_m[m](self.feats[m]) for m in self.names]).mean(0)

    def build_content_graph(self) -> DiffGraph:
        learned = sym_normalize([knn_graph(self.fused_projection(), self.p.knn_k, self.p.knn_method)])[0]
        lam = self.p.lambda_coeff
        return DiffGraph([self.initial.scaled(lam), learned.scaled(1 - lam)])

    def attention_weights(self) -> torch.Tensor:
        n_graphs = self.att_global.shape[0]
        if not self.p.use_attention:
            return torch.full((n_graphs,), 1.0 / n_graphs, device=self.att_global.device)
        if self.att_item is not None:
            return F.softmax(self.att_item(self.backbone.item_emb.weight), dim=1)  # type: ignore[union-attr]
        return F.softmax(self.att_global, dim=0)

    def item_graph(self, build: bool) -> Graph:
        content = self.content_graph(build)
        if self.cf_graph is None:
            return content
        return AttentionGraph([content, self.cf_graph], self.attention_weights())
