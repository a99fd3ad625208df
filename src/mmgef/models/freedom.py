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

from mmgef.features.fusion import select
from mmgef.graphs.knn import knn_indices
from mmgef.graphs.modules import SparseGraph
from mmgef.graphs.propagation import Graph
from mmgef.graphs.sparse import sym_normalize
from mmgef.models.base import Batch, ModelContext, ego_l2
from mmgef.models.item_graph import (
    ContentFeatures,
    ItemGraphRecommender,
    build_backbone,
    projections,
)
from mmgef.models.losses import bpr_loss
from mmgef.params import FreedomParams


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


class Freedom(ItemGraphRecommender):
    """LightGCN with edge pruning + a frozen raw-feature item graph (h added as is) + modality BPR."""

    def __init__(self, params: FreedomParams, ctx: ModelContext, reg: float = 0.0) -> None:
        backbone = build_backbone("lightgcn", params.embedding_dim, params.n_layers, ctx, params.edge_dropout)
        super().__init__(ctx, reg, backbone, params.item_layers, normalize_h=False)
        self.p = params
        content = select(ctx.content, params.modalities, "freedom")
        self.names = list(content)
        weights = modality_weights(self.names, params.image_weight)
        graph = sum(weights[m] * binary_knn_graph(x, params.knn_k) for m, x in content.items())
        self.frozen = SparseGraph(graph, symmetric=False)
        self.feats = ContentFeatures(content)
        self.proj = projections(content, params.embedding_dim)

    def item_graph(self) -> Graph:
        return self.frozen

    def loss(self, batch: Batch) -> torch.Tensor:
        """BPR + L2 on the ego embeddings + Σ_m BPR(user, W_m x_pos, W_m x_neg): each modality's
        projection must rank on its own."""
        users, pos, neg = self.batch_vectors(batch)
        loss = bpr_loss(users, pos, neg) + self.reg * ego_l2(self.backbone.user_emb, self.backbone.item_emb, batch)
        if self.p.mm_loss_weight > 0:
            for m in self.names:
                feat = self.feats[m]
                loss = loss + self.p.mm_loss_weight * bpr_loss(users, self.proj[m](feat[batch.pos]), self.proj[m](feat[batch.neg]))
        return loss
