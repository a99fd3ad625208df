"""NGCF: propagation with feature transforms and a bi-interaction term; layers concatenated."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmgef.graphs.bipartite import bipartite_adjacency
from mmgef.graphs.modules import SparseGraph
from mmgef.models.base import Batch, ModelContext, Recommender, ego_l2, id_embedding
from mmgef.models.losses import bpr_loss
from mmgef.params import NGCFParams


class NGCF(Recommender):
    def __init__(self, params: NGCFParams, ctx: ModelContext, reg: float = 0.0) -> None:
        super().__init__(ctx, reg)
        d = params.embedding_dim
        self.user_emb = id_embedding(ctx.n_users, d)
        self.item_emb = id_embedding(ctx.n_items, d)
        self.w_gc = nn.ModuleList(nn.Linear(d, d) for _ in range(params.n_layers))
        self.w_bi = nn.ModuleList(nn.Linear(d, d) for _ in range(params.n_layers))
        self.dropout = nn.Dropout(params.mess_dropout)
        self.graph = SparseGraph(bipartite_adjacency(ctx.train, self_loops=True), symmetric=True)

    def layer_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        ego = torch.cat([self.user_emb.weight, self.item_emb.weight])
        layers = [ego]
        for w_gc, w_bi in zip(self.w_gc, self.w_bi):
            side = self.graph.mm(ego)
            ego = F.leaky_relu(w_gc(side) + w_bi(ego * side), 0.2)
            ego = self.dropout(ego)
            layers.append(F.normalize(ego, dim=1))
        out = torch.stack(layers, dim=1)
        return out[: self.n_users], out[self.n_users :]

    def pool_layers(self, layers: torch.Tensor) -> torch.Tensor:
        """NGCF concatenates its layers."""
        return layers.flatten(-2)

    def mixgcf_query(self, user_layers: torch.Tensor, user: torch.Tensor) -> torch.Tensor:
        """Concatenated layers are wider than one layer: score layer l against the user's layer l."""
        return user_layers

    def item_dim(self) -> int:
        return int(self.item_emb.embedding_dim) * (len(self.w_gc) + 1)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        u, i = self.layer_embeddings()
        return self.pool_layers(u), self.pool_layers(i)

    def loss(self, batch: Batch) -> torch.Tensor:
        return bpr_loss(*self.batch_vectors(batch)) + self.reg * ego_l2(self.user_emb, self.item_emb, batch)
