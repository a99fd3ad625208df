"""Trainer behaviour: early stopping, best-epoch test metrics, and resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmgef import runs
from mmgef.config import resolve_run_config

REQUIRED = {"model", "dataset", "seed", "best_epoch", "epochs", "seconds_per_epoch", "peak_rss_mb", "valid", "test"}


def test_results_and_early_stopping(tiny_dir, tmp_path):
    cfg = resolve_run_config(model="lightgcn", data=str(tiny_dir), sets=["epochs=200", "patience=3", "lr=0.05", "progress=false"])
    res = runs.train(cfg, tmp_path / "run")
    assert REQUIRED <= set(res)
    assert res["epochs"] < 200  # stopped early
    assert res["epochs"] - 1 - res["best_epoch"] == 3  # exactly `patience` evaluations without gain
    for key in ("recall@20", "precision@20", "ndcg@20"):
        assert 0 <= res["test"][key] <= 1
    history = [json.loads(x) for x in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert len(history) == res["epochs"]
    best = max(history, key=lambda h: h["valid"]["recall@20"])
    assert best["epoch"] == res["best_epoch"]
    assert res["valid"]["recall@20"] == pytest.approx(best["valid"]["recall@20"], abs=1e-6)
    # evaluate reproduces the saved test metrics from the best weights
    again = runs.evaluate(tmp_path / "run")
    assert again["test"]["recall@20"] == pytest.approx(res["test"]["recall@20"], abs=1e-9)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["test"] == res["test"]


def test_trained_lightgcn_beats_untrained(tiny_dir, tmp_path):
    base = ["patience=100", "lr=0.05", "progress=false"]
    zero = runs.train(resolve_run_config(model="lightgcn", data=str(tiny_dir), sets=base + ["epochs=1", "lr=1e-9"]), tmp_path / "a")
    trained = runs.train(resolve_run_config(model="lightgcn", data=str(tiny_dir), sets=base + ["epochs=30"]), tmp_path / "b")
    assert trained["valid"]["recall@20"] > zero["valid"]["recall@20"] + 0.05


def _train_cmd(data: Path, out: Path, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "mmgef.cli", "train", "--model", "ngcf", "--data", str(data), "--out", str(out),
           "--set", "epochs=12", "--set", "patience=100", "--set", "progress=false", "--set", "lr=0.01"]
    return cmd + (["--resume"] if resume else [])


def test_resume_after_sigkill_reaches_the_same_metrics(tiny_dir, tmp_path):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    ref = subprocess.run(_train_cmd(tiny_dir, tmp_path / "ref", False), env=env, capture_output=True, text=True, check=False)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(tiny_dir, out, False), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    history = out / "history.jsonl"
    while time.time() < deadline:  # kill once a few epochs are done, mid-run
        if history.exists() and len(history.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "results.json").exists(), "the run finished before it could be killed"
    done = len(history.read_text().splitlines())
    assert 0 < done < 12
    res = subprocess.run(_train_cmd(tiny_dir, out, True), env=env, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    a = json.loads((tmp_path / "ref" / "results.json").read_text())
    b = json.loads((out / "results.json").read_text())
    assert b["best_epoch"] == a["best_epoch"] and b["epochs"] == a["epochs"] == 12
    assert b["test"] == a["test"] and b["valid"] == a["valid"]
    assert len((out / "history.jsonl").read_text().splitlines()) == 12


class _Killed(Exception):
    """Stands in for SIGKILL at a chosen point between the per-epoch writes."""


@pytest.mark.parametrize("when", ["before_checkpoint", "after_checkpoint"])
def test_kill_between_history_and_checkpoint_loses_no_epoch(tiny_dir, tmp_path, monkeypatch, when):
    from mmgef.train import trainer as trainer_mod

    sets = ["epochs=6", "patience=100", "progress=false", "lr=0.01"]
    ref = runs.train(resolve_run_config(model="lightgcn", data=str(tiny_dir), sets=sets), tmp_path / "ref")
    original = trainer_mod.Trainer.save_checkpoint

    def dying_save(self):
        if self.state.epoch == 3 and when == "before_checkpoint":
            raise _Killed
        original(self)
        if self.state.epoch == 3 and when == "after_checkpoint":
            raise _Killed

    run_dir = tmp_path / "killed"
    monkeypatch.setattr(trainer_mod.Trainer, "save_checkpoint", dying_save)
    with pytest.raises(_Killed):
        runs.train(resolve_run_config(model="lightgcn", data=str(tiny_dir), sets=sets), run_dir)
    monkeypatch.setattr(trainer_mod.Trainer, "save_checkpoint", original)
    with open(run_dir / "history.jsonl", "a") as fh:
        fh.write('{"epoch": 9, "lo')  # a line cut short by the kill
    res = runs.train(resolve_run_config(model="lightgcn", data=str(tiny_dir), sets=sets), run_dir, resume=True)
    epochs = [json.loads(x)["epoch"] for x in (run_dir / "history.jsonl").read_text().splitlines()]
    assert epochs == list(range(6))
    assert res["test"] == ref["test"]
