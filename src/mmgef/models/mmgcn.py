"""MMGCN (Wei et al., MM 2019): one user–item graph convolution per modality.

Every modality m has its own branch: users start from a learned preference vector u_m, items
from their projected content. Each layer, per node (users and items alike):
    h   = LeakyReLU(W_agg · mean of the neighbours' vectors)           (aggregation)
    x̂   = LeakyReLU(W_self · x) + id                                   (intrinsic + shared ID)
    x   = LeakyReLU(W_comb · [h ; x̂])                                  (combination, concat)
with ID embeddings shared across modalities. Representations are summed across the branches,
score = user · item, BPR.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmgef.features.fusion import select
from mmgef.graphs.bipartite import mean_adjacency
from mmgef.graphs.modules import SparseGraph
from mmgef.graphs.propagation import Graph
from mmgef.models.base import ModelContext, Recommender, id_embedding
from mmgef.models.item_graph import projection
from mmgef.params import MMGCNParams


class ModalityBranch(nn.Module):
    """One modality's graph: user preferences and item content convolved over the user–item graph."""

    def __init__(self, n_users: int, feat: torch.Tensor, dim: int, n_layers: int) -> None:
        super().__init__()
        self.register_buffer("feat", feat, persistent=False)
        self.user_pref = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_users, dim)))
        self.item_proj = projection(feat.shape[1], dim)
        self.agg = nn.ModuleList(projection(dim, dim) for _ in range(n_layers))
        self.own = nn.ModuleList(projection(dim, dim) for _ in range(n_layers))
        self.comb = nn.ModuleList(projection(2 * dim, dim) for _ in range(n_layers))

    def forward(self, graph: Graph, ids: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.user_pref, F.leaky_relu(self.item_proj(self.feat))])
        for agg, own, comb in zip(self.agg, self.own, self.comb):
            h = F.leaky_relu(agg(graph.mm(x)))
            intrinsic = F.leaky_relu(own(x)) + ids
            x = F.leaky_relu(comb(torch.cat([h, intrinsic], dim=1)))
        return x


class MMGCN(Recommender):
    def __init__(self, params: MMGCNParams, ctx: ModelContext, reg: float = 0.0) -> None:
        super().__init__(ctx, reg)
        content = select(ctx.content, params.modalities, "mmgcn")
        self.id_emb = id_embedding(ctx.n_users + ctx.n_items, params.embedding_dim)
        self.branches = nn.ModuleDict({
            m: ModalityBranch(ctx.n_users, torch.from_numpy(x), params.embedding_dim, params.n_layers)
            for m, x in content.items()
        })
        self.graph = SparseGraph(mean_adjacency(ctx.train), symmetric=False)

    def branch_outputs(self) -> dict[str, torch.Tensor]:
        """Each modality's node representations ``[U+I, d]`` (the test checks they stay separate)."""
        return {m: branch(self.graph, self.id_emb.weight) for m, branch in self.branches.items()}

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        out = sum(self.branch_outputs().values())
        return out[: self.n_users], out[self.n_users :]  # type: ignore[index]
