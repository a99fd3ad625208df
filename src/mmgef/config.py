"""Configuration as data: pydantic models filled from YAML and ``--set key=value`` overrides.

Every model forbids unknown keys, so a typo is an error naming the key instead of a silently
ignored setting. Defaults follow the papers (embedding 64, batch 2048, lr 1e-3, reg 1e-4).
Model hyper-parameters come from ``mmgef.params``; this module imports no model code.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from mmgef.errors import ConfigError
from mmgef.params import (
    MODEL_PARAMS,
    ModelParams,
    later_defaults,
    param_keys,
    params_class,
)
from mmgef.presets import expand_preset
from mmgef.schema import Strict, load_yaml, validate

SplitKind = Literal["auto", "given", "random", "temporal", "cold"]


class DataConfig(Strict):
    name: str = Field("synthetic", description="dataset config name in configs/datasets/ or a directory")
    split: SplitKind = Field("auto", description="auto = the given split when the data has one, else random")
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    cold_ratio: float = Field(0.2, gt=0.0, lt=1.0)
    cold_eval: Literal["all", "cold_only"] = Field(
        "all", description="cold split: rank every item (MM-GEF §4.5, 'the test set contains all items'), or only the "
                           "part's cold items (warm items never compete with them; an easier, older protocol of ours)")
    cold_targets: Literal["new", "new+warm"] = Field(
        "new", description="cold split: validation and test hold only the held-out new items' interactions (the papers), "
                           "or also a per-user 10% + 10% of the warm interactions, so showing new items costs warm hits")
    cold_ids: Literal["trained", "none"] = Field(
        "trained", description="cold split: cold items keep an ID embedding, trained only as sampled negatives (the papers), "
                               "or have none (zero, never trained): content alone places them, as it places an item "
                               "added to `mmgef serve`")
    modalities: list[str] | None = Field(None, description="content modalities to load; None = the dataset's defaults")
    encoding: str = Field("utf-8", description="text encoding of the dataset's files (e.g. latin-1)")
    location: str | None = Field(None, description="where the data was read (absolute; written by `mmgef train`)")
    fingerprint: dict[str, str] | None = Field(None, description="hashes of the interactions, id lists and features the "
                                                                 "run was trained on (written by `mmgef train`)")

    @field_validator("ratios")
    @classmethod
    def _ratios_sum_to_one(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(r < 0 for r in v) or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"split ratios must be non-negative and sum to 1, got {v}")
        return v


class TrainConfig(Strict):
    epochs: int = Field(1000, ge=1, description="maximum epochs; early stopping usually ends sooner")
    batch_size: int = Field(2048, gt=0, description="pairs per optimizer step (per worker when workers > 1)")
    workers: int = Field(1, ge=1, description="data-parallel worker processes (torch.distributed): each step takes "
                                              "workers × batch_size pairs, one slice per worker, gradients averaged")
    steps_per_epoch: int | None = Field(
        None, gt=0, description="at most this many optimizer steps (full propagations) per epoch: the batch grows to "
                                "interactions / steps, so an epoch costs O(interactions), not O(interactions²)")
    lr: float = Field(1e-3, gt=0)
    reg: float = Field(1e-4, ge=0, description="L2 weight on the batch's ego embeddings")
    eval_every: int = Field(1, gt=0)
    patience: int = Field(20, gt=0, description="evaluations without improvement before stopping")
    stop_metric: str = "recall@20"
    topk: list[int] = Field(default_factory=lambda: [10, 20, 40, 50])
    eval_batch_size: int = Field(1024, gt=0)
    eval_item_block: int = Field(65_536, gt=0, description="items scored at once; memory is O(eval_batch_size × (block + K))")
    eval_users: int | None = Field(None, gt=0, description="evaluate a seeded sample of this many users (very large data)")
    eval_mask: Literal["train+valid", "train"] = Field(
        "train+valid", description="items masked when ranking for test: train+valid (ours), or train only (MMRec's protocol)")
    device: str = "cpu"
    threads: int | None = Field(None, gt=0, description="torch CPU threads; unset: the cores other jobs leave free")
    reuse_freed_memory: bool = Field(
        False, description="glibc: keep the training loop's freed tensors in the heap for the next step instead of "
                           "unmapping them: 15-33% faster epochs above ~100k items, at a higher peak RSS "
                           "(benchmarks/results/scale/allocator.md); the results do not change")
    gather_precision: Literal["float32", "bfloat16"] = Field(
        "float32", description="bfloat16: the constant graphs' sparse products (user-item graph, E^c, frozen kNN graphs) "
                               "read their dense operand rounded to bfloat16 and sum in float32: half the bytes per "
                               "random gather, a faster epoch past the cache (README, Scale); float32: exact")
    sampler: Literal["uniform", "mixgcf"] = Field("uniform", description="mixgcf: hard negatives mixed from candidates")
    n_candidates: int = Field(64, gt=0, description="MixGCF candidate negatives per pair (M; 64 in the paper)")
    negatives: Literal["all", "interacted"] = Field(
        "all", description="items negatives are sampled from: all (the papers), or only items with training "
                           "interactions (an item nobody has seen yet is new, not disliked: cold-start training)")
    init: str | None = Field(None, description="pretrained.safetensors (from `mmgef pretrain`) to initialise the ID embeddings")
    progress: bool = True

    @field_validator("topk")
    @classmethod
    def _positive_k(cls, v: list[int]) -> list[int]:
        if not v or any(k <= 0 for k in v):
            raise ValueError(f"every K must be a positive integer, got {v}")
        return sorted(set(v))

    def batch_for(self, n_pairs: int) -> int:
        """The pairs of one optimizer step over ``n_pairs`` training pairs: ``batch_size`` per worker, grown to
        honour ``steps_per_epoch``."""
        batch = self.batch_size * self.workers
        return batch if self.steps_per_epoch is None else max(batch, -(-n_pairs // self.steps_per_epoch))

    @property
    def eval_ks(self) -> list[int]:
        """The reported cut-offs plus 20, which early stopping and the papers' tables use."""
        return sorted(set(self.topk) | {20})

    @model_validator(mode="after")
    def _known_stop_metric(self) -> TrainConfig:
        from mmgef.eval.metrics import METRICS

        name, _, k = self.stop_metric.partition("@")
        if name not in METRICS or not k.isdigit() or int(k) not in self.eval_ks:
            raise ValueError(f"stop_metric '{self.stop_metric}' is not computed; use <{'|'.join(METRICS)}>@K with K in {self.eval_ks}")
        return self


class RunConfig(Strict):
    model: str = Field(description="model name (see `mmgef models`)")
    seed: int = Field(0, ge=0, description="seeds the split, the initialisation and every epoch's sampling")
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    params: ModelParams = Field(description="the model's hyper-parameters")

    @model_validator(mode="before")
    @classmethod
    def _params_carry_the_model(cls, raw: Any) -> Any:
        """``params`` is a union tagged by ``model``: copy the run's model name into it (once, here)."""
        if not isinstance(raw, dict):
            return raw
        raw = dict(raw)
        name = raw.get("model")
        if name is not None and name not in MODEL_PARAMS:
            raise ValueError(f"unknown model '{name}'; use one of {', '.join(MODEL_PARAMS)}")
        params = raw.get("params")
        if params is None or isinstance(params, dict):
            params = dict(params or {})
            if params.setdefault("model", name) != name:
                raise ValueError(f"params.model '{params['model']}' differs from model '{name}'")
            raw["params"] = params
        return raw

    @model_validator(mode="after")
    def _cold_options_need_the_cold_split(self) -> RunConfig:
        for key, default in (("cold_ids", "trained"), ("cold_targets", "new")):
            if getattr(self.data, key) != default and self.data.split != "cold":
                raise ValueError(f"{key}={getattr(self.data, key)} applies to the cold split only; add split=cold or drop it")
        if self.data.cold_targets != "new" and self.data.cold_eval != "all":
            raise ValueError("cold_targets=new+warm puts warm items in the targets, so every item must be ranked; "
                             "drop cold_eval=cold_only")
        return self

    @model_validator(mode="after")
    def _sampler_fits_the_model(self) -> RunConfig:
        if self.train.sampler == "mixgcf" and not self.params.layered:
            raise ValueError(f"MixGCF mixes per-layer embeddings, and model '{self.model}' has no propagation "
                             "layers that make its final vectors; use sampler uniform, or lightgcn / ngcf")
        return self

    def params_dict(self) -> dict[str, Any]:
        """The hyper-parameters as plain data, without the ``model`` tag."""
        return self.params.model_dump(mode="json", exclude={"model"})

    def dump(self) -> dict[str, Any]:
        """The config as plain data, as ``config.yaml`` holds it."""
        out = self.model_dump(mode="json")
        out["params"] = self.params_dict()
        return out

    def digest(self, stopping: bool = True) -> str:
        """Stable hash of the resolved config (identifies a run for resume checks and reuse).

        ``stopping=False`` also leaves out when training stops (``epochs``, ``patience``): a
        checkpoint is compatible with a config that differs only there, so a finished run can be
        extended with ``--resume --set epochs=N``.

        Settings that cannot change the run are left out: the progress bar, the device, the thread count,
        the allocator setting, the evaluation's item block, where the data was found and its fingerprint
        (checked separately when a run is loaded), MixGCF's candidate count under uniform sampling, an
        absent initialisation. (The last two also keep the digests of runs made before those settings
        existed.) An initialisation file counts by its content, not its path: the same pre-trained
        weights reached by a relative path, an absolute one or from a moved folder are the same run.
        Hyper-parameters declared with ``later_field`` drop out while at their default, so runs made
        before they existed stay reusable.
        """
        dumped = self.dump()
        runtime = ("progress", "device", "threads", "reuse_freed_memory", "eval_item_block")
        for key in (*runtime, *(() if stopping else ("epochs", "patience"))):
            dumped["train"].pop(key)
        for key in ("eval_users", "steps_per_epoch"):
            if dumped["train"][key] is None:
                dumped["train"].pop(key)
        if self.train.gather_precision == "float32":  # exact products: every run before the setting existed
            dumped["train"].pop("gather_precision")
        if self.train.workers == 1:  # one worker trains as every run before the setting existed
            dumped["train"].pop("workers")
        for key in ("location", "fingerprint"):
            dumped["data"].pop(key)
        if self.data.encoding == "utf-8":  # the defaults leave the digest of runs made before these settings
            dumped["data"].pop("encoding")
        if self.data.split != "cold":  # only the cold split reads it (every cold run's digest names its protocol)
            dumped["data"].pop("cold_eval")
        if self.data.cold_ids == "trained":
            dumped["data"].pop("cold_ids")
        if self.data.cold_targets == "new":
            dumped["data"].pop("cold_targets")
        if self.train.eval_mask == "train+valid":
            dumped["train"].pop("eval_mask")
        if self.train.sampler != "mixgcf":
            dumped["train"].pop("n_candidates")
        if self.train.negatives == "all":
            dumped["train"].pop("negatives")
        if self.train.init is None:
            dumped["train"].pop("init")
        else:
            dumped["train"]["init"] = _content_id(self.train.init)
        later = later_defaults(type(self.params))
        dumped["params"] = {k: v for k, v in dumped["params"].items() if k not in later or v != later[k]}
        blob = json.dumps(dumped, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _content_id(path: str) -> str:
    """``sha256:<hex>`` of a file's bytes (cached while its size and mtime hold); the resolved path if it is absent."""
    p = Path(path).resolve()
    try:
        stat = p.stat()
    except OSError:
        return str(p)
    return _file_sha256(str(p), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:  # size and mtime key the cache only
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def parse_set(items: list[str]) -> list[tuple[str, Any]]:
    """Parse ``key=value`` strings; values are YAML (``[text]``, ``false``, ``1e-3``)."""
    out = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value. Fix: e.g. --set lr=0.001")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw else raw
        except yaml.YAMLError:
            value = raw
        out.append((key.strip(), value))
    return out


def apply_overrides(raw: dict[str, Any], overrides: list[tuple[str, Any]], params_fields: set[str]) -> dict[str, Any]:
    """Route each override to its section: ``n_layers`` → params, ``lr`` → train, ``split`` → data.

    A key known to several sections goes to the first in that order (``modalities`` → the model);
    dotted keys (``data.modalities``) are taken literally. A key found nowhere is an error naming it.
    """
    raw = json.loads(json.dumps(raw))  # deep copy of plain data
    sections = {"params": params_fields, "train": set(TrainConfig.model_fields), "data": set(DataConfig.model_fields)}
    for key, value in overrides:
        if "." in key:
            section, sub = key.split(".", 1)
            if section not in sections:
                raise ConfigError(f"--set {key}: unknown section '{section}'. Fix: use params., train. or data.")
            raw.setdefault(section, {})[sub] = value
            continue
        if key in ("seed", "model"):
            raw[key] = value
            continue
        owners = [name for name, fields in sections.items() if key in fields]
        if not owners:
            known = sorted(sections["train"] | sections["data"] | params_fields | {"seed"})
            raise ConfigError(f"--set {key}: unknown key '{key}'. Fix: use one of {', '.join(known)}.")
        raw.setdefault(owners[0], {})[key] = value
    return raw


def resolve_run_config(
    config_file: str | Path | None = None,
    model: str | None = None,
    data: str | None = None,
    split: str | None = None,
    seed: int | None = None,
    sets: list[str] | None = None,
) -> RunConfig:
    """Merge a YAML run config, command-line options and ``--set`` overrides into one RunConfig.

    The model's params schema fills every hyper-parameter not given, so the saved ``config.yaml``
    is fully resolved. A dataset given as a directory is recorded by its absolute path, so the run
    opens from any working directory.
    """
    raw: dict[str, Any] = load_yaml(config_file) if config_file else {}
    source = str(config_file) if config_file else "command line"
    for section in ("data", "train", "params"):
        if raw.get(section) is None:
            raw.pop(section, None)
        elif not isinstance(raw[section], dict):
            raise ConfigError(f"{source}: '{section}' must be a mapping of keys to values, got {type(raw[section]).__name__}. "
                              f"Fix: write `{section}:` followed by indented `key: value` lines.")
    if model:
        raw["model"] = model
    if "model" not in raw:
        raise ConfigError(f"{source}: no model given. Fix: pass --model NAME or set `model:` in the config.")
    raw = expand_preset(raw)
    keys = param_keys(params_class(str(raw["model"])))
    if data:
        raw.setdefault("data", {})["name"] = data
    if split:
        raw.setdefault("data", {})["split"] = split
    if seed is not None:
        raw["seed"] = seed
    raw = apply_overrides(raw, parse_set(sets or []), keys)
    return run_config_from(raw, source)


def run_config_from(raw: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate plain config data (as ``config.yaml`` holds it); a dataset directory becomes absolute."""
    cfg: RunConfig = validate(RunConfig, expand_preset(raw), source, skip=set(MODEL_PARAMS))
    if Path(cfg.data.name).is_dir():
        cfg.data.name = str(Path(cfg.data.name).resolve())
    return cfg


def save_run_config(cfg: RunConfig, path: str | Path) -> None:
    from mmgef.io import write_text

    write_text(path, yaml.safe_dump(cfg.dump(), sort_keys=False, allow_unicode=True))


def load_run_config(path: str | Path) -> RunConfig:
    return validate(RunConfig, load_yaml(path), str(path), skip=set(MODEL_PARAMS))
