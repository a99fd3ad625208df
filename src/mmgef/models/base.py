"""The contract every recommender follows, so the trainer and evaluator never special-case one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from mmgef.errors import ConfigError
from mmgef.models.losses import bpr_loss, l2_loss
from mmgef.models.mixgcf import mixgcf_negative


class Batch(NamedTuple):
    """One BPR batch: user indices, their positive items and sampled negatives.

    ``neg`` is ``[B]`` for one negative per pair, or ``[B, M]`` candidates for MixGCF.
    """

    users: torch.Tensor
    pos: torch.Tensor
    neg: torch.Tensor


@dataclass
class ModelContext:
    """What a model may know about the data: sizes, the training matrix, item and user content."""

    n_users: int
    n_items: int
    train: sp.csr_matrix
    content: dict[str, np.ndarray] = field(default_factory=dict)
    user_content: dict[str, np.ndarray] = field(default_factory=dict)
    reg: float = 1e-4
    device: torch.device = torch.device("cpu")


class Recommender(nn.Module):
    """Base class: ``loss(batch)``, ``scores(users)``, ``on_epoch_start(epoch)``, ``embeddings()``.

    Subclasses implement ``embeddings()`` (final user and item vectors, with gradients in training
    mode). Scoring is the dot product; evaluation computes the embeddings once and reuses them
    for every batch of users until the model goes back to training mode.
    """

    trainable: bool = True
    # True when the pooled ``layer_embeddings()`` are the final vectors, so MixGCF can mix them.
    mixes_layers: bool = False

    def __init__(self, ctx: ModelContext) -> None:
        super().__init__()
        self.n_users = ctx.n_users
        self.n_items = ctx.n_items
        self.reg = ctx.reg
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def layer_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-layer user and item embeddings ``[n, L+1, d]`` (graph models; MixGCF needs them)."""
        raise NotImplementedError

    def pool_layers(self, layers: torch.Tensor) -> torch.Tensor:
        """How the model turns ``[..., L+1, d]`` layer embeddings into one vector (LightGCN: mean)."""
        return layers.mean(-2)

    def mixgcf_query(self, user_layers: torch.Tensor, user: torch.Tensor) -> torch.Tensor:
        """What MixGCF scores each layer's candidates against: the pooled user at every layer, as
        the reference implementation does for mean pooling. ``[B, L+1, d]``."""
        return user.unsqueeze(1).expand_as(user_layers)

    def mixgcf_loss(self, batch: Batch) -> torch.Tensor:
        """BPR against MixGCF's synthetic hard negative built from ``batch.neg`` candidates."""
        u_layers, i_layers = self.layer_embeddings()
        u, pos = u_layers[batch.users], i_layers[batch.pos]
        user = self.pool_layers(u)
        neg, _ = mixgcf_negative(self.mixgcf_query(u, user), pos, i_layers, batch.neg)
        final = (user, self.pool_layers(pos), self.pool_layers(neg))
        ego = (u[:, 0], pos[:, 0], neg[:, 0])
        return bpr_loss(*final) + self.reg * l2_loss(*ego)

    def reg_terms(self, batch: Batch, final: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """Embeddings the L2 penalty applies to (default: the batch's final embeddings)."""
        return final

    def loss(self, batch: Batch) -> torch.Tensor:
        if batch.neg.dim() == 2:
            if not self.mixes_layers:
                raise ConfigError(f"model '{type(self).__name__}' has no propagation layers that make its final vectors, "
                                  "so MixGCF cannot mix them. Fix: use --sampler uniform, or lightgcn / ngcf.")
            return self.mixgcf_loss(batch)
        u, i = self.embeddings()
        final = (u[batch.users], i[batch.pos], i[batch.neg])
        return bpr_loss(*final) + self.reg * l2_loss(*self.reg_terms(batch, final)) + self.auxiliary_loss(batch, final)

    def auxiliary_loss(self, batch: Batch, final: tuple[torch.Tensor, ...]) -> torch.Tensor | float:
        """A model's extra training term beside BPR and L2 (FREEDOM's modality BPR); none by default."""
        return 0.0

    def on_epoch_start(self, epoch: int) -> None:
        """Hook for per-epoch work (e.g. rebuilding a learned item graph)."""

    def train(self, mode: bool = True) -> Recommender:
        self._cache = None
        return super().train(mode)

    @torch.no_grad()
    def cached_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cache is None or self.training:
            self._cache = self.embeddings()
        return self._cache

    @torch.no_grad()
    def scores(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each user, shape [len(users), n_items]."""
        u, i = self.cached_embeddings()
        return u[users] @ i.T
