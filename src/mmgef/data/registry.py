"""Named dataset configs (``configs/datasets/<name>.yaml``) and layout detection for directories."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field

from mmgef.data import formats
from mmgef.data.dataset import Dataset
from mmgef.data.service_data import is_store, load_with_store
from mmgef.data.synthetic import SyntheticConfig, generate
from mmgef.errors import ConfigError, DataError
from mmgef.schema import Strict, load_yaml, validate


class DatasetSpec(Strict):
    name: str
    format: Literal["mmrec", "lattice_json", "native", "synthetic"]
    path: str | None = Field(None, description="relative paths resolve against the project root")
    interactions: str | None = None
    features: dict[str, str] = Field(default_factory=dict)
    default_modalities: list[str] | None = None
    n_items: int | None = None
    synthetic: SyntheticConfig | None = None
    users_without_train: formats.UsersWithoutTrain = Field(
        "error", description="users whose every interaction is in valid/test: error, drop them, or keep (evaluate) them")
    description: str = ""


def project_root() -> Path:
    """The folder holding ``configs/``: $MMGEF_ROOT, the working directory, or the source checkout."""
    if env := os.environ.get("MMGEF_ROOT"):
        return Path(env)
    for cand in (Path.cwd(), Path(__file__).resolve().parents[3]):
        if (cand / "configs" / "datasets").is_dir():
            return cand
    return Path.cwd()


def dataset_config_dir() -> Path:
    return project_root() / "configs" / "datasets"


def available_datasets() -> list[str]:
    return sorted(p.stem for p in dataset_config_dir().glob("*.yaml"))


def spec_location(name_or_path: str) -> str:
    """Where a dataset is, absolute: its directory, or its config file for a named dataset.

    A run records this, so it loads the same data from any working directory.
    """
    as_path = Path(name_or_path)
    if as_path.is_dir() or as_path.suffix in (".yaml", ".yml") or is_store(name_or_path):
        return str(as_path.resolve())
    cfg_file = dataset_config_dir() / f"{name_or_path}.yaml"
    return str(cfg_file.resolve()) if cfg_file.is_file() else name_or_path


def resolve_spec(name_or_path: str) -> DatasetSpec:
    """A dataset config name (``lastfm2k``), a dataset config file, or a directory whose layout is detected."""
    as_path = Path(name_or_path)
    if as_path.is_dir():
        return detect_layout(as_path)
    cfg_file = as_path if as_path.suffix in (".yaml", ".yml") else dataset_config_dir() / f"{name_or_path}.yaml"
    if cfg_file.is_file():
        spec: DatasetSpec = validate(DatasetSpec, load_yaml(cfg_file), str(cfg_file),
                                     fix="correct or remove the key (configs/datasets/*.yaml are examples)")
        if spec.path is not None and not Path(spec.path).is_absolute():
            spec.path = str((project_root() / spec.path).resolve())
        return spec
    raise ConfigError(
        f"dataset '{name_or_path}': neither a directory nor a config in {dataset_config_dir()}. "
        f"Fix: use a data directory or one of {', '.join(available_datasets()) or '(none found)'}."
    )


def detect_layout(root: Path) -> DatasetSpec:
    if (root / "interactions.csv").is_file():
        fmt = "native"
    elif (root / "train.json").is_file():
        fmt = "lattice_json"
    elif any(root.glob("*.inter")):
        fmt = "mmrec"
    else:
        raise DataError(root, "no known layout (no interactions.csv, train.json or *.inter)",
                        "use the native, LATTICE-json or MMRec layout (see README)")
    features = {}
    if fmt in ("mmrec", "lattice_json"):
        features = {p.stem.removesuffix("_feat"): p.name for p in sorted(root.glob("*.npy"))}
    elif fmt == "native":
        features = {p.stem: str(p.relative_to(root)) for p in sorted((root / "features").glob("*.npy"))}
    return DatasetSpec(name=root.name, format=fmt, path=str(root), features=features)


def load_dataset(name_or_path: str, modalities: list[str] | None = None, encoding: str = "utf-8") -> Dataset:
    """Load a dataset with the requested content modalities (None = the spec's defaults).

    ``encoding`` decodes its text files (CSV, id lists, json); undecodable bytes are an error naming the line.
    A service store (``RUN/service.sqlite``) gives its run's dataset with the service's items and interactions."""
    if is_store(name_or_path):
        return load_with_store(Path(name_or_path), lambda data: load_dataset(data, modalities, encoding))
    spec = resolve_spec(name_or_path)
    if spec.format == "synthetic":
        ds = generate(spec.synthetic or SyntheticConfig())
        available = list(ds.content)
    else:
        available = list(spec.features)
    wanted = modalities if modalities is not None else (spec.default_modalities or available)
    unknown = [m for m in wanted if m not in available]
    if unknown:
        raise ConfigError(f"dataset '{spec.name}' has no modality {unknown}; available: {available}. "
                          "Fix: choose modalities from that list (data.modalities).")
    if spec.format == "synthetic":
        ds.content = {m: ds.content[m] for m in wanted}
        return ds
    root = Path(spec.path or "")
    if not root.is_dir():
        raise DataError(root, "dataset directory not found", f"check 'path' in the '{spec.name}' dataset config")
    feats = {m: spec.features[m] for m in wanted}
    if spec.format == "mmrec":
        ds = formats.read_mmrec(root, spec.interactions, feats, spec.n_items, spec.name, encoding, spec.users_without_train)
    elif spec.format == "lattice_json":
        ds = formats.read_lattice_json(root, feats, spec.name, encoding, spec.users_without_train)
    else:
        ds = formats.read_native(root, feats, spec.name, encoding, spec.users_without_train)
    ds.feature_sources = formats.feature_sources(root, feats)
    ds.joint_modalities = formats.joint_encoder_modalities(ds.feature_sources)
    return ds
