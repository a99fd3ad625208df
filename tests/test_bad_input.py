"""Each bad input gives one clear error naming the file (and line or key) and a fix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmgef import runs
from mmgef.config import resolve_run_config
from mmgef.data.dataset import Dataset
from mmgef.data.formats import read_lattice_json, read_mmrec, read_native
from mmgef.data.registry import load_dataset
from mmgef.errors import ConfigError, DataError, MMGEFError


def _inter(tmp: Path, text: str, name: str = "d.inter") -> Path:
    (tmp / name).write_text(text)
    return tmp


GOOD = "userID\titemID\tx_label\n0\t0\t0\n0\t1\t1\n0\t2\t2\n1\t1\t0\n1\t2\t1\n1\t0\t2\n"


def test_missing_inter_file(tmp_path):
    with pytest.raises(DataError, match=r"d\.inter: interaction file not found"):
        read_mmrec(tmp_path, "d.inter")


def test_inter_without_id_columns(tmp_path):
    with pytest.raises(DataError, match=r"d\.inter:1: header lacks column\(s\) \['itemID'\]"):
        read_mmrec(_inter(tmp_path, "userID\titem\n0\t1\n"), "d.inter")


def test_non_integer_ids_name_the_line(tmp_path):
    with pytest.raises(DataError, match=r"d\.inter:3: column 'itemID' has a non-integer.*'abc'"):
        read_mmrec(_inter(tmp_path, "userID\titemID\n0\t1\n0\tabc\n"), "d.inter")


def test_x_label_out_of_range(tmp_path):
    with pytest.raises(DataError, match=r"d\.inter:3: x_label 7 is not 0"):
        read_mmrec(_inter(tmp_path, "userID\titemID\tx_label\n0\t1\t0\n0\t2\t7\n"), "d.inter")


def test_header_only_inter(tmp_path):
    with pytest.raises(DataError, match="no interactions"):
        read_mmrec(_inter(tmp_path, "userID\titemID\n"), "d.inter")


def test_non_numeric_timestamp(tmp_path):
    with pytest.raises(DataError, match=r"d\.inter:2: timestamp 'yesterday'"):
        read_mmrec(_inter(tmp_path, "userID\titemID\ttimestamp\n0\t1\tyesterday\n"), "d.inter")


def test_duplicate_rows_are_collapsed_to_first(tmp_path, caplog):
    ds = read_mmrec(_inter(tmp_path, GOOD + "0\t0\t2\n0\t0\t0\n"), "d.inter")
    assert ds.n_interactions == 6
    first = np.flatnonzero((ds.users == 0) & (ds.items == 0))
    assert len(first) == 1 and ds.labels[first[0]] == 0
    assert "2 duplicate" in caplog.text


def test_feature_rows_fix_the_item_count(tmp_path):
    """MMRec item ids index the feature rows: more rows are items without interactions, fewer an error."""
    _inter(tmp_path, GOOD)
    np.save(tmp_path / "img.npy", np.ones((5, 4), dtype=np.float32))
    assert read_mmrec(tmp_path, "d.inter", {"image": "img.npy"}).n_items == 5
    np.save(tmp_path / "txt.npy", np.ones((4, 4), dtype=np.float32))
    with pytest.raises(DataError, match=r"txt\.npy: has 4 rows but the dataset has 5 items"):
        read_mmrec(tmp_path, "d.inter", {"image": "img.npy", "text": "txt.npy"})
    np.save(tmp_path / "img.npy", np.ones((2, 4), dtype=np.float32))
    with pytest.raises(DataError, match=r"d\.inter: item id 2 is outside the 2 items declared"):
        read_mmrec(tmp_path, "d.inter", {"image": "img.npy"})


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_features(tmp_path, bad):
    _inter(tmp_path, GOOD)
    x = np.ones((3, 4), dtype=np.float32)
    x[1, 2] = bad
    np.save(tmp_path / "img.npy", x)
    with pytest.raises(DataError, match=r"img\.npy: row 1 \(item 1\) contains NaN or inf"):
        read_mmrec(tmp_path, "d.inter", {"image": "img.npy"})


def test_empty_split(tmp_path):
    from mmgef.data.split import make_split

    ds = read_mmrec(_inter(tmp_path, "userID\titemID\tx_label\n0\t0\t0\n0\t1\t2\n"), "d.inter")
    with pytest.raises(DataError, match="the valid split is empty"):
        make_split(ds, "given", 0)


def _json_split(tmp: Path, train: dict, val: dict, test: dict) -> Path:
    for name, obj in (("train.json", train), ("val.json", val), ("test.json", test)):
        (tmp / name).write_text(json.dumps(obj))
    return tmp


def test_malformed_json_names_the_line(tmp_path):
    _json_split(tmp_path, {"0": [1]}, {"0": [2]}, {"0": [3]})
    (tmp_path / "val.json").write_text('{"0": [1,\n 2,,]}')
    with pytest.raises(DataError, match=r"val\.json:2: malformed JSON"):
        read_lattice_json(tmp_path)


@pytest.mark.parametrize("mapping", ['["a", "b"]', '{"a": "zero"}'])
def test_id_map_that_is_not_an_object_of_indices(tmp_path, mapping):
    _json_split(tmp_path, {"0": [1]}, {"0": [2]}, {"0": [3]})
    (tmp_path / "item2id.json").write_text(mapping)
    with pytest.raises(DataError, match=r"item2id\.json: expected an object mapping raw item ids to non-negative integer indices"):
        read_lattice_json(tmp_path)


def test_dataset_rows_that_do_not_align_are_one_error():
    with pytest.raises(MMGEFError, match=r"dataset 'd': item features 't' have 2 rows for 1 items"):
        Dataset("d", np.array(["u"]), np.array(["i"]), [0], [0], content={"t": np.zeros((2, 3), np.float32)})


def test_test_user_unknown_to_training(tmp_path):
    _json_split(tmp_path, {"0": [1, 2]}, {"0": [3]}, {"5": [3]})
    with pytest.raises(DataError, match=r"test\.json: user 5 .* none in training"):
        read_lattice_json(tmp_path)


def test_native_unknown_item(tmp_path):
    (tmp_path / "interactions.csv").write_text("user_id,item_id\nalice,x\nbob,zzz\n")
    (tmp_path / "items.csv").write_text("item_id,title\nx,a thing\n")
    with pytest.raises(DataError, match=r"interactions\.csv:3: item_id 'zzz' is not in items\.csv"):
        read_native(tmp_path)


def test_native_feature_order_file_missing_an_item(tmp_path):
    (tmp_path / "interactions.csv").write_text("user_id,item_id\nalice,x\nbob,y\n")
    (tmp_path / "features").mkdir()
    np.save(tmp_path / "features" / "text.npy", np.ones((1, 3), dtype=np.float32))
    (tmp_path / "features" / "item_ids.txt").write_text("x\n")
    with pytest.raises(DataError, match=r"item_ids\.txt: item 'y'"):
        read_native(tmp_path)


def test_unknown_dataset_name():
    with pytest.raises(ConfigError, match=r"dataset 'nope'.*lastfm2k"):
        load_dataset("nope")


def test_unknown_model_name():
    with pytest.raises(ConfigError, match=r"unknown model 'lightgnc'.*lightgcn"):
        resolve_run_config(model="lightgnc", data="synthetic")


def test_unknown_set_key():
    with pytest.raises(ConfigError, match=r"unknown key 'learning_rate'"):
        resolve_run_config(model="mf", data="synthetic", sets=["learning_rate=0.1"])


def test_mistyped_key_in_yaml(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("model: mf\ntrain:\n  lr: 0.01\n  epoch: 5\n")
    with pytest.raises(ConfigError, match=r"run\.yaml: unknown key 'train\.epoch'"):
        resolve_run_config(cfg)


def test_wrong_param_type():
    with pytest.raises(ConfigError, match=r"command line: 'params.n_layers': Input should be a valid integer"):
        resolve_run_config(model="lightgcn", sets=["n_layers=many"])


@pytest.mark.parametrize("ks", ["[0, 20]", "[-5]"])
def test_non_positive_k(ks):
    with pytest.raises(ConfigError, match=r"'train\.topk'.*positive"):
        resolve_run_config(model="mf", sets=[f"topk={ks}"])


def test_missing_modality_for_model(tiny_dir, tmp_path):
    cfg = resolve_run_config(model="vbpr", data=str(tiny_dir), sets=["modalities=[audio]", "epochs=1"])
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"dataset 'tiny0' has no modality \['audio'\]; available: \['image', 'text'\]"):
        runs.train(cfg, out)
    assert not out.exists()  # nothing written half-way


def test_model_modality_not_loaded():
    from mmgef.features.fusion import select

    with pytest.raises(ConfigError, match=r"model 'cb' asks for modality \['image'\] but the dataset has \['text'\]"):
        select({"text": np.ones((2, 2))}, ["image"], "cb")


def test_cuda_without_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    cfg = resolve_run_config(model="mf", sets=["device=cuda"])
    with pytest.raises(ConfigError, match="no CUDA device"):
        runs.train(cfg, tmp_path / "r")


def test_resume_with_another_config(tiny_dir, tmp_path):
    out = tmp_path / "run"
    runs.train(resolve_run_config(model="mf", data=str(tiny_dir), sets=["epochs=1", "progress=false"]), out)
    other = resolve_run_config(model="mf", data=str(tiny_dir), sets=["epochs=1", "lr=0.5", "progress=false"])
    with pytest.raises(ConfigError, match=r"config\.yaml: this directory holds a run of another config"):
        runs.train(other, out, resume=True)


def test_rerun_without_resume_is_refused(tiny_dir, tmp_path):
    cfg = resolve_run_config(model="mf", data=str(tiny_dir), sets=["epochs=1", "progress=false"])
    runs.train(cfg, tmp_path / "r")
    with pytest.raises(ConfigError, match="already holds a run.*--resume"):
        runs.train(cfg, tmp_path / "r")


def test_evaluate_on_a_non_run_directory(tmp_path):
    with pytest.raises(MMGEFError, match=r"config\.yaml: not found"):
        runs.evaluate(tmp_path)


def test_unknown_stop_metric():
    with pytest.raises(ConfigError, match=r"stop_metric 'recal@20' is not computed"):
        resolve_run_config(model="mf", sets=["stop_metric=recal@20"])
