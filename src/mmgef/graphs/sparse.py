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


class _SymmetricSpMM(torch.autograd.Function):
    """y = A x for a constant symmetric A; the gradient is A g, one more sparse product.

    torch's generic sparse-CSR backward builds A^T; skipping that halves LightGCN's epoch time.
    """

    @staticmethod
    def forward(ctx, adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.adj = adj
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:  # type: ignore[override]
        return None, torch.sparse.mm(ctx.adj, grad)


def symmetric_spmm(adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sparse (symmetric, constant) × dense product with a gradient only for ``x``."""
    return _SymmetricSpMM.apply(adj, x)
