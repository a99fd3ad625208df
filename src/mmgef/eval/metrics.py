"""Top-K metrics computed in one vectorised call on a hit matrix.

``hits[b, r]`` is 1 when the item ranked r-th (0-based) for user b is relevant; ``n_rel[b]`` is the
number of relevant items of user b (> 0). Definitions follow design.md: Recall@K = hits / |rel|,
Precision@K = hits / K, NDCG@K with binary gains and the ideal DCG over min(K, |rel|),
HitRate@K = 1 if any hit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

MetricFn = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


@dataclass(frozen=True)
class Metric:
    name: str
    fn: MetricFn

    def __call__(self, hits: torch.Tensor, n_rel: torch.Tensor, k: int) -> torch.Tensor:
        """Per-user values, shape [B]."""
        return self.fn(hits[:, :k], n_rel, k)


def _recall(hits: torch.Tensor, n_rel: torch.Tensor, k: int) -> torch.Tensor:
    return hits.sum(1) / n_rel


def _precision(hits: torch.Tensor, n_rel: torch.Tensor, k: int) -> torch.Tensor:
    return hits.sum(1) / k


def _discounts(k: int, device: torch.device) -> torch.Tensor:
    return 1.0 / torch.log2(torch.arange(2, k + 2, device=device, dtype=torch.float64))


def _ndcg(hits: torch.Tensor, n_rel: torch.Tensor, k: int) -> torch.Tensor:
    disc = _discounts(k, hits.device)
    dcg = (hits * disc[: hits.shape[1]]).sum(1)
    idcg = torch.cumsum(disc, 0)[torch.clamp(n_rel.long(), max=k) - 1]
    return dcg / idcg


def _hit(hits: torch.Tensor, n_rel: torch.Tensor, k: int) -> torch.Tensor:
    return (hits.sum(1) > 0).double()


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (Metric("recall", _recall), Metric("precision", _precision), Metric("ndcg", _ndcg), Metric("hit", _hit))
}


def compute(hits: torch.Tensor, n_rel: torch.Tensor, ks: list[int]) -> dict[str, torch.Tensor]:
    """Per-user values of every metric at every K, keyed like ``recall@20``."""
    hits = hits.double()
    n_rel = n_rel.double()
    return {f"{name}@{k}": metric(hits, n_rel, k) for k in ks for name, metric in METRICS.items()}
