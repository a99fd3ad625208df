"""Losses shared by every model (one copy, not one per model file)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(user: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking: -log σ(u·p − u·n), averaged over the batch."""
    return F.softplus((user * neg).sum(-1) - (user * pos).sum(-1)).mean()


def l2_loss(*tensors: torch.Tensor) -> torch.Tensor:
    """½ Σ‖x‖² over the given embeddings, divided by the batch size (LightGCN's convention)."""
    batch = tensors[0].shape[0]
    return sum(t.pow(2).sum() for t in tensors) / (2 * batch)
