"""Explicit model registry: name → model class. Hyper-parameter schemas live in ``mmgef.params``."""

from __future__ import annotations

from mmgef.models.base import ModelContext, Recommender
from mmgef.models.content import ContentBased, ContentInit
from mmgef.models.freedom import Freedom
from mmgef.models.grcn import GRCN
from mmgef.models.lattice import Lattice
from mmgef.models.lightgcn import LightGCN
from mmgef.models.mf import MF
from mmgef.models.mmgcn import MMGCN
from mmgef.models.mmgef import MMGEF
from mmgef.models.ngcf import NGCF
from mmgef.models.pretrain import ContrastivePretrain
from mmgef.models.vbpr import VBPR
from mmgef.params import ModelParamsBase, params_class
from mmgef.schema import validate

MODELS: dict[str, type[Recommender]] = {
    "mf": MF,
    "lightgcn": LightGCN,
    "ngcf": NGCF,
    "vbpr": VBPR,
    "cb": ContentBased,
    "cinit": ContentInit,
    "lattice": Lattice,
    "mmgef": MMGEF,
    "mmgcn": MMGCN,
    "grcn": GRCN,
    "freedom": Freedom,
    "mcpt": ContrastivePretrain,
}


def build_model(params: ModelParamsBase | str, ctx: ModelContext, reg: float = 0.0, **overrides: object) -> Recommender:
    """The model ``params`` describe (or the named model with its defaults and ``overrides``)."""
    if isinstance(params, str):
        params = validate(params_class(params), dict(overrides), f"model '{params}'")
    model = MODELS[params.model](params, ctx, reg)  # type: ignore[attr-defined]
    if params.new_item_scores != "raw":
        model.standardise_new_item_scores(ctx.train, own_items=params.new_item_scores == "standardised")
    return model
