"""Which feature files share one joint encoder's space: read from the manifest ``mmgef features`` writes."""

import json

import numpy as np
import pytest

from mmgef.data.formats import feature_sources, joint_encoder_modalities
from mmgef.errors import DataError


def _write(root, manifest):
    for m in ("image", "text", "audio"):
        np.save(root / f"{m}.npy", np.zeros((3, 4), dtype=np.float32))
    if manifest is not None:
        (root / "manifest.json").write_text(json.dumps(manifest) if isinstance(manifest, dict) else manifest)


def test_clip_manifest_marks_its_modalities_joint(tmp_path):
    _write(tmp_path, {"encoder": "clip", "modalities": {"image": {"dim": 4}, "text": {"dim": 4}}})
    feats = {"image": "image.npy", "text": "text.npy", "audio": "audio.npy"}
    sources = feature_sources(tmp_path, feats)
    assert joint_encoder_modalities(sources) == {"image", "text"}  # audio: not in the manifest
    assert set(sources) == {"image", "text"} and sources["text"]["file_modality"] == "text"


@pytest.mark.parametrize("manifest", [None, {"encoder": "text", "modalities": {"text": {}}}])
def test_no_joint_encoder_without_a_clip_manifest(tmp_path, manifest):
    _write(tmp_path, manifest)
    assert joint_encoder_modalities(feature_sources(tmp_path, {"image": "image.npy", "text": "text.npy"})) == frozenset()


def test_unreadable_manifest_is_named(tmp_path):
    _write(tmp_path, "{not json")
    with pytest.raises(DataError, match="manifest.json"):
        feature_sources(tmp_path, {"image": "image.npy"})
