"""MF-BPR: user and item ID embeddings, score = dot product."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from mmgef.config import Strict
from mmgef.models.base import ModelContext, Recommender


class MFParams(Strict):
    embedding_dim: int = Field(64, gt=0)


class MF(Recommender):
    def __init__(self, params: MFParams, ctx: ModelContext) -> None:
        super().__init__(ctx)
        self.user_emb = nn.Embedding(ctx.n_users, params.embedding_dim)
        self.item_emb = nn.Embedding(ctx.n_items, params.embedding_dim)
        nn.init.xavier_uniform_(self.user_emb.weight)
        nn.init.xavier_uniform_(self.item_emb.weight)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_emb.weight, self.item_emb.weight
