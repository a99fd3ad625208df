"""mmgef: multimodal recommendation with graph early fusion (MM-GEF), LATTICE and baselines.

``mmgef.load(run_dir)`` opens a trained run for recommendation; ``mmgef.train(config)`` trains one.
Both are imported on first use, so ``import mmgef.config`` stays light (no torch, no models).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"
__all__ = ["load", "train"]


def load(run_dir: Any) -> Any:
    """Open a finished run for recommendation (``mmgef.api.TrainedModel``)."""
    from mmgef import api

    return api.load(run_dir)


def train(config: Any, out: Any = None, resume: bool = False) -> Any:
    """Train one model (a RunConfig, a dict like ``config.yaml`` or a YAML path); returns the run directory."""
    from mmgef import api

    return api.train(config, out, resume)
