"""The collaborative item–item graph: C_ij = users who interacted with both i and j, over max C.

Computed as sparse R^T R in chunks of item rows, diagonal removed, top-k per row kept, so memory
stays O(items × k) plus one chunk of co-occurrence rows.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def topk_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of every row (ties broken by column index)."""
    m = sp.csr_matrix(m)
    counts = np.diff(m.indptr)
    rows = np.repeat(np.arange(m.shape[0]), counts)
    order = np.lexsort((m.indices, -m.data, rows))
    rank = np.arange(len(order)) - np.repeat(m.indptr[:-1], counts)
    keep = order[rank < k]
    return sp.csr_matrix((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape)


def cooccurrence_graph(train: sp.csr_matrix, topk: int | None = 10, chunk_size: int = 4096) -> sp.csr_matrix:
    r = sp.csr_matrix(train, dtype=np.float32)
    r.data[:] = 1.0
    rt = r.T.tocsr()
    n_items = r.shape[1]
    parts = []
    c_max = 0.0
    for start in range(0, n_items, chunk_size):
        block = (rt[start : start + chunk_size] @ r).tocsr()
        rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
        block.data[block.indices == rows + start] = 0  # remove i == j
        block.eliminate_zeros()
        if block.nnz:
            c_max = max(c_max, float(block.data.max()))
        parts.append(topk_per_row(block, topk) if topk else block)
    c = sp.vstack(parts).tocsr() if parts else sp.csr_matrix((n_items, n_items), dtype=np.float32)
    if c_max > 0:
        c.data /= c_max
    return c.astype(np.float32)
