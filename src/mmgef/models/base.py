"""The contract every recommender follows, so the trainer and evaluator never special-case one.

Four methods: ``embeddings()``, ``loss(batch)``, ``on_epoch_start(epoch)``, ``scores(users)``; plus
an optional ``batch_vectors(batch)`` for models that can embed only a batch's users and items
(MF, VBPR) instead of the whole catalogue. Everything a model computes with lives in its
parameters and buffers (graphs are modules in ``graphs/``), so ``.to(device)`` moves it all and
the saved best weights reproduce the reported metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from mmgef.graphs.sparse import take_rows
from mmgef.models.losses import bpr_loss, l2_loss
from mmgef.models.new_items import standardise_new_items


class Batch(NamedTuple):
    """One BPR batch: user indices, their positive items and sampled negatives.

    ``neg`` is ``[B]`` for one negative per pair, or ``[B, M]`` candidates for MixGCF.
    """

    users: torch.Tensor
    pos: torch.Tensor
    neg: torch.Tensor


@dataclass
class ModelContext:
    """The data a model is built from: sizes, the training matrix, item and user content."""

    n_users: int
    n_items: int
    train: sp.csr_matrix
    content: dict[str, np.ndarray] = field(default_factory=dict)
    user_content: dict[str, np.ndarray] = field(default_factory=dict)
    joint_modalities: frozenset[str] = frozenset()  # item modalities that share one encoder's space (from its manifest)
    # True when the caller hands the content arrays over (``runs.prepare`` drops its own reference after the build):
    # a model may then change them in place instead of holding a second copy (126 MB of features at Baby)
    owns_content: bool = False


def id_embedding(n: int, dim: int) -> nn.Embedding:
    """An ID embedding table with Xavier-uniform initialisation (every model's choice)."""
    emb = nn.Embedding(n, dim)
    nn.init.xavier_uniform_(emb.weight)
    return emb


# ID tables with item rows, by attribute name, and where their item rows start (MMGCN's holds users first).
ITEM_ID_TABLES = {"item_emb": lambda model: 0, "graph_item_emb": lambda model: 0, "id_emb": lambda model: model.n_users}


def withhold_item_ids(model: nn.Module, items: np.ndarray) -> int:
    """Give ``items`` no ID embedding: their rows in every item ID table are zeroed and their gradients
    masked, so they stay zero through training (a cold item then has what a new item has: content).
    Returns the number of tables changed."""
    owners = {name: m for name, m in model.named_modules() if isinstance(m, Recommender)}
    changed = 0
    for name, module in model.named_modules():
        attr = name.rsplit(".", 1)[-1]
        if not isinstance(module, nn.Embedding) or attr not in ITEM_ID_TABLES:
            continue
        owner = owners[name.rsplit(".", 1)[0] if "." in name else ""]
        rows = torch.as_tensor(items, dtype=torch.long, device=module.weight.device) + ITEM_ID_TABLES[attr](owner)
        keep = torch.ones(module.weight.shape[0], 1, device=module.weight.device)
        keep[rows] = 0.0
        with torch.no_grad():
            module.weight[rows] = 0.0
        module.weight.register_hook(lambda grad, keep=keep: grad * keep)
        changed += 1
    return changed


def ego_l2(user_emb: nn.Embedding, item_emb: nn.Embedding, batch: Batch) -> torch.Tensor:
    """L2 on the batch's layer-0 (ID) embeddings, as LightGCN and NGCF regularise."""
    return l2_loss(user_emb(batch.users), item_emb(batch.pos), item_emb(batch.neg))


class Recommender(nn.Module):
    """Base class. Subclasses implement ``embeddings()`` (final user and item vectors, with
    gradients in training mode); the default loss is BPR + ``reg`` · L2 on the batch's final
    vectors. Scoring is the dot product of ``ranking_vectors()`` (the embeddings, or with
    ``standardise_new_item_scores`` their augmented form); evaluation computes them once and reuses them
    for every batch of users until the model goes back to training mode.
    """

    trainable: bool = True

    def __init__(self, ctx: ModelContext, reg: float = 0.0) -> None:
        super().__init__()
        self.n_users = ctx.n_users
        self.n_items = ctx.n_items
        self.reg = reg
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None  # derived in eval mode, never saved
        self._ranking: tuple[torch.Tensor, torch.Tensor] | None = None
        self.register_buffer("untrained", None, persistent=False)  # set by standardise_new_item_scores
        self.register_buffer("own_rows", None, persistent=False)  # each user's training pairs, with own_items=False
        self.register_buffer("own_cols", None, persistent=False)

    def standardise_new_item_scores(self, train: sp.csr_matrix, own_items: bool = True) -> None:
        """Score items without training interactions (in ``train``) on their users' trained-item scale
        (``new_item_scores``, see ``models/new_items.py``); ``own_items=False`` leaves each user's own training
        items out of that scale."""
        mask = torch.as_tensor(np.diff(train.tocsc().indptr) == 0)
        self.register_buffer("untrained", mask, persistent=False)
        if not own_items:
            coo = train.tocoo()
            self.register_buffer("own_rows", torch.as_tensor(coo.row, dtype=torch.long), persistent=False)
            self.register_buffer("own_cols", torch.as_tensor(coo.col, dtype=torch.long), persistent=False)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def item_dim(self) -> int:
        """Width of the item vectors ``embeddings()`` returns, known without computing them (a full
        propagation at build time costs seconds and gigabytes at a million nodes): the item ID table's."""
        return int(self.item_emb.embedding_dim)  # type: ignore[union-attr]

    def batch_vectors(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Final vectors of the batch's users, positives and negatives (override to skip the catalogue)."""
        u, i = self.embeddings()
        return take_rows(u, batch.users), take_rows(i, batch.pos), take_rows(i, batch.neg)

    def loss(self, batch: Batch) -> torch.Tensor:
        final = self.batch_vectors(batch)
        return bpr_loss(*final) + self.reg * l2_loss(*final)

    def on_epoch_start(self, epoch: int) -> None:
        """Hook for per-epoch work (e.g. rebuilding a learned item graph, resampling a pruned one)."""

    def held_out_parameters(self) -> list[nn.Parameter]:
        """Parameters the trainer fits on the validation pairs' loss instead of the training loss (none by default)."""
        return []

    @torch.no_grad()
    def mixing_weights(self) -> dict[str, float]:
        """The learned weights that say how the model mixes its sources (graphs, modalities, gates), by name, so a
        user can read which source a trained model leans on for their data. Empty for a model that mixes nothing."""
        return {}

    def train(self, mode: bool = True) -> Recommender:
        self._cache = self._ranking = None
        return super().train(mode)

    def _apply(self, fn, recurse: bool = True):  # type: ignore[no-untyped-def]
        self._cache = self._ranking = None  # moved or cast: recompute on the new tensors
        return super()._apply(fn, recurse)

    @torch.no_grad()
    def cached_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cache is None or self.training:
            self._cache = self.embeddings()
        return self._cache

    @torch.no_grad()
    def ranking_vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """User and item vectors whose dot product is ``scores``: what serving, export and ANN indexes use. The
        embeddings themselves unless new items' scores are standardised (then one block and a column more)."""
        if self._ranking is None or self.training:
            u, i = self.cached_embeddings()
            own = None if self.own_rows is None else (self.own_rows, self.own_cols)
            self._ranking = (u, i) if self.untrained is None else standardise_new_items(u, i, self.untrained, own)
        return self._ranking

    @torch.no_grad()
    def scores(self, users: torch.Tensor, items: slice = slice(None)) -> torch.Tensor:
        """Scores of the items ``items`` (all by default) for each user, shape [len(users), len(items)]."""
        u, i = self.ranking_vectors()
        return u[users] @ i[items].T
