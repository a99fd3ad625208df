"""Experiment specs (``configs/experiments/<name>.yaml``) and their expansion into run configs.

A row is one line of a paper table: a model, fixed overrides (``set``), and an optional grid
searched on validation. A row with a ``sweep`` (one parameter, several values) becomes one line
per value, never selected between: that is a sensitivity curve (LATTICE's Figure 4). A row with
``settings_from`` searches nothing and takes another row's chosen settings (an ablation of the
full model). ``$A``/``$B`` in labels and values stand for the dataset's modality names
(``modalities:`` in the spec), so one row such as "MM-GEF $A only" serves every dataset. A row's
``alternatives`` are named bundles of settings searched as one more hyper-parameter: a choice between
structures (which graphs, which terms) that no single key expresses, chosen on validation like lr.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from mmgef.config import RunConfig, TrainConfig, resolve_run_config
from mmgef.errors import ConfigError
from mmgef.presets import load_preset, preset_names
from mmgef.schema import Strict, load_yaml, validate


class RowSpec(Strict):
    label: str
    model: str
    set: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="the row's own parameters searched on validation "
                                       "(crossed with the spec's ``search``)")
    alternatives: dict[str, dict[str, Any]] | Literal["preset"] = Field(
        default_factory=dict, description="named bundles of settings searched as one hyper-parameter ('alternative' in "
        "the chosen point), crossed with the grid; {} = the row's own settings; 'preset': the alternatives of the "
        "preset the row names. A bundle's keys may not also be set, gridded or swept by the row")
    search: bool = Field(True, description="false: the spec's common search does not apply (a model without training, "
                         "such as CB)")
    published_as: str | None = Field(None, description="this row's label in published.csv (default: the label without †)")
    sweep: dict[str, list[Any]] = Field(default_factory=dict, description="one parameter: a line per value, plotted as a curve")
    sweep_search: Literal["each", "once"] = Field(
        "each", description="each: every swept value gets the spec's search on validation; once: the search runs once, "
        "at the model's default value of the swept parameter, and every value keeps the chosen setting (the papers' "
        "sensitivity analyses fix the other hyper-parameters at their optimum)")
    baseline: bool = Field(False, description="a baseline for the paired test against the best one")
    datasets: list[str] | None = Field(None, description="only on these of the spec's datasets (e.g. a content model "
                                       "on data that has no features: leave that dataset out)")
    init_from: str | None = Field(None, description="label of a pre-training row: each seed starts from that row's "
                                  "pretrained.safetensors of the same dataset and seed")
    settings_from: str | None = Field(None, description="label of a searched row: this row searches nothing and takes "
                                      "that row's chosen settings on each dataset (minus the keys it sets itself), as "
                                      "the papers' ablations keep the full model's hyper-parameters — a fifth of a "
                                      "search's runs with 5 seeds and a 3×3 grid")


class ClaimSpec(Strict):
    text: str
    better: str
    worse: str | list[str] = Field(description="a row label, or several: then the strongest of them on each dataset "
                                              "(highest mean test Recall@20, the hardest comparison for ``better``)")


class ExperimentSpec(Strict):
    name: str
    description: str = ""
    datasets: list[str]
    split: str = "given"
    warm_split: str | None = Field(None, description="also run every row on this split and plot the two side by side "
                                   "(cold start vs warm)")
    seeds: int = Field(5, gt=0)
    select_metric: str = "recall@20"
    report_k: list[int] = Field(default_factory=list, description="extra cut-offs with a Recall/NDCG table of their own "
                                "in summary.md (each must be in common.topk)")
    common: dict[str, Any] = Field(default_factory=dict)
    search: dict[str, list[Any]] = Field(default_factory=dict, description="the budget every row gets on validation "
                                         "(e.g. lr × reg), crossed with the row's own grid; a key the row sets or grids "
                                         "itself is left to the row")
    modalities: dict[str, list[str]] = Field(default_factory=dict)
    rows: list[RowSpec]
    claims: list[ClaimSpec] = Field(default_factory=list)
    published: str | None = Field(None, description="CSV of the papers' own numbers (relative to this file), shown "
                                  "beside ours and labelled as measured on other data")
    published_tables: list[str] = Field(default_factory=list, description="which of its tables this spec re-tests, as "
                                        "'<paper> <table>' (e.g. 'MM-GEF Table 1'); empty = every row of the CSV")


def load_spec(path: str | Path) -> ExperimentSpec:
    spec = validate(ExperimentSpec, load_yaml(path), str(path),
                    fix="correct or remove the key (configs/experiments/*.yaml are examples)")
    for row in spec.rows:
        if len(row.sweep) > 1 or set(row.sweep) & set(row.grid):
            raise ConfigError(f"{path}: row '{row.label}': a sweep takes exactly one parameter that is not also in its grid. "
                              "Fix: one row per swept parameter.")
    labels = {row.label: row for row in spec.rows}
    for row in spec.rows:
        if row.init_from and (row.init_from not in labels or labels[row.init_from].init_from):
            raise ConfigError(f"{path}: row '{row.label}': init_from '{row.init_from}' must name a row without init_from "
                              f"(rows: {list(labels)}). Fix: point it at the pre-training row's label.")
        if row.settings_from:
            _check_settings_from(path, row, labels)
        if row.alternatives == "preset":
            row.alternatives = _preset_alternatives(path, row)
        for name, bundle in row.alternatives.items():
            if clash := set(bundle) & {*row.set, *row_grid(spec, row), *row.sweep}:
                raise ConfigError(f"{path}: row '{row.label}': alternative '{name}' sets {sorted(clash)}, which the row also "
                                  "sets, grids or sweeps. Fix: keep each key in one place (the bundle or the row).")
    evaluated = TrainConfig(topk=spec.common.get("topk", TrainConfig().topk)).eval_ks
    if missing_k := [k for k in spec.report_k if k not in evaluated]:
        raise ConfigError(f"{path}: report_k {missing_k} is not evaluated (cut-offs: {evaluated}). "
                          "Fix: add it to common.topk.")
    if spec.published:
        published = (Path(path).parent / spec.published).resolve()
        if not published.exists():
            raise ConfigError(f"{path}: published: {spec.published} does not exist (looked for {published}). "
                              "Fix: point it at configs/published/published.csv or remove the key.")
        spec.published = str(published)
    return spec


def _preset_alternatives(path: str | Path, row: RowSpec) -> dict[str, dict[str, Any]]:
    found = load_preset(row.model).alternatives if row.model in preset_names() else {}
    if not found:
        raise ConfigError(f"{path}: row '{row.label}': alternatives: preset, but '{row.model}' is not a preset with "
                          "alternatives. Fix: name such a preset as the row's model, or list the alternatives in the row.")
    return found


def _check_settings_from(path: str | Path, row: RowSpec, labels: dict[str, RowSpec]) -> None:
    """The row a setting comes from must be searched, cover the same datasets and run no later than this one."""
    source = labels.get(row.settings_from or "")
    problem = (
        f"'{row.settings_from}' is not a row (rows: {list(labels)})" if source is None
        else "it takes settings from another row itself" if source.settings_from
        else "that row is a sweep (one line per value, no single choice)" if source.sweep
        else "that row runs after this one (it starts from pre-training, this row does not)" if source.init_from and not row.init_from
        else "that row does not run on every dataset this one does"
        if source.datasets is not None and (row.datasets is None or not set(row.datasets) <= set(source.datasets))
        else "a row that takes its settings cannot also have a grid or a sweep" if row.grid or row.sweep
        else None
    )
    if problem:
        raise ConfigError(f"{path}: row '{row.label}': settings_from '{row.settings_from}': {problem}. "
                          "Fix: point it at a searched row (no settings_from of its own) on the same datasets and stage.")


def sweep_points(row: RowSpec) -> list[tuple[str, Any] | None]:
    """``(param, value)`` per line of a swept row; ``[None]`` for an ordinary row."""
    return [(k, v) for k, values in row.sweep.items() for v in values] or [None]


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


def row_grid(spec: ExperimentSpec, row: RowSpec) -> dict[str, list[Any]]:
    """The values searched for a row: the spec's common search (unless the row opts out or fixes the key), then
    the row's own grid."""
    common = {k: v for k, v in spec.search.items() if k not in {**row.set, **row.grid, **row.sweep}} if row.search else {}
    return {**common, **row.grid}


ALTERNATIVE = "alternative"  # the grid key that names one of a row's ``alternatives``


def grid_points(spec: ExperimentSpec, row: RowSpec) -> list[dict[str, Any]]:
    grid = {**row_grid(spec, row), **({ALTERNATIVE: list(row.alternatives)} if row.alternatives else {})}
    if not grid:
        return [{}]
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def _set_items(overrides: dict[str, Any]) -> list[str]:
    return [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in overrides.items()]


def alternative_settings(spec: ExperimentSpec, row: RowSpec, name: str | None) -> dict[str, Any]:
    """The settings of the alternative ``name`` of ``row``, or of the row it takes its settings from."""
    if name is None:
        return {}
    source = next((r for r in spec.rows if r.label == row.settings_from), row) if row.settings_from else row
    if name not in source.alternatives:
        raise ConfigError(f"experiment {spec.name}: row '{row.label}' has no alternative '{name}' (its alternatives: "
                          f"{list(source.alternatives)}). Fix: name one of them.")
    return source.alternatives[name]


def run_config(spec: ExperimentSpec, row: RowSpec, dataset: str, split: str, seed: int, point: dict[str, Any]) -> RunConfig:
    names = placeholders(spec, dataset)
    point = dict(point)
    bundle = alternative_settings(spec, row, point.pop(ALTERNATIVE, None))
    overrides = {**spec.common, **substitute(bundle, names), **substitute(row.set, names), **substitute(point, names)}
    return resolve_run_config(model=row.model, data=dataset, split=split, seed=seed, sets=_set_items(overrides))
