"""MM-GEF (Multi-Modal recommendation with Graph Early-Fusion).

1. Early fusion. ``fusion=shared`` (the paper's CLIP case, where image and text vectors share one
   space): the item's L2-normalised modality vectors are averaged, then projected by one trainable
   linear layer. ``per_modality``: each modality gets its own projection to the common size and the
   projections are averaged — averaging coordinates of unrelated spaces (TikTok's image and audio
   vectors) would mix meaningless pairs. ``auto`` (default) picks shared only when the features'
   manifest names one joint encoder for every modality (``mmgef features`` with CLIP).
2. E^m: cosine kNN graph (k=10) of the projected fused vectors, rebuilt every epoch with gradients
   into the projection, mixed as in LATTICE with the kNN graph of the raw fused features
   (λ·initial + (1−λ)·learned; λ = 0 gives the learned graph alone, the paper's E^m).
   ``initial_graph=per_modality`` (MM-GEF+) makes the initial part LATTICE's: one raw kNN graph per modality,
   normalised on its own and mixed by the modality weights, instead of one kNN graph of the mean cosine, where
   a modality with spread-out similarities decides most neighbour lists.
   ``learned_graph=per_modality`` (MM-GEF+) learns one kNN graph per modality on its own projection
   and mixes them by softmax modality weights, as LATTICE does: fusing first lets one modality's
   neighbours crowd out the other's.
3. E^c: item co-occurrence C_ij / max C; ``cf_graph=topk`` keeps the top-k per row, symmetrically
   normalised; ``all_pairs`` keeps every co-occurring pair un-normalised (Eq. 3–4 as written).
   ``cf_weight`` jaccard / shrunk and ``cf_min_count`` weigh pairs by their support (MM-GEF+).
4. Soft attention merges the graphs into E^u: E^m, each modality's own frozen kNN graph (with two or
   more modalities and ``modality_graphs``) and E^c. ``global`` = softmax of one learned scalar per
   graph; ``item`` = per-item softmax of a linear map of the item's ID embedding.
   ``degree`` (MM-GEF+) = per-item softmax(a + b·z_i), z_i the item's standardised log training
   degree, so cold and tail items can lean on content and head items on co-occurrence.
   ``use_attention=false`` fixes equal weights. With the per-modality graphs among the inputs the
   attention has something to weigh without E^c, so "w/o CF" and "w/o CF+Att" are different models
   (with {E^m, E^c} alone they were one).
5. ``item_layers`` convolutions over E^u from the item ID embeddings give h; h/‖h‖ is added to
   LightGCN's item vectors; score = user · item; BPR.

``h_gate`` (MM-GEF+) scales h by a learned gate, one for all items or one that depends on the item's
degree, so the content branch can fade where collaborative signal suffices.

``content_term`` (MM-GEF+) adds a trainable linear map of the fused content to every item vector, as
VBPR's content term does: h only reaches a cold item through its warm neighbours' ID embeddings,
while this gives it a vector of its own, learned on warm items' content.

``content_norm`` (MM-GEF+) adds the content term L2-normalised, as LATTICE's CF+feats adds its projected
content: every item then gets a term of the same size, however far its content is from the map's origin.

``content_gate=degree`` (MM-GEF+) scales the content term by 2σ(c + d·z_i) (z_i: the item's standardised log
degree): on data whose content says little (TikTok) the term lowered NDCG for warm items, while cold items need it.

``mix_on_valid`` (MM-GEF+) fits the attention over E^u's graphs and the gates on the validation pairs' loss (the
trainer takes one step on a validation batch after each training step) rather than on the training loss: the
attention trained on the training loss gives E^c half of E^u on TikTok, where E^c fits the training pairs but does
not carry over to held-out ones; held-out pairs can say so, as they would when choosing a hyper-parameter.

``id_dropout`` > 0 (MM-GEF+) trains for items that have no interactions (DropoutNet's idea): each batch,
every item loses its LightGCN (ID) part with that probability and takes instead the similarity-weighted
mean of its raw-content kNN neighbours' parts, so the borrowed part, h and the content term learn to
place an item alone; an item without training interactions always borrows (its own ID embedding was only
ever pushed down as a sampled negative). Without it, training makes warm items' vectors outgrow what
content gives a cold item, and on the cold split every graph model's best validation epoch was its first.

``cf_crossfit`` (MM-GEF+) trains each user against an E^c built from the other half of the users: E^c from every
user links a training positive to that user's own other items (the user's pairs are among its counts), which no
held-out item gets, so the attention learns to trust E^c more than held-out data bears out.

``edge_dropout`` > 0 borrows FREEDOM's degree-sensitive pruning of the user–item graph for the
LightGCN part, and ``normalize_h=false`` adds h un-normalised as FREEDOM does (neither is in the
paper; options with their own rows in the cold-start table).
"""

from __future__ import annotations

import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from mmgef.errors import ConfigError
from mmgef.features.fusion import early_fuse, l2_normalize, select, shared_fusion
from mmgef.graphs.learned import DiffGraph, knn_graph, normalize_knn
from mmgef.graphs.modules import FrozenKnnGraph, SparseGraph, WeightedSumGraph, collaborative_item_graph
from mmgef.graphs.propagation import Graph
from mmgef.models.base import Batch, ModelContext
from mmgef.models.item_graph import (
    ContentFeatures,
    ContentGate,
    LearnedGraphRecommender,
    build_backbone,
    projection,
    projections,
    standardised_log_degree,
)
from mmgef.params import MMGEFParams


class MMGEF(LearnedGraphRecommender):
    graph_sources = ("proj", "proj_m", "modal_weight")

    def __init__(self, params: MMGEFParams, ctx: ModelContext, reg: float = 0.0) -> None:
        if params.cf_crossfit and not params.use_cf_graph:
            raise ConfigError("mmgef: cf_crossfit builds E^c from half of the users, and use_cf_graph is false. "
                              "Fix: set use_cf_graph=true, or drop cf_crossfit.")
        backbone = build_backbone("lightgcn", params.embedding_dim, params.n_layers, ctx, params.edge_dropout)
        super().__init__(ctx, reg, backbone, params.item_layers, params.rebuild_every, params.normalize_h,
                         params.h_gate, params.graph_refresh, params.full_refresh_every)
        self.p = params
        content = {m: l2_normalize(x, inplace=ctx.owns_content) if params.normalize_content else x
                   for m, x in select(ctx.content, params.modalities, "mmgef").items()}
        self.names = list(content)
        self.shared_space = shared_fusion(params.fusion, content, ctx.joint_modalities)
        if self.shared_space:  # average first, then one projection (the paper's CLIP case)
            self.feats = ContentFeatures({"fused": early_fuse(content)})
            self.proj = self._fusion_head(content, params.proj_dim)
            raw_for_graph = self.feats["fused"]
        else:  # one projection per modality to a common size, then average
            self.feats = ContentFeatures(content)
            self.proj_m = self._fusion_head(content, params.proj_dim)
            # similarity = mean of the per-modality cosines (the cosine of the concatenated unit vectors)
            raw_for_graph = [self.feats[m] for m in self.names]
        if params.learned_graph == "per_modality" and self.shared_space:
            raise ConfigError("mmgef: learned_graph=per_modality learns one graph per modality's own projection, and "
                              "these features are fused into one shared space first (fusion=shared). "
                              "Fix: set fusion=per_modality, or learned_graph=fused.")
        # learned_graph=per_modality: LATTICE's softmax modality weights over the per-modality learned graphs
        self.modal_weight = nn.Parameter(torch.zeros(len(self.names))) if params.learned_graph == "per_modality" else None
        # each modality's own raw-content kNN graph, built once: an input of the attention (modality_graphs) and/or
        # E^m's initial part (initial_graph=per_modality); one modality's is the fused graph itself
        per_modality_raw = len(self.names) > 1 and (params.modality_graphs or params.initial_graph == "per_modality")
        with torch.no_grad():
            self.initial = FrozenKnnGraph.of(normalize_knn([knn_graph(raw_for_graph, params.knn_k, params.knn_method)])[0],
                                             persistent=False)
            modal = [] if not per_modality_raw else [
                FrozenKnnGraph.of(normalize_knn([knn_graph(torch.as_tensor(content[m]), params.knn_k, params.knn_method)])[0],
                                  persistent=False) for m in self.names]
        self.modal_graphs = nn.ModuleList(modal if params.modality_graphs else [])
        self.modal_initial = nn.ModuleList(modal if params.initial_graph == "per_modality" else [])
        self.cf_graph = self._cf_graph(ctx.train) if params.use_cf_graph else None
        # cf_crossfit: users split in two at random; cf_halves[f] is E^c from the users outside half f, so a user of
        # half f is trained against co-occurrences that owe nothing to that user's own items
        self.cf_halves: nn.ModuleList | None = None
        self.user_half: torch.Tensor | None
        half = torch.randint(0, 2, (ctx.n_users,)) if params.cf_crossfit else None
        self.register_buffer("user_half", half, persistent=False)
        if half is not None:
            others = [sp.diags((half.numpy() != f).astype("float32")) @ ctx.train for f in (0, 1)]
            self.cf_halves = nn.ModuleList(self._cf_graph(sp.csr_matrix(m)) for m in others)
        n_graphs = 1 + len(self.modal_graphs) + params.use_cf_graph
        self.att_global = nn.Parameter(torch.zeros(n_graphs))
        self.att_item = nn.Linear(params.embedding_dim, n_graphs) if params.attention == "item" else None
        # the same fusion as the graph's, with its own weights, mapped to the item vectors' width
        self.content_head = self._fusion_head(content, self.out_dim) if params.content_term else None
        for key, used in (("content_gate", params.content_gate != "none"), ("content_norm", params.content_norm)):
            if used and not params.content_term:
                raise ConfigError(f"mmgef: {key} acts on the content term, and content_term is false. "
                                  f"Fix: set content_term=true, or drop {key}.")
        self.content_gate = ContentGate(True, ctx.train) if params.content_gate == "degree" else None
        # 1 for items with training interactions: the ones whose ID part means something
        trained = torch.from_numpy((ctx.train.getnnz(axis=0) > 0).astype("float32"))
        self.has_id: torch.Tensor | None
        self.register_buffer("has_id", trained if params.id_dropout > 0 else None, persistent=False)
        if params.attention == "degree":  # logits a_g + b_g·z_i; b = 0 starts as the global attention
            self.att_degree = nn.Parameter(torch.zeros(n_graphs))
            self.register_buffer("degree_z", standardised_log_degree(ctx.train), persistent=False)
        self.init_graph()

    def held_out_parameters(self) -> list[nn.Parameter]:
        """With ``mix_on_valid``: the attention over E^u's graphs and the gates, whatever of them this model has."""
        if not self.p.mix_on_valid:
            return []
        return list(self.parameters_of(("att_global", "att_degree", "att_item", "h_gate", "content_gate")).values())

    def _cf_graph(self, train: sp.csr_matrix) -> SparseGraph:
        p = self.p
        return collaborative_item_graph(train, p.cf_graph, p.cf_k, p.cf_weight, p.cf_shrink, p.cf_min_count)

    def _fusion_head(self, content: dict, out_dim: int) -> nn.Module:
        """A trainable map of the item content to ``out_dim``, fused as ``shared_space`` says: one projection of
        the averaged vector, or one per modality whose outputs ``_through`` averages."""
        if self.shared_space:
            return projection(self.feats["fused"].shape[1], out_dim)
        return projections(content, out_dim)

    def _through(self, head: nn.Module) -> torch.Tensor:
        """Every item's content through a ``_fusion_head``."""
        if isinstance(head, nn.ModuleDict):
            return torch.stack([head[m](self.feats[m]) for m in self.names]).mean(0)
        return head(self.feats["fused"])  # type: ignore[no-any-return]

    def fused_projection(self) -> torch.Tensor:
        return self._through(self.proj if self.shared_space else self.proj_m)

    def content_vectors(self) -> torch.Tensor:
        """The content term's item vectors (``content_term``)."""
        if self.content_head is None:
            raise ConfigError("mmgef: this model has no content term, so it has no content vectors. "
                              "Fix: build it with content_term=true.")
        content = self._through(self.content_head)
        return F.normalize(content, dim=1) if self.p.content_norm else content

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        users, items = self._id_part()
        return users, self._with_content(items + self.item_graph_embeddings())

    def batch_vectors(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """With ``cf_crossfit`` in training, each user's items carry the h of the E^c built without that user's half."""
        if self.cf_halves is None or not self.training:
            return super().batch_vectors(batch)
        users, items = self._id_part()
        content = self.content_graph()  # one rebuild, shared by both halves' E^u
        # [2, items, dim]; the content term, the same for both halves, is computed once and broadcast
        per_half = self._with_content(torch.stack([items + self.item_graph_embeddings(self.item_graph(content, cf))
                                                   for cf in self.cf_halves]))
        half = self.user_half[batch.users]  # type: ignore[index]
        neg_half = half[:, None] if batch.neg.dim() == 2 else half
        return users[batch.users], per_half[half, batch.pos], per_half[neg_half, batch.neg]

    def _id_part(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The LightGCN user and item vectors, items with ID dropout applied (``id_dropout``)."""
        users, items = self.backbone.embeddings()
        if self.has_id is not None:
            keep = self.has_id
            if self.training:
                keep = keep * torch.bernoulli(torch.full_like(keep, 1.0 - self.p.id_dropout))
            items = self._fill_from_neighbours(items, keep[:, None])
        return users, items

    def _with_content(self, items: torch.Tensor) -> torch.Tensor:
        """``items`` plus the (gated) content term, where there is one (``content_term``)."""
        if self.content_head is None:
            return items
        content = self.content_vectors()
        return items + (content if self.content_gate is None else self.content_gate(content))

    def _fill_from_neighbours(self, items: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Items with ``keep`` 0 take the similarity-weighted mean of their content neighbours' vectors (those
        with keep 1) in place of their own, so an item without an ID part is on the same scale as one with."""
        known = items * keep
        weight = self.initial.mm(keep)
        borrowed = self.initial.mm(known) / weight.clamp_min(1e-12)
        return known + (1 - keep) * borrowed

    def modality_weights(self) -> torch.Tensor:
        """Softmax of the learned modality weights (learned_graph=per_modality), else equal weights."""
        if self.modal_weight is None:
            return torch.full((len(self.names),), 1.0 / len(self.names), device=self.att_global.device)
        return F.softmax(self.modal_weight, dim=0)

    def build_content_graph(self) -> DiffGraph:
        k, method, lam = self.p.knn_k, self.p.knn_method, self.p.lambda_coeff
        w = self.modality_weights()
        if self.modal_initial:  # as LATTICE: λ Σ_m w_m norm(S̃^m), each modality's raw kNN graph on its own
            initial = [g.piece().scaled(lam * w[i]) for i, g in enumerate(self.modal_initial)]
            extra = [[g.idx] for g in self.modal_initial]
        else:
            initial, extra = [self.initial.piece().scaled(lam)], [[self.initial.idx]] * len(self.names)
        if self.modal_weight is None:  # candidates for refresh=local: every initial graph's neighbours, once each
            fused_extra = [g.idx for g in self.modal_initial] or [self.initial.idx]
            learned = normalize_knn([self.learned_knn("fused", self.fused_projection(), k, method, fused_extra)])
        else:  # as LATTICE: each modality's kNN graph of its own projection, mixed by softmax weights
            learned = self.modality_knn_mix({m: self.proj_m[m](self.feats[m]) for m in self.names}, w, k, method, extra)
        return DiffGraph(initial + [g.scaled(1 - lam) for g in learned])

    def attention_weights(self) -> torch.Tensor:
        n_graphs = self.att_global.shape[0]
        if not self.p.use_attention:
            return torch.full((n_graphs,), 1.0 / n_graphs, device=self.att_global.device)
        if self.att_item is not None:
            return F.softmax(self.att_item(self.backbone.item_emb.weight), dim=1)  # type: ignore[union-attr]
        if self.p.attention == "degree":
            return F.softmax(self.att_global + self.degree_z[:, None] * self.att_degree, dim=1)
        return F.softmax(self.att_global, dim=0)

    def graph_names(self) -> list[str]:
        """Names of E^u's inputs, in the attention's order."""
        return ["E^m", *(f"{m} kNN graph" for m in self.names[:len(self.modal_graphs)])] + ["E^c"] * (self.cf_graph is not None)

    @torch.no_grad()
    def mixing_weights(self) -> dict[str, float]:
        """The attention over E^u's inputs (per-item attention: its mean over items), the modality weights of the
        per-modality graphs and the gates."""
        out = super().mixing_weights()
        names = self.graph_names()
        if len(names) > 1:
            att = self.attention_weights()
            att = att.mean(0) if att.dim() == 2 else att
            out.update({f"attention {n}": float(a) for n, a in zip(names, att)})
        if self.modal_weight is not None:
            out.update({f"modality weight {m}": float(w) for m, w in zip(self.names, self.modality_weights())})
        if self.content_gate is not None:
            out["content gate"] = self.content_gate.mean_value()
        return out

    def item_graph(self, content: Graph | None = None, cf_graph: Graph | None = None) -> Graph:
        """E^u: the attention over E^m (``content``, else this step's), the modality graphs and E^c (``cf_graph``,
        else the one from every user)."""
        graphs: list[Graph] = [self.content_graph() if content is None else content, *self.modal_graphs]
        if self.cf_graph is not None:
            graphs.append(self.cf_graph if cf_graph is None else cf_graph)
        if len(graphs) == 1:
            return graphs[0]
        return WeightedSumGraph(graphs, self.attention_weights())

