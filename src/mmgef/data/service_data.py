"""Training data from a service store (``mmgef train --data RUN/service.sqlite``).

The store names the dataset its run was trained on; that dataset is loaded as usual and the
items added to the service (with the feature vectors they were placed with) and the interactions
posted to it are appended: new items after the old ones, new users after the old ones, the
stored interactions as training interactions (into a given split's train part). A stored pair
the dataset already holds is kept once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mmgef.data.dataset import Dataset
from mmgef.errors import DataError

if TYPE_CHECKING:  # pandas costs 60 MB and 0.2 s at import: only the reader that parses CSV loads it
    import pandas as pd

STORE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


def is_store(name_or_path: str) -> bool:
    path = Path(name_or_path)
    return path.suffix in STORE_SUFFIXES and path.is_file()


def _bound_data(path: Path) -> str:
    from mmgef.serve.store import bound_data

    try:
        data = bound_data(path)
    except sqlite3.DatabaseError as err:
        raise DataError(path, f"not a store `mmgef serve` wrote ({err})", "pass the service's --db file (RUN/service.sqlite)") from None
    if data is None:
        raise DataError(path, "names no dataset (the service never started on it)", "start `mmgef serve` on it once, or train on the run's data")
    return data


def load_with_store(path: Path, load: Callable[[str], Dataset]) -> Dataset:
    """The store's dataset (read by ``load``) with the store's items and interactions added."""
    from mmgef.serve.store import Store

    ds = load(_bound_data(path))
    store = Store(path)
    return extend(ds, store.items(), store.interactions(), path)


def extend(ds: Dataset, items: list[tuple[str, dict[str, list[float]], str | None]], inter: pd.DataFrame,
           source: Path) -> Dataset:
    """``ds`` with added ``items`` (id, features, title) and interactions (``user_id, item_id, timestamp``)."""
    known = set(ds.item_ids.tolist())
    new = [(i, f, t) for i, f, t in items if i not in known]
    content = {}
    for m, x in ds.content.items():
        rows = []
        for item, features, _ in new:
            v = np.asarray(features.get(m, []), dtype=np.float32)
            if v.shape != (x.shape[1],):
                raise DataError(source, f"added item {item!r} has no {x.shape[1]}-wide '{m}' vector (it has "
                                f"{sorted(features)})", "train with the modalities the service's run used (data.modalities)")
            rows.append(v)
        content[m] = np.vstack([x, *rows]) if rows else x
    item_ids = np.asarray([*ds.item_ids.tolist(), *(i for i, _, _ in new)], dtype=str)  # widths: no truncated ids
    item_index = {r: k for k, r in enumerate(item_ids)}
    stray = ~inter["item_id"].isin(item_index)
    if stray.any():
        row = int(np.flatnonzero(stray.to_numpy())[0])
        raise DataError(source, f"stored interaction {row + 1} names item {inter['item_id'].iloc[row]!r}, which neither the "
                        "dataset nor the store holds", "delete that row from the interactions table")
    new_users = sorted(set(inter["user_id"]) - set(ds.user_ids.tolist()))
    user_ids = np.asarray([*ds.user_ids.tolist(), *new_users], dtype=str)
    user_index = {r: k for k, r in enumerate(user_ids)}
    users = inter["user_id"].map(user_index).to_numpy(dtype=np.int64)
    its = inter["item_id"].map(item_index).to_numpy(dtype=np.int64)
    seen = set(zip(ds.users.tolist(), ds.items.tolist()))
    keep = []
    for k, pair in enumerate(zip(users.tolist(), its.tolist())):
        if pair not in seen:
            seen.add(pair)
            keep.append(k)
    users, its = users[keep], its[keep]
    n_new_users = len(new_users)
    return replace(
        ds, name=f"{ds.name}+service", user_ids=user_ids, item_ids=item_ids,
        users=np.concatenate([ds.users, users]), items=np.concatenate([ds.items, its]),
        timestamps=None if ds.timestamps is None else np.concatenate([ds.timestamps, inter["timestamp"].to_numpy()[keep]]),
        labels=None if ds.labels is None else np.concatenate([ds.labels, np.zeros(len(keep), dtype=ds.labels.dtype)]),
        content=content,
        user_content={m: np.vstack([x, np.zeros((n_new_users, x.shape[1]), dtype=x.dtype)]) for m, x in ds.user_content.items()},
        item_texts=None if ds.item_texts is None else [*ds.item_texts, *(t or "" for _, _, t in new)],
        item_images=None if ds.item_images is None else [*ds.item_images, *([""] * len(new))],
        user_reviews=None if ds.user_reviews is None else [*ds.user_reviews, *([""] * n_new_users)],
    )
