"""Small builders shared by the tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from mmgef.models.base import ModelContext, Recommender
from mmgef.models.registry import build_model


def make_model(name: str, params: dict[str, Any], ctx: ModelContext, reg: float = 0.0) -> Recommender:
    """The named model with ``params`` over its defaults."""
    return build_model(name, ctx, reg, **params)


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as a module (the benchmarks are scripts, not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
