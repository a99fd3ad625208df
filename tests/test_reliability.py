"""Nothing silently wrong: tracebacks only on request, one writer per run, extendable runs,
determinism, honest warnings, strict JSON, files with the user's umask."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mmgef import runs
from mmgef.cli import app
from mmgef.config import TrainConfig, resolve_run_config
from mmgef.data.registry import load_dataset
from mmgef.data.split import make_split
from mmgef.errors import ConfigError, MMGEFError
from mmgef.io import write_text
from mmgef.training.trainer import make_evaluators

FAST = ["progress=false", "lr=0.01"]


def _cfg(data: Path, model: str = "mf", *sets: str):
    return resolve_run_config(model=model, data=str(data), sets=[*FAST, *sets])


def test_debug_shows_the_traceback_and_plain_mode_one_line(tmp_path):
    plain = CliRunner().invoke(app, ["train", "--model", "nope"])
    assert plain.exit_code == 2 and "Traceback" not in plain.output and len(plain.stderr.strip().splitlines()) == 1
    debug = CliRunner().invoke(app, ["--debug", "train", "--model", "nope"])
    assert isinstance(debug.exception, ConfigError)  # raised, so Python prints the traceback


def test_an_unexpected_exception_is_one_line_exit_1_and_names_the_way_to_the_traceback(monkeypatch, tiny_dir):
    def boom(*args, **kwargs):
        raise KeyError("oops")

    monkeypatch.setattr(runs, "train", boom)
    res = CliRunner().invoke(app, ["train", "--model", "mf", "--data", str(tiny_dir)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.stderr.strip().startswith("error: internal error (KeyError: 'oops'); this is a bug") and "--debug" in res.stderr


@pytest.mark.slow
def test_a_second_training_into_a_busy_run_directory_names_the_holder(tiny_dir, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "mmgef.cli", "train", "--model", "ngcf", "--data", str(tiny_dir), "--out", str(out),
           "--set", "epochs=400", "--set", "patience=400", "--set", "progress=false"]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (out / "history.jsonl").exists():
            time.sleep(0.05)
        second = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert second.returncode == 2
        assert f"in use by another mmgef process (pid {first.pid})" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        first.kill()
        first.wait()
    # the kernel released the dead holder's lock: resuming works at once
    res = subprocess.run([*cmd[:-6], "--set", "epochs=2", "--set", "patience=400", "--set", "progress=false", "--resume"],
                         capture_output=True, text=True, check=False)
    assert res.returncode in (0, 2)
    assert "in use by another" not in res.stderr


def test_run_files_follow_the_umask(tiny_dir, tmp_path):
    old = os.umask(0o027)
    try:
        write_text(tmp_path / "a.txt", "x")
        runs.train(_cfg(tiny_dir, "mf", "epochs=1"), tmp_path / "run")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    for name in ("config.yaml", "history.jsonl", "checkpoint.safetensors", "model.safetensors", "results.json"):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == 0o640, name


def test_a_finished_run_extends_with_more_epochs_exactly(tiny_dir, tmp_path):
    straight = runs.train(_cfg(tiny_dir, "lightgcn", "epochs=5", "patience=50"), tmp_path / "straight")
    runs.train(_cfg(tiny_dir, "lightgcn", "epochs=3", "patience=50"), tmp_path / "ext")
    extended = runs.train(_cfg(tiny_dir, "lightgcn", "epochs=5", "patience=50"), tmp_path / "ext", resume=True)
    assert extended["epochs"] == 5 and extended["test"] == straight["test"] and extended["valid"] == straight["valid"]
    assert [json.loads(x)["epoch"] for x in (tmp_path / "ext" / "history.jsonl").read_text().splitlines()] == list(range(5))
    assert "epochs: 5" in (tmp_path / "ext" / "config.yaml").read_text()
    with pytest.raises(ConfigError, match="holds a run of another config"):  # anything but the stopping settings
        runs.train(_cfg(tiny_dir, "lightgcn", "epochs=6", "patience=50", "n_layers=1"), tmp_path / "ext", resume=True)


@pytest.mark.parametrize("model", ["lightgcn", "mmgef"])
def test_the_same_seed_gives_the_same_metrics(tiny_dir, tmp_path, model):
    a = runs.train(_cfg(tiny_dir, model, "epochs=3"), tmp_path / "a")
    b = runs.train(_cfg(tiny_dir, model, "epochs=3"), tmp_path / "b")
    for part in ("valid", "test"):
        assert a[part] == pytest.approx(b[part], abs=1e-6)
    c = runs.train(resolve_run_config(model=model, data=str(tiny_dir), seed=7, sets=[*FAST, "epochs=3"]), tmp_path / "c")
    assert c["test"] != a["test"]  # the seed matters, so the equality above is not vacuous


def test_diverged_history_is_strict_json(tiny_dir, tmp_path):
    with pytest.raises(Exception, match="lower the learning rate"):
        runs.train(_cfg(tiny_dir, "lightgcn", "epochs=3", "lr=1e30"), tmp_path / "run")
    history = tmp_path / "run" / "history.jsonl"
    lines = history.read_text().splitlines() if history.exists() else []

    def refuse(name: str) -> None:
        raise ValueError(f"bare {name} in history.jsonl")

    for line in lines:
        json.loads(line, parse_constant=refuse)


def test_a_cold_split_with_fewer_candidates_than_k_warns(tiny_dir, caplog):
    ds = load_dataset(str(tiny_dir))
    split = make_split(ds, "cold", 0, cold_ratio=0.3, cold_eval="cold_only")  # all-item ranking never has too few
    split.cold_test_items = split.cold_test_items[:1]
    with caplog.at_level(logging.WARNING):
        make_evaluators(split, TrainConfig(topk=[20], eval_batch_size=256), "cpu")
    assert "test ranks only 1 candidate item(s): recall and hit at K >= 1 are 1.0 whatever the model" in caplog.text


def test_training_without_data_says_it_uses_the_built_in_data(tmp_path):
    res = CliRunner().invoke(app, ["train", "--model", "cb", "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    assert "no --data given: training on the built-in SYNTHETIC data" in res.stderr


def test_sparse_huge_ids_are_numbered_not_allocated(tmp_path):
    rows = "".join(f"{u}\t{i}\n" for u in range(40) for i in range(3)) + "300000000\t1\n"
    (tmp_path / "d.inter").write_text("userID\titemID\n" + rows)
    ds = load_dataset(str(tmp_path))
    assert ds.n_users == 41 and ds.user_ids[-1] == "300000000" and ds.n_items == 3
    # with a given split too (the users-without-training check must not index by id either: 10**15 rows would not fit)
    labelled = "".join(f"{u}\t{i}\t{lab}\n" for u in (0, 1, 10**15) for i, lab in ((0, 0), (1, 1), (2, 2)))
    (tmp_path / "d.inter").write_text("userID\titemID\tx_label\n" + labelled)
    ds = load_dataset(str(tmp_path))
    assert ds.n_users == 3 and ds.user_ids[-1] == str(10**15)


def test_tiktok_release_keeps_its_users_without_training_rows_by_config():
    from mmgef.data.registry import resolve_spec

    assert resolve_spec("tiktok").users_without_train == "keep"
    assert np.all([resolve_spec(n).users_without_train == "error" for n in ("lastfm2k", "amazon-baby")])


def _interactions(n_users: int = 20, n_items: int = 15) -> list[tuple[int, int, int]]:
    rng = np.random.default_rng(0)
    return [(u, int(i), lab) for u in range(n_users)
            for i, lab in zip(rng.choice(n_items, 6, replace=False), (0, 0, 0, 0, 1, 2))]


def _mmrec(root: Path) -> None:
    (root / "d.inter").write_text("userID\titemID\tx_label\n" + "".join(f"{u}\t{i}\t{lab}\n" for u, i, lab in _interactions()))
    np.save(root / "image_feat.npy", np.random.default_rng(1).normal(size=(15, 4)).astype(np.float32))


def _mmrec_change(root: Path) -> None:
    x = np.load(root / "image_feat.npy")
    np.save(root / "image_feat.npy", x[::-1].copy())


def _json(root: Path) -> None:
    parts: list[dict[str, list[int]]] = [{}, {}, {}]
    for u, i, lab in _interactions():
        parts[lab].setdefault(str(u), []).append(i)
    for name, part in zip(("train.json", "val.json", "test.json"), parts):
        (root / name).write_text(json.dumps(part))
    (root / "item2id.json").write_text(json.dumps({f"asin{k}": k for k in range(15)}))


def _json_change(root: Path) -> None:
    (root / "item2id.json").write_text(json.dumps({f"asin{(k + 1) % 15}": k for k in range(15)}))


def _native(root: Path) -> None:
    names = {"train": 0, "valid": 1, "test": 2}
    inv = {v: k for k, v in names.items()}
    (root / "interactions.csv").write_text("user_id,item_id,split\n" + "".join(f"u{u},i{i},{inv[lab]}\n" for u, i, lab in _interactions()))
    (root / "items.csv").write_text("item_id,title\n" + "".join(f"i{k},thing {k}\n" for k in range(15)))


def _native_change(root: Path) -> None:
    lines = (root / "items.csv").read_text().splitlines(keepends=True)
    (root / "items.csv").write_text(lines[0] + "".join(reversed(lines[1:])))


@pytest.mark.parametrize(("write", "change", "model", "differs"), [
    (_mmrec, _mmrec_change, "vbpr", "item features 'image'"),
    (_json, _json_change, "mf", "item ids"),
    (_native, _native_change, "mf", "item ids"),
], ids=["mmrec", "lattice-json", "native"])
def test_every_reader_pins_the_run_to_its_data(tmp_path, write, change, model, differs):
    data = tmp_path / "data"
    data.mkdir()
    write(data)
    run = tmp_path / "run"
    runs.train(_cfg(data, model, "epochs=1"), run)
    assert runs.evaluate(run)["test"] is not None  # unchanged data loads
    change(data)
    with pytest.raises(MMGEFError, match=rf"the data changed since this run was trained \(.*{differs}.*\)"):
        runs.evaluate(run)
