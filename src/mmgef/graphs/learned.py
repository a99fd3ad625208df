"""Item–item kNN graphs built from (possibly trainable) features, differentiable in their weights.

A content graph is a sum of *pieces*, each with exactly k neighbours per item (``KGraph``: index
and weight tensors of shape [N, k]). Propagation over a piece is a gather, O(N·k·d), and keeps
gradients for the weights, so a graph learned from projected features trains its projection
(LATTICE's structure learning) without any N × N matrix. Between rebuilds the graph is frozen into
a ``FrozenKnnGraph`` (``graphs.modules``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from mmgef.graphs.knn import Blocks, LocalCandidates, Method, edge_cosine, knn_indices, refine_topk, rows_per_chunk
from mmgef.graphs.sparse import take_rows


class KGraph(NamedTuple):
    """k weighted neighbours per item; ``weight`` may carry gradients."""

    idx: torch.Tensor
    weight: torch.Tensor

    def mm(self, x: torch.Tensor) -> torch.Tensor:
        return NeighbourSum.apply(x, self.idx, self.weight)  # type: ignore[no-any-return]

    def scaled(self, coef: torch.Tensor | float) -> KGraph:
        return KGraph(self.idx, self.weight * coef)


class NeighbourSum(torch.autograd.Function):
    """``out[i] = Σ_j weight[i, j] · x[idx[i, j]]``, differentiable in ``x`` and ``weight``, in row chunks.

    Autograd through a plain gather would keep the gathered N × k × d block for the backward pass: 5 GB
    for a rebuilt graph of two 10-neighbour pieces at a million items and d = 64. Here only ``x``, ``idx``
    and ``weight`` are kept, and both passes gather one chunk of about 16 MB at a time."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, idx, weight)
        n, d = idx.shape[0], x.shape[1]
        out = x.new_empty(n, d)
        for s in range(0, n, rows := rows_per_chunk(idx.shape[1] * d, 4096)):
            out[s : s + rows] = torch.bmm(weight[s : s + rows].unsqueeze(1), take_rows(x, idx[s : s + rows])).squeeze(1)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, torch.Tensor | None]:
        x, idx, weight = ctx.saved_tensors
        n, k = idx.shape
        d = x.shape[1]
        rows = rows_per_chunk(k * d, 4096)
        grad_x = torch.zeros_like(x) if ctx.needs_input_grad[0] else None
        grad_w = weight.new_empty(n, k) if ctx.needs_input_grad[2] else None
        for s in range(0, n, rows):
            g = grad[s : s + rows]
            if grad_x is not None:  # each neighbour receives weight × the row's gradient
                grad_x.index_add_(0, idx[s : s + rows].reshape(-1), (weight[s : s + rows, :, None] * g[:, None, :]).reshape(-1, d))
            if grad_w is not None:  # d out_i / d w_ij = x[idx_ij]
                grad_w[s : s + rows] = torch.bmm(take_rows(x, idx[s : s + rows]), g.unsqueeze(2)).squeeze(2)
        return grad_x, None, grad_w


class DiffGraph:
    """A sum of KGraph pieces, differentiable in the piece weights."""

    def __init__(self, pieces: list[KGraph]) -> None:
        self.pieces = pieces

    def mm(self, x: torch.Tensor) -> torch.Tensor:
        return sum(p.mm(x) for p in self.pieces)  # type: ignore[return-value]

    @property
    def width(self) -> int:
        return sum(p.idx.shape[1] for p in self.pieces)

    def rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All pieces side by side: neighbour indices and (detached) weights, ``[N, width]``."""
        return torch.cat([p.idx for p in self.pieces], 1), torch.cat([p.weight.detach() for p in self.pieces], 1)


def knn_graph(x: Blocks, k: int, method: Method = "auto", candidates: torch.Tensor | LocalCandidates | None = None) -> KGraph:
    """Cosine kNN graph of the rows of ``x`` (or of a list of feature blocks): neighbours chosen
    without gradient, weights with it. With ``candidates`` [N, c] each row's neighbours are the best
    of its candidates (``refine_topk``) instead of the best of all rows."""
    idx = knn_indices(x, k, method) if candidates is None else refine_topk(x, k, candidates)
    return KGraph(idx, edge_cosine(x, idx))


def normalize_knn(pieces: list[KGraph]) -> list[KGraph]:
    """D^-1/2 (Σ pieces) D^-1/2 with D the row sums of the sum (LATTICE's normalised Laplacian).

    The torch, differentiable twin of ``graphs.sparse.sym_normalize`` (SciPy, constant graphs).
    Items whose rows sum to zero (e.g. all-zero features) get zero weights instead of NaN.
    """
    deg = sum(p.weight.sum(1) for p in pieces)
    inv = torch.where(deg > 0, deg.clamp_min(1e-12).pow(-0.5), torch.zeros_like(deg))  # type: ignore[union-attr]
    return [KGraph(p.idx, p.weight * inv[:, None] * inv[p.idx]) for p in pieces]
