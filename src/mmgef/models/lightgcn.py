"""LightGCN: layer-mean of linear propagation over the normalised user–item graph.

``edge_dropout`` > 0 trains on a degree-sensitively pruned graph resampled every epoch
(FREEDOM's denoising, ``graphs.modules.PrunedBipartiteGraph``); evaluation always uses the full graph.
"""

from __future__ import annotations

import torch

from mmgef.graphs.bipartite import bipartite_adjacency
from mmgef.graphs.modules import PrunedBipartiteGraph, SparseGraph
from mmgef.graphs.propagation import Graph, propagate
from mmgef.models.base import Batch, ModelContext, Recommender, ego_l2, id_embedding
from mmgef.models.losses import bpr_loss
from mmgef.params import LightGCNParams


class LightGCN(Recommender):
    """ID embeddings smoothed over the bipartite graph; L2 on the ego embeddings."""

    def __init__(self, params: LightGCNParams, ctx: ModelContext, reg: float = 0.0) -> None:
        super().__init__(ctx, reg)
        self.user_emb = id_embedding(ctx.n_users, params.embedding_dim)
        self.item_emb = id_embedding(ctx.n_items, params.embedding_dim)
        self.n_layers = params.n_layers
        self.graph = SparseGraph(bipartite_adjacency(ctx.train), symmetric=True)
        self.pruned = PrunedBipartiteGraph(ctx.train, params.edge_dropout) if params.edge_dropout > 0 else None

    def on_epoch_start(self, epoch: int) -> None:
        """Resample the pruned graph (torch's RNG is seeded per epoch by the trainer)."""
        if self.pruned is not None:
            self.pruned.resample()

    def active_graph(self) -> Graph:
        """The pruned graph while training with ``edge_dropout``, else the full one."""
        return self.pruned if self.training and self.pruned is not None else self.graph

    def _ego(self) -> torch.Tensor:
        return torch.cat([self.user_emb.weight, self.item_emb.weight])

    def layer_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        out = propagate(self.active_graph(), self._ego(), self.n_layers, pool="stack")
        return out[: self.n_users], out[self.n_users :]

    def pool_layers(self, layers: torch.Tensor) -> torch.Tensor:
        return layers.mean(-2)

    def mixgcf_query(self, user_layers: torch.Tensor, user: torch.Tensor) -> torch.Tensor:
        """The pooled user at every layer, as MixGCF's reference implementation does for mean pooling."""
        return user.unsqueeze(1).expand_as(user_layers)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        out = propagate(self.active_graph(), self._ego(), self.n_layers, pool="mean")
        return out[: self.n_users], out[self.n_users :]

    def loss(self, batch: Batch) -> torch.Tensor:
        return bpr_loss(*self.batch_vectors(batch)) + self.reg * ego_l2(self.user_emb, self.item_emb, batch)
