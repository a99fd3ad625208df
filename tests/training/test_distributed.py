"""Data-parallel training (issue 17): W workers train as one worker with W× the batch, rank 0 writes the run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mmgef import runs
from mmgef.config import resolve_run_config
from mmgef.devices import default_threads
from mmgef.errors import MMGEFError
from mmgef.training.distributed import Group, _death, _one_line


def _history(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def _train(tmp_path: Path, name: str, model: str = "lightgcn", **sets) -> dict:
    cfg = resolve_run_config(model=model, data="synthetic",
                             sets=["progress=false", "threads=1", *(f"{k}={v}" for k, v in sets.items())])
    return runs.train(cfg, tmp_path / name)


@pytest.mark.parametrize("model", ["lightgcn", "mmgef"])
def test_two_workers_train_exactly_as_one_worker_with_twice_the_batch(tmp_path, model):
    two = _train(tmp_path, "two", model, epochs=3, batch_size=512, workers=2)
    one = _train(tmp_path, "one", model, epochs=3, batch_size=1024)
    assert two["workers"] == 2 and one["workers"] == 1
    for a, b in zip(_history(tmp_path / "two"), _history(tmp_path / "one"), strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["valid"]["recall@20"] == pytest.approx(b["valid"]["recall@20"], abs=1e-4)
    assert two["test"]["recall@20"] == pytest.approx(one["test"]["recall@20"], abs=1e-4)
    # rank 0 alone wrote the run: one history line per epoch, its config names the workers
    assert len(_history(tmp_path / "two")) == 3
    assert "workers: 2" in (tmp_path / "two" / "config.yaml").read_text()


def test_two_workers_reach_the_quality_of_one_at_the_same_batch_size(tmp_path):
    two = _train(tmp_path, "two", epochs=12, batch_size=512, workers=2)
    one = _train(tmp_path, "one", epochs=12, batch_size=512)
    # half the optimizer steps per epoch, the same pairs seen: within noise after a few epochs
    assert two["valid"]["recall@20"] == pytest.approx(one["valid"]["recall@20"], abs=0.02)
    assert two["test"]["recall@20"] == pytest.approx(one["test"]["recall@20"], abs=0.03)


def test_a_data_parallel_run_resumes_where_it_stopped(tmp_path):
    _train(tmp_path, "resumed", epochs=2, batch_size=512, workers=2)
    cfg = resolve_run_config(model="lightgcn", data="synthetic",
                             sets=["progress=false", "threads=1", "epochs=4", "batch_size=512", "workers=2"])
    resumed = runs.train(cfg, tmp_path / "resumed", resume=True)
    straight = _train(tmp_path, "straight", epochs=4, batch_size=512, workers=2)
    assert [h["loss"] for h in _history(tmp_path / "resumed")] == pytest.approx(
        [h["loss"] for h in _history(tmp_path / "straight")], rel=1e-6)
    assert resumed["test"] == pytest.approx(straight["test"], abs=1e-6)


def test_a_failing_worker_is_one_error_naming_the_run(tmp_path):
    with pytest.raises(MMGEFError, match=r"data-parallel worker \d failed: .*lower the learning rate"):
        _train(tmp_path, "diverges", epochs=2, batch_size=512, workers=2, lr=1e30)


def test_worker_count_is_part_of_a_runs_identity_only_when_above_one():
    base = resolve_run_config(model="lightgcn", data="synthetic")
    assert resolve_run_config(model="lightgcn", data="synthetic", sets=["workers=1"]).digest() == base.digest()
    assert resolve_run_config(model="lightgcn", data="synthetic", sets=["workers=2"]).digest() != base.digest()
    assert base.train.batch_for(10_000) == 2048
    assert resolve_run_config(model="lightgcn", data="synthetic", sets=["workers=3"]).train.batch_for(10_000) == 3 * 2048


@pytest.mark.parametrize("n", [0, 1, 2, 7, 1000])
def test_shards_cover_a_batch_once(n):
    parts = [Group(r, 3).shard(n) for r in range(3)]
    covered = [i for p in parts for i in range(n)[p]]
    assert covered == list(range(n))
    assert max(len(range(n)[p]) for p in parts) - min(len(range(n)[p]) for p in parts) <= 1


def test_workers_share_the_free_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(16)))
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert default_threads(workers=4) == 4 and default_threads(workers=32) == 1 and default_threads() == 15


def test_a_worker_traceback_becomes_its_last_line():
    err = Exception("Traceback (most recent call last):\n  File x\nmmgef.errors.MMGEFError: /tmp/r: it broke. Fix: y.\n")
    assert _one_line(err) == "/tmp/r: it broke. Fix: y."


def test_a_dead_worker_is_named_by_its_signal():
    assert _death(-6) == "SIGABRT"  # a crash, not memory: the message must not send the user after RAM
    assert _death(-9) == "SIGKILL; killed for memory?"
    assert _death(2) == "exit code 2"


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_ray_train_runs_the_same_training_as_local_workers(tmp_path):
    pytest.importorskip("ray.train.torch")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        cfg = resolve_run_config(model="lightgcn", data="synthetic",
                                 sets=["progress=false", "threads=1", "epochs=2", "batch_size=512", "workers=2"])
        on_ray = runs.train(cfg, tmp_path / "ray", ray_address="local")
    finally:
        ray.shutdown()
    local = _train(tmp_path, "local", epochs=2, batch_size=512, workers=2)
    assert on_ray["workers"] == 2
    assert [h["loss"] for h in _history(tmp_path / "ray")] == pytest.approx([h["loss"] for h in _history(tmp_path / "local")], rel=1e-5)
    assert on_ray["test"]["recall@20"] == pytest.approx(local["test"]["recall@20"], abs=1e-4)
