"""VBPR: item = ID embedding ⊕ linear projection of its content; user vector twice as wide.

Training projects only the batch's distinct items (``batch_vectors``): with 4096-d features the
projection is most of an epoch's cost, and the whole catalogue is needed only for ranking.
"""

from __future__ import annotations

import torch
from torch import nn

from mmgef.features.fusion import concat, select
from mmgef.models.base import Batch, ModelContext, Recommender, id_embedding
from mmgef.params import VBPRParams


class VBPR(Recommender):
    def __init__(self, params: VBPRParams, ctx: ModelContext, reg: float = 0.0) -> None:
        super().__init__(ctx, reg)
        d = params.embedding_dim
        feats = concat(select(ctx.content, params.modalities, "vbpr"))
        self.register_buffer("content", torch.from_numpy(feats), persistent=False)
        self.user_emb = id_embedding(ctx.n_users, 2 * d)
        self.item_emb = id_embedding(ctx.n_items, d)
        self.proj = nn.Linear(feats.shape[1], d)
        nn.init.xavier_uniform_(self.proj.weight)

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """[ID ; W·content] of the given items (all when None)."""
        if items is None:
            return torch.cat([self.item_emb.weight, self.proj(self.content)], dim=1)
        # index_select: the gather of wide feature rows is memory-bound, and faster than fancy indexing on CPU
        return torch.cat([self.item_emb(items), self.proj(self.content.index_select(0, items))], dim=1)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_emb.weight, self.item_vectors()

    def batch_vectors(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each distinct item of the batch is projected once."""
        items, inverse = torch.unique(torch.cat([batch.pos, batch.neg]), return_inverse=True)
        vecs = self.item_vectors(items)[inverse]
        return self.user_emb(batch.users), vecs[: len(batch.pos)], vecs[len(batch.pos) :]
