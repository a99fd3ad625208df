"""The random user–item graph of the epoch-growth investigation (bench_spmm, bench_step): users = items,
``per_user`` interactions each, Zipf-``exponent`` item popularity over a random permutation of the ids (so hot
items are scattered, as real ids are)."""

from __future__ import annotations

import numpy as np


def zipf_interactions(n: int, rng: np.random.Generator, per_user: int = 20, exponent: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) index arrays of ``per_user · n`` interactions; duplicates are left in (a sparse build sums them)."""
    p = (rng.permutation(n) + 1.0) ** -exponent
    items = rng.choice(n, size=per_user * n, p=p / p.sum())
    return rng.integers(0, n, size=per_user * n), items
