"""CB: content only. User profile = mean content vector of the training items; cosine scores."""

from __future__ import annotations

import numpy as np
import torch

from mmgef.features.fusion import concat, l2_normalize, select
from mmgef.graphs.sparse import row_normalize
from mmgef.models.base import ModelContext, Recommender
from mmgef.params import CBParams


class ContentBased(Recommender):
    """No parameters to learn: the trainer evaluates it directly."""

    trainable = False

    def __init__(self, params: CBParams, ctx: ModelContext, reg: float = 0.0) -> None:
        super().__init__(ctx, reg)
        items = l2_normalize(concat(select(ctx.content, params.modalities, "cb")))
        profiles = l2_normalize(np.asarray(row_normalize(ctx.train) @ items, dtype=np.float32))
        self.register_buffer("item_vecs", torch.from_numpy(items))
        self.register_buffer("user_vecs", torch.from_numpy(profiles))

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_vecs, self.item_vecs
