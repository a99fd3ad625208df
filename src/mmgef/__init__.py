"""mmgef: multimodal recommendation with graph early fusion (MM-GEF), LATTICE and baselines.

``mmgef.load(run_dir)`` opens a trained run for recommendation; ``mmgef.train(config)`` trains one.
Both are imported on first use, so ``import mmgef.config`` stays light (no torch, no models).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"
__all__ = ["load", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mmgef import api

        return getattr(api, name)
    raise AttributeError(f"module 'mmgef' has no attribute {name!r}")
