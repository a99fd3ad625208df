"""mmgef: multimodal recommendation with graph early fusion (MM-GEF), LATTICE and baselines.

``mmgef.load(run_dir)`` opens a trained run for recommendation; ``mmgef.train(config)`` trains one.
Both are imported on first use, so ``import mmgef.config`` stays light (no torch, no models).
"""

from __future__ import annotations

import os
from typing import Any

# Idle OpenMP threads sleep instead of spinning: with several jobs on few cores, spinning threads waiting
# for a descheduled peer made a training ~200x slower (issue 17). Read by libgomp when torch loads, so it
# applies whenever mmgef is imported before torch; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
