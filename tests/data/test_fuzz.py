"""Property-based fuzzing of the readers and the config loader: whatever the bytes, the only
exception that escapes is the project's own one-line error type."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmgef.config import resolve_run_config
from mmgef.data.formats import read_lattice_json, read_mmrec, read_native
from mmgef.errors import MMGEFError

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

# Cells that look like ids, labels and timestamps most of the time, and like anything otherwise.
cell = st.one_of(st.integers(-3, 12).map(str), st.sampled_from(["", " 1", "1 ", "1.0", "1e3", "x", "nan", "-0", "０"]),
                 st.text(max_size=4))
row = st.lists(cell, min_size=0, max_size=5)
table = st.lists(row, min_size=0, max_size=12)
raw_bytes = st.binary(max_size=200)


def _lines(header: str, rows: list[list[str]], sep: str) -> str:
    return header + "\n" + "".join(sep.join(r) + "\n" for r in rows)


def _expect_own_error(fn) -> None:  # noqa: ANN001
    try:
        fn()
    except MMGEFError as err:
        assert "\n" not in str(err) and "Fix:" in str(err), str(err)


@FUZZ
@given(rows=table, header=st.sampled_from(["userID\titemID", "userID\titemID\tx_label", "userID\titemID\ttimestamp",
                                          "userID\titemID\tx_label\ttimestamp", "userID\titem"]),
       tail=raw_bytes, use_tail=st.booleans(), rows_feat=st.integers(0, 14))
def test_mmrec_reader(rows, header, tail, use_tail, rows_feat):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        text = _lines(header, rows, "\t").encode() + (tail if use_tail else b"")
        (root / "d.inter").write_bytes(text)
        np.save(root / "f.npy", np.ones((rows_feat, 2), dtype=np.float32))
        _expect_own_error(lambda: read_mmrec(root, "d.inter", {"image": "f.npy"} if rows_feat else None))


json_value = st.recursive(st.none() | st.booleans() | st.integers(-2, 9) | st.floats(allow_nan=True) | st.text(max_size=3),
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
                          max_leaves=12)
user_lists = st.dictionaries(st.integers(0, 6).map(str), st.lists(st.integers(0, 8), max_size=5), max_size=5)


@FUZZ
@given(parts=st.lists(st.one_of(user_lists, json_value), min_size=3, max_size=3),
       item_map=st.one_of(st.none(), st.dictionaries(st.text(max_size=3), st.integers(-1, 9), max_size=10), json_value),
       garbage=st.one_of(st.none(), raw_bytes))
def test_lattice_json_reader(parts, item_map, garbage):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for name, obj in zip(("train.json", "val.json", "test.json"), parts):
            (root / name).write_text(json.dumps(obj))
        if item_map is not None:
            (root / "item2id.json").write_text(json.dumps(item_map))
        if garbage is not None:
            (root / "val.json").write_bytes(garbage)
        _expect_own_error(lambda: read_lattice_json(root))


@FUZZ
@given(rows=table, header=st.sampled_from(["user_id,item_id", "user_id,item_id,split", "user_id,item_id,timestamp", "user,item"]),
       items=st.one_of(st.none(), table), reviews=st.one_of(st.none(), table), tail=raw_bytes, use_tail=st.booleans())
def test_native_reader(rows, header, items, reviews, tail, use_tail):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "interactions.csv").write_bytes(_lines(header, rows, ",").encode() + (tail if use_tail else b""))
        if items is not None:
            (root / "items.csv").write_text(_lines("item_id,title", items, ","))
        if reviews is not None:
            (root / "reviews.csv").write_text(_lines("user_id,text", reviews, ","))
        _expect_own_error(lambda: read_native(root))


config_value = st.one_of(st.integers(-5, 5000), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
                         st.text(max_size=5), st.lists(st.integers(-1, 60), max_size=3))
config_keys = st.sampled_from(["epochs", "lr", "batch_size", "reg", "patience", "topk", "stop_metric", "n_layers", "embedding_dim",
                               "sampler", "device", "split", "ratios", "cold_ratio", "modalities", "edge_dropout", "knn_k",
                               "lambda_skip", "seed", "nonsense", "data.name", "params.model", "train.init"])


@FUZZ
@given(model=st.sampled_from(["mf", "lightgcn", "lattice", "mmgef", "freedom", "mcpt", "vbpr", "nope"]),
       sets=st.lists(st.tuples(config_keys, config_value), max_size=5),
       yaml_text=st.one_of(st.none(), st.text(max_size=60), st.sampled_from(["model: [", "- a", "train: 3", "params: {x: 1}"])))
def test_config_loader(model, sets, yaml_text):
    with tempfile.TemporaryDirectory() as d:
        cfg_file = None
        if yaml_text is not None:
            cfg_file = Path(d) / "c.yaml"
            cfg_file.write_text(yaml_text)
        overrides = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in sets]
        _expect_own_error(lambda: resolve_run_config(cfg_file, model, "synthetic", None, None, overrides))
