"""The served catalogue: a finished run's user and item vectors, items added at run time, top-k.

Scores are user · item, as in training. Items added through the service get their vectors
*inductively*: the run's model is rebuilt over the extended catalogue (the same constructor, so
the same kNN graphs, co-occurrence graph and attention), its trained weights loaded, and each new
item given a zero ID embedding and no interactions — so its vector comes from its content through
the item graph alone. The learned item graph is rebuilt over the new catalogue from the
parameters the stored one was built from. So a run trained on the cold split with ``cold_ids=none``
(cold items without ID embeddings) scores its cold items offline exactly as the service scores them
when they are added (tested; ``serve.cold_check``); with the papers' default a cold item offline
also has the ID embedding it got as a sampled negative. A model with no content path (MF,
LightGCN, NGCF) cannot place an item it has never seen: adding one is refused.

Top-k is an exact product below ``faiss_above`` items and a FAISS inner-product index above it
(rebuilt when items are added).

Reads take no lock: everything a query uses sits in one immutable ``View``, and an add builds the
next view beside it and swaps it in with one assignment, so a reader sees the old catalogue or the
new one, never half of each, and is never held up by a model rebuild. Adds serialise on ``lock``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from mmgef.errors import ConfigError, MMGEFError
from mmgef.features.encoders import ENCODER_MODALITIES, Encoder, load_encoder, model_fingerprint
from mmgef.features.fusion import l2_normalize
from mmgef.models.base import ModelContext, Recommender
from mmgef.models.registry import build_model
from mmgef.runs import Prepared, load_run

Ranked = list[tuple[str, float]]


class UnknownId(MMGEFError):
    """A user or item id the catalogue does not hold (HTTP 404)."""


class Conflict(MMGEFError):
    """A request that cannot be carried out in this state (HTTP 409)."""


class BadFeatures(MMGEFError):
    """A feature vector of the wrong width, or with NaN / inf (HTTP 422)."""


@dataclass(frozen=True)
class View:
    """One consistent state of the catalogue: the model and every array a query reads."""

    model: Recommender
    users: torch.Tensor  # ranking vectors: score = users · items (models/base.py ranking_vectors)
    items: torch.Tensor
    unit: torch.Tensor  # final item vectors / ‖·‖, for cosine neighbours
    item_ids: list[str]
    item_index: dict[str, int]
    seen: sp.csr_matrix  # per user, the items `mmgef recommend` excludes (train, valid and test)
    index: object | None  # a FAISS inner-product index above ``faiss_above`` items


class Catalog:
    def __init__(self, p: Prepared, faiss_above: int = 50_000, hold_out: list[str] | None = None) -> None:
        if p.ctx is None:
            raise ConfigError("Catalog needs the run's model context: load it with load_run(run_dir, keep_context=True).")
        self.p, self.ctx = p, p.ctx
        self.faiss_above = faiss_above
        self.lock = threading.RLock()  # serialises adds (reads need none: see the module doc)
        self.user_ids = [str(u) for u in p.dataset.user_ids]
        self.user_index = p.dataset.user_index()
        self.titles = dict(zip(map(str, p.dataset.item_ids), p.dataset.item_texts or []))
        self.images = {i: x for i, x in zip(map(str, p.dataset.item_ids), p.dataset.item_images or []) if x}
        self.base_items = [str(i) for i in p.dataset.item_ids]
        self.added: list[str] = []
        self.encoders: dict[tuple[str, str], Encoder] = {}  # loaded on the first item sent as text
        model, seen = p.model, p.dataset.matrix().tocsr()
        if hold_out:
            model, seen = self._hold_out(hold_out, seen)
        self.view = self._view(model, seen)

    @classmethod
    def load(cls, run_dir: str | Path, faiss_above: int = 50_000) -> Catalog:
        return cls(load_run(Path(run_dir), keep_context=True), faiss_above)

    # --- state -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.p.cfg.model

    @property
    def content_widths(self) -> dict[str, int]:
        return {m: int(x.shape[1]) for m, x in self.ctx.content.items()}

    @property
    def inductive(self) -> bool:
        return bool(self.p.cfg.params.uses_content and self.ctx.content)

    @property
    def item_ids(self) -> list[str]:
        return self.view.item_ids

    @property
    def item_index(self) -> dict[str, int]:
        return self.view.item_index

    @property
    def model(self) -> Recommender:
        return self.view.model

    def _view(self, model: Recommender, seen: sp.csr_matrix) -> View:
        users, items = (x.detach().float().cpu() for x in model.ranking_vectors())
        final_items = model.cached_embeddings()[1].detach().float().cpu()
        item_ids = self.base_items + self.added
        index = None
        if len(item_ids) > self.faiss_above:
            import faiss

            index = faiss.IndexFlatIP(items.shape[1])
            index.add(np.ascontiguousarray(items.numpy()))
        return View(model, users, items, torch.nn.functional.normalize(final_items, dim=1), item_ids,
                    {i: k for k, i in enumerate(item_ids)}, seen, index)

    def _hold_out(self, ids: list[str], seen: sp.csr_matrix) -> tuple[Recommender, sp.csr_matrix]:
        """Start without ``ids`` (items with no training interactions), to add them back through the service:
        how benchmarks/serve_cold_start.py compares cold start through the service with cold start offline."""
        pos = self.p.dataset.item_index()  # base_items is still the dataset's item order here
        drop = sorted(pos[i] for i in ids)
        if self.ctx.train[:, drop].nnz:
            raise ConfigError("hold_out: only items without training interactions can be held out")
        keep = np.setdiff1d(np.arange(len(self.base_items)), drop)
        self.ctx = replace(self.ctx, n_items=len(keep), train=self.ctx.train[:, keep].tocsr(),
                           content={m: x[keep] for m, x in self.ctx.content.items()})
        self.base_items = [self.base_items[k] for k in keep]
        return self._rebuild(self.ctx, self.p.model.state_dict(), lambda v: v[torch.as_tensor(keep)]), seen[:, keep].tocsr()

    def _rebuild(self, ctx: ModelContext, state: dict[str, torch.Tensor],
                 resize: Callable[[torch.Tensor], torch.Tensor]) -> Recommender:
        """The run's model over ``ctx`` with the trained ``state``; ``resize`` maps each item-sized tensor (one
        whose first dimension differs between the old and the new model) to the new item rows."""
        torch.manual_seed(self.p.cfg.seed)
        model = build_model(self.p.cfg.params, ctx, self.p.cfg.train.reg).to(self.p.device)
        frozen = getattr(model, "frozen", None)
        target = model.state_dict()
        state = {k: (resize(v) if v.shape != target[k].shape else v) for k, v in state.items()
                 if not (frozen is not None and k.startswith("frozen."))}
        model.load_state_dict(state, strict=frozen is None)
        if frozen is not None:  # the learned graph over these items, from the projections the stored one came from
            model.rebuild_frozen_graph()
        model.eval()
        return model

    # --- queries -----------------------------------------------------------------------------
    def user_row(self, user: str) -> int:
        if user not in self.user_index:
            raise UnknownId(f"user '{user}' is not in this run's data ({len(self.user_ids)} users)")
        return self.user_index[user]

    @staticmethod
    def _item_row(v: View, item: str) -> int:
        if item not in v.item_index:
            raise UnknownId(f"item '{item}' is not in the catalogue ({len(v.item_ids)} items)")
        return v.item_index[item]

    def item_row(self, item: str) -> int:
        return self._item_row(self.view, item)

    def seen_items(self, user: str) -> list[str]:
        r, v = self.user_row(user), self.view
        return [v.item_ids[j] for j in v.seen.indices[v.seen.indptr[r] : v.seen.indptr[r + 1]]]

    def recommend(self, user: str, k: int, exclude_seen: bool = True) -> Ranked:
        r, v = self.user_row(user), self.view
        seen = v.seen.indices[v.seen.indptr[r] : v.seen.indptr[r + 1]] if exclude_seen else np.empty(0, int)
        return self._top(v, v.users[r], k, seen)

    def similar(self, item: str, k: int) -> Ranked:
        """Nearest items by cosine of the final item vectors (the item itself excluded)."""
        v = self.view
        i = self._item_row(v, item)
        sims = v.unit @ v.unit[i]
        sims[i] = -torch.inf
        top = torch.topk(sims, min(k, len(v.item_ids) - 1))
        return [(v.item_ids[j], float(s)) for s, j in zip(top.values.tolist(), top.indices.tolist())]

    def closest_in(self, item: str, candidates: list[str], k: int) -> Ranked:
        """The ``k`` of ``candidates`` (e.g. a user's history) closest in cosine to ``item``."""
        if not candidates:
            return []
        v = self.view
        rows = [self._item_row(v, c) for c in candidates]
        sims = v.unit[rows] @ v.unit[self._item_row(v, item)]
        top = torch.topk(sims, min(k, len(rows)))
        return [(candidates[j], float(s)) for s, j in zip(top.values.tolist(), top.indices.tolist())]

    def graph_neighbours(self, item: str, k: int) -> Ranked | None:
        """The item's strongest neighbours in the model's stored item graph (None for a model without one)."""
        v = self.view
        frozen = getattr(v.model, "frozen", None)
        if frozen is None:
            return None
        i = self._item_row(v, item)
        idx, weight = frozen.idx[i].cpu(), frozen.weight[i].cpu()
        best: dict[int, float] = {}
        for j, w in zip(idx.tolist(), weight.tolist()):
            if j != i and w > 0:
                best[j] = best.get(j, 0.0) + w  # the same neighbour in the initial and the learned piece
        ranked = sorted(best.items(), key=lambda jw: -jw[1])[:k]
        return [(v.item_ids[j], w) for j, w in ranked]

    @staticmethod
    def _top(v: View, user_vec: torch.Tensor, k: int, exclude: np.ndarray) -> Ranked:
        n = len(v.item_ids)
        k_eff = min(k, n - len(exclude))
        if k_eff <= 0:
            return []
        if v.index is not None:
            scores, idx = v.index.search(user_vec.numpy()[None], min(n, k_eff + len(exclude)))  # type: ignore[attr-defined]
            banned = set(exclude.tolist())
            pairs = [(int(j), float(s)) for s, j in zip(scores[0], idx[0]) if j >= 0 and j not in banned]
            return [(v.item_ids[j], s) for j, s in pairs[:k_eff]]
        scores = v.items @ user_vec
        scores[torch.as_tensor(exclude, dtype=torch.long)] = -torch.inf
        top = torch.topk(scores, k_eff)
        return [(v.item_ids[j], float(s)) for s, j in zip(top.values.tolist(), top.indices.tolist())]

    # --- changes -----------------------------------------------------------------------------
    def check_features(self, features: dict[str, list[float]]) -> dict[str, np.ndarray]:
        widths = self.content_widths
        missing = sorted(set(widths) - set(features))
        if missing:
            raise BadFeatures(f"features lack modality {missing}; this run uses {widths} (modality: width)")
        extra = sorted(set(features) - set(widths))
        if extra:
            raise BadFeatures(f"features has modality {extra} the run does not use; it uses {sorted(widths)}")
        out = {}
        for m, width in widths.items():
            x = np.asarray(features[m], dtype=np.float32)
            if x.shape != (width,):
                raise BadFeatures(f"modality '{m}': {x.size} values, the run's '{m}' vectors have {width}")
            if not np.isfinite(x).all():
                raise BadFeatures(f"modality '{m}': contains NaN or inf")
            out[m] = x
        return out

    @property
    def text_sources(self) -> dict[str, dict]:
        """The run's modalities a local encoder made from item text (``mmgef features``), with their manifests."""
        return {m: meta for m, meta in self.p.dataset.feature_sources.items()
                if m in self.ctx.content and meta.get("file_modality") == "text" and meta.get("encoder") in ENCODER_MODALITIES}

    def encode_text(self, text: str) -> dict[str, np.ndarray]:
        """A new item's vectors for every text modality, made as ``mmgef features`` made the run's: the encoder its
        manifest names, the same normalisation and storage precision."""
        sources = self.text_sources
        if not sources:
            raise BadFeatures("'text': no vectors of this run were made from text by a local encoder (no `mmgef features` "
                              f"manifest names one for {sorted(self.content_widths)}); send 'features' instead")
        out = {}
        for m, meta in sources.items():
            x = self._encoder(m, meta).encode_text([text]).astype(np.float32)
            x = l2_normalize(x) if meta.get("normalized", True) else x
            out[m] = x[0].astype(meta.get("dtype", "float32")).astype(np.float32)
        return out

    def _encoder(self, modality: str, meta: dict) -> Encoder:
        key = (meta["encoder"], meta.get("model_path", ""))
        with self.lock:
            if key not in self.encoders:
                path = Path(key[1])
                if not path.is_dir() or model_fingerprint(path) != meta.get("model_fingerprint"):
                    raise Conflict(f"'text': the encoder that made the run's '{modality}' vectors ({path}) is not on this "
                                   "machine as it was then; send 'features', or serve where that model is")
                self.encoders[key] = load_encoder(meta["encoder"], path)
            return self.encoders[key]

    def check_new(self, ids: list[str]) -> None:
        """Refuse new items this catalogue cannot take: a model without a content path, an id that exists."""
        if not self.inductive:
            raise Conflict(f"model '{self.name}' has no content path: it cannot place an item without interactions "
                           "(use a content model: mmgef, lattice, freedom, vbpr, …)")
        taken = set(self.item_index)
        for item in ids:
            if item in taken:
                raise Conflict(f"item '{item}' already exists")
            taken.add(item)

    def add_items(self, items: list[tuple[str, dict[str, np.ndarray], str | None]]) -> None:
        """Add new items (id, checked features, title) in one model rebuild."""
        if not items:
            return
        self.check_new([item for item, _, _ in items])
        n_new = len(items)
        with self.lock:  # re-entrant: the service holds it across the add and the store write
            ctx = replace(self.ctx, n_items=self.ctx.n_items + n_new,
                          train=sp.hstack([self.ctx.train, sp.csr_matrix((self.ctx.n_users, n_new))]).tocsr(),
                          content={m: np.vstack([x, np.stack([f[m] for _, f, _ in items])]).astype(np.float32)
                                   for m, x in self.ctx.content.items()})
            # new items get zero rows in every item-sized weight: no ID embedding, content alone places them
            model = self._rebuild(ctx, self.model.state_dict(), lambda v: torch.cat([v, v.new_zeros((n_new, *v.shape[1:]))]))
            seen = sp.hstack([self.view.seen, sp.csr_matrix((self.view.seen.shape[0], n_new))]).tocsr()
            self.ctx = ctx
            self.titles.update({item: title for item, _, title in items if title})
            self.added = [*self.added, *(item for item, _, _ in items)]  # a new list: the old view keeps its ids
            self.view = self._view(model, seen)  # the swap: readers see the new catalogue from here on

