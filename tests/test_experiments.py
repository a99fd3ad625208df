"""`mmgef reproduce`: grid selection on validation, seeds, resume without repeats, reports, Ray Tune."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from mmgef.experiments.report import write_report
from mmgef.experiments.runner import Runner
from mmgef.experiments.spec import load_spec, substitute

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "configs" / "experiments" / "tiny_grid.yaml"


def test_every_experiment_spec_expands():
    for path in sorted((REPO / "configs" / "experiments").glob("*.yaml")):
        spec = load_spec(path)
        runner = Runner(spec, Path("/nonexistent"))
        cells = runner.plan(spec.datasets)
        assert len(cells) == len(spec.rows) * len(spec.datasets)
        assert all("$" not in c.label for c in cells)


def test_substitute_modality_placeholders():
    assert substitute({"modalities": ["$A", "$B"], "x": "MM-GEF $A"}, {"A": "text", "B": "audio"}) == {
        "modalities": ["text", "audio"], "x": "MM-GEF text"}


def test_grid_selected_on_validation_and_report(tmp_path):
    spec = load_spec(SPEC)
    runner = Runner(spec, tmp_path / "exp", workers=2)
    cells = runner.run()
    for c in cells:
        best = max(c.grid, key=lambda pc: runner.results(pc[1])["valid"]["recall@20"])
        assert c.chosen == best[0]
        assert len(c.seeds) == 2 and c.seeds[0].digest() == best[1].digest()  # seed 0 reused, not rerun
    out = write_report(runner, cells, spec.datasets, 1.0)
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 2 * (2 + 1)  # per row: 2 grid points + 1 extra seed
    summary = (out / "summary.md").read_text()
    assert "MF-BPR" in summary and "LightGCN" in summary and "±" in summary
    assert "holds" in (out / "claims.md").read_text() or "does not hold" in (out / "claims.md").read_text()
    assert (out / "synthetic_test_metrics.png").stat().st_size > 5000
    # a second run finds everything done
    again = Runner(spec, tmp_path / "exp", workers=2)
    n_done = len(again.done)
    again.run()
    assert len(again.done) == n_done


def test_killed_reproduce_resumes_without_repeating(tmp_path):
    exp = tmp_path / "exp"
    cmd = [sys.executable, "-m", "mmgef.cli", "reproduce", str(SPEC), "--out", str(exp), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline and len(list(exp.glob("runs/**/results.json"))) < 2:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: the coordinator and its worker processes
    proc.wait()
    finished = {p.parent: p.stat().st_mtime for p in exp.glob("runs/**/results.json")}
    assert 2 <= len(finished) < 6, "kill came too late to test resuming"
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    after = {p.parent: p.stat().st_mtime for p in exp.glob("runs/**/results.json")}
    assert len(after) == 6
    assert all(after[d] == t for d, t in finished.items())  # finished runs were not repeated
    assert "already finished" in res.stdout


def test_ray_tune_path_selects_the_same_config(tmp_path):
    pytest.importorskip("ray.tune")
    spec = load_spec(SPEC)
    local = Runner(spec, tmp_path / "local", workers=2).run()
    ray_cells = Runner(spec, tmp_path / "ray", ray_address="local").run()
    assert [c.chosen for c in local] == [c.chosen for c in ray_cells]
    assert len(list((tmp_path / "ray").glob("runs/**/results.json"))) == 6
