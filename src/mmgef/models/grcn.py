"""GRCN (Wei et al., MM 2020): refine the user–item graph from content before convolving over it.

Per modality m, items get unit content vectors c_i = norm(W_m x_i). A user's preference p_u in
that space is found by routing: start from the mean of its items' c_i, then re-weight its items
by softmax(p_u · c_i) and re-average, ``routing_iters`` times. The affinity of edge (u, i) is
cos(p_u, c_i); modalities are fused by ``max`` (or ``mean``), and edges with affinity ≤ 0 are
pruned (weight relu(affinity)): a click on an item unlike everything else the user chose is a
likely false positive. ID embeddings and, per modality, [p; c] are then convolved LightGCN-style
over the refined, re-normalised graph; the user and item vectors are the concatenations
[ID ; modality 1 ; …], score = dot product. The refinement is recomputed on every forward pass
from the current projections. Gradients reach the projections through the content channels;
``edge_grad`` also sends them through the edge weights, at the price of an E × D gather per layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmgef.features.fusion import select
from mmgef.graphs.bipartite import bipartite_edges, normalized_edge_weights
from mmgef.graphs.propagation import propagate
from mmgef.graphs.sparse import EdgeList, edge_dot
from mmgef.models.base import Batch, ModelContext, Recommender, ego_l2, id_embedding
from mmgef.models.item_graph import ContentFeatures, projections
from mmgef.models.losses import bpr_loss
from mmgef.params import GRCNParams


def segment_softmax(logits: torch.Tensor, segments: torch.Tensor, n_segments: int) -> torch.Tensor:
    """Softmax of ``logits`` within each group of equal ``segments`` (a user's edges)."""
    peak = torch.full((n_segments,), float("-inf"), device=logits.device)
    peak = peak.scatter_reduce(0, segments, logits.detach(), "amax", include_self=True)
    e = torch.exp(logits - peak[segments])
    total = torch.zeros(n_segments, device=logits.device).index_add(0, segments, e)
    return e / total[segments]


class _Weighted:
    """An ``EdgeList`` with this forward pass's edge values: a graph ``propagate`` can use."""

    def __init__(self, edges: EdgeList, values: torch.Tensor) -> None:
        self.edges, self.values = edges, values

    def mm(self, x: torch.Tensor) -> torch.Tensor:
        return self.edges.mm(self.values, x)


class GRCN(Recommender):
    def __init__(self, params: GRCNParams, ctx: ModelContext, reg: float = 0.0) -> None:
        super().__init__(ctx, reg)
        self.p = params
        self.user_emb = id_embedding(ctx.n_users, params.embedding_dim)
        self.item_emb = id_embedding(ctx.n_items, params.embedding_dim)
        content = select(ctx.content, params.modalities, "grcn")
        self.names = list(content)
        self.feats = ContentFeatures(content)
        self.proj = projections(content, params.proj_dim)
        coo = ctx.train.tocoo()
        users, items = torch.from_numpy(coo.row.astype("int64")), torch.from_numpy(coo.col.astype("int64"))
        self.user_item_edges = EdgeList(users, items, ctx.n_users, ctx.n_items)
        self.graph_edges = bipartite_edges(users, items, ctx.n_users, ctx.n_items)

    @property
    def edge_users(self) -> torch.Tensor:
        return self.user_item_edges.rows

    @property
    def edge_items(self) -> torch.Tensor:
        return self.user_item_edges.cols

    def item_content(self, m: str) -> torch.Tensor:
        return F.normalize(self.proj[m](self.feats[m]), dim=1)

    def user_preference(self, content: torch.Tensor) -> torch.Tensor:
        """Routing: each user's unit preference vector in one modality's content space."""
        users, items = self.edge_users, self.edge_items
        weight = torch.ones(len(users), device=content.device)
        for step in range(self.p.routing_iters + 1):
            pref = F.normalize(self.user_item_edges.mm(weight, content), dim=1)
            if step < self.p.routing_iters:  # coupling coefficients without gradient, as in capsule routing
                with torch.no_grad():
                    weight = segment_softmax(edge_dot(pref, content, users, items), users, self.n_users)
        return pref

    def refine(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
        """Edge affinities [E], refined edge weights [E] and each modality's (preferences, content)."""
        parts, affinities = {}, []
        for m in self.names:
            content = self.item_content(m)
            pref = self.user_preference(content)
            parts[m] = (pref, content)
            affinities.append(edge_dot(pref, content, self.edge_users, self.edge_items))
        stacked = torch.stack(affinities)
        affinity = stacked.max(0).values if self.p.fusion == "max" else stacked.mean(0)
        return affinity, F.relu(affinity), parts

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """LightGCN's layer mean over the refined graph, of [ID ; p_1 ; c_1 ; …] in one sparse product per layer."""
        _, weight, parts = self.refine()
        if not self.p.edge_grad:
            weight = weight.detach()
        values = normalized_edge_weights(self.edge_users, self.edge_items, weight, self.n_users, self.n_items)
        x = torch.cat([torch.cat([self.user_emb.weight, self.item_emb.weight])]
                      + [torch.cat([pref, content]) for pref, content in parts.values()], dim=1)
        out = propagate(_Weighted(self.graph_edges, values), x, self.p.n_layers, pool="mean")
        return out[: self.n_users], out[self.n_users :]

    def loss(self, batch: Batch) -> torch.Tensor:
        return bpr_loss(*self.batch_vectors(batch)) + self.reg * ego_l2(self.user_emb, self.item_emb, batch)
