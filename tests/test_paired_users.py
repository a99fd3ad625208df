"""benchmarks/paired_users.py: user-level paired comparison of two models' runs."""

import json

import numpy as np
import pytest

from mmgef import runs
from mmgef.config import resolve_run_config
from tests.helpers import load_benchmark


def test_paired_users_rescores_runs_user_by_user_and_bootstraps_the_gap(tiny_dir, tmp_path):
    paired = load_benchmark("paired_users")
    made = {}
    for name in ("mf", "lightgcn"):
        for seed in (0, 1):
            cfg = resolve_run_config(model=name, data=str(tiny_dir), seed=seed,
                                     sets=["epochs=3", "progress=false", "lr=0.05"])
            made[name, seed] = runs.train(cfg, tmp_path / f"{name}{seed}")
    a = [tmp_path / "lightgcn0", tmp_path / "lightgcn1"]
    b = [tmp_path / "mf0", tmp_path / "mf1"]
    rows = {(r["split"], r["metric"]): r for r in paired.compare(a, b, ["recall@20", "ndcg@20"], 300)}
    for split in ("valid", "test"):
        for metric in ("recall@20", "ndcg@20"):
            r = rows[split, metric]
            want_a = np.mean([made["lightgcn", s][split][metric] for s in (0, 1)])  # the seeds' results.json, averaged
            want_b = np.mean([made["mf", s][split][metric] for s in (0, 1)])
            assert r["mean_a"] == pytest.approx(want_a, abs=1e-9) and r["mean_b"] == pytest.approx(want_b, abs=1e-9)
            assert r["diff"] == pytest.approx(want_a - want_b, abs=1e-9)
            assert r["ci_low"] <= r["diff"] <= r["ci_high"] and r["se_a"] > 0 and 0 < r["users_differ"] <= 1
    # the random split is drawn per seed, so each seed has its own users: resampled seed by seed, then averaged
    one = {(r["split"], r["metric"]): r for r in paired.compare(a[:1], b[:1], ["recall@20"], 300)}  # one seed: one set
    assert one["test", "recall@20"]["diff"] == pytest.approx(
        made["lightgcn", 0]["test"]["recall@20"] - made["mf", 0]["test"]["recall@20"], abs=1e-9)
    with pytest.raises(SystemExit, match="evaluates other users or targets"):
        paired.compare(a[:1], b[1:], ["recall@20"], 10)
    same = paired.compare(a, a, ["recall@20"], 50)[0]
    assert (same["diff"], same["ci_low"], same["ci_high"], same["users_differ"]) == (0.0, 0.0, 0.0, 0.0)
    # a run whose saved numbers the re-scoring does not give is refused, not compared
    saved = json.loads((a[0] / "results.json").read_text())
    saved["valid"]["recall@20"] += 0.1
    (a[0] / "results.json").write_text(json.dumps(saved))
    with pytest.raises(SystemExit, match="re-scored"):
        paired.compare(a, b, ["recall@20"], 10)


def test_paired_users_command_writes_a_titled_table_and_appends(tiny_dir, tmp_path, monkeypatch):
    paired = load_benchmark("paired_users")
    for name in ("mf", "lightgcn"):
        cfg = resolve_run_config(model=name, data=str(tiny_dir), seed=0, sets=["epochs=2", "progress=false"])
        runs.train(cfg, tmp_path / name)
    monkeypatch.setattr(paired, "RESULTS", tmp_path / "results")
    argv = ["paired_users.py", "--a", str(tmp_path / "lightgcn"), "--b", str(tmp_path / "mf"), "--bootstrap", "20",
            "--label-a", "LGCN", "--label-b", "MF", "--name", "n"]
    for _ in range(2):
        monkeypatch.setattr("sys.argv", argv)
        paired.main()
    md = (tmp_path / "results" / "n" / "paired_users.md").read_text()
    assert md.startswith("# User-level paired tests") and md.count("## LGCN (A) against MF (B)") == 2
    csv = (tmp_path / "results" / "n" / "paired_users.csv").read_text().splitlines()
    assert csv[0].startswith("a,b,split,metric") and len(csv) == 1 + 2 * 4  # one header, 2 splits × 2 metrics per call
