"""The real check of the text path: re-encode Last.fm-2K artist tags and compare with the
published ``all-MiniLM-L6-v2.npy`` of the same folder.

The published vectors are MiniLM embeddings of the raw tag string exactly as written in
``lfm2k_text.tsv`` (comma-joined tags, no artist name); HetRec artist ids map to item indices
through the row-aligned ``lfm2k_og_ids.inter`` / ``lfm2k.inter`` pair.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mmgef.features.encoders import SentenceTextEncoder


def lastfm_texts(root: Path) -> tuple[np.ndarray, list[str]]:
    """(item indices, tag texts) for every Last.fm item that has tags."""
    og = pd.read_csv(root / "lfm2k_og_ids.inter", sep="\t")
    new = pd.read_csv(root / "lfm2k.inter", sep="\t")
    to_index = dict(zip(og["itemID"], new["itemID"]))
    text = pd.read_csv(root / "lfm2k_text.tsv", sep="\t", dtype={"artistID": int, "text": str}, keep_default_na=False)
    text = text[text["artistID"].isin(to_index)]
    return text["artistID"].map(to_index).to_numpy(), text["text"].tolist()


def compare(root: Path, limit: int | None = None, encoder: SentenceTextEncoder | None = None) -> np.ndarray:
    """Per-item cosine between re-encoded and published vectors."""
    idx, texts = lastfm_texts(root)
    if limit is not None:
        idx, texts = idx[:limit], texts[:limit]
    enc = encoder or SentenceTextEncoder()
    mine = enc.encode_text(texts)
    published = np.load(root / "all-MiniLM-L6-v2.npy")[idx]
    return (mine * published).sum(1) / np.linalg.norm(mine, axis=1) / np.linalg.norm(published, axis=1)
