"""SciPy ↔ torch sparse conversion and sparse × dense products with a cheap backward."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch


def to_torch_csr(m: sp.spmatrix, device: str | torch.device = "cpu") -> torch.Tensor:
    m = sp.csr_matrix(m, dtype=np.float32)
    m.sort_indices()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": known, and covered by our tests
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data),
            size=m.shape,
            device=device,
            check_invariants=False,
        )


def sym_normalize(m: sp.spmatrix) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 with isolated nodes left at zero (no NaN)."""
    m = sp.csr_matrix(m, dtype=np.float32)
    deg = np.asarray(m.sum(axis=1)).ravel()
    inv = np.zeros_like(deg)
    inv[deg > 0] = deg[deg > 0] ** -0.5
    d = sp.diags(inv)
    return (d @ m @ d).tocsr()


def row_normalize(m: sp.spmatrix) -> sp.csr_matrix:
    """D^-1 A: each non-empty row sums to one."""
    m = sp.csr_matrix(m, dtype=np.float32)
    deg = np.asarray(m.sum(axis=1)).ravel()
    inv = np.zeros_like(deg)
    inv[deg > 0] = 1.0 / deg[deg > 0]
    return (sp.diags(inv) @ m).tocsr()


class _SpMM(torch.autograd.Function):
    """y = A x for a constant A; the gradient is A^T g, one more sparse product with a stored A^T.

    torch's generic sparse-CSR backward rebuilds A^T on every call; keeping it (or reusing A when
    A is symmetric) halves LightGCN's epoch time.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, adj: torch.Tensor, adj_t: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.adj_t = adj_t
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        return torch.sparse.mm(ctx.adj_t, grad), None, None


def spmm(adj: torch.Tensor, x: torch.Tensor, adj_t: torch.Tensor | None = None) -> torch.Tensor:
    """Sparse (constant) × dense product with a gradient for ``x``; ``adj_t`` None means A is symmetric."""
    return _SpMM.apply(x, adj, adj if adj_t is None else adj_t)


def symmetric_spmm(adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sparse (symmetric, constant) × dense product with a gradient only for ``x``."""
    return spmm(adj, x)


def rows_to_csr(idx: torch.Tensor, weight: torch.Tensor, n_cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A CSR matrix (and its transpose) from k column indices and weights per row (no gradient)."""
    n, k = idx.shape
    rows = torch.arange(n, device=idx.device).repeat_interleave(k)
    cols, vals = idx.reshape(-1), weight.detach().reshape(-1).float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        a = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (n, n_cols)).coalesce().to_sparse_csr()
        a_t = torch.sparse_coo_tensor(torch.stack([cols, rows]), vals, (n_cols, n)).coalesce().to_sparse_csr()
    return a, a_t
