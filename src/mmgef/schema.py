"""The base of every configuration schema: strict pydantic models, YAML loading, one-line errors.

A leaf module (it imports nothing of mmgef but the error types), so the config, the model
hyper-parameters and the dataset specs can all build on it without import cycles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mmgef.errors import ConfigError


class Strict(BaseModel):
    """Base for all config models: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)


def later_field(default: Any, **kwargs: Any) -> Any:
    """A model hyper-parameter added after runs existed: at ``default`` it leaves the run digest unchanged."""
    return Field(default, json_schema_extra={"added_later": True}, **kwargs)


MODEL_KEYS_FIX = "correct or remove the key (see `mmgef models NAME` for a model's keys)"


def _format_validation(err: ValidationError, source: str, skip: set[str] = frozenset(),  # type: ignore[assignment]
                       fix: str = MODEL_KEYS_FIX) -> str:
    parts = []
    for e in err.errors():
        # A discriminated union puts its tag in the location (params.lightgcn.n_layers): drop it.
        loc = [str(x) for x in e["loc"] if str(x) not in skip]
        key = ".".join(loc) or "<root>"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown key '{key}'")
        elif not loc:
            parts.append(msg)
        else:
            parts.append(f"'{key}': {msg}")
    return f"{source}: " + "; ".join(parts) + f". Fix: {fix}."


def validate(model_cls: type[BaseModel], data: Any, source: str, skip: set[str] = frozenset(),  # type: ignore[assignment]
             fix: str = MODEL_KEYS_FIX) -> Any:
    """``model_cls.model_validate(data)``, with any problem turned into one ConfigError line naming ``source``."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation(err, source, skip, fix)) from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found. Fix: check the path.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        where = f"{path}:{line + 1}" if line is not None else str(path)
        raise ConfigError(f"{where}: invalid YAML ({getattr(err, 'problem', err)}). Fix: correct the syntax.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level. Fix: write `key: value` lines.")
    return data
