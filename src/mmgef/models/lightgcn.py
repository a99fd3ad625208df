"""LightGCN: layer-mean of linear propagation over the normalised user–item graph.

``edge_dropout`` > 0 trains on a degree-sensitively pruned graph resampled every epoch
(FREEDOM's denoising, ``graphs.pruning``); evaluation always uses the full graph.
"""

from __future__ import annotations

import torch
from pydantic import Field

from mmgef.config import Strict, later_field
from mmgef.graphs.bipartite import bipartite_adjacency
from mmgef.graphs.pruning import prune_edges
from mmgef.graphs.sparse import symmetric_spmm, to_torch_csr
from mmgef.models.base import Batch, ModelContext
from mmgef.models.mf import MF, MFParams


class LightGCNParams(Strict):
    embedding_dim: int = Field(64, gt=0)
    n_layers: int = Field(2, ge=0)
    edge_dropout: float = later_field(0.0, ge=0.0, lt=1.0, description="share of user–item edges pruned each epoch "
                                      "(∝ √(d_u d_i): popular pairs first); 0 = the full graph")


def propagate_layers(adj: torch.Tensor, ego: torch.Tensor, n_layers: int) -> torch.Tensor:
    """[E, AE, A²E, …] stacked as ``[n, L+1, d]``."""
    layers = [ego]
    for _ in range(n_layers):
        layers.append(symmetric_spmm(adj, layers[-1]))
    return torch.stack(layers, dim=1)


def propagate(adj: torch.Tensor, ego: torch.Tensor, n_layers: int) -> torch.Tensor:
    """Mean of [E, AE, A²E, …] — LightGCN's layer combination."""
    return propagate_layers(adj, ego, n_layers).mean(1)


class LightGCN(MF):
    """MF's ID embeddings, smoothed over the bipartite graph; L2 on the ego embeddings."""

    mixes_layers = True

    def __init__(self, params: LightGCNParams, ctx: ModelContext) -> None:
        super().__init__(MFParams(embedding_dim=params.embedding_dim), ctx)
        self.n_layers = params.n_layers
        self.edge_dropout = params.edge_dropout
        self.train_matrix = ctx.train
        self.register_buffer("adj", to_torch_csr(bipartite_adjacency(ctx.train)), persistent=False)
        self.pruned_adj: torch.Tensor | None = None

    def on_epoch_start(self, epoch: int) -> None:
        """Resample the pruned graph (torch's RNG is seeded per epoch by the trainer)."""
        if self.edge_dropout > 0:
            kept = prune_edges(self.train_matrix, 1.0 - self.edge_dropout)
            self.pruned_adj = to_torch_csr(bipartite_adjacency(kept), self.adj.device)

    def graph(self) -> torch.Tensor:
        """The adjacency propagated over: the pruned one while training with ``edge_dropout``, else the full one."""
        return self.pruned_adj if self.training and self.pruned_adj is not None else self.adj

    def layer_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        ego = torch.cat([self.user_emb.weight, self.item_emb.weight])
        out = propagate_layers(self.graph(), ego, self.n_layers)
        return out[: self.n_users], out[self.n_users :]

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        u, i = self.layer_embeddings()
        return self.pool_layers(u), self.pool_layers(i)

    def reg_terms(self, batch: Batch, final: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """L2 on the ego (layer-0) embeddings, as LightGCN and NGCF do."""
        return self.user_emb(batch.users), self.item_emb(batch.pos), self.item_emb(batch.neg)
