"""Cosine top-k neighbours of item feature rows, without ever holding an N × N matrix.

Exact search scores one chunk of rows against all items at a time (memory O(chunk × N), time O(N²·d));
a FAISS inverted-file index (inner product on unit vectors) takes over above ``faiss_threshold`` items
or on request. The switch is measured (``benchmarks/bench_knn.py``, one thread, k = 10): at 100k items
IVF takes 4.2 s against 50.6 s exact with recall@10 0.9975 (HNSW: 45.7 s); at 30k its recall is 0.95,
so exact search stays below 50k items. ``faiss-pca`` (on request) searches PCA-64 projections and re-scores
16·k candidates exactly: at 512-d it takes 14 s at 100k (recall 1.000) against IVF's 27 s, and (session 35) 32 s at
300k and 156 s at a million (recall 0.82 and 0.49 on clustered data whose neighbours differ only in the dimensions
PCA drops, a worst case) — IVF took 163 s at 300k. ``ivf-gemm`` (on request; issue 17) keeps the inverted file's
lists but scores each list's rows against its nearest lists' rows by one matrix product on the full width: on the
scale benchmark's 512-d catalogue 2.3× faster than ``faiss-pca`` at 300k items and more exact, 2.0× at a million.
As in LATTICE's code, an item counts as its own nearest neighbour. Negative similarities are
clamped to zero, and an all-zero feature row has zero similarity to everything: such an item has
only zero-weight edges, i.e. it is isolated in the content graph (a warning names how many).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from mmgef.errors import ConfigError
from mmgef.graphs import native
from mmgef.graphs.sparse import take_rows

log = logging.getLogger(__name__)

Method = Literal["auto", "exact", "faiss", "faiss-pca", "ivf-gemm"]
FaissKind = Literal["ivf", "pca-ivf", "hnsw"]


def check_k(k: int, n_items: int, what: str = "knn_k") -> None:
    if k <= 0 or k >= n_items:
        raise ConfigError(f"{what}={k} must be between 1 and the number of items - 1 ({n_items - 1}). Fix: lower {what}.")


Blocks = torch.Tensor | list[torch.Tensor]


def _blocks(x: Blocks) -> list[torch.Tensor]:
    return x if isinstance(x, list) else [x]


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """``x`` with unit-length rows. Rows that are unit (or zero) already are returned as they are, not
    copied: content features arrive L2-normalised, and a copy of a 4096-d feature matrix is what set
    the peak memory of a model build. A tensor that carries gradient is always normalised (the
    normalisation's derivative matters even where its value is the identity)."""
    if x.requires_grad and torch.is_grad_enabled():
        return F.normalize(x, dim=1)
    x = x.float()
    norms = torch.linalg.vector_norm(x, dim=1)
    if bool(((norms - 1).abs() < 1e-4).logical_or(norms == 0).all()):
        return x
    return F.normalize(x, dim=1)


@torch.no_grad()
def exact_topk(x: Blocks, k: int, chunk_size: int = 2048) -> torch.Tensor:
    """Indices [N, k] of each row's k most similar rows, computed in row chunks.

    ``x`` may be a list of feature blocks (modalities of different widths): the similarity is
    then the mean of the per-block cosines — the cosine of the concatenated unit vectors —
    without ever building the concatenation.
    """
    blocks = [unit_rows(b) for b in _blocks(x)]
    n = blocks[0].shape[0]
    out = torch.empty(n, k, dtype=torch.long, device=blocks[0].device)
    rows = rows_per_chunk(n, chunk_size)
    # one chunk × N buffer for every chunk and block: a fresh 16 MB product per chunk left glibc's heap
    # holding several of them (+87 MB RSS for a 7k-item learned graph, at every rebuild)
    sims = torch.empty(min(rows, n), n, dtype=blocks[0].dtype, device=blocks[0].device)
    for start in range(0, n, rows):
        chunk = sims[: min(rows, n - start)]
        torch.mm(blocks[0][start : start + rows], blocks[0].T, out=chunk)
        for b in blocks[1:]:
            chunk.addmm_(b[start : start + rows], b.T)
        out[start : start + rows] = torch.topk(chunk, k, dim=1).indices
    return out


# k-means training rows per inverted list: 64 against FAISS's own cap of 256 cost the same recall@10 and 23% less time
# at a million 512-d items (pca-ivf, one thread: 204 → 156 s, recall 0.4889 both; 300k: 40.9 → 32.4 s, 0.8184 both;
# benchmarks/results/knn/knn.md)
TRAIN_PER_LIST = 64
# The IVF lists' k-means iterations: 10 rather than FAISS's 25. Same recall@10 on every size and width measured (100k
# and 300k items, 64-d and 512-d, ivf and pca-ivf) and training 2.4× shorter: the 64-d search (a learned graph's) at
# 300k items 91 → 63 s, pca-ivf of 512-d 124 → 96 s (benchmarks/results/knn/kmeans_iterations.md).
KMEANS_ITERATIONS = 10
# Inverted lists per √N: 4, the usual rule. 2 trains a quarter of the k-means and scans lists twice as long per probe:
# on bench_scale's catalogue faster at 300k items (the build's two searches 106 → 95 s and 54 → 32 s) but slower at a
# million (296 → 333 s and 160 → 172 s), recall@10 higher at both (1M: 0.625 → 0.660, 0.691 → 0.788); on bench_knn's
# clustered vectors 100k 64-d recall 0.997 → 0.957 (benchmarks/results/knn/ivf_catalogue*.md, lists_per_root.md).
LISTS_PER_ROOT = 4
QUERY_BATCH = 65_536  # queries searched at once: candidate lists and their scores stay O(batch × rerank·k)


def faiss_topk(x: np.ndarray, k: int, kind: FaissKind = "ivf", hnsw_m: int = 32, ef_search: int = 128,
               nprobe: int = 16, reduced_dim: int = 64, rerank: int = 16, inplace: bool = False,
               train_per_list: int = TRAIN_PER_LIST, kmeans_iterations: int = KMEANS_ITERATIONS,
               lists_per_root: float = LISTS_PER_ROOT) -> np.ndarray:
    """Approximate top-k by inner product on unit rows with a FAISS index.

    ``ivf``: an inverted file of ``lists_per_root``·√N k-means lists (``kmeans_iterations`` iterations on at most
    ``train_per_list`` points per list), searching
    ``nprobe`` lists per query — per-query cost O(√N·d) instead of O(N·d). ``pca-ivf``: the same index on
    the rows projected by PCA to ``reduced_dim`` dimensions, whose ``rerank`` × k candidates are then
    re-scored exactly on the full rows — per-query cost O(√N·reduced_dim + rerank·k·d), for wide features
    at a million items. ``hnsw``: a graph index. Queries go in batches of ``QUERY_BATCH``. ``inplace``: ``x``
    (float32, C-contiguous) may be normalised in place instead of copied (a 2 GB copy at a million items)."""
    import faiss

    xn = _unit_rows_np(x, inplace)
    n, d = xn.shape
    rng = np.random.default_rng(0)
    if kind == "pca-ivf" and d > reduced_dim:
        reduced = _pca(xn, reduced_dim, rng)
        index = _ivf_index(reduced, nprobe, rng, train_per_list, kmeans_iterations, lists_per_root)
        m = min(n - 1, rerank * k)
        xt = torch.from_numpy(xn)
        out = np.empty((n, k), dtype=np.int64)
        with torch.no_grad():
            for rows in _query_batches(index, n):
                candidates = torch.from_numpy(_search(index, reduced[rows], m, rows))
                dots = candidate_scores(xt, candidates, xt[torch.from_numpy(rows)])
                out[rows] = torch.gather(candidates, 1, torch.topk(dots, k, dim=1).indices).numpy()
        return out
    if kind in ("ivf", "pca-ivf"):
        index = _ivf_index(xn, nprobe, rng, train_per_list, kmeans_iterations, lists_per_root)
    else:
        index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = max(40, ef_search)
        index.hnsw.efSearch = max(ef_search, k)
        index.add(xn)
    out = np.empty((n, k), dtype=np.int64)
    for rows in _query_batches(index, n):
        out[rows] = _search(index, xn[rows], k, rows)
    return out


# ``ivf-gemm``: lists per √N and lists probed per list, chosen on bench_scale's catalogue (benchmarks/results/knn/ivf_gemm*.md)
GEMM_LISTS_PER_ROOT = 2
GEMM_NPROBE = 16
GEMM_QUERY_ROWS = 1024  # a list's rows scored at once: the score block stays 1024 × (nprobe · list length)


def ivf_gemm_topk(x: np.ndarray, k: int, lists_per_root: float = GEMM_LISTS_PER_ROOT, nprobe: int = GEMM_NPROBE,
                  cluster_dim: int = 64, train_per_list: int = TRAIN_PER_LIST, kmeans_iterations: int = KMEANS_ITERATIONS,
                  inplace: bool = False) -> np.ndarray:
    """Approximate top-k by cosine: k-means lists as in an inverted file, but every list's rows are scored against the
    rows of the ``nprobe`` lists nearest to it (itself first) by one matrix product on the full rows, then top-k.

    The candidates an IVF of the same lists scans (nprobe lists of ~√N/``lists_per_root`` rows), but as a few thousand dense
    products instead of a million scans with a heap each, and exact scores on the full width (no PCA re-ranking of a
    short list). On bench_scale's catalogue, one thread (benchmarks/results/knn/ivf_gemm*.md): its 512-d features at
    300k items 36.7 s, recall@10 0.876, against ``faiss-pca``'s 85.5 s, 0.743; a million items 195 s, 0.791, against
    387 s, 0.625. The lists come from k-means on the rows' PCA to ``cluster_dim`` dimensions (the rows themselves when
    narrower). The probes are chosen per list, not per query: a row near its list's border finds fewer of its
    neighbours than per-query probing would — on 64-d projections (a learned graph's first search) recall 0.645
    against IVF's 0.739 at 300k, in 18.3 s against 43.2 s."""
    import faiss

    xn = _unit_rows_np(x, inplace)
    n, d = xn.shape
    rng = np.random.default_rng(0)
    coarse = _pca(xn, cluster_dim, rng) if d > cluster_dim else xn
    nlist = _list_count(n, lists_per_root)
    kmeans = faiss.Kmeans(coarse.shape[1], nlist, niter=kmeans_iterations, spherical=True, seed=0,
                          max_points_per_centroid=train_per_list)
    kmeans.train(coarse[rng.choice(n, min(n, train_per_list * nlist), replace=False)])
    _, assign = kmeans.index.search(coarse, 1)
    del coarse
    order = torch.from_numpy(np.argsort(assign[:, 0], kind="stable"))
    bounds = np.concatenate([[0], np.cumsum(np.bincount(assign[:, 0], minlength=nlist))])
    centroids = torch.from_numpy(kmeans.centroids)
    near = centroids @ centroids.T
    near.fill_diagonal_(float("inf"))
    probes = torch.topk(near, min(nprobe, nlist), dim=1).indices.numpy()
    xt = torch.from_numpy(xn)
    out = torch.empty(n, k, dtype=torch.long)
    with torch.no_grad():
        for c in range(nlist):
            rows = order[bounds[c] : bounds[c + 1]]
            if not len(rows):
                continue
            cand = torch.cat([order[bounds[p] : bounds[p + 1]] for p in probes[c]])
            cand_x = xt[cand]
            for s in range(0, len(rows), GEMM_QUERY_ROWS):
                q = rows[s : s + GEMM_QUERY_ROWS]
                top = cand[torch.topk(xt[q] @ cand_x.T, min(k, len(cand)), dim=1).indices]
                if top.shape[1] < k:  # fewer candidates than k: the row itself fills the rest
                    top = torch.cat([top, q[:, None].expand(-1, k - top.shape[1])], 1)
                out[q] = top
    return out.numpy()


def _query_batches(index, n: int) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """Every row once, in batches of ``QUERY_BATCH`` queries. For an inverted file the rows go list by list: queries
    of one list probe the same few lists and re-score candidates from them, so those stay in the cache (a search's
    own results do not depend on the order)."""
    import faiss

    order = np.arange(n)
    if isinstance(index, faiss.IndexIVF):
        lists = index.invlists
        order = np.concatenate([faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                                for i in range(index.nlist) if lists.list_size(i)] or [order])
    return [order[s : s + QUERY_BATCH] for s in range(0, n, QUERY_BATCH)]


def _ivf_index(xn: np.ndarray, nprobe: int, rng: np.random.Generator, per_list: int,  # type: ignore[no-untyped-def]
               iterations: int, lists_per_root: float):
    """An inner-product IVF index of ``lists_per_root``·√N lists over ``xn``, trained (``iterations`` k-means
    iterations) on at most ``per_list`` rows per list."""
    import faiss

    n, d = xn.shape
    nlist = _list_count(n, lists_per_root)
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = iterations
    index.train(xn[rng.choice(n, min(n, per_list * nlist), replace=False)])
    index.nprobe = min(nprobe, nlist)
    index.add(xn)
    return index


def _list_count(n: int, lists_per_root: float) -> int:
    """``lists_per_root``·√N lists, capped so k-means sees at least 39 rows per list (FAISS's minimum)."""
    return max(1, min(int(lists_per_root * np.sqrt(n)), n // 39))


def _unit_rows_np(x: np.ndarray, inplace: bool) -> np.ndarray:
    """``x`` as float32 unit rows: normalised in place when ``inplace`` and already float32 C-contiguous, else a copy."""
    import faiss

    xn = np.ascontiguousarray(x, dtype=np.float32)
    if not inplace and np.shares_memory(xn, x):
        xn = xn.copy()
    faiss.normalize_L2(xn)
    return xn


def _pca(xn: np.ndarray, dim: int, rng: np.random.Generator) -> np.ndarray:
    """The rows projected on their ``dim`` principal directions, fitted on at most 100k sampled rows."""
    import faiss

    pca = faiss.PCAMatrix(xn.shape[1], dim)
    pca.train(xn[rng.choice(len(xn), min(len(xn), 100_000), replace=False)])
    return pca.apply(xn)  # type: ignore[no-any-return]


def _search(index, queries: np.ndarray, k: int, rows: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Top-k ids of ``queries`` (the index's rows ``rows``); a hit the index could not fill falls back to the row itself."""
    _, idx = index.search(np.ascontiguousarray(queries), k)
    bad = idx < 0
    if bad.any():
        idx[bad] = rows[np.nonzero(bad)[0]]
    return idx.astype(np.int64)


def knn_indices(x: Blocks, k: int, method: Method = "auto", chunk_size: int = 2048, faiss_threshold: int = 50_000) -> torch.Tensor:
    blocks = [b.detach() for b in _blocks(x)]
    n = blocks[0].shape[0]
    check_k(k, n)
    # a norm is a reduction: b.abs() would first copy the features (115 MB at Baby's 4096-d, 2 GB at a million items)
    zero = int(sum(torch.linalg.vector_norm(b.float(), ord=1, dim=1) == 0 for b in blocks).eq(len(blocks)).sum())  # type: ignore[union-attr]
    if zero:
        log.warning("%d items have all-zero features: their content-graph edges get zero weight (isolated)", zero)
    if method in ("faiss", "faiss-pca", "ivf-gemm") or (method == "auto" and n > faiss_threshold):
        flat = torch.cat([F.normalize(b.float(), dim=1) for b in blocks], dim=1)
        if method == "ivf-gemm":
            return torch.from_numpy(ivf_gemm_topk(flat.cpu().numpy(), k, inplace=True)).to(blocks[0].device)
        kind: FaissKind = "pca-ivf" if method == "faiss-pca" else "ivf"
        return torch.from_numpy(faiss_topk(flat.cpu().numpy(), k, kind, inplace=True)).to(blocks[0].device)
    return exact_topk(blocks, k, chunk_size)


class LocalCandidates:
    """Candidates for ``refine_topk`` after the features moved a little (one NN-descent round): the row itself, its
    previous neighbours and theirs (k + k²), up to k rows that had it as a neighbour, the ``extra`` neighbour lists
    (e.g. the raw-content graph's) and ``n_random`` random rows, so a neighbourhood the previous graph missed can
    still be found.

    Made a block of rows at a time (``self[start:stop]``): all of them at once are N × (k² + 3k + 1 + …) ids, 1.1 GB
    at a million items and k = 10, and with their sorted copy and scores the rebuild step set the training's peak
    once Adam's state existed (from the second epoch on): a 1M training's peak RSS rose 13.5 → 15.2 → 16.3 GB over
    three epochs, and stays at 13.4 GB with blocks (benchmarks/results/scale/memory_phases_300k_*.md, scale.csv's
    session42 rows)."""

    def __init__(self, previous: torch.Tensor, extra: list[torch.Tensor], n_random: int,
                 generator: torch.Generator | None = None) -> None:
        n = previous.shape[0]
        self.previous, self.extra = previous, extra
        self.reverse = reverse_neighbours(previous)
        # drawn for every row at once, so the candidates do not depend on the block size
        self.random = torch.randint(0, n, (n, n_random), device=previous.device, generator=generator) if n_random else None
        self.shape = (n, 1 + previous.shape[1] * (previous.shape[1] + 2) + sum(e.shape[1] for e in extra) + n_random)

    def __getitem__(self, rows: slice) -> torch.Tensor:
        prev = self.previous[rows]
        start, stop, _ = rows.indices(self.shape[0])
        own = torch.arange(start, stop, device=prev.device)[:, None]  # the block's own ids, not all N of them sliced
        parts = [own, prev, take_rows(self.previous, prev).reshape(prev.shape[0], -1), self.reverse[rows],
                 *(e[rows] for e in self.extra), *([] if self.random is None else [self.random[rows]])]
        return torch.cat(parts, 1)


@torch.no_grad()
def refine_topk(x: Blocks, k: int, candidates: torch.Tensor | LocalCandidates) -> torch.Tensor:
    """Each row's k most similar rows among its own ``candidates`` [N, c] (repeats allowed), scored exactly:
    O(N·c·d), linear in N where a full search is not (IVF's per-query cost grows as √N). Rows are taken in blocks
    (about 4M candidate ids each), so the candidates, their sorted copy and their scores exist for one block at a time."""
    n, width = candidates.shape
    blocks = [unit_rows(b.detach()) for b in _blocks(x)]
    out = torch.empty(n, k, dtype=torch.int64, device=blocks[0].device)
    for s in range(0, n, step := rows_per_chunk(width, 1 << 20)):
        cand = sorted_rows(candidates[s : s + step])
        repeat = torch.zeros_like(cand, dtype=torch.bool)
        repeat[:, 1:] = cand[:, 1:] == cand[:, :-1]
        score = sum(candidate_scores(b, cand, b[s : s + step]) for b in blocks)
        score.masked_fill_(repeat, float("-inf"))  # type: ignore[union-attr]
        out[s : s + step] = cand.gather(1, score.topk(k, dim=1).indices)  # type: ignore[union-attr]
    return out


def sorted_rows(ids: torch.Tensor) -> torch.Tensor:
    """Each row of an integer tensor in ascending order. On CPU by NumPy: torch's sort also fills an index tensor
    (through a broadcast copy) and sorts slower — a million rows of 141 candidates, one thread, 6.2 s against 0.7 s
    (10k rows: 42 against 5 ms). Integers sort to the same values either way."""
    if ids.device.type != "cpu":
        return ids.sort(dim=1).values
    return torch.from_numpy(np.sort(ids.numpy(), axis=1))


def reverse_neighbours(idx: torch.Tensor) -> torch.Tensor:
    """[N, k]: for each row j, up to k rows i with j among ``idx[i]`` (the row itself fills the free places)."""
    n, k = idx.shape
    target = idx.reshape(-1)
    order = torch.argsort(target, stable=True)
    target = target[order]
    source = torch.div(order, k, rounding_mode="floor")
    starts = torch.searchsorted(target, target, right=False)  # first position of each target's group
    rank = torch.arange(target.numel(), device=idx.device) - starts
    keep = rank < k
    out = torch.arange(n, device=idx.device)[:, None].repeat(1, k)
    out[target[keep], rank[keep]] = source[keep]
    return out


CHUNK_ELEMENTS = 1 << 22  # 16 MB of float32 per temporary block


def rows_per_chunk(row_elements: int, cap: int) -> int:
    """Rows per chunk so one chunk's temporary holds about CHUNK_ELEMENTS floats (at most ``cap`` rows)."""
    return max(1, min(cap, CHUNK_ELEMENTS // max(1, row_elements)))


def edge_cosine(x: Blocks, idx: torch.Tensor, chunk_size: int = 1024) -> torch.Tensor:
    """Cosine similarity of each row with its chosen neighbours, [N, k], with gradient: O(N·k·d).

    Computed in row chunks so the gathered neighbour block is chunk × k × d (about 16 MB), never N × k × d
    (which is over 1 GB for 7k items with 4096-d raw features). For a list of blocks: the mean
    of the per-block cosines, as in ``exact_topk``.
    """
    total = 0
    blocks = _blocks(x)
    for b in blocks:
        xn = unit_rows(b)
        rows = rows_per_chunk(idx.shape[1] * b.shape[1], chunk_size)
        total = total + _neighbour_dots(xn, idx, rows)
    return (total / len(blocks)).clamp_min(0.0)  # type: ignore[operator]


def candidate_scores(xn: torch.Tensor, cand: torch.Tensor, queries: torch.Tensor | None = None) -> torch.Tensor:
    """``out[i, j] = q[i] · xn[cand[i, j]]`` (``q`` = ``queries``, default ``xn``), no gradient: scores that only rank
    candidates. By the compiled kernel where it applies (``native.row_dots``: no gathered copy of every candidate
    row), else by torch's gather and bmm. ``faiss-pca`` at 300k clustered 512-d items (160 candidates per query, one
    thread): 85.4 s with torch's, 63.7 s with the kernel, 41.5 s with queries also taken list by list."""
    q = xn if queries is None else queries
    scores = native.row_dots(xn, cand, q)
    return scores if scores is not None else _neighbour_dots(xn, cand, rows_per_chunk(cand.shape[1] * xn.shape[1], 4096), q)


def _neighbour_dots(xn: torch.Tensor, idx: torch.Tensor, rows: int, queries: torch.Tensor | None = None) -> torch.Tensor:
    """``out[i, j] = q[i] · xn[idx[i, j]]`` in chunks of ``rows`` rows, ``q`` = ``queries`` (default ``xn``).

    Without gradient one gather buffer is reused for every chunk: a fresh chunk-sized block per chunk
    left glibc's heap holding about one block per chunk (a 1 GB RSS spike on Baby-size 4096-d features).
    With gradient (``queries`` unset) ``NeighbourDots`` keeps the backward linear in N."""
    if xn.requires_grad and torch.is_grad_enabled():
        if queries is not None:
            raise ValueError("_neighbour_dots: separate queries are only supported without gradient")
        return NeighbourDots.apply(xn, idx, rows)  # type: ignore[no-any-return]
    n, k = idx.shape
    q = xn if queries is None else queries
    out = torch.empty(n, k, 1, dtype=xn.dtype, device=xn.device)
    buf = torch.empty(min(rows, n) * k, xn.shape[1], dtype=xn.dtype, device=xn.device)
    for s in range(0, n, rows):
        r = min(rows, n - s)
        gathered = torch.index_select(xn, 0, idx[s : s + r].reshape(-1), out=buf[: r * k])
        torch.bmm(gathered.view(r, k, -1), q[s : s + r].unsqueeze(2), out=out[s : s + r])
    return out.squeeze(2)


class NeighbourDots(torch.autograd.Function):
    """``out[i, j] = x[i] · x[idx[i, j]]`` with a backward that accumulates into one gradient, chunk by chunk.

    Autograd through chunked gathers gave every chunk its own N × d zero gradient, summed at the end: a
    backward of O(N² · d / chunk), 23 s at 300k items against 1.3 s at 100k (the learned graph's rebuild
    step at a million items would have spent minutes there)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, idx: torch.Tensor, rows: int) -> torch.Tensor:
        ctx.save_for_backward(x, idx)
        ctx.rows = rows
        with torch.no_grad():
            return _neighbour_dots(x, idx, rows)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        x, idx = ctx.saved_tensors
        n, k = idx.shape
        grad_x = torch.zeros_like(x)
        for s in range(0, n, ctx.rows):
            g, nb = grad[s : s + ctx.rows], idx[s : s + ctx.rows]
            # the query row receives Σ_j g_ij · x[idx_ij]; each neighbour receives g_ij · x[i]
            grad_x[s : s + ctx.rows] += torch.bmm(g.unsqueeze(1), take_rows(x, nb)).squeeze(1)
            grad_x.index_add_(0, nb.reshape(-1), (g[:, :, None] * x[s : s + ctx.rows, None, :]).reshape(-1, x.shape[1]))
        return grad_x, None, None
