"""Vectorised uniform negative sampling that never returns a training positive.

With ``n_candidates`` > 0 each pair gets that many candidates (``[B, M]``) for MixGCF to mix.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from mmgef.errors import DataError
from mmgef.graphs import native


class UniformSampler:
    """One (user, positive, negative) triple per training interaction per epoch, shuffled.

    Negatives are drawn uniformly over items (``negatives="interacted"``: over items with training
    interactions); draws that hit a positive are redrawn (vectorised), checked against the sorted keys
    ``user * n_items + item`` by a binary search within the user's own keys (``native.rows_contain``): the users of
    a batch come in random order, and a search over all keys cost ~24 memory accesses a draw once they outgrow the
    cache: one epoch's checks at a million users = items (20M pairs, 32 batches, one thread) 30.6 s, against 1.1 s
    (``benchmarks/bench_sampler.py``). Without the compiled kernel the draws are sorted first (``sorted_contains``,
    4.7 s). Every way gives the same answers, so the same negatives.
    """

    def __init__(self, train: sp.csr_matrix, n_candidates: int = 0, negatives: str = "all") -> None:
        train = sp.csr_matrix(train)
        self.n_candidates = n_candidates
        self.n_items = train.shape[1]
        coo = train.tocoo()
        order = np.lexsort((coo.col, coo.row))
        self.users = coo.row[order].astype(np.int64)
        self.items = coo.col[order].astype(np.int64)
        self.keys = self.users * self.n_items + self.items
        self.indptr = train.indptr.astype(np.int64)  # each user's keys: the rows' order and counts are the CSR's
        # "interacted": negatives only among items with training interactions; an item nobody has seen yet
        # (a new or cold item) is no evidence of dislike, and pushing it down teaches the model to bury new items
        self.pool = np.flatnonzero(train.getnnz(axis=0) > 0) if negatives == "interacted" else None
        n_pool = self.n_items if self.pool is None else len(self.pool)
        full = np.flatnonzero(np.diff(train.indptr) >= n_pool)
        if len(full):
            raise DataError("training split", f"user {int(full[0])} interacted with every item that can be a negative, "
                            "so no negative exists", "drop such users before training, or use negatives=all")

    def __len__(self) -> int:
        return len(self.users)

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.n_items + items
        found = native.rows_contain(self.indptr, self.keys, users, keys)
        return found if found is not None else sorted_contains(self.keys, keys)

    def negatives(self, users: np.ndarray, rng: np.random.Generator, n: int = 0) -> np.ndarray:
        """One negative per user (``[B]``), or ``n`` per user (``[B, n]``) when n > 0."""
        if n:
            return self.negatives(np.repeat(users, n), rng).reshape(len(users), n)
        neg = self._draw(rng, len(users))
        bad = np.flatnonzero(self.is_positive(users, neg))
        while len(bad):
            neg[bad] = self._draw(rng, len(bad))
            bad = bad[self.is_positive(users[bad], neg[bad])]
        return neg

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.pool is None:
            return rng.integers(0, self.n_items, size=n)
        return self.pool[rng.integers(0, len(self.pool), size=n)]

    def batches(self, batch_size: int, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        perm = rng.permutation(len(self.users))
        for start in range(0, len(perm), batch_size):
            idx = perm[start : start + batch_size]
            users = self.users[idx]
            yield users, self.items[idx], self.negatives(users, rng, self.n_candidates)


def sorted_contains(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Whether each query is in the sorted ``keys``: the queries sorted first, so that consecutive binary searches
    share their path through ``keys`` and its cache lines (6.5× faster than in draw order at 20M keys)."""
    order = np.argsort(queries)
    ordered = queries[order]
    pos = np.minimum(np.searchsorted(keys, ordered), len(keys) - 1)
    found = np.empty(len(queries), dtype=bool)
    found[order] = keys[pos] == ordered
    return found


class HeldOutPairs:
    """(user, held-out positive, negative) triples drawn with replacement from a held-out split's pairs, for the
    parameters a model fits on held-out interactions (``Recommender.held_out_parameters``). Negatives avoid every
    item the user has in the training or the held-out split."""

    def __init__(self, held_out: sp.csr_matrix, train: sp.csr_matrix) -> None:
        coo = sp.csr_matrix(held_out).tocoo()
        if coo.nnz == 0:
            raise DataError("validation split", "it has no pairs, and the model fits its mixing weights on them",
                            "use a split with validation pairs, or set mix_on_valid=false")
        self.users, self.items = coo.row.astype(np.int64), coo.col.astype(np.int64)
        self.known = UniformSampler(sp.csr_matrix(train) + sp.csr_matrix(held_out))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = rng.integers(0, len(self.users), size=n)
        users = self.users[idx]
        return users, self.items[idx], self.known.negatives(users, rng)
