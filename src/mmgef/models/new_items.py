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


def own_score_sums(users: torch.Tensor, items: torch.Tensor, own: tuple[torch.Tensor, torch.Tensor],
                   chunk: int = 1 << 18) -> tuple[torch.Tensor, torch.Tensor]:
    """Per user, the sum and the sum of squares of their scores of their own (training) items, from the
    (user, item) pairs ``own``: O(pairs × d) in chunks, never a user × item matrix."""
    rows, cols = own
    s1 = users.new_zeros(users.shape[0])
    s2 = users.new_zeros(users.shape[0])
    for start in range(0, rows.numel(), chunk):
        r, c = rows[start:start + chunk], cols[start:start + chunk]
        dots = (users[r] * items[c]).sum(1)
        s1.index_add_(0, r, dots)
        s2.index_add_(0, r, dots * dots)
    return s1, s2


def standardise_new_items(users: torch.Tensor, items: torch.Tensor, untrained: torch.Tensor,
                          own: tuple[torch.Tensor, torch.Tensor] | None = None,
                          eps: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented (users, items) whose dot products are the raw scores for trained items and the standardised
    scores for ``untrained`` ones (a boolean mask over items). With ``own`` (each user's training pairs) the
    trained items' moments leave out the user's own items — the ones ranking masks, which score highest
    (measured on the cold splits: new items' share of the top 20 falls only from 70% to 66%, so they are not
    what over-exposes new items; README "Standardised new-item scores").
    With fewer than two items in either group the spread is undefined: the vectors come back unchanged."""
    n_new = int(untrained.sum())
    if n_new < 2 or items.shape[0] - n_new < 2:
        return users, items
    warm = items[~untrained]
    m_n, c_n = group_moments(items[untrained])
    sd_n = ((users @ c_n) * users).sum(1).clamp_min(eps).sqrt()
    if own is None:
        m_w, c_w = group_moments(warm)
        mu_w = users @ m_w
        sd_w = ((users @ c_w) * users).sum(1).clamp_min(eps).sqrt()
    else:  # Σ over the warm items less the user's own, from the warm sum, Gram matrix and the own-item sums
        s1, s2 = own_score_sums(users, items, own)
        n = (warm.shape[0] - torch.bincount(own[0], minlength=users.shape[0]).to(users.dtype)).clamp_min(2.0)
        total1 = users @ warm.sum(0) - s1
        total2 = ((users @ (warm.T @ warm)) * users).sum(1) - s2
        mu_w = total1 / n
        sd_w = ((total2 - n * mu_w * mu_w) / (n - 1)).clamp_min(eps).sqrt()
    a = sd_w / sd_n
    b = mu_w - a * (users @ m_n)
    new = untrained[:, None].to(items.dtype)
    aug_users = torch.cat([users, a[:, None] * users, b[:, None]], dim=1)
    aug_items = torch.cat([items * (1 - new), items * new, new], dim=1)
    return aug_users, aug_items
