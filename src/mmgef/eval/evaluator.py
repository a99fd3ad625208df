"""Batched full-ranking evaluation: memory stays O(batch × items) whatever the user count."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

from mmgef.eval.metrics import METRICS, compute

ScoreFn = Callable[[torch.Tensor], torch.Tensor]


class Evaluator:
    """Ranks all items (or only ``candidates``) for every user with at least one target item.

    ``exclude`` matrices (training items, and validation items at test time) are masked to -inf
    before ranking, so a model is never rewarded for recommending what the user already has.
    """

    def __init__(
        self,
        target: sp.csr_matrix,
        exclude: list[sp.csr_matrix],
        ks: list[int],
        batch_size: int = 1024,
        candidates: np.ndarray | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if not ks or min(ks) <= 0:
            raise ValueError(f"every K must be a positive integer, got {ks}")
        self.target = target.tocsr()
        self.exclude = sp.csr_matrix(target.shape, dtype=np.float32)
        for m in exclude:
            self.exclude = self.exclude + m.tocsr()
        self.exclude = self.exclude.tocsr()
        self.ks = sorted(ks)
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.users = np.flatnonzero(np.diff(self.target.indptr) > 0)
        self.candidate_mask: torch.Tensor | None = None
        if candidates is not None:
            mask = torch.ones(target.shape[1], dtype=torch.bool)
            mask[torch.as_tensor(candidates, dtype=torch.long)] = False
            self.candidate_mask = mask.to(self.device)  # True = not a candidate

    @property
    def n_users(self) -> int:
        return len(self.users)

    @torch.no_grad()
    def evaluate(self, score_fn: ScoreFn) -> dict[str, float]:
        """Mean of every metric over evaluated users, keyed like ``recall@20``."""
        totals: dict[str, float] = {}
        n_items = self.target.shape[1]
        k_max = min(self.ks[-1], n_items)
        for start in range(0, len(self.users), self.batch_size):
            users = self.users[start : start + self.batch_size]
            scores = score_fn(torch.as_tensor(users, dtype=torch.long, device=self.device)).float().clone()
            if not bool(torch.isfinite(scores).all()):
                # NaN/inf scores rank arbitrarily yet give finite-looking metrics: report them as NaN.
                return {f"{m}@{k}": float("nan") for k in self.ks for m in METRICS}
            ex = self.exclude[users]
            rows = torch.as_tensor(np.repeat(np.arange(len(users)), np.diff(ex.indptr)), device=self.device)
            scores[rows, torch.as_tensor(ex.indices, dtype=torch.long, device=self.device)] = -torch.inf
            if self.candidate_mask is not None:
                scores[:, self.candidate_mask] = -torch.inf
            top = torch.topk(scores, k_max, dim=1).indices
            tg = self.target[users]
            dense = torch.zeros(len(users), n_items, dtype=torch.bool, device=self.device)
            trows = torch.as_tensor(np.repeat(np.arange(len(users)), np.diff(tg.indptr)), device=self.device)
            dense[trows, torch.as_tensor(tg.indices, dtype=torch.long, device=self.device)] = True
            hits = dense.gather(1, top)
            if k_max < self.ks[-1]:  # fewer items than K: the missing ranks are misses
                hits = torch.nn.functional.pad(hits, (0, self.ks[-1] - k_max))
            n_rel = torch.as_tensor(np.diff(tg.indptr), device=self.device)
            for key, values in compute(hits, n_rel, self.ks).items():
                totals[key] = totals.get(key, 0.0) + float(values.sum())
        return {key: value / max(1, len(self.users)) for key, value in totals.items()}
