"""Item–item kNN graphs built from (possibly trainable) features, differentiable in their weights.

A content graph is a sum of *pieces*, each with exactly k neighbours per item (``KGraph``: index
and weight tensors of shape [N, k]). Propagation over a piece is a gather, O(N·k·d), and keeps
gradients for the weights, so a graph learned from projected features trains its projection
(LATTICE's structure learning) without any N × N matrix. Between rebuilds the graph is frozen into
a ``FrozenKnnGraph`` (``graphs.modules``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from mmgef.graphs.knn import Blocks, Method, edge_cosine, knn_indices


class KGraph(NamedTuple):
    """k weighted neighbours per item; ``weight`` may carry gradients."""

    idx: torch.Tensor
    weight: torch.Tensor

    def mm(self, x: torch.Tensor) -> torch.Tensor:
        return (self.weight.unsqueeze(-1) * x[self.idx]).sum(1)

    def scaled(self, coef: torch.Tensor | float) -> KGraph:
        return KGraph(self.idx, self.weight * coef)


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


def knn_graph(x: Blocks, k: int, method: Method = "auto") -> KGraph:
    """Cosine kNN graph of the rows of ``x`` (or of a list of feature blocks): neighbours chosen
    without gradient, weights with it."""
    idx = knn_indices(x, k, method)
    return KGraph(idx, edge_cosine(x, idx))


def normalize_knn(pieces: list[KGraph]) -> list[KGraph]:
    """D^-1/2 (Σ pieces) D^-1/2 with D the row sums of the sum (LATTICE's normalised Laplacian).

    The torch, differentiable twin of ``graphs.sparse.sym_normalize`` (SciPy, constant graphs).
    Items whose rows sum to zero (e.g. all-zero features) get zero weights instead of NaN.
    """
    deg = sum(p.weight.sum(1) for p in pieces)
    inv = torch.where(deg > 0, deg.clamp_min(1e-12).pow(-0.5), torch.zeros_like(deg))  # type: ignore[union-attr]
    return [KGraph(p.idx, p.weight * inv[:, None] * inv[p.idx]) for p in pieces]
