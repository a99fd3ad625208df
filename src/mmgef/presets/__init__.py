"""Named presets: a model with chosen hyper-parameters, kept as YAML beside this module.

A preset is data, not code: ``mmgef+`` is the ``mmgef`` model with the options that won on
validation (see ``mmgef+.yaml`` for what was chosen, on which data, by which command). Naming a
preset wherever a model is named (``mmgef train --model mmgef+``, an experiment row) resolves to
its model with the preset's values as defaults; ``--set`` still overrides any of them, and the saved
run config holds the resolved model and values, so a run digest never depends on the preset's name. A preset
may also name ``alternatives``: structures an experiment searches on validation like lr (``mmgef+`` against
LATTICE's graph alone), so the model adapts to data where its own parts do not help.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from pydantic import Field

from mmgef.errors import ConfigError
from mmgef.params import MODEL_PARAMS, params_class
from mmgef.schema import Strict, load_yaml, validate

PRESET_DIR = Path(__file__).parent


class Preset(Strict):
    name: str
    model: str = Field(description="the model the preset configures")
    description: str
    params: dict[str, Any] = Field(default_factory=dict, description="hyper-parameters that differ from the model's defaults")
    chosen: str = Field("", description="how the values were chosen: data, protocol, command, report")
    alternatives: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="named structures searched on validation as one hyper-parameter by an "
        "experiment row that asks for them (`alternatives: preset`); each bundle overrides the preset's values")


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


@cache
def load_preset(name: str) -> Preset:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown model or preset '{name}'. Fix: use a model ({', '.join(MODEL_PARAMS)}) or a preset "
                          f"({', '.join(preset_names())}).")
    preset = validate(Preset, {"name": name, **load_yaml(path)}, str(path))
    if preset.model not in MODEL_PARAMS:
        raise ConfigError(f"{path}: model '{preset.model}' is not a model. Fix: use one of {', '.join(MODEL_PARAMS)}.")
    for bundle in [{}, *preset.alternatives.values()]:  # its keys and each alternative's must exist
        validate(params_class(preset.model), {"model": preset.model, **preset.params, **bundle}, str(path))
    return preset


def expand_preset(raw: dict[str, Any]) -> dict[str, Any]:
    """A run config naming a preset → the same config naming its model, preset values under the given params."""
    name = raw.get("model")
    if not isinstance(name, str) or name in MODEL_PARAMS or name not in preset_names():
        return raw
    preset = load_preset(name)
    return {**raw, "model": preset.model, "params": {**preset.params, **(raw.get("params") or {})}}
