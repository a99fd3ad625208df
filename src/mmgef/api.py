"""The Python API on raw ids: ``mmgef.load(run_dir)`` and ``mmgef.train(config)``.

The CLI (``recommend``, ``export``, ``evaluate``) and the service sit on these functions. A loaded
model computes its user and item vectors once; every call after that is a batched product and a
top-k, so a thousand users cost one matrix product per batch, not a reload each.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmgef.errors import ConfigError, MMGEFError

Ranked = list[tuple[str, float]]


class TrainedModel:
    """A finished run: its model with the best weights, the dataset's id maps and every interaction."""

    def __init__(self, run_dir: str | Path) -> None:
        from mmgef.runs import load_run

        self.run_dir = Path(run_dir)
        p = load_run(self.run_dir)
        self.config, self.model, self.device = p.cfg, p.model, p.device
        self.user_ids = [str(u) for u in p.dataset.user_ids]
        self.item_ids = [str(i) for i in p.dataset.item_ids]
        self._user_index = {u: k for k, u in enumerate(self.user_ids)}
        self._item_index = {i: k for k, i in enumerate(self.item_ids)}
        self._seen = p.dataset.matrix()  # train, valid and test: everything the user already has
        self._users, self._items = (t.detach() for t in self.model.ranking_vectors())  # score = user · item
        self._final_items = self.model.cached_embeddings()[1].detach()  # for cosine neighbours

    @property
    def name(self) -> str:
        return self.config.model

    @staticmethod
    def _row(index: dict[str, int], raw_id: str, kind: str) -> int:
        """The index of a raw user or item id, or a one-line error naming it."""
        try:
            return index[str(raw_id)]
        except KeyError:
            raise MMGEFError(f"{kind} '{raw_id}' is not in this run's data ({len(index)} {kind}s). "
                             f"Fix: use a raw {kind} id from its interaction file.") from None

    @staticmethod
    def _check_k(k: int) -> None:
        if not isinstance(k, (int, np.integer)) or k <= 0:
            raise ConfigError(f"k={k!r}: must be a positive integer. Fix: e.g. k=20.")

    def recommend(self, user_id: str, k: int = 20, exclude_seen: bool = True) -> Ranked:
        """Top-k (raw item id, score) for one user; ``exclude_seen`` drops every item the user has in the data."""
        return self.recommend_many([user_id], k, exclude_seen)[0]

    @torch.no_grad()
    def recommend_many(self, user_ids: Sequence[str], k: int = 20, exclude_seen: bool = True,
                       batch_size: int = 1024) -> list[Ranked]:
        """``recommend`` for many users, in their order, scored in batches."""
        self._check_k(k)
        rows = [self._row(self._user_index, u, "user") for u in user_ids]
        out: list[Ranked] = []
        k_eff = min(k, len(self.item_ids))
        for start in range(0, len(rows), batch_size):
            users = np.asarray(rows[start : start + batch_size], dtype=np.int64)
            scores = self.model.scores(torch.as_tensor(users, device=self.device)).float().cpu()
            if exclude_seen:
                seen = self._seen[users]
                r = np.repeat(np.arange(len(users)), np.diff(seen.indptr))
                scores[torch.as_tensor(r), torch.as_tensor(seen.indices, dtype=torch.long)] = -torch.inf
            top = torch.topk(scores, k_eff, dim=1)
            for vals, idx in zip(top.values.tolist(), top.indices.tolist()):
                out.append([(self.item_ids[i], v) for v, i in zip(vals, idx) if v != -np.inf])
        return out

    @torch.no_grad()
    def similar_items(self, item_id: str, k: int = 20) -> Ranked:
        """The k items whose final vectors are closest in cosine to the item's (itself excluded)."""
        self._check_k(k)
        i = self._row(self._item_index, item_id, "item")
        items = torch.nn.functional.normalize(self._final_items.float(), dim=1)
        sims = (items @ items[i]).cpu()
        sims[i] = -torch.inf
        top = torch.topk(sims, min(k, len(self.item_ids) - 1))
        return [(self.item_ids[j], float(v)) for v, j in zip(top.values.tolist(), top.indices.tolist())]

    def mixing_weights(self) -> dict[str, float]:
        """The model's learned mixing weights by name (attention over its item graphs, modality weights, gates);
        empty for a model that mixes nothing."""
        return self.model.mixing_weights()

    def user_embeddings(self) -> tuple[list[str], np.ndarray]:
        """Raw user ids and their vectors ``[n_users, d]`` (score = user · item; with ``new_item_scores=standardised``
        the final vectors with the standardisation's block and column appended, see models/new_items.py)."""
        return list(self.user_ids), self._users.float().cpu().numpy()

    def item_embeddings(self) -> tuple[list[str], np.ndarray]:
        """Raw item ids and their vectors ``[n_items, d]`` (the partners of ``user_embeddings``)."""
        return list(self.item_ids), self._items.float().cpu().numpy()

    def export(self, out: str | Path) -> Path:
        """Write ``embeddings.safetensors`` (user_emb, item_emb), ``user_ids.txt``, ``item_ids.txt`` and
        ``manifest.json`` into ``out``: what a serving system or an ANN index needs."""
        from mmgef.io import write_json, write_safetensors, write_text

        out = Path(out)
        if out.exists() and not out.is_dir():
            raise MMGEFError(f"--out {out}: exists and is not a directory. Fix: pass a directory path.")
        users, items = self.user_embeddings()[1], self.item_embeddings()[1]
        write_safetensors(out / "embeddings.safetensors", {"user_emb": torch.from_numpy(users), "item_emb": torch.from_numpy(items)},
                          metadata={"model": self.name, "run": str(self.run_dir.resolve())})
        write_text(out / "user_ids.txt", "".join(u + "\n" for u in self.user_ids))
        write_text(out / "item_ids.txt", "".join(i + "\n" for i in self.item_ids))
        write_json(out / "manifest.json", {"model": self.name, "run": str(self.run_dir.resolve()), "users": len(self.user_ids),
                                          "items": len(self.item_ids), "dim": int(users.shape[1]), "score": "dot product"})
        return out


def load(run_dir: str | Path) -> TrainedModel:
    """Open a finished run (``mmgef train``'s directory) for recommendation."""
    return TrainedModel(run_dir)


def train(config: Any, out: str | Path | None = None, resume: bool = False) -> Path:
    """Train one model; ``config`` is a RunConfig, a dict like ``config.yaml``, or a YAML path. Returns the run directory."""
    from mmgef import runs
    from mmgef.config import RunConfig, resolve_run_config, run_config_from

    if isinstance(config, (str, Path)):
        cfg = resolve_run_config(config)
    elif isinstance(config, RunConfig):
        cfg = config
    else:
        cfg = run_config_from(config)
    return Path(runs.train(cfg, Path(out) if out else None, resume=resume)["run_dir"])
