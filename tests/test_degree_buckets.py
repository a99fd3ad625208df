"""benchmarks/bench_degree_buckets.py: Recall@20 and top-20 exposure by the target item's training degree."""

from pathlib import Path

import numpy as np
import pytest
import torch

from mmgef import runs
from mmgef.config import resolve_run_config
from tests.helpers import load_benchmark

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def buckets(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # it imports bench_cold_exposure's helpers
    return load_benchmark("bench_degree_buckets")


def test_buckets_split_the_items_by_degree_untrained_first(buckets):
    degree = np.array([0, 3, 1, 0, 7, 2, 9, 5, 1, 4])
    out = buckets.degree_buckets(degree, np.arange(10))
    assert out[0][0] == "0 (untrained)" and set(out[0][1]) == {0, 3}
    items = np.concatenate([ids for _, ids in out])
    assert sorted(items) == list(range(10))  # every item once
    highest = [degree[ids].max() for _, ids in out[1:]]
    lowest = [degree[ids].min() for _, ids in out[1:]]
    assert all(h < lo for h, lo in zip(highest, lowest[1:]))  # ranges ascend and do not overlap


def test_bucket_recall_and_share_match_a_direct_count(buckets, tiny_dir, tmp_path):
    cfg = resolve_run_config(model="mf", data=str(tiny_dir), sets=["epochs=3", "progress=false", "lr=0.05"])
    made = runs.train(cfg, tmp_path / "mf")
    got = buckets.measure(tmp_path / "mf")
    assert got["all"]["R@20"] == pytest.approx(made["test"]["recall@20"], abs=1e-9)
    assert sum(b["pairs"] for name, b in got.items() if name != "all") == got["all"]["pairs"]

    # the same numbers from the full score matrix, for every bucket
    p = runs.load_run(tmp_path / "mf")
    s = p.split
    with torch.no_grad():
        scores = p.model.scores(torch.arange(s.train.shape[0]), slice(None)).numpy()
    seen = (s.train + s.valid).toarray() > 0
    scores[seen] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :20]
    test = s.test.toarray() > 0
    degree = np.asarray(s.train.sum(axis=0)).ravel()
    for name, ids in buckets.degree_buckets(degree, s.test.tocoo().col):
        if name not in got:
            assert not test[:, ids].any()  # dropped only when it holds no test pair
            continue
        member = np.zeros(s.train.shape[1], dtype=bool)
        member[ids] = True
        targets = test & member
        users = np.flatnonzero(targets.any(axis=1))
        recall = np.mean([targets[u, top[u]].sum() / targets[u].sum() for u in users])
        assert got[name]["R@20"] == pytest.approx(recall, abs=1e-6)
        ranked = np.flatnonzero(test.any(axis=1))  # the evaluated users' top 20
        assert got[name]["share"] == pytest.approx(member[top[ranked]].mean(), abs=1e-6)
