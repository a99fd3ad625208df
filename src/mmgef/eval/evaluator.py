"""Batched full-ranking evaluation whose memory is O(user batch × (item block + K)) whatever the sizes.

Users go in batches and, for each batch, the catalogue in blocks of items: each block's scores are
masked, cut to their top K and merged into the running top K, so one million items never need a
users × items matrix. Hits are looked up in the targets' sparse (row, item) keys, not a dense mask.
Equal scores are ranked by item index (lower first), so the top K does not depend on K, the item
block or the device: ``torch.topk`` alone picks among ties however its kernel happens to, and a model
with tied scores (a content model's user without training items, items with identical features) would
score differently when re-evaluated with another K.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp
import torch

from mmgef.eval.metrics import METRICS, compute

ScoreFn = Callable[[torch.Tensor, slice], torch.Tensor]  # (users, items[start:stop]) → [len(users), stop - start]


def top_k_by_index(values: torch.Tensor, ids: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's ``k`` largest values and their ids, best first, equal values in ascending id.

    ``ids`` must ascend along each row among equal values (true of a block's item indices and of a
    merge of two lists this function returned, the lower ids first). One more value than asked shows
    whether a tie crosses the cut; only such rows are redone, and the order within the top k is a stable
    sort, so rows without ties cost what ``torch.topk`` costs.
    """
    vals, pos = torch.topk(values, min(k + 1, values.shape[1]), dim=1)
    spill = (vals[:, k] == vals[:, k - 1]).nonzero().squeeze(1) if vals.shape[1] > k else vals.new_zeros(0, dtype=torch.long)
    vals, pos = vals[:, :k], pos[:, :k]
    if len(spill):  # topk chose among ties at the cut: keep every larger value, then the first tied ones
        rows, cut = values[spill], vals[spill, -1:]
        tied = rows == cut
        keep = (rows > cut) | (tied & (tied.cumsum(1) <= k - (rows > cut).sum(1, keepdim=True)))
        pos[spill] = keep.nonzero()[:, 1].view(len(spill), k)
        vals[spill] = rows.gather(1, pos[spill])
    pos, by_pos = pos.sort(dim=1)  # column order = ascending id among equal values
    vals = vals.gather(1, by_pos)
    vals, order = vals.sort(dim=1, descending=True, stable=True)
    return vals, ids.gather(1, pos.gather(1, order))


class Evaluator:
    """Ranks all items (or only ``candidates``) for every user with at least one target item.

    ``exclude`` matrices (training items, and validation items at test time) are masked to -inf
    before ranking, so a model is never rewarded for recommending what the user already has.
    ``sample_users`` > 0 evaluates a seeded sample of that many users (for very large data);
    ``item_block`` bounds the items scored at once.
    """

    def __init__(
        self,
        target: sp.csr_matrix,
        exclude: list[sp.csr_matrix],
        ks: list[int],
        batch_size: int = 1024,
        candidates: np.ndarray | None = None,
        device: str | torch.device = "cpu",
        item_block: int = 65_536,
        sample_users: int | None = None,
        seed: int = 0,
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
        self.item_block = item_block
        self.device = torch.device(device)
        self.users = np.flatnonzero(np.diff(self.target.indptr) > 0)
        if sample_users and sample_users < len(self.users):
            rng = np.random.default_rng(seed)
            self.users = np.sort(rng.choice(self.users, sample_users, replace=False))
        self.candidate_mask: torch.Tensor | None = None
        if candidates is not None:
            mask = torch.ones(target.shape[1], dtype=torch.bool)
            mask[torch.as_tensor(candidates, dtype=torch.long)] = False
            self.candidate_mask = mask.to(self.device)  # True = not a candidate

    @property
    def n_users(self) -> int:
        return len(self.users)

    def _rows_cols(self, m: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.as_tensor(np.repeat(np.arange(m.shape[0]), np.diff(m.indptr)), device=self.device)
        return rows, torch.as_tensor(m.indices, dtype=torch.long, device=self.device)

    def top_items(self, score_fn: ScoreFn, users: np.ndarray) -> torch.Tensor | None:
        """The top ``max(ks)`` item indices per user, best first, merged block by block (None: a score
        was not finite)."""
        n_items = self.target.shape[1]
        k_max = min(self.ks[-1], n_items)
        user_t = torch.as_tensor(users, dtype=torch.long, device=self.device)
        ex_rows, ex_cols = self._rows_cols(self.exclude[users])
        best_vals = torch.full((len(users), 0), -torch.inf, device=self.device)
        best_idx = torch.zeros((len(users), 0), dtype=torch.long, device=self.device)
        for start in range(0, n_items, self.item_block):
            stop = min(start + self.item_block, n_items)
            scores = score_fn(user_t, slice(start, stop)).float().clone()
            if not bool(torch.isfinite(scores).all()):
                return None
            inside = (ex_cols >= start) & (ex_cols < stop)
            scores[ex_rows[inside], ex_cols[inside] - start] = -torch.inf
            if self.candidate_mask is not None:
                scores[:, self.candidate_mask[start:stop]] = -torch.inf
            block_ids = torch.arange(start, stop, device=self.device).expand(len(users), -1)
            vals, idx = top_k_by_index(scores, block_ids, min(k_max, stop - start))
            merged_vals = torch.cat([best_vals, vals], dim=1)
            merged_idx = torch.cat([best_idx, idx], dim=1)
            best_vals, best_idx = top_k_by_index(merged_vals, merged_idx, min(k_max, merged_vals.shape[1]))
        return best_idx

    def _batch_metrics(self, score_fn: ScoreFn) -> Iterator[dict[str, torch.Tensor] | None]:
        """Per-user values of every metric, one user batch at a time (None: a score was not finite)."""
        n_items = self.target.shape[1]
        k_max = min(self.ks[-1], n_items)
        for start in range(0, len(self.users), self.batch_size):
            users = self.users[start : start + self.batch_size]
            top = self.top_items(score_fn, users)
            if top is None:
                yield None
                return
            tg = self.target[users]
            t_rows, t_cols = self._rows_cols(tg)
            hits = torch.isin(torch.arange(len(users), device=self.device)[:, None] * n_items + top, t_rows * n_items + t_cols)
            if k_max < self.ks[-1]:  # fewer items than K: the missing ranks are misses
                hits = torch.nn.functional.pad(hits, (0, self.ks[-1] - k_max))
            n_rel = torch.as_tensor(np.diff(tg.indptr), device=self.device)
            yield compute(hits, n_rel, self.ks)

    def _nan(self) -> dict[str, float]:
        # NaN/inf scores rank arbitrarily yet give finite-looking metrics: report them as NaN
        return {f"{m}@{k}": float("nan") for k in self.ks for m in METRICS}

    @torch.no_grad()
    def evaluate(self, score_fn: ScoreFn) -> dict[str, float]:
        """Mean of every metric over evaluated users, keyed like ``recall@20``."""
        totals: dict[str, float] = {}
        for values in self._batch_metrics(score_fn):
            if values is None:
                return self._nan()
            for key, v in values.items():
                totals[key] = totals.get(key, 0.0) + float(v.sum())
        return {key: value / max(1, len(self.users)) for key, value in totals.items()}

    @torch.no_grad()
    def per_user(self, score_fn: ScoreFn) -> dict[str, np.ndarray]:
        """Every metric of every evaluated user, in ``users`` order (their mean is ``evaluate``): what a paired
        test of two models over the same users needs (NaN for every user if a score was not finite)."""
        parts: dict[str, list[np.ndarray]] = {}
        for values in self._batch_metrics(score_fn):
            if values is None:
                return {key: np.full(len(self.users), np.nan) for key in self._nan()}
            for key, v in values.items():
                parts.setdefault(key, []).append(v.cpu().numpy())
        return {key: np.concatenate(vs) for key, vs in parts.items()}
