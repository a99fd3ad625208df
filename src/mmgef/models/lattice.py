"""LATTICE (Zhang et al., MM 2021): learned per-modality item graphs on top of MF / NGCF / LightGCN.

Per modality m: a fixed kNN graph S̃^m on the raw features and a learned kNN graph Ã^m on W_m x + b_m,
rebuilt every ``rebuild_every`` epochs. With w = softmax(α):
    A = λ Σ_m w_m norm(S̃^m) + (1 − λ) norm(Σ_m w_m Ã^m)        (as in the reference code)
``item_layers`` convolutions over A from the item ID embeddings give h; the item vector becomes
x̃_i + h_i/‖h_i‖. Variants: ``feats`` convolves the projected content instead of the IDs;
``cf_feats`` adds the normalised projected content with no graph at all.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mmgef.config import Strict
from mmgef.errors import ConfigError
from mmgef.features.fusion import select
from mmgef.models.base import ModelContext
from mmgef.models.item_graph import (
    ContentFeatures,
    DiffGraph,
    ItemGraphRecommender,
    build_backbone,
    knn_graph,
    projections,
    sym_normalize,
)


class LatticeParams(Strict):
    backbone: Literal["mf", "ngcf", "lightgcn"] = "lightgcn"
    embedding_dim: int = Field(64, gt=0)
    backbone_layers: int | None = Field(None, description="None = the backbone's default")
    feat_embed_dim: int = Field(64, gt=0, description="size of the projected features the learned graph uses")
    knn_k: int = Field(10, gt=0)
    lambda_coeff: float = Field(0.9, description="weight of the initial (raw-feature) graph")
    item_layers: int = Field(1, ge=1)
    rebuild_every: int = Field(1, ge=1, description="epochs between rebuilds of the learned graph")
    variant: Literal["lattice", "feats", "cf_feats"] = "lattice"
    modalities: list[str] | None = None
    knn_method: Literal["auto", "exact", "faiss"] = "auto"


def check_lambda(value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"lambda_coeff={value} must lie in [0, 1]. Fix: e.g. --set lambda_coeff=0.9")


class Lattice(ItemGraphRecommender):
    def __init__(self, params: LatticeParams, ctx: ModelContext) -> None:
        check_lambda(params.lambda_coeff)
        backbone = build_backbone(params.backbone, params.embedding_dim, params.backbone_layers, ctx)
        super().__init__(ctx, backbone, params.item_layers, params.rebuild_every)
        self.p = params
        content = select(ctx.content, params.modalities, "lattice")
        self.names = list(content)
        self.feats = ContentFeatures(content, ctx.device)
        self.proj = projections(content, params.feat_embed_dim)
        self.modal_weight = nn.Parameter(torch.full((len(content),), 1.0 / len(content)))
        if params.variant != "lattice":
            self.content_proj = projections(content, self.out_dim)
        # The initial graphs come from the fixed raw features: build them once.
        with torch.no_grad():
            self.initial = [sym_normalize([knn_graph(self.feats[m], params.knn_k, params.knn_method)])[0] for m in self.names]

    def build_content_graph(self) -> DiffGraph:
        w = F.softmax(self.modal_weight, dim=0)
        lam = self.p.lambda_coeff
        learned = sym_normalize([knn_graph(self.proj[m](self.feats[m]), self.p.knn_k, self.p.knn_method).scaled(w[k])
                                 for k, m in enumerate(self.names)])
        pieces = [g.scaled(lam * w[k]) for k, g in enumerate(self.initial)] + [g.scaled(1 - lam) for g in learned]
        return DiffGraph(pieces)

    def projected_content(self) -> torch.Tensor:
        return torch.stack([self.content_proj[m](self.feats[m]) for m in self.names]).mean(0)

    def initial_h(self) -> torch.Tensor:
        return self.projected_content() if self.p.variant == "feats" else super().initial_h()

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.p.variant == "cf_feats":
            users, items = self.backbone.embeddings()
            return users, items + F.normalize(self.projected_content(), dim=1)
        return super().embeddings()

