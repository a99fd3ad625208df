"""Ray Tune backend: the same runs as the local pool, scheduled by Tune on a local Ray or a cluster."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmgef.config import RunConfig


def run_with_tune(configs: list[RunConfig], run_dirs: list[str], address: str) -> Iterator[tuple[str, dict[str, Any]]]:
    import ray
    from ray import tune

    started = not ray.is_initialized()
    if started:
        ray.init(address=None if address == "local" else address, include_dashboard=False, log_to_driver=False)
    jobs = [(c.model_dump_json(), str(Path(d).resolve())) for c, d in zip(configs, run_dirs)]

    def trainable(space: dict[str, Any]) -> None:
        from mmgef.experiments.runner import train_config

        cfg_json, run_dir = jobs[space["job"]]
        result = train_config(cfg_json, run_dir)
        tune.report({"valid_recall@20": result["valid"]["recall@20"], "test_recall@20": result["test"]["recall@20"]})

    try:
        storage = str(Path(run_dirs[0]).resolve().parents[2] / "ray_results")
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space={"job": tune.grid_search(list(range(len(jobs))))},
            run_config=tune.RunConfig(storage_path=storage, name="runs", verbose=0),
        )
        grid = tuner.fit()
        errors = [r.error for r in grid if r.error]
        if errors:
            raise RuntimeError(f"{len(errors)} Ray Tune trials failed; first: {errors[0]}")
    finally:
        if started:
            ray.shutdown()
    for cfg, run_dir in zip(configs, run_dirs):
        yield cfg.digest(), json.loads((Path(run_dir) / "results.json").read_text())
