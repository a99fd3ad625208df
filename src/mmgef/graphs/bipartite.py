"""The normalised user–item bipartite adjacency used by LightGCN and NGCF."""

from __future__ import annotations

import scipy.sparse as sp

from mmgef.graphs.sparse import sym_normalize


def bipartite_adjacency(train: sp.csr_matrix, self_loops: bool = False) -> sp.csr_matrix:
    """D^-1/2 [[0, R], [R^T, 0]] D^-1/2 over users then items, shape [U+I, U+I].

    With ``self_loops`` the identity is added after normalisation (NGCF's L + I).
    """
    n_users, n_items = train.shape
    r = sp.csr_matrix(train, dtype="float32")
    adj = sp.bmat([[None, r], [r.T, None]], format="csr", dtype="float32")
    adj = sym_normalize(adj)
    if self_loops:
        adj = (adj + sp.identity(n_users + n_items, dtype="float32", format="csr")).tocsr()
    return adj
