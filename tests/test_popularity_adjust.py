"""benchmarks/bench_popularity_adjust.py: a popularity re-scoring of saved runs, β chosen on validation."""

from pathlib import Path

import numpy as np
import pytest

from mmgef import runs
from mmgef.config import resolve_run_config
from tests.helpers import load_benchmark

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_beta_zero_is_the_run_and_a_huge_beta_ranks_the_rarest_items_first(tiny_dir, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # it imports bench_cold_exposure's helpers
    adjust = load_benchmark("bench_popularity_adjust")
    cfg = resolve_run_config(model="mf", data=str(tiny_dir), sets=["epochs=3", "progress=false", "lr=0.05"])
    made = runs.train(cfg, tmp_path / "mf")
    got = adjust.recall_by_beta(tmp_path / "mf", betas=(0.0, 1e6))
    assert got["valid"][0.0] == pytest.approx(made["valid"]["recall@20"], abs=1e-9)
    assert got["test"][0.0] == pytest.approx(made["test"]["recall@20"], abs=1e-9)

    # β → ∞: each user's unseen items in order of rising training degree (ties: any order, so compare the bound)
    s = runs.load_run(tmp_path / "mf").split
    degree = np.diff(s.train.tocsc().indptr)
    seen, test = (s.train + s.valid).toarray() > 0, s.test.toarray() > 0
    users = np.flatnonzero(test.any(axis=1))
    best, worst = [], []
    for u in users:
        free = np.flatnonzero(~seen[u])
        cut = np.sort(degree[free])[min(19, len(free) - 1)]  # the 20th smallest degree among the candidates
        sure = free[degree[free] < cut]
        tied = free[degree[free] == cut]
        room = 20 - len(sure)
        hits_sure, hits_tied = test[u, sure].sum(), test[u, tied].sum()
        best.append((hits_sure + min(room, hits_tied)) / test[u].sum())
        worst.append((hits_sure + max(0, room - (len(tied) - hits_tied))) / test[u].sum())
    assert np.mean(worst) - 1e-9 <= got["test"][1e6] <= np.mean(best) + 1e-9
