"""Pre-trained user/item embeddings: written by `mmgef pretrain`, read by `mmgef train --init`.

The file carries the dataset's name, sizes and a fingerprint of its raw user and item ids, so
embeddings are never loaded into a model of another dataset or another id order.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from mmgef.data.dataset import Dataset
from mmgef.errors import ConfigError
from mmgef.io import read_safetensors, read_safetensors_metadata, write_safetensors
from mmgef.models.base import Recommender

PRETRAINED = "pretrained.safetensors"


def ids_fingerprint(user_ids: np.ndarray, item_ids: np.ndarray) -> str:
    """A short hash of the raw user and item ids in index order (same data, same order)."""
    h = hashlib.sha256()
    h.update("\n".join(map(str, user_ids)).encode())
    h.update(b"\0")
    h.update("\n".join(map(str, item_ids)).encode())
    return h.hexdigest()[:16]


def write_pretrained(path: Path, model: Recommender, dataset: Dataset) -> None:
    model.eval()
    users, items = model.cached_embeddings()
    meta = {"dataset": dataset.name, "n_users": str(dataset.n_users), "n_items": str(dataset.n_items),
            "ids": ids_fingerprint(dataset.user_ids, dataset.item_ids), "dim": str(users.shape[1])}
    write_safetensors(path, {"user_emb": users.detach().cpu().contiguous(), "item_emb": items.detach().cpu().contiguous()},
                      metadata=meta)


def load_pretrained(path: str | Path, model: Recommender, dataset: Dataset) -> None:
    """Copy the pre-trained vectors into the model's ID embeddings, after checking they belong to it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--init {path}: file not found. Fix: run `mmgef pretrain` and pass its RUN_DIR/{PRETRAINED}.")
    fix = "pass the file `mmgef pretrain` wrote, or re-run the pre-training"
    meta = read_safetensors_metadata(path, fix)
    if meta.get("ids") != ids_fingerprint(dataset.user_ids, dataset.item_ids):
        raise ConfigError(f"--init {path}: pre-trained on dataset '{meta.get('dataset')}' ({meta.get('n_users')} users, "
                          f"{meta.get('n_items')} items), not on '{dataset.name}' ({dataset.n_users} users, "
                          f"{dataset.n_items} items) with these ids. Fix: pre-train on the same dataset.")
    if not (hasattr(model, "user_emb") and hasattr(model, "item_emb")):
        raise ConfigError(f"--init: model '{type(model).__name__}' has no user/item ID embeddings to initialise. "
                          "Fix: use it with lightgcn, mf or ngcf.")
    tensors = read_safetensors(path, fix)
    for key in ("user_emb", "item_emb"):
        target = getattr(model, key).weight
        if tuple(tensors[key].shape) != tuple(target.shape):
            raise ConfigError(f"--init {path}: {key} has shape {tuple(tensors[key].shape)}, the model needs "
                              f"{tuple(target.shape)}. Fix: --set embedding_dim={tensors[key].shape[1]}.")
        with torch.no_grad():
            target.copy_(tensors[key].to(target.device))
