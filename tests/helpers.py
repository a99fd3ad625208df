"""Small builders shared by the tests."""

from __future__ import annotations

from typing import Any

from mmgef.models.base import ModelContext, Recommender
from mmgef.models.registry import build_model


def make_model(name: str, params: dict[str, Any], ctx: ModelContext, reg: float = 0.0) -> Recommender:
    """The named model with ``params`` over its defaults."""
    return build_model(name, ctx, reg, **params)
