"""Readers for the three on-disk layouts. Each validates at the boundary and returns a Dataset.

- MMRec atomic: ``<name>.inter`` (tab-separated, columns by header) + per-modality ``.npy``.
- LATTICE json: ``train.json`` / ``val.json`` / ``test.json`` (``{"user": [items]}``).
- Native: ``interactions.csv`` + optional ``items.csv``, ``reviews.csv``, ``features/<m>.npy``.

Duplicate (user, item) rows are collapsed to their first occurrence (a warning says how many),
because implicit-feedback metrics treat an interaction as a set member, not a count.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from mmgef.data.dataset import Dataset
from mmgef.errors import DataError
from mmgef.io import read_text

if TYPE_CHECKING:  # pandas costs 60 MB and 0.2 s at import: loaded by the functions that parse or write tables
    import pandas as pd

UsersWithoutTrain = Literal["error", "drop", "keep"]

log = logging.getLogger(__name__)

LABEL_NAMES = {0: "train", 1: "valid", 2: "test"}


def _require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataError(path, f"{what} not found", "check the dataset path and file name in the dataset config")
    return path


def _int_column(df: pd.DataFrame, col: str, path: Path, header_lines: int = 1) -> np.ndarray:
    """Parse a column as non-negative integers, naming the first bad line on failure."""
    import pandas as pd

    values = pd.to_numeric(df[col], errors="coerce")
    bad = values.isna() | (values < 0) | (values != np.floor(values.fillna(0)))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(path, f"column '{col}' has a non-integer or negative value {df[col].iloc[row]!r}",
                        f"ids in '{col}' must be 0-based integers", line=row + 1 + header_lines)
    return values.to_numpy(dtype=np.int64)


def read_csv(path: Path, sep: str = ",", encoding: str = "utf-8") -> pd.DataFrame:
    """A delimited text file as a table of strings; undecodable, empty or unparsable files are one error."""
    import pandas as pd

    kind = "tab" if sep == "\t" else "comma"
    try:
        return pd.read_csv(io.StringIO(read_text(path, encoding)), sep=sep, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(path, "is empty (not even a header line)", f"write a {kind}-separated header and rows") from None
    except pd.errors.ParserError as err:
        raise DataError(path, f"cannot parse as {kind}-separated text ({str(err).strip()})",
                        "give every line the header's number of fields") from None


def check_id_spaces(df: pd.DataFrame, cols: tuple[str, ...], path: Path, header_lines: int = 1) -> None:
    """Refuse ids with leading or trailing spaces: ' 7' and '7' would silently become two users."""
    for col in cols:
        values = df[col]
        bad = values != values.str.strip()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(path, f"{col} {values.iloc[row]!r} has leading or trailing spaces ({int(bad.sum())} rows)",
                            "remove the spaces around ids (and after the separators)", line=row + 1 + header_lines)


def _read_table(path: Path, sep: str, id_cols: tuple[str, str], example: str, encoding: str = "utf-8") -> pd.DataFrame:
    """Read an interaction table as strings; check the id columns and that it has rows."""
    _require_file(path, "interaction file")
    df = read_csv(path, sep, encoding)
    missing = [c for c in id_cols if c not in df.columns]
    if missing:
        raise DataError(path, f"header lacks column(s) {missing} (found {list(df.columns)})",
                        f"the first line must name the columns, e.g. '{example}'", line=1)
    if len(df) == 0:
        raise DataError(path, "has a header but no interactions", "add interaction rows")
    check_id_spaces(df, id_cols, path)
    return df


def index_space(ids: np.ndarray, size: int | None, path: Path, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer ids → (0-based indices, raw id of each index).

    With a declared ``size`` (rows of a feature matrix, an id map, ``n_items``) the ids *are*
    indices and must lie below it. Without one, the ids present are numbered in ascending order,
    so one stray huge id costs one row, never rows up to its value.
    """
    if size is not None:
        if len(ids) and int(ids.max()) >= size:
            raise DataError(path, f"{what} id {int(ids.max())} is outside the {size} {what}s declared (by the "
                            "feature rows, id map or n_items)", f"use {what} ids below {size}, or fix the declaration")
        return ids, np.arange(size).astype(str)
    raw, index = np.unique(ids, return_inverse=True)
    return index.astype(np.int64), raw.astype(str)


def _feature_rows(root: Path, features: Mapping[str, str]) -> int | None:
    """Rows of the first feature matrix (read from its header only), which fix the item index space."""
    for f in features.values():
        try:
            return int(np.load(root / f, mmap_mode="r", allow_pickle=False).shape[0])
        except (OSError, ValueError, IndexError):
            return None  # load_feature names the problem
    return None


def users_without_train(users: np.ndarray, labels: np.ndarray, policy: UsersWithoutTrain,
                        locate: Callable[[int], tuple[Path, int | None]]) -> np.ndarray:
    """Keep-mask over interactions for users whose every interaction is in validation or test.

    Such a user has no trained embedding, so evaluating them measures initialisation noise.
    ``error`` refuses the data (naming the first such row via ``locate``); ``drop`` removes them
    (with a warning); ``keep`` evaluates them anyway, as a peer toolbox does with its release of the data.
    """
    orphan = ~np.isin(users, users[labels == 0])  # raw ids may be sparse and huge: never index an array by them
    if not orphan.any() or policy == "keep":
        return np.ones(len(users), dtype=bool)
    n = len(np.unique(users[orphan]))
    row = int(np.flatnonzero(orphan)[0])
    path, line = locate(row)
    if policy == "error":
        raise DataError(path, f"user {int(users[row])} ({n} users in all) has interactions only in validation/test, none "
                        "in training", "remove those users, give them training rows, or set users_without_train: drop "
                        "(or keep) in the dataset config", line=line)
    log.warning("%s: dropped %d users that have no training interactions (users_without_train: drop)", path, n)
    return ~orphan


def _timestamps(df: pd.DataFrame, path: Path) -> np.ndarray | None:
    if "timestamp" not in df.columns:
        return None
    import pandas as pd

    ts = pd.to_numeric(df["timestamp"], errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(ts).any():
        row = int(np.flatnonzero(np.isnan(ts))[0])
        raise DataError(path, f"timestamp {df['timestamp'].iloc[row]!r} is not a number", "use numeric timestamps", line=row + 2)
    return ts


def _drop_duplicates(users: np.ndarray, items: np.ndarray, path: Path, labels: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """A keep-mask that keeps the first occurrence of each (user, item) pair, and the overlap count.

    A pair listed in two parts of a given split (train and valid, say) keeps its first part only;
    those rows are counted (the overlap), since they are the usual cause of an empty validation split.
    """
    _, key = np.unique(np.stack([users, items]), axis=1, return_inverse=True)
    key = key.ravel()
    _, first = np.unique(key, return_index=True)
    keep = np.zeros(len(key), dtype=bool)
    keep[first] = True
    overlap = 0 if labels is None else int(((labels != labels[first][key]) & ~keep).sum())
    if (dropped := len(key) - len(first)) > 0:
        log.warning("%s: %d duplicate (user, item) rows collapsed to their first occurrence%s", path, dropped,
                    f", {overlap} of them in another split part than their first (train/valid/test overlap)" if overlap else "")
    return keep, overlap


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
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer) or x.dtype == bool):
        raise DataError(path, f"dtype {x.dtype} is not a real number type", "save real-valued features (float32)")
    x = x.astype(np.float32, copy=False)
    # a row holds NaN or inf exactly when its float64 sum is not finite (float32 values cannot overflow a float64
    # sum); unlike np.isfinite(x) this needs no boolean matrix the size of the features (29 MB at 7k × 4096)
    with np.errstate(invalid="ignore"):  # inf + -inf in one row: NaN, which is what we look for
        finite = np.isfinite(x.sum(axis=1, dtype=np.float64))
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise DataError(path, f"row {row} (item {row}) contains NaN or inf ({int((~finite).sum())} rows affected)",
                        "re-extract those items' features or replace them with zeros")
    return np.ascontiguousarray(x)


JOINT_ENCODERS = ("clip",)  # encoders that embed several modalities into one space (``manifest.json`` "encoder")


def feature_sources(root: Path, features: Mapping[str, str]) -> dict[str, dict]:
    """For each loaded modality whose file ``mmgef features`` wrote, that run's ``manifest.json`` (encoder, model
    path and fingerprint, normalisation), with ``"file_modality"``: the file's own modality name (its stem)."""
    sources = {}
    manifests: dict[Path, dict] = {}  # modalities written together share one manifest: read it once
    for modality, name in features.items():
        path = root / name
        manifest = path.parent / "manifest.json"
        if not manifest.is_file():
            continue
        if manifest not in manifests:
            try:
                meta = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise DataError(manifest, f"not readable JSON ({err})", "re-run mmgef features or delete the manifest") from None
            manifests[manifest] = meta if isinstance(meta, dict) else {}
        meta = manifests[manifest]
        if path.stem in meta.get("modalities", {}):
            sources[modality] = {**meta, "file_modality": path.stem}
    return sources


def joint_encoder_modalities(sources: Mapping[str, dict]) -> frozenset[str]:
    """The modalities a joint encoder wrote (by ``feature_sources``). Early fusion averages only such vectors
    coordinate by coordinate; others live in unrelated spaces."""
    return frozenset(m for m, meta in sources.items() if meta.get("encoder") in JOINT_ENCODERS)


# --------------------------------------------------------------------------- MMRec atomic


def read_mmrec(
    root: Path,
    inter_file: str | None = None,
    features: Mapping[str, str] | None = None,
    n_items: int | None = None,
    name: str | None = None,
    encoding: str = "utf-8",
    orphans: UsersWithoutTrain = "error",
) -> Dataset:
    """MMRec atomic files. Item ids index the feature rows (or ``n_items``); user ids are numbered as found."""
    root = Path(root)
    if inter_file is None:
        candidates = sorted(root.glob("*.inter"))
        if not candidates:
            raise DataError(root, "no .inter file", "put <name>.inter in the folder or name it in the dataset config")
        inter_file = candidates[0].name
    path = root / inter_file
    df = _read_table(path, "\t", ("userID", "itemID"), "userID<TAB>itemID<TAB>x_label", encoding)
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
    keep, overlap = _drop_duplicates(users, items, path, labels)
    if labels is not None:
        keep &= users_without_train(users, labels, orphans, lambda row: (path, row + 2))
    features = features or {}
    items, item_ids = index_space(items[keep], n_items if n_items is not None else _feature_rows(root, features), path, "item")
    users, user_ids = index_space(users[keep], None, path, "user")
    content = {m: load_feature(root / f, len(item_ids)) for m, f in features.items()}
    return Dataset(
        name=name or path.stem,
        user_ids=user_ids,
        item_ids=item_ids,
        users=users,
        items=items,
        timestamps=None if timestamps is None else timestamps[keep],
        labels=None if labels is None else labels[keep],
        content=content,
        source=str(root),
        split_overlap=overlap,
    )


# --------------------------------------------------------------------------- LATTICE json


def _read_json(path: Path, encoding: str = "utf-8") -> object:
    _require_file(path, "json split file")
    try:
        return json.loads(read_text(path, encoding))
    except json.JSONDecodeError as err:
        raise DataError(path, f"malformed JSON ({err.msg}, column {err.colno})", "repair or regenerate the file", line=err.lineno) from None


def _is_index(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _read_user_lists(path: Path, encoding: str) -> tuple[np.ndarray, np.ndarray]:
    obj = _read_json(path, encoding)
    if not isinstance(obj, dict):
        raise DataError(path, "expected an object {\"user\": [items]}", "write one key per user")
    users, items = [], []
    for key, lst in obj.items():
        if not (key.isascii() and key.isdigit()) or not isinstance(lst, list) or not all(_is_index(x) for x in lst):
            raise DataError(path, f"entry for user {key!r} is not a non-negative integer id with a list of integer item ids",
                            "write {\"<user index>\": [<item index>, ...]}")
        users.extend([int(key)] * len(lst))
        items.extend(lst)
    if not users:
        raise DataError(path, "the split is empty", "every split needs at least one interaction")
    return np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)


def _read_id_map(path: Path, what: str, encoding: str) -> np.ndarray:
    """``{"<raw id>": index}`` → the raw id of every index; the indices must be exactly 0..n-1."""
    mapping = _read_json(path, encoding)
    fix = f'write {{"<raw {what} id>": <index>, ...}} with each index 0..n-1 used once'
    if not isinstance(mapping, dict) or not all(_is_index(v) for v in mapping.values()):
        raise DataError(path, f"expected an object mapping raw {what} ids to non-negative integer indices, got "
                        f"{type(mapping).__name__}" + ("" if not isinstance(mapping, dict) else " with other values"), fix)
    if not mapping:
        raise DataError(path, "is empty", fix)
    raw = np.full(max(mapping.values()) + 1, None, dtype=object)
    for k, v in mapping.items():
        if raw[v] is not None:
            raise DataError(path, f"index {v} is given to two raw {what} ids ({raw[v]!r} and {k!r})", fix)
        raw[v] = str(k)
    gaps = np.flatnonzero(raw == None)  # noqa: E711 - element-wise comparison
    if len(gaps):
        raise DataError(path, f"index {int(gaps[0])} is not used ({len(gaps)} gaps below {len(raw)})", fix)
    return raw.astype(str)


def read_lattice_json(root: Path, features: Mapping[str, str] | None = None, name: str | None = None,
                      encoding: str = "utf-8", orphans: UsersWithoutTrain = "error") -> Dataset:
    """Read LATTICE's json split. Users in val/test need training interactions (see ``users_without_train``)."""
    root = Path(root)
    parts = [_read_user_lists(root / f, encoding) for f in ("train.json", "val.json", "test.json")]
    users = np.concatenate([p[0] for p in parts])
    items = np.concatenate([p[1] for p in parts])
    labels = np.concatenate([np.full(len(p[0]), k, dtype=np.int64) for k, p in enumerate(parts)])
    keep, overlap = _drop_duplicates(users, items, root / "train.json", labels)
    parts_files = ("train.json", "val.json", "test.json")
    keep &= users_without_train(users, labels, orphans, lambda row: (root / parts_files[labels[row]], None))
    features = features or {}
    maps = {w: _read_id_map(root / f"{w}2id.json", w, encoding) for w in ("user", "item") if (root / f"{w}2id.json").is_file()}
    item_size = len(maps["item"]) if "item" in maps else _feature_rows(root, features)
    items, item_ids = index_space(items[keep], item_size, root / "train.json", "item")
    users, user_ids = index_space(users[keep], len(maps["user"]) if "user" in maps else None, root / "train.json", "user")
    item_ids = maps.get("item", item_ids)
    user_ids = maps.get("user", user_ids)
    content = {m: load_feature(root / f, len(item_ids)) for m, f in features.items()}
    return Dataset(name=name or root.name, user_ids=user_ids, item_ids=item_ids, users=users, items=items,
                   labels=labels[keep], content=content, source=str(root), split_overlap=overlap)


# --------------------------------------------------------------------------- native layout


def read_native(root: Path, features: Mapping[str, str] | None = None, name: str | None = None,
                encoding: str = "utf-8", orphans: UsersWithoutTrain = "error") -> Dataset:
    """Read ``interactions.csv`` (user_id, item_id[, timestamp][, split]) and friends.

    Item order is ``items.csv`` row order when it exists, else sorted item ids; feature rows follow
    ``features/item_ids.txt`` when present (reordered to the item order), else the item order.
    """
    root = Path(root)
    path = root / "interactions.csv"
    df = _read_table(path, ",", ("user_id", "item_id"), "user_id,item_id,timestamp", encoding)
    empty = (df["user_id"] == "") | (df["item_id"] == "")
    if empty.any():
        raise DataError(path, "empty user_id or item_id", "fill in both ids on every line", line=int(np.flatnonzero(empty)[0]) + 2)
    items_csv = root / "items.csv"
    item_table = read_csv(items_csv, ",", encoding) if items_csv.is_file() else None
    if item_table is not None:
        if "item_id" not in item_table.columns:
            raise DataError(items_csv, "header lacks 'item_id'", "name the id column item_id", line=1)
        check_id_spaces(item_table, ("item_id",), items_csv)
        item_ids = item_table["item_id"].to_numpy(dtype=str)
        dup = item_table["item_id"].duplicated().to_numpy()
        if dup.any():
            row = int(np.flatnonzero(dup)[0])
            raise DataError(items_csv, f"item_id {str(item_ids[row])!r} repeats", "give every item one row", line=row + 2)
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
    keep, overlap = _drop_duplicates(users, items, path, labels)
    if labels is not None:
        keep &= users_without_train(users, labels, orphans, lambda row: (path, row + 2))
    order = None
    order_file = root / "features" / "item_ids.txt"
    if order_file.is_file():
        feat_ids = [x for x in read_text(order_file, encoding).split("\n") if x != ""]
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
    images = None if item_table is None or "image" not in item_table.columns else [image_location(root, x) for x in item_table["image"]]
    reviews = None
    if (root / "reviews.csv").is_file():
        rv = read_csv(root / "reviews.csv", ",", encoding)
        if not {"user_id", "text"} <= set(rv.columns):
            raise DataError(root / "reviews.csv", "header must include user_id and text", "rename the columns", line=1)
        joined = rv.groupby("user_id")["text"].agg(" ".join)
        reviews = [joined.get(u, "") for u in user_ids]
    return Dataset(name=name or root.name, user_ids=user_ids, item_ids=item_ids, users=users[keep], items=items[keep],
                   timestamps=None if timestamps is None else timestamps[keep], labels=None if labels is None else labels[keep],
                   content=content, user_content=read_user_features(root / "user_features", user_ids, encoding),
                   item_texts=texts, item_images=images, user_reviews=reviews, source=str(root), split_overlap=overlap)


def image_location(root: Path, value: str) -> str:
    """An ``items.csv`` image cell as the service finds it: an http(s) URL as given, a path resolved against
    the data folder (the same rule ``mmgef features --image-col`` uses), "" for none."""
    value = str(value).strip()
    if not value or value.startswith(("http://", "https://")):
        return value
    return str((root / value).resolve())


def read_user_features(folder: Path, user_ids: np.ndarray, encoding: str = "utf-8") -> dict[str, np.ndarray]:
    """``user_features/<m>.npy`` rows in the order of ``user_features/user_ids.txt`` (written by
    ``mmgef features --id-col user_id``), reordered to the dataset's users."""
    if not folder.is_dir():
        return {}
    ids_file = folder / "user_ids.txt"
    if not ids_file.is_file():
        raise DataError(ids_file, "missing: the row order of the user feature files is unknown",
                        "re-run `mmgef features --id-col user_id --out <data>/user_features`")
    pos = {r: k for k, r in enumerate(x for x in read_text(ids_file, encoding).split("\n") if x != "")}
    missing = [str(u) for u in user_ids if str(u) not in pos]
    if missing:
        raise DataError(ids_file, f"user {missing[0]!r} ({len(missing)} in all) has no feature row",
                        "encode the reviews of every user (an empty review gives a zero row with --on-missing zero)")
    order = np.asarray([pos[str(u)] for u in user_ids], dtype=np.int64)
    return {p.stem: load_feature(p, len(user_ids), order) for p in sorted(folder.glob("*.npy"))}


def write_native(ds: Dataset, root: Path) -> None:
    """Write a Dataset in the native layout (used to export the synthetic data)."""
    import pandas as pd

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
    if ds.item_images is not None:
        items["image"] = ds.item_images
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
