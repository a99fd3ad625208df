"""``mmgef features``: encode every item's text and image into ``DIR/<modality>.npy``.

Outputs (native layout, so ``DIR`` can be a dataset's ``features/`` folder): one float32 (or
float16) matrix per modality in item order, ``item_ids.txt`` (that order), ``manifest.json``
(encoder, model path and fingerprint, dims, counts, sha256 of every output, affected items).
With CLIP, ``fused.npy`` is MM-GEF's early fusion: the mean of the L2-normalised image and text
vectors of the same item (both in CLIP's shared space).

A cache under ``DIR/.cache/<model fingerprint>/<modality>/`` is keyed by the sha256 of each
item's content (the text string, the image bytes), so a re-run encodes only new or changed
items, and a killed run resumes from its last written batch.

Users' reviews (``--id-col user_id``, one row per review): each review is encoded on its own and a
user's vector is the mean of their reviews' vectors (the pre-training paper's intra-modal
aggregation, Eq. 3–4), rather than one encoding of all their reviews joined into one text.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field
from tqdm.auto import tqdm

from mmgef.data.formats import check_id_spaces, read_csv
from mmgef.errors import ConfigError, DataError
from mmgef.features.encoders import Encoder, model_fingerprint
from mmgef.features.fusion import early_fuse, l2_normalize
from mmgef.io import atomic_path, write_json, write_npy, write_text
from mmgef.schema import Strict

log = logging.getLogger(__name__)


class ExtractConfig(Strict):
    items: Path
    out: Path
    id_col: str = Field("item_id", description="the id column; user_id encodes users' review texts (user_features/)")
    encoder: Literal["text", "clip"] = "text"
    model_path: Path | None = None
    text_cols: list[str] = Field(default_factory=lambda: ["title", "text", "description"])
    image_col: str = "image"
    batch_size: int = Field(64, gt=0)
    device: str = "cpu"
    on_missing: Literal["error", "zero", "skip"] = "error"
    dtype: Literal["float32", "float16"] = "float32"
    normalize: bool = True
    ray_address: str | None = Field(None, description="'local' or a cluster address: encode with Ray Data actors")
    ray_actors: int = Field(2, gt=0)
    encoding: str = Field("utf-8", description="text encoding of the items CSV")
    repeated_ids: Literal["error", "mean"] | None = Field(
        None, description="rows sharing an id: error, or mean (each row encoded, the vectors averaged per id); "
                          "None = mean for user_id (one row per review, Eq. 3–4), error otherwise")

    @property
    def averages_rows(self) -> bool:
        return (self.repeated_ids or ("mean" if self.id_col == "user_id" else "error")) == "mean"


@dataclass
class ItemTable:
    ids: list[str]
    texts: list[str] | None
    images: list[Path] | None


@dataclass
class Problems:
    by_modality: dict[str, dict[str, str]] = field(default_factory=dict)  # modality -> item id -> reason

    def add(self, modality: str, item: str, reason: str) -> None:
        self.by_modality.setdefault(modality, {})[item] = reason

    def items(self) -> set[str]:
        return {i for d in self.by_modality.values() for i in d}


def read_items(cfg: ExtractConfig, modalities: tuple[str, ...]) -> ItemTable:
    path = cfg.items
    if not path.is_file():
        raise DataError(path, "items file not found", "pass --items with the CSV of your items")
    df = read_csv(path, ",", cfg.encoding)
    key = cfg.id_col
    if key not in df.columns:
        raise DataError(path, f"header lacks '{key}' (found {list(df.columns)})", f"name the id column {key} (or pass --id-col)", line=1)
    if len(df) == 0:
        raise DataError(path, "has a header but no rows", "add one row per item")
    check_id_spaces(df, (key,), path)
    dup = df[key].duplicated()
    if dup.any() and not cfg.averages_rows:
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(path, f"{key} {df[key].iloc[row]!r} repeats", "give every id one row, or pass "
                        "--repeated-ids mean to average the vectors of an id's rows", line=row + 2)
    texts = images = None
    if "text" in modalities:
        cols = [c for c in cfg.text_cols if c in df.columns]
        if not cols:
            raise DataError(path, f"none of the text columns {cfg.text_cols} exist", "name them with --text-cols", line=1)
        texts = df[cols].agg(lambda r: " ".join(x.strip() for x in r if x.strip()), axis=1).tolist()
    if "image" in modalities:
        if cfg.image_col not in df.columns:
            raise DataError(path, f"no image column '{cfg.image_col}'", "name it with --image-col", line=1)
        images = [(path.parent / p) if p else Path("") for p in df[cfg.image_col]]
    return ItemTable(df[key].tolist(), texts, images)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_keys(table: ItemTable, modality: str, problems: Problems) -> list[str | None]:
    """sha256 of each item's content; None (and a problem) where it is missing or unreadable."""
    if modality == "text" and table.texts is not None:
        return _text_keys(table.ids, table.texts, problems)
    if modality == "image" and table.images is not None:
        return _image_keys(table.ids, table.images, problems)
    raise ConfigError(f"modality '{modality}' was not read from the items file (read: "
                      f"{[m for m, v in (('text', table.texts), ('image', table.images)) if v is not None]}). "
                      "Fix: read the items with the encoder's modalities (plan_items does).")


def _text_keys(ids: list[str], texts: list[str], problems: Problems) -> list[str | None]:
    keys: list[str | None] = []
    for item, text in zip(ids, texts):
        if not text:
            problems.add("text", item, "empty text")
            keys.append(None)
        else:
            keys.append(_sha(text.encode()))
    return keys


def _image_keys(ids: list[str], images: list[Path], problems: Problems) -> list[str | None]:
    from PIL import Image, UnidentifiedImageError

    keys: list[str | None] = []
    for item, p in zip(ids, images):
        if not p.name or not p.is_file():
            problems.add("image", item, f"missing image file {p}")
            keys.append(None)
            continue
        data = p.read_bytes()
        try:
            with Image.open(p) as img:
                img.verify()
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            problems.add("image", item, f"unreadable image {p} ({type(err).__name__})")
            keys.append(None)
            continue
        keys.append(_sha(data))
    return keys


class ShardCache:
    """Content-hash → vector cache, one atomically written .npz shard per encoded batch."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.vectors: dict[str, np.ndarray] = {}
        for shard in sorted(root.glob("shard-*.npz")):
            with np.load(shard) as z:
                for k, v in zip(z["keys"], z["vectors"]):
                    self.vectors[str(k)] = v
        self._next = len(list(root.glob("shard-*.npz")))

    def add(self, keys: list[str], vectors: np.ndarray) -> None:
        with atomic_path(self.root / f"shard-{self._next:06d}.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, keys=np.asarray(keys), vectors=vectors.astype(np.float32))
        self._next += 1
        self.vectors.update(zip(keys, vectors.astype(np.float32)))


def encode_payloads(encoder: Encoder, modality: str, payloads: list[str]) -> np.ndarray:
    """Encode texts, or images given by path — the one code path local and Ray runs share."""
    if modality == "text":
        return encoder.encode_text(payloads)
    from PIL import Image

    return encoder.encode_images([Image.open(p).convert("RGB") for p in payloads])


def _todo(table: ItemTable, modality: str, keys: list[str | None], cache: ShardCache) -> tuple[list[str], list[str]]:
    """Unique uncached content keys and their payloads (text or image path)."""
    todo: dict[str, str] = {}
    for pos, key in enumerate(keys):
        if key is not None and key not in cache.vectors and key not in todo:
            todo[key] = table.texts[pos] if modality == "text" else str(table.images[pos])  # type: ignore[index]
    return list(todo), list(todo.values())


def _encode_local(encoder: Encoder, modality: str, todo: tuple[list[str], list[str]], cache: ShardCache, batch_size: int) -> None:
    keys, payloads = todo
    for start in tqdm(range(0, len(keys), batch_size), desc=f"encoding {modality}", unit="batch", leave=False):
        cache.add(keys[start : start + batch_size], encode_payloads(encoder, modality, payloads[start : start + batch_size]))


class _RayEncoder:
    """A Ray Data actor: loads the encoder once, then encodes batches of payloads."""

    def __init__(self, kind: str, model_path: str, modality: str) -> None:
        from mmgef.features.encoders import load_encoder

        self.encoder = load_encoder(kind, Path(model_path), "cpu")
        self.modality = modality

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vecs = encode_payloads(self.encoder, self.modality, [str(x) for x in batch["payload"]])
        return {"key": batch["key"], "vector": vecs}


def _encode_ray(cfg: ExtractConfig, encoder: Encoder, modality: str, todo: tuple[list[str], list[str]], cache: ShardCache) -> None:
    """Same encoders on Ray Data actors; results stream into the same cache shards (resumable)."""
    import ray

    keys, payloads = todo
    if not keys:
        return
    started = not ray.is_initialized()
    if started:
        ray.init(address=None if cfg.ray_address == "local" else cfg.ray_address, ignore_reinit_error=True,
                 include_dashboard=False, log_to_driver=False)
    try:
        ds = ray.data.from_items([{"key": k, "payload": p} for k, p in zip(keys, payloads)])
        out = ds.map_batches(_RayEncoder, fn_constructor_kwargs={"kind": encoder.kind, "model_path": str(encoder.model_path),
                                                                 "modality": modality},
                             batch_size=cfg.batch_size, concurrency=cfg.ray_actors, batch_format="numpy")
        for batch in tqdm(out.iter_batches(batch_size=cfg.batch_size, batch_format="numpy"), desc=f"encoding {modality} (ray)",
                          total=-(-len(keys) // cfg.batch_size), leave=False):
            cache.add([str(k) for k in batch["key"]], np.asarray(batch["vector"]))
    finally:
        if started:
            ray.shutdown()


def check_out_dir(out: Path) -> None:
    """The output must be a folder: refuse a file before any encoding work is done."""
    if out.exists() and not out.is_dir():
        raise DataError(out, "is a file, but --out must be a folder for <modality>.npy, item_ids.txt and manifest.json",
                        "pass a folder path (e.g. DATA/features)")


@dataclass
class ItemPlan:
    """The items read and checked, with each one's content key: everything decided before a model loads."""

    table: ItemTable
    keys: dict[str, list[str | None]]
    problems: Problems


def plan_items(cfg: ExtractConfig, modalities: tuple[str, ...]) -> ItemPlan:
    """Check the output folder and the items file, hash each item's content, and refuse missing content
    (``on_missing: error``) — cheap, so bad input fails before the encoder spends seconds loading."""
    check_out_dir(cfg.out)
    table = read_items(cfg, modalities)
    problems = Problems()
    keys = {m: content_keys(table, m, problems) for m in modalities}
    bad_rows = sorted((row, m) for m in modalities for row, k in enumerate(keys[m]) if k is None)
    if bad_rows and cfg.on_missing == "error":
        row, m = bad_rows[0]
        item, noun = table.ids[row], "user" if cfg.id_col == "user_id" else "item"
        raise DataError(cfg.items, f"{noun} {item!r}: {problems.by_modality[m][item]} "
                        f"({len(problems.items())} {noun}s affected)",
                        "fix the file, or pass --on-missing zero|skip to continue", line=row + 2)  # header is line 1
    return ItemPlan(table, keys, problems)


def output_rows(ids: list[str], average: bool) -> dict[str, list[int]]:
    """Each output id (first-seen order) and the input rows whose vectors make its vector."""
    if not average:
        return {item: [row] for row, item in enumerate(ids)}
    groups: dict[str, list[int]] = {}
    for row, item in enumerate(ids):
        groups.setdefault(item, []).append(row)
    return groups


def _content_less(groups: dict[str, list[int]], keys: dict[str, list[str | None]]) -> set[str]:
    """Ids none of whose rows has content in some modality (the ones ``on_missing`` decides about)."""
    return {item for item, rows in groups.items() for ks in keys.values() if all(ks[r] is None for r in rows)}


def extract(cfg: ExtractConfig, encoder: Encoder, plan: ItemPlan | None = None) -> dict:
    plan = plan or plan_items(cfg, encoder.modalities)
    table, keys, problems = plan.table, plan.keys, plan.problems
    fingerprint = model_fingerprint(encoder.model_path)
    groups = output_rows(table.ids, cfg.averages_rows)
    empty = _content_less(groups, keys)
    keep = [item for item in groups if not (cfg.on_missing == "skip" and item in empty)]
    matrices: dict[str, np.ndarray] = {}
    stats: dict[str, dict[str, int]] = {}
    for m in encoder.modalities:
        cache = ShardCache(cfg.out / ".cache" / f"{encoder.kind}-{fingerprint}" / m)
        cached_before = sum(1 for k in set(keys[m]) if k is not None and k in cache.vectors)
        todo = _todo(table, m, keys[m], cache)
        if cfg.ray_address:
            _encode_ray(cfg, encoder, m, todo, cache)
        else:
            _encode_local(encoder, m, todo, cache, cfg.batch_size)
        encoded = len(todo[0])
        dim = next(iter(cache.vectors.values())).shape[0] if cache.vectors else 0
        x = np.zeros((len(keep), dim), dtype=np.float32)
        for out_row, item in enumerate(keep):
            vectors = [cache.vectors[k] for k in (keys[m][r] for r in groups[item]) if k is not None]
            if vectors:
                x[out_row] = np.mean(vectors, axis=0)
        matrices[m] = l2_normalize(x) if cfg.normalize else x
        stats[m] = {"encoded": encoded, "cache_hits": cached_before, "dim": dim}
    if {"image", "text"} <= set(matrices):
        matrices["fused"] = early_fuse({m: matrices[m] for m in ("image", "text")})
    cfg.out.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for m, x in matrices.items():
        write_npy(cfg.out / f"{m}.npy", x.astype(cfg.dtype))
        hashes[f"{m}.npy"] = _sha((cfg.out / f"{m}.npy").read_bytes())
    write_text(cfg.out / f"{cfg.id_col}s.txt", "".join(item + "\n" for item in keep))
    manifest = {
        "encoder": encoder.kind,
        "model_path": str(encoder.model_path),
        "model_fingerprint": fingerprint,
        "items_file": str(cfg.items),
        "items": len(table.ids),
        "rows": len(keep),
        "averaged_rows_per_id": cfg.averages_rows,
        "dtype": cfg.dtype,
        "normalized": cfg.normalize,
        "modalities": {m: {"dim": int(x.shape[1]), **stats.get(m, {})} for m, x in matrices.items()},
        "sha256": hashes,
        "on_missing": cfg.on_missing,
        "affected_items": problems.by_modality,
    }
    write_json(cfg.out / "manifest.json", manifest)
    return manifest
