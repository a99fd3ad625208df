"""VBPR: item = ID embedding ⊕ linear projection of its content; user vector twice as wide."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from mmgef.config import Strict
from mmgef.features.fusion import concat, select
from mmgef.models.base import ModelContext, Recommender


class VBPRParams(Strict):
    embedding_dim: int = Field(64, gt=0, description="size of the ID part and of the content part")
    modalities: list[str] | None = None


class VBPR(Recommender):
    def __init__(self, params: VBPRParams, ctx: ModelContext) -> None:
        super().__init__(ctx)
        d = params.embedding_dim
        feats = concat(select(ctx.content, params.modalities, "vbpr"))
        self.register_buffer("content", torch.from_numpy(feats), persistent=False)
        self.user_emb = nn.Embedding(ctx.n_users, 2 * d)
        self.item_emb = nn.Embedding(ctx.n_items, d)
        self.proj = nn.Linear(feats.shape[1], d)
        for w in (self.user_emb.weight, self.item_emb.weight, self.proj.weight):
            nn.init.xavier_uniform_(w)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        items = torch.cat([self.item_emb.weight, self.proj(self.content)], dim=1)
        return self.user_emb.weight, items
