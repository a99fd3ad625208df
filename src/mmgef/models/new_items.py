"""Scores of new items on the same footing as trained ones (the ``new_item_scores`` option of every model).

An item without training interactions never receives a BPR gradient, so its vector — from content, from
neighbours, or zero — lives on another scale than trained items' vectors, and with every item ranked its
scores decide how much room it gets more than its order among new items does (benchmarks/bench_cold_exposure.py
measured the share). ``standardised`` maps each user's scores of untrained items onto the mean and spread
of that user's scores of trained items. Both moments come from the item vectors in closed form — the mean
score of a group is u·m, its variance uᵀΣu — so the map costs O(d²) per user and never scores the catalogue.

The map is affine per user, s' = a_u (u·i) + b_u for an untrained item, so it is itself a dot product of
augmented vectors: user [u, a_u u, b_u], trained item [i, 0, 0], untrained item [0, i, 1]. Serving, export
and FAISS indexes use those vectors unchanged.
"""

from __future__ import annotations

import torch


def group_moments(items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean vector and covariance of a group of item vectors: a user's scores over the group have mean u·m and
    variance uᵀΣu."""
    return items.mean(0), torch.cov(items.T)


def standardise_new_items(users: torch.Tensor, items: torch.Tensor, untrained: torch.Tensor,
                          eps: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented (users, items) whose dot products are the raw scores for trained items and the standardised
    scores for ``untrained`` ones (a boolean mask over items). With fewer than two items in either group the
    spread is undefined: the vectors come back unchanged."""
    n_new = int(untrained.sum())
    if n_new < 2 or items.shape[0] - n_new < 2:
        return users, items
    m_w, c_w = group_moments(items[~untrained])
    m_n, c_n = group_moments(items[untrained])
    sd_w = ((users @ c_w) * users).sum(1).clamp_min(eps).sqrt()
    sd_n = ((users @ c_n) * users).sum(1).clamp_min(eps).sqrt()
    a = sd_w / sd_n
    b = users @ m_w - a * (users @ m_n)
    new = untrained[:, None].to(items.dtype)
    aug_users = torch.cat([users, a[:, None] * users, b[:, None]], dim=1)
    aug_items = torch.cat([items * (1 - new), items * new, new], dim=1)
    return aug_users, aug_items
