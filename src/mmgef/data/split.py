"""Train / validation / test splits over one index space.

- given: the source's own labels (MMRec x_label, LATTICE json files, native ``split`` column).
- random: per user, 80/10/10 at random (seeded). A user with n interactions gives
  max(1, round(0.1 n)) to validation and to test when n >= 3; users with fewer than 3
  interactions keep all of them in training (they cannot be evaluated without losing training data).
- temporal: as random, but each user's latest interactions go to test and the ones before to validation.
- cold: LATTICE's cold-start protocol. A seeded 20% of items lose every training interaction;
  half of them (with all their interactions) form the validation items, half the test items.
  Warm interactions stay in training. Evaluation ranks every item (``cold_eval="all"``, MM-GEF §4.5),
  or only that part's cold items (``cold_eval="cold_only"``). With ``warm_targets`` the warm
  interactions are also split per user as ``random`` does, so validation and test hold warm and new
  items together: a model that pushes new items up pays for it in the warm items it displaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from mmgef.data.dataset import Dataset
from mmgef.errors import ConfigError, DataError


@dataclass
class Split:
    kind: str
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    cold_valid_items: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    cold_test_items: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    cold_eval: str = "all"  # cold split: "all" items compete, or "cold_only" the part's cold items

    @property
    def cold_items(self) -> np.ndarray:
        return np.concatenate([self.cold_valid_items, self.cold_test_items])

    def untrained_items(self) -> np.ndarray:
        """Items with no training interaction: the cold items, and any item never interacted with."""
        return np.flatnonzero(np.diff(self.train.tocsc().indptr) == 0)

    def candidates(self, part: str) -> np.ndarray | None:
        """Items eligible for ranking in ``part`` (None = all items)."""
        if self.kind != "cold" or self.cold_eval == "all":
            return None
        return self.cold_valid_items if part == "valid" else self.cold_test_items

    def counts(self) -> dict[str, int]:
        return {"train": int(self.train.nnz), "valid": int(self.valid.nnz), "test": int(self.test.nnz)}

    def item_degree_by_part(self, rare: int = 5) -> dict[str, dict[str, float]]:
        """Per part, how popular in training the items of its pairs are: the median training degree over the
        part's pairs and the shares of its pairs on untrained items and on items with at most ``rare`` training
        interactions. Where the held-out parts lean to rarer items than the training pairs do, the held-out
        interactions are not drawn like the training ones, and what fits the training co-occurrences carries over
        less (benchmarks/results/degree_buckets/)."""
        degree = np.diff(self.train.tocsc().indptr)
        out = {}
        for name, m in (("train", self.train), ("valid", self.valid), ("test", self.test)):
            d = degree[m.indices]
            out[name] = {} if not len(d) else {"median_item_degree": float(np.median(d)),
                                               "share_untrained": round(float(np.mean(d == 0)), 4),
                                               f"share_at_most_{rare}": round(float(np.mean(d <= rare)), 4)}
        return out


def _csr(ds: Dataset, mask: np.ndarray) -> sp.csr_matrix:
    return ds.matrix(mask)


def _from_labels(ds: Dataset, labels: np.ndarray, kind: str) -> Split:
    parts = [_csr(ds, labels == k) for k in range(3)]
    for name, m in zip(("train", "valid", "test"), parts):
        if m.nnz == 0:
            raise DataError(ds.source or ds.name, f"the {name} split is empty ({_why_empty(ds, kind)})",
                            "every split needs interactions; check the labels or ratios")
    return Split(kind, *parts)


def _why_empty(ds: Dataset, kind: str) -> str:
    """The likely cause of an empty split part, so the hint points at the data rather than the code."""
    if kind == "given":
        if ds.split_overlap:
            return (f"{ds.split_overlap} rows repeat a (user, item) pair already listed in another part, and a pair "
                    "keeps only its first part")
        return "the data's own labels put no interaction there"
    if kind == "cold":
        return "too few items to hold some out"
    per_user = np.bincount(ds.users, minlength=ds.n_users)
    return (f"only {int((per_user >= 3).sum())} of {ds.n_users} users have the 3 or more interactions a user needs "
            "to give one to validation and one to test")


def given_split(ds: Dataset) -> Split:
    if ds.labels is None:
        raise ConfigError(f"dataset '{ds.name}' has no given split. Fix: use --split random, temporal or cold.")
    return _from_labels(ds, ds.labels, "given")


def _per_user_labels(users: np.ndarray, order_key: np.ndarray, ratios: tuple[float, float, float]) -> np.ndarray:
    """Label each interaction (of ``users``) 0/1/2 by its rank within the user under ``order_key`` (ascending)."""
    labels = np.zeros(len(users), dtype=np.int64)
    order = np.lexsort((order_key, users))
    users_sorted = users[order]
    starts = np.flatnonzero(np.r_[True, users_sorted[1:] != users_sorted[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, sizes)
    size = np.repeat(sizes, sizes)
    n_valid = np.where(size >= 3, np.maximum(1, np.round(size * ratios[1])), 0).astype(np.int64)
    n_test = np.where(size >= 3, np.maximum(1, np.round(size * ratios[2])), 0).astype(np.int64)
    lab = np.zeros(len(order), dtype=np.int64)
    lab[rank >= size - n_test - n_valid] = 1
    lab[rank >= size - n_test] = 2
    labels[order] = lab
    return labels


def random_split(ds: Dataset, seed: int, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> Split:
    rng = np.random.default_rng(seed)
    return _from_labels(ds, _per_user_labels(ds.users, rng.random(ds.n_interactions), ratios), "random")


def temporal_split(ds: Dataset, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> Split:
    if ds.timestamps is None:
        raise ConfigError(f"dataset '{ds.name}' has no timestamps. Fix: use --split random or given.")
    return _from_labels(ds, _per_user_labels(ds.users, ds.timestamps, ratios), "temporal")


def cold_start_split(ds: Dataset, seed: int, cold_ratio: float = 0.2, cold_eval: str = "all", warm_targets: bool = False,
                     ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> Split:
    """See the module doc; ``warm_targets`` splits the warm interactions by ``ratios`` per user as well."""
    if warm_targets and cold_eval != "all":
        raise ConfigError("cold_targets=new+warm puts warm items in the targets, so every item must be ranked. "
                          "Fix: drop cold_eval=cold_only.")
    rng = np.random.default_rng(seed)
    seen = np.unique(ds.items)
    n_cold = round(cold_ratio * len(seen))
    if n_cold < 2:
        raise ConfigError(f"dataset '{ds.name}': cold_ratio {cold_ratio} leaves fewer than 2 cold items. Fix: raise data.cold_ratio.")
    cold = rng.permutation(seen)[:n_cold]
    cold_valid, cold_test = np.sort(cold[: n_cold // 2]), np.sort(cold[n_cold // 2:])
    labels = np.zeros(ds.n_interactions, dtype=np.int64)
    labels[np.isin(ds.items, cold_valid)] = 1
    labels[np.isin(ds.items, cold_test)] = 2
    if warm_targets:  # drawn after the cold items, so both protocols hold out the same items
        warm = labels == 0
        labels[warm] = _per_user_labels(ds.users[warm], rng.random(int(warm.sum())), ratios)
    split = _from_labels(ds, labels, "cold")
    split.cold_valid_items, split.cold_test_items, split.cold_eval = cold_valid, cold_test, cold_eval
    return split


def make_split(ds: Dataset, kind: str, seed: int, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1), cold_ratio: float = 0.2,
               cold_eval: str = "all", cold_targets: str = "new") -> Split:
    if kind == "auto":
        kind = "given" if ds.has_given_split else "random"
    if kind == "given":
        return given_split(ds)
    if kind == "random":
        return random_split(ds, seed, ratios)
    if kind == "temporal":
        return temporal_split(ds, ratios)
    if kind == "cold":
        return cold_start_split(ds, seed, cold_ratio, cold_eval, cold_targets == "new+warm", ratios)
    raise ConfigError(f"unknown split '{kind}'. Fix: use given, random, temporal or cold.")
