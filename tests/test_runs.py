"""A saved run gives back exactly the numbers it reported, for every model, and pins its data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from mmgef import runs
from mmgef.cli import app
from mmgef.config import resolve_run_config
from mmgef.errors import MMGEFError

EVERY_MODEL = [("mf", []), ("lightgcn", []), ("ngcf", []), ("vbpr", []), ("cb", []),
               ("lattice", ["backbone=mf"]), ("lattice", ["backbone=ngcf"]), ("lattice", ["backbone=lightgcn"]),
               ("mmgef", []), ("mmgcn", []), ("grcn", []), ("freedom", [])]


@pytest.mark.parametrize("name,sets", EVERY_MODEL, ids=[f"{n}-{'-'.join(s)}" if s else n for n, s in EVERY_MODEL])
def test_evaluate_reproduces_results_json_after_early_stopping(tiny_dir, tmp_path, name, sets):
    """Trained with early stopping past its best epoch, the saved model re-evaluates to its results.json.

    For LATTICE and MM-GEF this needs the frozen item graph of the best epoch in the saved weights:
    the graph of the last epoch (patience epochs later) gives other numbers.
    """
    cfg = resolve_run_config(model=name, data=str(tiny_dir),
                             sets=["epochs=60", "patience=2", "lr=0.05", "progress=false", *sets])
    res = runs.train(cfg, tmp_path / "run")
    if name != "cb":  # nothing to train: evaluated once
        assert res["best_epoch"] < res["epochs"] - 1, "early stopping did not stop after the best epoch"
    out = CliRunner().invoke(app, ["evaluate", str(tmp_path / "run"), "--json"])
    assert out.exit_code == 0, out.output
    again = json.loads(out.output)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    for part in ("valid", "test"):
        assert again[part].keys() == saved[part].keys()
        for key, value in saved[part].items():
            assert again[part][key] == pytest.approx(value, abs=1e-6), (part, key)
    # the recorded mixing weights are the saved (best-validation) model's, as `mmgef inspect` reads them back
    inspected = CliRunner().invoke(app, ["inspect", str(tmp_path / "run"), "--json"])
    assert inspected.exit_code == 0, inspected.output
    assert json.loads(inspected.output) == pytest.approx(saved["mixing_weights"], abs=1e-6)
    assert bool(saved["mixing_weights"]) == (name in ("lattice", "mmgef"))
    if name == "mmgef":  # trained: the attention moved away from its equal start
        att = [v for k, v in saved["mixing_weights"].items() if k.startswith("attention")]
        assert len(att) == 4 and sum(att) == pytest.approx(1.0) and max(att) - min(att) > 1e-3
        table = CliRunner().invoke(app, ["inspect", str(tmp_path / "run")])
        assert "| attention E^c |" in table.output


def test_a_run_refuses_changed_data_and_names_what_changed(tiny_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_dir, data)
    cfg = resolve_run_config(model="vbpr", data=str(data), sets=["epochs=1", "progress=false"])
    runs.train(cfg, tmp_path / "run")
    runs.load_run(tmp_path / "run")  # unchanged: loads
    items = pd.read_csv(data / "items.csv", dtype=str)
    items.iloc[::-1].to_csv(data / "items.csv", index=False)  # reorder the catalogue
    with pytest.raises(MMGEFError, match=r"the data changed since this run was trained \(.*item ids.*\)"):
        runs.load_run(tmp_path / "run")


@pytest.mark.slow
def test_a_run_trained_with_a_relative_data_path_opens_from_anywhere(tiny_dir, tmp_path):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    data = tmp_path / "work" / "data"
    shutil.copytree(tiny_dir, data)
    train = [sys.executable, "-m", "mmgef.cli", "train", "--model", "mf", "--data", "data", "--out", "run",
             "--set", "epochs=2", "--set", "progress=false"]
    subprocess.run(train, cwd=tmp_path / "work", env=env, check=True, capture_output=True)
    ev = subprocess.run([sys.executable, "-m", "mmgef.cli", "evaluate", str(tmp_path / "work" / "run"), "--json"],
                        cwd="/", env=env, capture_output=True, text=True, check=False)
    assert ev.returncode == 0, ev.stderr
    saved = json.loads((tmp_path / "work" / "run" / "results.json").read_text())
    assert json.loads(ev.stdout)["test"]["recall@20"] == pytest.approx(saved["test"]["recall@20"], abs=1e-6)


def test_importing_the_config_imports_no_model_code():
    code = "import sys, mmgef.config; print(sorted(m for m in sys.modules if m.startswith(('mmgef.models', 'torch'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_training_imports_pandas_only_to_parse_a_table():
    """pandas with pyarrow is 60 MB of RSS: a run on JSON-layout data (Baby) or built-in data never loads it."""
    code = "import sys, mmgef.runs, mmgef.training.trainer; print('pandas' in sys.modules, 'pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_negatives_and_id_dropout_at_their_defaults_keep_old_digests():
    base = resolve_run_config(model="mmgef", sets=["split=cold"])
    for same in ("negatives=all", "id_dropout=0.0"):
        assert resolve_run_config(model="mmgef", sets=["split=cold", same]).digest() == base.digest()
    for other in ("negatives=interacted", "id_dropout=0.2"):
        assert resolve_run_config(model="mmgef", sets=["split=cold", other]).digest() != base.digest()
    with pytest.raises(MMGEFError, match="negatives"):
        resolve_run_config(model="mmgef", sets=["negatives=unseen"])


@pytest.mark.parametrize("key, default, other", [("cold_ids", "trained", "none"), ("cold_targets", "new", "new+warm")])
def test_a_cold_split_setting_keeps_old_digests_and_needs_the_cold_split(key, default, other):
    base = resolve_run_config(model="mmgef", sets=["split=cold"])
    assert resolve_run_config(model="mmgef", sets=["split=cold", f"{key}={default}"]).digest() == base.digest()
    assert resolve_run_config(model="mmgef", sets=["split=cold", f"{key}={other}"]).digest() != base.digest()
    with pytest.raises(MMGEFError, match="cold split only"):
        resolve_run_config(model="mmgef", sets=[f"{key}={other}"])


def test_cold_ids_none_needs_an_item_id_embedding():
    with pytest.raises(MMGEFError, match="no item ID embedding"):
        runs.prepare(resolve_run_config(model="cb", sets=["split=cold", "cold_ids=none"]))


def test_warm_targets_need_every_item_ranked():
    with pytest.raises(MMGEFError, match="every item must be ranked"):
        resolve_run_config(model="mmgef", sets=["split=cold", "cold_eval=cold_only", "cold_targets=new+warm"])


def test_gather_precision_at_its_default_keeps_old_digests_and_needs_a_graph():
    base = resolve_run_config(model="lightgcn")
    assert resolve_run_config(model="lightgcn", sets=["gather_precision=float32"]).digest() == base.digest()
    assert resolve_run_config(model="lightgcn", sets=["gather_precision=bfloat16"]).digest() != base.digest()
    with pytest.raises(MMGEFError, match="gather_precision"):
        resolve_run_config(model="lightgcn", sets=["gather_precision=float16"])
    with pytest.raises(MMGEFError, match="model 'mf' has no constant graph"):
        runs.prepare(resolve_run_config(model="mf", sets=["gather_precision=bfloat16"]))


def test_a_bfloat16_run_reproduces_its_metrics_and_trains_near_the_exact_one(tiny_dir, tmp_path):
    """The rounding changes the numbers (so the setting is in effect) but not what the model learns; a saved run is
    loaded with its precision, so it re-evaluates to the metrics it reported."""
    results = {}
    for precision in ("float32", "bfloat16"):
        cfg = resolve_run_config(model="lightgcn", data=str(tiny_dir),
                                 sets=["epochs=8", "lr=0.05", "progress=false", f"gather_precision={precision}"])
        results[precision] = runs.train(cfg, tmp_path / precision)
        assert runs.evaluate(tmp_path / precision)["test"] == pytest.approx(results[precision]["test"], abs=1e-6)
    exact, rounded = (json.loads((tmp_path / p / "results.json").read_text()) for p in ("float32", "bfloat16"))
    assert exact["valid"] != rounded["valid"]
    for part in ("valid", "test"):
        assert rounded[part]["recall@20"] == pytest.approx(exact[part]["recall@20"], abs=0.05)
