"""Multi-modal contrastive pre-training for recommendation (Liu et al., ICMR 2022), from the paper.

- User side: a review-text vector (projected) and a graph vector (LightGCN over the user–user
  co-interaction graph, from user ID embeddings), merged by attention.
- Item side: one projected vector per content modality (text, image, …) and a graph vector
  (LightGCN over the item–item co-interaction graph), merged by inter-modal attention.
- Loss: λ·CIMA + (1 − λ)·BCE. CIMA aligns an item's first two modalities over the batch's distinct
  positive items: binary cross-entropy over all N×N (text, image) pairs on cos/τ, τ = 0.1 (Eq. 11;
  ``cima_loss=info_nce`` is the softmax form CLIP uses). BCE scores users against positive and
  sampled items.
- Inter-modal attention is Eq. 8 / 14: a_m = softmax_m(ReLU(aᵀ e′_m)) over the projected modality
  vectors (``attention=tanh``: softmax_m(qᵀ tanh(W e′_m)), the additive form many recommenders use).

The merged vectors are both a recommender (dot product) and the initialisation that
``mmgef train --init`` gives LightGCN. A branch whose data the dataset lacks (no user reviews, a
single modality) is switched off with a logged notice; "w/o graphs" keeps the ID embeddings but
does not propagate them.
"""

from __future__ import annotations

import logging

import scipy.sparse as sp
import torch
from torch import nn

from mmgef.errors import ConfigError
from mmgef.features.fusion import l2_normalize
from mmgef.graphs.cooccurrence import cooccurrence_graph
from mmgef.graphs.modules import CoInteractionGraph, SparseGraph
from mmgef.graphs.propagation import propagate
from mmgef.graphs.sparse import sym_normalize, take_rows
from mmgef.models.base import Batch, ModelContext, Recommender, ego_l2, id_embedding
from mmgef.models.losses import bce_loss, info_nce, pairwise_bce
from mmgef.params import PretrainParams

log = logging.getLogger(__name__)


class ModalityAttention(nn.Module):
    """Soft attention over modality vectors, output Σ_m a_m h_m. ``relu`` (the paper's Eq. 8 / 14):
    a_m = softmax_m(ReLU(aᵀ h_m)); ``tanh``: a_m = softmax_m(qᵀ tanh(W h_m))."""

    def __init__(self, dim: int, form: str = "relu") -> None:
        super().__init__()
        self.form = form
        self.proj = nn.Linear(dim, dim) if form == "tanh" else None
        self.query = nn.Parameter(torch.randn(dim) / dim**0.5)

    def weights(self, h: torch.Tensor) -> torch.Tensor:
        """[n, M] attention of each row over its M stacked modality vectors ``h`` [n, M, d]."""
        scores = torch.tanh(self.proj(h)) @ self.query if self.proj is not None else torch.relu(h @ self.query)
        return torch.softmax(scores, dim=1)

    def forward(self, vectors: list[torch.Tensor]) -> torch.Tensor:
        if len(vectors) == 1:
            return vectors[0]
        h = torch.stack(vectors, dim=1)
        return (self.weights(h).unsqueeze(-1) * h).sum(1)


def co_interaction_graph(train: sp.csr_matrix, k: int | None) -> SparseGraph | CoInteractionGraph:
    """Symmetric-normalised co-interaction graph (rows of ``train`` are the nodes' partners): every pair with a
    common partner (the paper's G_u, G_i; ``k`` None; multiplied through ``train`` without building the pairs), or
    the top-k partners of each node."""
    if k is None:
        return CoInteractionGraph(train)
    c = cooccurrence_graph(train, topk=k)
    return SparseGraph(sym_normalize((c + c.T) / 2), symmetric=True)


class ContrastivePretrain(Recommender):
    def __init__(self, params: PretrainParams, ctx: ModelContext, reg: float = 0.0) -> None:
        super().__init__(ctx, reg)
        self.p = params
        d = params.embedding_dim
        names = params.modalities if params.modalities is not None else list(ctx.content)
        missing = [m for m in names if m not in ctx.content]
        if missing:
            raise ConfigError(f"mcpt: modalities {missing} are not loaded (have {list(ctx.content)}). "
                              "Fix: --set modalities=[...] with the dataset's modalities.")
        self.names = names
        for m in names:
            self.register_buffer(f"feat_{m}", torch.as_tensor(l2_normalize(ctx.content[m])), persistent=False)
        self.item_proj = nn.ModuleDict({m: nn.Linear(ctx.content[m].shape[1], d) for m in names})
        self.use_cima = params.use_cima and params.cima_weight > 0 and len(names) >= 2
        if params.use_cima and len(names) < 2:
            log.warning("mcpt: CIMA switched off: it aligns two item modalities and only %s is loaded", names or "none")
        review = ctx.user_content.get(params.review_modality) if params.use_reviews else None
        if params.use_reviews and review is None:
            log.warning("mcpt: review branch switched off: the dataset has no user content '%s'", params.review_modality)
        self.use_reviews = review is not None
        if review is not None:
            self.register_buffer("review", torch.as_tensor(l2_normalize(review)), persistent=False)
            self.review_proj = nn.Linear(review.shape[1], d)
        self.user_emb = id_embedding(ctx.n_users, d)
        self.item_emb = id_embedding(ctx.n_items, d)
        self.n_layers = params.n_layers if params.use_graphs else 0
        if self.n_layers:
            self.item_graph = co_interaction_graph(ctx.train, params.cf_k)
            self.user_graph = co_interaction_graph(ctx.train.T.tocsr(), params.cf_k)
        self.user_att = ModalityAttention(d, params.attention)
        self.item_att = ModalityAttention(d, params.attention)

    def modality_vectors(self, m: str, items: torch.Tensor | None = None) -> torch.Tensor:
        x = getattr(self, f"feat_{m}")
        return self.item_proj[m](x if items is None else x[items])

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        item_graph, user_graph = self.item_emb.weight, self.user_emb.weight
        if self.n_layers:
            item_graph = propagate(self.item_graph, item_graph, self.n_layers, pool="mean")
            user_graph = propagate(self.user_graph, user_graph, self.n_layers, pool="mean")
        items = self.item_att([item_graph, *(self.modality_vectors(m) for m in self.names)])
        users = self.user_att([user_graph, *([self.review_proj(self.review)] if self.use_reviews else [])])
        return users, items

    def cima(self, items: torch.Tensor) -> torch.Tensor:
        """Contrastive inter-modal alignment of the first two modalities over distinct items."""
        items = torch.unique(items)
        a, b = self.names[:2]
        align = pairwise_bce if self.p.cima_loss == "bce" else info_nce
        return align(self.modality_vectors(a, items), self.modality_vectors(b, items), self.p.temperature)

    def loss(self, batch: Batch) -> torch.Tensor:
        u, i = self.embeddings()
        rec = bce_loss(take_rows(u, batch.users), take_rows(i, batch.pos), take_rows(i, batch.neg))
        lam = self.p.cima_weight if self.use_cima else 0.0
        loss = (1 - lam) * rec + (lam * self.cima(batch.pos) if lam else 0.0)
        return loss + self.reg * ego_l2(self.user_emb, self.item_emb, batch)

