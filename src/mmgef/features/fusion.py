"""Combine per-modality item matrices: selection, L2 normalisation, concatenation, early fusion."""

from __future__ import annotations

import numpy as np

from mmgef.errors import ConfigError


def select(content: dict[str, np.ndarray], modalities: list[str] | None, model: str) -> dict[str, np.ndarray]:
    """The requested modalities (None = all loaded), or a clear error for one the data lacks."""
    if modalities is None:
        modalities = list(content)
    missing = [m for m in modalities if m not in content]
    if missing:
        raise ConfigError(f"model '{model}' asks for modality {missing} but the dataset has {list(content)}. "
                          "Fix: set params.modalities to available ones or load them with data.modalities.")
    if not modalities:
        raise ConfigError(f"model '{model}' needs at least one content modality; the dataset has none loaded. "
                          "Fix: use a dataset with features (e.g. lastfm2k, tiktok, synthetic).")
    return {m: content[m] for m in modalities}


def l2_normalize(x: np.ndarray, inplace: bool = False) -> np.ndarray:
    """Row-wise unit length; all-zero rows stay zero. (Row norms by einsum: np.linalg.norm would first
    build x², a second matrix the size of the features.) ``inplace`` overwrites ``x`` when it is a
    writable floating array, instead of returning a new one."""
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    inplace = inplace and x.flags.writeable and np.issubdtype(x.dtype, np.floating)
    return np.divide(x, norm, out=x if inplace else np.zeros_like(x), where=norm > 0)


def concat(content: dict[str, np.ndarray], normalize: bool = True) -> np.ndarray:
    """Concatenate modalities; with ``normalize`` each block is unit length so none dominates."""
    blocks = [l2_normalize(x) if normalize else x for x in content.values()]
    return np.concatenate(blocks, axis=1).astype(np.float32)


def early_fuse(content: dict[str, np.ndarray]) -> np.ndarray:
    """MM-GEF's early fusion: the mean of the L2-normalised modality vectors (all of one width).

    Used by ``mmgef features`` (``fused.npy`` from CLIP image + text) and by the MM-GEF model.
    """
    widths = {x.shape[1] for x in content.values()}
    if len(widths) != 1:
        raise ConfigError(f"early fusion averages vectors of one width; got {sorted(widths)} for {list(content)}. "
                          "Fix: fuse modalities from one encoder (e.g. CLIP image + text).")
    return np.mean(np.stack([l2_normalize(x) for x in content.values()]), axis=0).astype(np.float32)


def shared_fusion(fusion: str, content: dict[str, np.ndarray], joint: frozenset[str]) -> bool:
    """Whether early fusion averages the raw vectors (one shared space) or projects each modality first."""
    if len(content) == 1:
        return True
    if fusion == "per_modality":
        return False
    widths = {x.shape[1] for x in content.values()}
    if fusion == "shared":
        if len(widths) != 1:
            raise ConfigError(f"fusion=shared averages vectors of one width; got {sorted(widths)} for {list(content)}. "
                              "Fix: use fusion=per_modality (or auto) for features from different encoders.")
        return True
    return set(content) <= joint and len(widths) == 1
