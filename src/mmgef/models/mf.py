"""MF-BPR: user and item ID embeddings, score = dot product."""

from __future__ import annotations

import torch

from mmgef.models.base import Batch, ModelContext, Recommender, id_embedding
from mmgef.params import MFParams


class MF(Recommender):
    def __init__(self, params: MFParams, ctx: ModelContext, reg: float = 0.0) -> None:
        super().__init__(ctx, reg)
        self.user_emb = id_embedding(ctx.n_users, params.embedding_dim)
        self.item_emb = id_embedding(ctx.n_items, params.embedding_dim)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_emb.weight, self.item_emb.weight

    def batch_vectors(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Only the batch's rows: no product over the catalogue."""
        return self.user_emb(batch.users), self.item_emb(batch.pos), self.item_emb(batch.neg)
