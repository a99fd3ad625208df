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
from mmgef.errors import MMGEFError

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


RESUMED = {"ngcf": [], "lattice": ["rebuild_every=2"],
           "mmgef": ["rebuild_every=2", "edge_dropout=0.5", "mix_on_valid=true", "h_gate=global"]}


def _train_cmd(model: str, data: str, out: Path, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "mmgef.cli", "train", "--model", model, "--data", data, "--out", str(out),
           "--set", "epochs=7", "--set", "patience=100", "--set", "progress=false", "--set", "lr=0.01"]
    cmd += [x for s in RESUMED[model] for x in ("--set", s)]
    return cmd + (["--resume"] if resume else [])


def _epochs_in_checkpoint(run: Path) -> int:
    from safetensors import safe_open

    try:
        with safe_open(str(run / "checkpoint.safetensors"), "pt") as fh:
            return int(json.loads(fh.metadata()["state"])["epoch"])
    except Exception:  # not written yet
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("model", list(RESUMED))
def test_resume_after_sigkill_reaches_the_same_metrics(tiny_dir, tmp_path, model):
    """Killed mid-run, resumed: the same history, best epoch and metrics as an uninterrupted run.

    For the learned-graph models the kill lands between rebuilds (an odd number of epochs done with
    ``rebuild_every=2``), so the resumed run must continue on the frozen graph its checkpoint holds.
    """
    # The built-in data's epochs (~0.3 s) are long enough to stop the process between two; NGCF is
    # slow enough on the tiny data.
    data = str(tiny_dir) if model == "ngcf" else "synthetic"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    ref = subprocess.run(_train_cmd(model, data, tmp_path / "ref", False), env=env, capture_output=True, text=True, check=False)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(model, data, out, False), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # freeze the process, and kill it once it has an odd number of epochs checkpointed
        done = _epochs_in_checkpoint(out)
        if done >= 1:
            proc.send_signal(signal.SIGSTOP)
            if _epochs_in_checkpoint(out) % 2 == 1:
                break
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "results.json").exists(), "the run finished before it could be killed"
    done = _epochs_in_checkpoint(out)
    assert 0 < done < 7 and done % 2 == 1
    res = subprocess.run(_train_cmd(model, data, out, True), env=env, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    a = json.loads((tmp_path / "ref" / "results.json").read_text())
    b = json.loads((out / "results.json").read_text())
    assert b["best_epoch"] == a["best_epoch"] and b["epochs"] == a["epochs"] == 7
    assert b["test"] == a["test"] and b["valid"] == a["valid"]
    losses = [[json.loads(x)["loss"] for x in (run / "history.jsonl").read_text().splitlines()] for run in (tmp_path / "ref", out)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-6) and len(losses[0]) == 7


class _Killed(Exception):
    """Stands in for SIGKILL at a chosen point between the per-epoch writes."""


@pytest.mark.parametrize("when", ["before_checkpoint", "after_checkpoint"])
def test_kill_between_history_and_checkpoint_loses_no_epoch(tiny_dir, tmp_path, monkeypatch, when):
    from mmgef.training import trainer as trainer_mod

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


def test_a_diverging_loss_stops_the_run_without_a_result(tiny_dir, tmp_path):
    cfg = resolve_run_config(model="lightgcn", data=str(tiny_dir), sets=["epochs=5", "lr=1e30", "progress=false"])
    with pytest.raises(MMGEFError, match=r"(the training loss became (nan|inf)|scores hold NaN or inf).*Fix: lower the learning rate"):
        runs.train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "results.json").exists() and not (tmp_path / "run" / "model.safetensors").exists()


def test_eval_mask_train_masks_only_training_items_at_test_time(tiny_dir, tmp_path):
    """MMRec's protocol: validation items stay rankable at test time, so only test metrics change."""
    sets = ["epochs=3", "progress=false", "lr=0.01"]
    ours = runs.train(resolve_run_config(model="mf", data=str(tiny_dir), sets=sets), tmp_path / "ours")
    cfg = resolve_run_config(model="mf", data=str(tiny_dir), sets=[*sets, "eval_mask=train"])
    peer = runs.train(cfg, tmp_path / "peer")
    assert peer["valid"] == ours["valid"]
    assert peer["test"]["recall@50"] < ours["test"]["recall@50"]  # validation items now take slots
    assert runs.evaluate(tmp_path / "peer")["test"] == pytest.approx(peer["test"], abs=1e-6)
    assert resolve_run_config(model="mf", data=str(tiny_dir), sets=sets).digest() != cfg.digest()


def test_steps_per_epoch_caps_the_propagations_and_grows_the_batch(tiny_dir, tmp_path, monkeypatch):
    from mmgef.config import TrainConfig
    from mmgef.models.lightgcn import LightGCN

    assert TrainConfig(batch_size=100, steps_per_epoch=4).batch_for(1000) == 250
    assert TrainConfig(batch_size=400, steps_per_epoch=4).batch_for(1000) == 400  # never below batch_size
    assert TrainConfig(batch_size=100).batch_for(1000) == 100
    calls = []
    real = LightGCN.loss
    monkeypatch.setattr(LightGCN, "loss", lambda self, batch: calls.append(len(batch.users)) or real(self, batch))
    base = ["epochs=2", "patience=100", "lr=0.05", "progress=false", "batch_size=64"]
    capped = runs.train(resolve_run_config(model="lightgcn", data=str(tiny_dir), sets=[*base, "steps_per_epoch=3"]), tmp_path / "a")
    assert len(calls) == 6 and sum(calls) == 2 * sum(calls[:3]) and max(calls) > 64
    full = resolve_run_config(model="lightgcn", data=str(tiny_dir), sets=base)
    assert resolve_run_config(model="lightgcn", data=str(tiny_dir), sets=[*base, "steps_per_epoch=3"]).digest() != full.digest()
    assert capped["valid"]["recall@20"] > 0


def test_mix_on_valid_fits_the_mixing_weights_on_validation_pairs_and_nothing_else(tiny_dir, tmp_path, monkeypatch):
    import numpy as np
    import torch

    from mmgef.training.sampling import UniformSampler
    from mmgef.training.trainer import Trainer

    cfg = resolve_run_config(model="mmgef", data=str(tiny_dir), sets=["progress=false", "lr=0.05", "mix_on_valid=true",
                                                                       "h_gate=global", "batch_size=64"])
    p = runs.prepare(cfg)
    trainer = Trainer(cfg, p.model, p.split, tmp_path, UniformSampler(p.split.train), torch.device("cpu"))
    mixers = {id(x) for x in trainer.held_out}
    assert {id(p.model.att_global), id(p.model.h_gate.c)} == mixers
    others = [x for x in trainer.params if id(x) not in mixers]

    def snapshot() -> list[torch.Tensor]:
        return [x.detach().clone() for x in trainer.params]

    def moved(before: list[torch.Tensor]) -> set[int]:
        return {id(x) for x, b in zip(trainer.params, before) if not torch.equal(x.detach(), b)}

    # the training steps alone (held-out step switched off) move the model but never the mixing weights
    real_step = Trainer._held_out_step
    monkeypatch.setattr(Trainer, "_held_out_step", lambda self, *a: None)
    before = snapshot()
    trainer._train_epoch(0, trainer.optimizer)
    assert not moved(before) & mixers and len(moved(before)) >= len(others) - 2
    # a held-out step moves the mixing weights and nothing else, on validation pairs
    pairs = trainer.held_out_pairs
    users, pos, neg = pairs.sample(500, np.random.default_rng(0))
    valid = set(zip(*p.split.valid.nonzero()))
    known = p.split.train + p.split.valid
    assert all((u, i) in valid for u, i in zip(users, pos)) and not known[users, neg].any()
    before = snapshot()
    real_step(trainer, trainer.optimizer, pairs, 64, np.random.default_rng(1), 0, 0)
    assert moved(before) == mixers
    # the option is part of the model, off by default: without it nothing is held out
    plain = runs.prepare(resolve_run_config(model="mmgef", data=str(tiny_dir), sets=["progress=false"]))
    assert plain.model.held_out_parameters() == []
