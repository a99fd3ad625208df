"""Readers for the three on-disk layouts. Each validates at the boundary and returns a Dataset.

- MMRec atomic: ``<name>.inter`` (tab-separated, columns by header) + per-modality ``.npy``.
- LATTICE json: ``train.json`` / ``val.json`` / ``test.json`` (``{"user": [items]}``).
- Native: ``interactions.csv`` + optional ``items.csv``, ``reviews.csv``, ``features/<m>.npy``.

Duplicate (user, item) rows are collapsed to their first occurrence (a warning says how many),
because implicit-feedback metrics treat an interaction as a set member, not a count.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from mmgef.data.dataset import Dataset
from mmgef.errors import DataError

log = logging.getLogger(__name__)

LABEL_NAMES = {0: "train", 1: "valid", 2: "test"}


def _require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataError(path, f"{what} not found", "check the dataset path and file name in the dataset config")
    return path


def _int_column(df: pd.DataFrame, col: str, path: Path, header_lines: int = 1) -> np.ndarray:
    """Parse a column as non-negative integers, naming the first bad line on failure."""
    values = pd.to_numeric(df[col], errors="coerce")
    bad = values.isna() | (values < 0) | (values != np.floor(values.fillna(0)))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(path, f"column '{col}' has a non-integer or negative value {df[col].iloc[row]!r}",
                        f"ids in '{col}' must be 0-based integers", line=row + 1 + header_lines)
    return values.to_numpy(dtype=np.int64)


def _read_table(path: Path, sep: str, id_cols: tuple[str, str], example: str) -> pd.DataFrame:
    """Read an interaction table as strings; check the id columns and that it has rows."""
    _require_file(path, "interaction file")
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot parse as {'tab' if sep == chr(9) else 'comma'}-separated text ({err})",
                        "write one interaction per line") from None
    missing = [c for c in id_cols if c not in df.columns]
    if missing:
        raise DataError(path, f"header lacks column(s) {missing} (found {list(df.columns)})",
                        f"the first line must name the columns, e.g. '{example}'", line=1)
    if len(df) == 0:
        raise DataError(path, "has a header but no interactions", "add interaction rows")
    return df


def _timestamps(df: pd.DataFrame, path: Path) -> np.ndarray | None:
    if "timestamp" not in df.columns:
        return None
    ts = pd.to_numeric(df["timestamp"], errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(ts).any():
        row = int(np.flatnonzero(np.isnan(ts))[0])
        raise DataError(path, f"timestamp {df['timestamp'].iloc[row]!r} is not a number", "use numeric timestamps", line=row + 2)
    return ts


def _drop_duplicates(users: np.ndarray, items: np.ndarray, path: Path) -> np.ndarray:
    """Return a keep-mask that keeps the first occurrence of each (user, item) pair."""
    key = users * (int(items.max(initial=0)) + 1) + items
    _, first = np.unique(key, return_index=True)
    keep = np.zeros(len(key), dtype=bool)
    keep[first] = True
    if (dropped := len(key) - len(first)) > 0:
        log.warning("%s: %d duplicate (user, item) rows collapsed to their first occurrence", path, dropped)
    return keep


def load_feature(path: Path, n_items: int, order: np.ndarray | None = None) -> np.ndarray:
    """Load an ``[n_items, d]`` feature matrix as float32, rejecting wrong shapes and NaN/inf."""
    _require_file(path, "feature file")
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise DataError(path, f"not a readable .npy array ({err})", "write it with numpy.save") from None
    if x.ndim != 2:
        raise DataError(path, f"expected a 2-D [items, dim] array, got shape {x.shape}", "reshape to [n_items, dim]")
    if order is not None:
        x = x[order]
    if x.shape[0] != n_items:
        raise DataError(path, f"has {x.shape[0]} rows but the dataset has {n_items} items",
                        "row i must describe item i; regenerate the features for this item set")
    x = x.astype(np.float32, copy=False)
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise DataError(path, f"row {row} (item {row}) contains NaN or inf ({int((~finite).sum())} rows affected)",
                        "re-extract those items' features or replace them with zeros")
    return np.ascontiguousarray(x)


# --------------------------------------------------------------------------- MMRec atomic


def read_mmrec(
    root: Path,
    inter_file: str | None = None,
    features: Mapping[str, str] | None = None,
    n_items: int | None = None,
    name: str | None = None,
) -> Dataset:
    root = Path(root)
    if inter_file is None:
        candidates = sorted(root.glob("*.inter"))
        if not candidates:
            raise DataError(root, "no .inter file", "put <name>.inter in the folder or name it in the dataset config")
        inter_file = candidates[0].name
    path = root / inter_file
    df = _read_table(path, "\t", ("userID", "itemID"), "userID<TAB>itemID<TAB>x_label")
    users = _int_column(df, "userID", path)
    items = _int_column(df, "itemID", path)
    labels = None
    if "x_label" in df.columns:
        labels = _int_column(df, "x_label", path)
        bad = ~np.isin(labels, (0, 1, 2))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(path, f"x_label {labels[row]} is not 0 (train), 1 (valid) or 2 (test)",
                            "use 0/1/2 in the x_label column", line=row + 2)
    timestamps = _timestamps(df, path)
    keep = _drop_duplicates(users, items, path)
    n_items = int(items.max()) + 1 if n_items is None else int(n_items)
    if items.max() >= n_items:
        raise DataError(path, f"item id {int(items.max())} is outside the {n_items} declared items", "fix n_items in the dataset config")
    content = {m: load_feature(root / f, n_items) for m, f in (features or {}).items()}
    n_users = int(users.max()) + 1
    return Dataset(
        name=name or path.stem,
        user_ids=np.arange(n_users).astype(str),
        item_ids=np.arange(n_items).astype(str),
        users=users[keep],
        items=items[keep],
        timestamps=None if timestamps is None else timestamps[keep],
        labels=None if labels is None else labels[keep],
        content=content,
        source=str(root),
    )


# --------------------------------------------------------------------------- LATTICE json


def _read_json(path: Path) -> object:
    _require_file(path, "json split file")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(path, f"malformed JSON ({err.msg}, column {err.colno})", "repair or regenerate the file", line=err.lineno) from None


def _read_user_lists(path: Path) -> tuple[np.ndarray, np.ndarray]:
    obj = _read_json(path)
    if not isinstance(obj, dict):
        raise DataError(path, "expected an object {\"user\": [items]}", "write one key per user")
    users, items = [], []
    for key, lst in obj.items():
        if not str(key).isdigit() or not isinstance(lst, list) or not all(isinstance(x, int) and x >= 0 for x in lst):
            raise DataError(path, f"entry for user {key!r} is not a non-negative integer id with a list of integer item ids",
                            "write {\"<user index>\": [<item index>, ...]}")
        users.extend([int(key)] * len(lst))
        items.extend(lst)
    if not users:
        raise DataError(path, "the split is empty", "every split needs at least one interaction")
    return np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)


def read_lattice_json(root: Path, features: Mapping[str, str] | None = None, name: str | None = None) -> Dataset:
    """Read LATTICE's json split. Users in val/test must appear in train (they need embeddings)."""
    root = Path(root)
    parts = [_read_user_lists(root / f) for f in ("train.json", "val.json", "test.json")]
    train_users = set(np.unique(parts[0][0]).tolist())
    for fname, (u, _) in zip(("val.json", "test.json"), parts[1:]):
        unknown = sorted(set(np.unique(u).tolist()) - train_users)
        if unknown:
            raise DataError(root / fname, f"user {unknown[0]} ({len(unknown)} users in all) has no training interactions",
                            "remove those users or add their training interactions to train.json")
    users = np.concatenate([p[0] for p in parts])
    items = np.concatenate([p[1] for p in parts])
    labels = np.concatenate([np.full(len(p[0]), k, dtype=np.int64) for k, p in enumerate(parts)])
    n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
    user_ids, item_ids = np.arange(n_users).astype(str), np.arange(n_items).astype(str)
    for fname, attr in (("user2id.json", "user"), ("item2id.json", "item")):
        if (root / fname).is_file():
            mapping = _read_json(root / fname)
            if not isinstance(mapping, dict) or not all(isinstance(v, int) and v >= 0 for v in mapping.values()):
                raise DataError(root / fname, f"expected an object mapping raw {attr} ids to indices, got "
                                f"{type(mapping).__name__}", f'write {{"<raw id>": <index>, ...}} with indices from 0')
            size = max(mapping.values()) + 1
            need = n_users if attr == "user" else n_items
            if size < need:
                raise DataError(root / fname, f"maps {size} {attr}s but the splits use {need}", "regenerate the id map")
            raw = np.empty(size, dtype=object)
            for k, v in mapping.items():
                raw[v] = str(k)
            if attr == "user":
                n_users, user_ids = size, raw.astype(str)
            else:
                n_items, item_ids = size, raw.astype(str)
    keep = _drop_duplicates(users, items, root / "train.json")
    content = {m: load_feature(root / f, n_items) for m, f in (features or {}).items()}
    return Dataset(name=name or root.name, user_ids=user_ids, item_ids=item_ids, users=users[keep], items=items[keep],
                   labels=labels[keep], content=content, source=str(root))


# --------------------------------------------------------------------------- native layout


def read_native(root: Path, features: Mapping[str, str] | None = None, name: str | None = None) -> Dataset:
    """Read ``interactions.csv`` (user_id, item_id[, timestamp][, split]) and friends.

    Item order is ``items.csv`` row order when it exists, else sorted item ids; feature rows follow
    ``features/item_ids.txt`` when present (reordered to the item order), else the item order.
    """
    root = Path(root)
    path = root / "interactions.csv"
    df = _read_table(path, ",", ("user_id", "item_id"), "user_id,item_id,timestamp")
    empty = (df["user_id"] == "") | (df["item_id"] == "")
    if empty.any():
        raise DataError(path, "empty user_id or item_id", "fill in both ids on every line", line=int(np.flatnonzero(empty)[0]) + 2)
    items_csv = root / "items.csv"
    item_table = pd.read_csv(items_csv, dtype=str, keep_default_na=False) if items_csv.is_file() else None
    if item_table is not None:
        if "item_id" not in item_table.columns:
            raise DataError(items_csv, "header lacks 'item_id'", "name the id column item_id", line=1)
        item_ids = item_table["item_id"].to_numpy(dtype=str)
        if len(set(item_ids)) != len(item_ids):
            raise DataError(items_csv, "item_id values repeat", "give every item one row")
    else:
        item_ids = np.unique(df["item_id"].to_numpy(dtype=str))
    item_index = {r: k for k, r in enumerate(item_ids)}
    unknown = ~df["item_id"].isin(item_index)
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise DataError(path, f"item_id {df['item_id'].iloc[row]!r} is not in items.csv", "add the item to items.csv", line=row + 2)
    user_ids = np.unique(df["user_id"].to_numpy(dtype=str))
    user_index = {r: k for k, r in enumerate(user_ids)}
    users = df["user_id"].map(user_index).to_numpy(dtype=np.int64)
    items = df["item_id"].map(item_index).to_numpy(dtype=np.int64)
    timestamps = _timestamps(df, path)
    labels = None
    if "split" in df.columns:
        names = {"train": 0, "valid": 1, "test": 2}
        bad = ~df["split"].isin(names)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(path, f"split {df['split'].iloc[row]!r} is not train/valid/test", "use train, valid or test", line=row + 2)
        labels = df["split"].map(names).to_numpy(dtype=np.int64)
    keep = _drop_duplicates(users, items, path)
    order = None
    order_file = root / "features" / "item_ids.txt"
    if order_file.is_file():
        feat_ids = order_file.read_text().split("\n")
        feat_ids = [x for x in feat_ids if x != ""]
        pos = {r: k for k, r in enumerate(feat_ids)}
        missing_ids = [str(r) for r in item_ids if r not in pos]
        if missing_ids:
            raise DataError(order_file, f"item {missing_ids[0]!r} ({len(missing_ids)} in all) has no feature row",
                            "re-run `mmgef features` for the full item table")
        order = np.asarray([pos[r] for r in item_ids], dtype=np.int64)
    if features is None:
        features = {p.stem: str(p.relative_to(root)) for p in sorted((root / "features").glob("*.npy"))}
    content = {m: load_feature(root / f, len(item_ids), order) for m, f in features.items()}
    texts = None
    if item_table is not None:
        text_cols = [c for c in ("title", "text", "description") if c in item_table.columns]
        if text_cols:
            texts = item_table[text_cols].agg(" ".join, axis=1).str.strip().tolist()
    reviews = None
    if (root / "reviews.csv").is_file():
        rv = pd.read_csv(root / "reviews.csv", dtype=str, keep_default_na=False)
        if not {"user_id", "text"} <= set(rv.columns):
            raise DataError(root / "reviews.csv", "header must include user_id and text", "rename the columns", line=1)
        joined = rv.groupby("user_id")["text"].agg(" ".join)
        reviews = [joined.get(u, "") for u in user_ids]
    return Dataset(name=name or root.name, user_ids=user_ids, item_ids=item_ids, users=users[keep], items=items[keep],
                   timestamps=None if timestamps is None else timestamps[keep], labels=None if labels is None else labels[keep],
                   content=content, user_content=read_user_features(root / "user_features", user_ids),
                   item_texts=texts, user_reviews=reviews, source=str(root))


def read_user_features(folder: Path, user_ids: np.ndarray) -> dict[str, np.ndarray]:
    """``user_features/<m>.npy`` rows in the order of ``user_features/user_ids.txt`` (written by
    ``mmgef features --id-col user_id``), reordered to the dataset's users."""
    if not folder.is_dir():
        return {}
    ids_file = folder / "user_ids.txt"
    if not ids_file.is_file():
        raise DataError(ids_file, "missing: the row order of the user feature files is unknown",
                        "re-run `mmgef features --id-col user_id --out <data>/user_features`")
    pos = {r: k for k, r in enumerate(x for x in ids_file.read_text().split("\n") if x != "")}
    missing = [str(u) for u in user_ids if str(u) not in pos]
    if missing:
        raise DataError(ids_file, f"user {missing[0]!r} ({len(missing)} in all) has no feature row",
                        "encode the reviews of every user (an empty review gives a zero row with --on-missing zero)")
    order = np.asarray([pos[str(u)] for u in user_ids], dtype=np.int64)
    return {p.stem: load_feature(p, len(user_ids), order) for p in sorted(folder.glob("*.npy"))}


def write_native(ds: Dataset, root: Path) -> None:
    """Write a Dataset in the native layout (used to export the synthetic data)."""
    from mmgef.io import atomic_path, write_npy, write_text

    root = Path(root)
    (root / "features").mkdir(parents=True, exist_ok=True)
    inter = pd.DataFrame({"user_id": ds.user_ids[ds.users], "item_id": ds.item_ids[ds.items]})
    if ds.timestamps is not None:
        inter["timestamp"] = ds.timestamps.astype(np.int64)
    if ds.labels is not None:
        inter["split"] = [LABEL_NAMES[int(x)] for x in ds.labels]
    with atomic_path(root / "interactions.csv") as tmp:
        inter.to_csv(tmp, index=False)
    items = pd.DataFrame({"item_id": ds.item_ids})
    if ds.item_texts is not None:
        items["title"] = ds.item_texts
    with atomic_path(root / "items.csv") as tmp:
        items.to_csv(tmp, index=False)
    if ds.user_reviews is not None:
        with atomic_path(root / "reviews.csv") as tmp:
            pd.DataFrame({"user_id": ds.user_ids, "text": ds.user_reviews}).to_csv(tmp, index=False)
    for m, x in ds.content.items():
        write_npy(root / "features" / f"{m}.npy", x)
    write_text(root / "features" / "item_ids.txt", "\n".join(ds.item_ids) + "\n")
    if ds.user_content:
        (root / "user_features").mkdir(exist_ok=True)
        for m, x in ds.user_content.items():
            write_npy(root / "user_features" / f"{m}.npy", x)
        write_text(root / "user_features" / "user_ids.txt", "\n".join(ds.user_ids) + "\n")
