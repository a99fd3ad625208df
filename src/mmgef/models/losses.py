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


def bce_loss(user: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on dot-product logits: positives labelled 1, sampled negatives 0."""
    pos_logit, neg_logit = (user * pos).sum(-1), (user * neg).sum(-1)
    return (F.softplus(-pos_logit) + F.softplus(neg_logit)).mean()


def pairwise_bce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Binary cross-entropy over all N×N (a_p, b_q) pairs on the scaled cosine cos/τ: the N matching pairs
    (the diagonal) labelled 1, the N² − N others 0; mean over the N² pairs. The pre-training paper's CIMA
    (Eq. 11), with the sigmoid that makes its log-likelihood a probability."""
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature
    return F.binary_cross_entropy_with_logits(logits, torch.eye(len(a), device=a.device, dtype=logits.dtype))


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE: row i of ``a`` should match row i of ``b`` against the batch's other rows.

    Inputs are L2-normalised here, so the logits are cosines / temperature.
    """
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = a @ b.T / temperature
    target = torch.arange(len(a), device=a.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
