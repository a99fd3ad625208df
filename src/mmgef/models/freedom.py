"""FREEDOM (Zhou & Shen, MM 2023): freeze the item–item graph, denoise the user–item graph.

- Item–item graph, built once from the raw features and never updated: per modality a 0/1 kNN
  graph (k = 10) on cosine similarity, symmetrically normalised, then a weighted sum over
  modalities (image weight 0.1, the rest shared equally; equal weights when there is no image).
- User–item graph: every epoch, degree-sensitive pruning (``graphs.pruning``, LightGCN's
  ``edge_dropout``) keeps (1 − dropout) of the training edges; evaluation uses the full graph.
- Items: ``item_layers`` convolutions over the frozen graph from the item ID embeddings give h,
  added (un-normalised) to LightGCN's item vectors over the pruned graph.
- Loss: BPR + ``mm_loss_weight`` · Σ_m BPR(user, W_m x_pos, W_m x_neg) with a linear projection
  W_m per modality, plus the usual L2 on the ego embeddings.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field

from mmgef.config import Strict
from mmgef.features.fusion import select
from mmgef.graphs.knn import knn_indices
from mmgef.graphs.sparse import sym_normalize
from mmgef.models.base import Batch, ModelContext
from mmgef.models.item_graph import ContentFeatures, FrozenGraph, projections, propagate
from mmgef.models.lightgcn import LightGCN, LightGCNParams
from mmgef.models.losses import bpr_loss


class FreedomParams(Strict):
    embedding_dim: int = Field(64, gt=0)
    n_layers: int = Field(2, ge=0, description="user–item graph layers")
    item_layers: int = Field(1, ge=1, description="convolutions over the frozen item–item graph")
    knn_k: int = Field(10, gt=0)
    image_weight: float = Field(0.1, ge=0.0, le=1.0, description="weight of the image graph when there is one")
    dropout: float = Field(0.8, ge=0.0, lt=1.0, description="share of user–item edges pruned each epoch")
    mm_loss_weight: float = Field(1e-4, ge=0.0, description="weight of the per-modality projection BPR terms")
    modalities: list[str] | None = None


def modality_weights(names: list[str], image_weight: float) -> dict[str, float]:
    """FREEDOM's fixed mix: the image graph gets ``image_weight``, the others share the rest."""
    if "image" not in names or len(names) == 1:
        return {m: 1.0 / len(names) for m in names}
    rest = (1.0 - image_weight) / (len(names) - 1)
    return {m: image_weight if m == "image" else rest for m in names}


def binary_knn_graph(x: np.ndarray, k: int) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 of the 0/1 kNN graph of the rows of ``x`` (cosine)."""
    idx = knn_indices(torch.from_numpy(x), k).numpy()
    n = x.shape[0]
    a = sp.csr_matrix((np.ones(idx.size, dtype=np.float32), (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    return sym_normalize(a)


class Freedom(LightGCN):
    mixes_layers = False  # h from the item graph lies outside the layers MixGCF would mix

    def __init__(self, params: FreedomParams, ctx: ModelContext) -> None:
        super().__init__(LightGCNParams(embedding_dim=params.embedding_dim, n_layers=params.n_layers,
                                        edge_dropout=params.dropout), ctx)
        self.p = params
        content = select(ctx.content, params.modalities, "freedom")
        self.names = list(content)
        weights = modality_weights(self.names, params.image_weight)
        item_graph = sum(weights[m] * binary_knn_graph(x, params.knn_k) for m, x in content.items())
        self.item_graph = FrozenGraph.from_scipy(item_graph, ctx.device)
        self.feats = ContentFeatures(content, ctx.device)
        self.proj = projections(content, params.embedding_dim)

    def item_graph_embeddings(self) -> torch.Tensor:
        return propagate(self.item_graph, self.item_emb.weight, self.p.item_layers)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        users, items = super().embeddings()
        return users, items + self.item_graph_embeddings()

    def auxiliary_loss(self, batch: Batch, final: tuple[torch.Tensor, ...]) -> torch.Tensor | float:
        """Σ_m BPR(user, W_m x_pos, W_m x_neg): each modality's projection must rank on its own."""
        if self.p.mm_loss_weight == 0:
            return 0.0
        users = final[0]
        total = 0.0
        for m in self.names:
            feat = self.feats[m]
            total = total + bpr_loss(users, self.proj[m](feat[batch.pos]), self.proj[m](feat[batch.neg]))
        return self.p.mm_loss_weight * total
