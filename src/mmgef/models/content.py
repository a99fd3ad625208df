"""Content-only models (no training).

- CB: user profile = mean content vector of the training items; cosine scores.
- Content initialisation, the pre-training paper's "CLIP" baseline: item vectors from the items'
  content, written as ``pretrained.safetensors`` for ``mmgef train --init``. The paper averages each
  item's CLIP image and text vectors; at the ID embeddings' width (64) that needs a reduction, so the
  fused vectors are projected onto their top principal components. Modalities from one joint
  encoder are averaged (the paper's case); others are concatenated as unit blocks first, since
  averaging coordinates of unrelated spaces mixes meaningless pairs. Vectors are rescaled to the
  row norm of a fresh Xavier ID embedding, so the fine-tuned model starts at its usual scale. The
  paper initialises items only: users keep random Xavier vectors (``users=profile``: the mean of
  their training items' vectors).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from mmgef.features.fusion import concat, early_fuse, l2_normalize, select, shared_fusion
from mmgef.graphs.sparse import row_normalize
from mmgef.models.base import ModelContext, Recommender, id_embedding
from mmgef.params import CBParams, ContentInitParams


def user_profiles(train: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
    """Each user's unit-length mean of their training items' vectors (zero for a user without any)."""
    return l2_normalize(np.asarray(row_normalize(train) @ items, dtype=np.float32))


class ContentBased(Recommender):
    """No parameters to learn: the trainer evaluates it directly."""

    trainable = False

    def __init__(self, params: CBParams, ctx: ModelContext, reg: float = 0.0) -> None:
        super().__init__(ctx, reg)
        items = l2_normalize(concat(select(ctx.content, params.modalities, "cb")))
        profiles = user_profiles(ctx.train, items)
        self.register_buffer("item_vecs", torch.from_numpy(items))
        self.register_buffer("user_vecs", torch.from_numpy(profiles))

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_vecs, self.item_vecs


def principal_components(x: np.ndarray, dim: int) -> np.ndarray:
    """``x`` centred and projected onto its top ``dim`` principal directions (zero-padded when fewer exist)."""
    centred = x - x.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    out = np.zeros((x.shape[0], dim), dtype=np.float32)
    k = min(dim, vt.shape[0])
    out[:, :k] = centred @ vt[:k].T
    return out


def xavier_row_norm(rows: int, dim: int) -> float:
    """Expected row norm of an ``id_embedding(rows, dim)`` table: entries ~ U(±√(6/(rows+dim))), variance bound²/3."""
    return float(np.sqrt(6 / (rows + dim)) * np.sqrt(dim / 3))


class ContentInit(Recommender):
    """Item vectors from content (see module doc); exported as pre-trained embeddings."""

    trainable = False

    def __init__(self, params: ContentInitParams, ctx: ModelContext, reg: float = 0.0) -> None:
        super().__init__(ctx, reg)
        content = select(ctx.content, params.modalities, "cinit")
        fused = early_fuse(content) if shared_fusion("auto", content, ctx.joint_modalities) else concat(content)
        d = params.embedding_dim
        items = l2_normalize(principal_components(fused, d))
        if params.users == "random":
            users = id_embedding(ctx.n_users, d).weight.detach().numpy()
        else:
            users = user_profiles(ctx.train, items) * xavier_row_norm(ctx.n_users, d)
        self.register_buffer("item_vecs", torch.from_numpy((items * xavier_row_norm(ctx.n_items, d)).astype(np.float32)))
        self.register_buffer("user_vecs", torch.as_tensor(users, dtype=torch.float32))

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_vecs, self.item_vecs
