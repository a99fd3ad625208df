"""Experiment specs (``configs/experiments/<name>.yaml``) and their expansion into run configs.

A row is one line of a paper table: a model, fixed overrides (``set``), and an optional grid
searched on validation. ``$A``/``$B`` in labels and values stand for the dataset's modality
names (``modalities:`` in the spec), so one row such as "MM-GEF $A only" serves every dataset.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from pydantic import Field

from mmgef.config import RunConfig, Strict, load_yaml, resolve_run_config, validate


class RowSpec(Strict):
    label: str
    model: str
    set: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    baseline: bool = Field(False, description="a baseline for the paired test against the best one")


class ClaimSpec(Strict):
    text: str
    better: str
    worse: str


class ExperimentSpec(Strict):
    name: str
    description: str = ""
    datasets: list[str]
    split: str = "given"
    seeds: int = Field(5, gt=0)
    select_metric: str = "recall@20"
    common: dict[str, Any] = Field(default_factory=dict)
    modalities: dict[str, list[str]] = Field(default_factory=dict)
    rows: list[RowSpec]
    claims: list[ClaimSpec] = Field(default_factory=list)


def load_spec(path: str | Path) -> ExperimentSpec:
    return validate(ExperimentSpec, load_yaml(path), str(path))


def substitute(value: Any, names: dict[str, str]) -> Any:
    """Replace $A, $B … (dataset modality placeholders) inside strings, lists and dicts."""
    if isinstance(value, str):
        for key, name in names.items():
            value = value.replace(f"${key}", name)
        return value
    if isinstance(value, list):
        return [substitute(v, names) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, names) for k, v in value.items()}
    return value


def placeholders(spec: ExperimentSpec, dataset: str) -> dict[str, str]:
    return {chr(ord("A") + i): m for i, m in enumerate(spec.modalities.get(dataset, []))}


def grid_points(row: RowSpec) -> list[dict[str, Any]]:
    if not row.grid:
        return [{}]
    keys = list(row.grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(row.grid[k] for k in keys))]


def _set_items(overrides: dict[str, Any]) -> list[str]:
    return [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in overrides.items()]


def run_config(spec: ExperimentSpec, row: RowSpec, dataset: str, seed: int, point: dict[str, Any]) -> RunConfig:
    names = placeholders(spec, dataset)
    overrides = {**spec.common, **substitute(row.set, names), **substitute(point, names)}
    return resolve_run_config(model=row.model, data=dataset, split=spec.split, seed=seed, sets=_set_items(overrides))
