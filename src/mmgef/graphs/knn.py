"""Cosine top-k neighbours of item feature rows, without ever holding an N × N matrix.

Exact search scores one chunk of rows against all items at a time (memory O(chunk × N));
FAISS HNSW (inner product on unit vectors) takes over above ``faiss_threshold`` items or on request.
As in LATTICE's code, an item counts as its own nearest neighbour. Negative similarities are
clamped to zero, and an all-zero feature row has zero similarity to everything: such an item has
only zero-weight edges, i.e. it is isolated in the content graph (a warning names how many).
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from mmgef.errors import ConfigError

log = logging.getLogger(__name__)

Method = Literal["auto", "exact", "faiss"]


def check_k(k: int, n_items: int, what: str = "knn_k") -> None:
    if k <= 0 or k >= n_items:
        raise ConfigError(f"{what}={k} must be between 1 and the number of items - 1 ({n_items - 1}). Fix: lower {what}.")


@torch.no_grad()
def exact_topk(x: torch.Tensor, k: int, chunk_size: int = 2048) -> torch.Tensor:
    """Indices [N, k] of each row's k most cosine-similar rows, computed in row chunks."""
    xn = F.normalize(x.float(), dim=1)
    out = torch.empty(x.shape[0], k, dtype=torch.long, device=x.device)
    for start in range(0, x.shape[0], chunk_size):
        sims = xn[start : start + chunk_size] @ xn.T
        out[start : start + chunk_size] = torch.topk(sims, k, dim=1).indices
    return out


def faiss_topk(x: np.ndarray, k: int, hnsw_m: int = 32, ef_search: int = 128) -> np.ndarray:
    """Approximate top-k by inner product on unit rows with a FAISS HNSW index."""
    import faiss

    xn = np.ascontiguousarray(x, dtype=np.float32).copy()
    faiss.normalize_L2(xn)
    index = faiss.IndexHNSWFlat(xn.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = max(40, ef_search)
    index.hnsw.efSearch = max(ef_search, k)
    index.add(xn)
    _, idx = index.search(xn, k)
    bad = idx < 0  # HNSW can return fewer than k hits; fall back to self
    if bad.any():
        idx[bad] = np.nonzero(bad)[0]
    return idx.astype(np.int64)


def knn_indices(x: torch.Tensor, k: int, method: Method = "auto", chunk_size: int = 2048, faiss_threshold: int = 50_000) -> torch.Tensor:
    check_k(k, x.shape[0])
    zero = int((x.detach().abs().sum(1) == 0).sum())
    if zero:
        log.warning("%d items have all-zero features: their content-graph edges get zero weight (isolated)", zero)
    use_faiss = method == "faiss" or (method == "auto" and x.shape[0] > faiss_threshold)
    if use_faiss:
        idx = faiss_topk(x.detach().float().cpu().numpy(), k)
        return torch.from_numpy(idx).to(x.device)
    return exact_topk(x.detach(), k, chunk_size)


def edge_cosine(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each row with its chosen neighbours, [N, k], with gradient: O(N·k·d)."""
    xn = F.normalize(x, dim=1)
    return (xn.unsqueeze(1) * xn[idx]).sum(-1).clamp_min(0.0)
