import numpy as np
import pytest
import torch

from mmgef.config import TrainConfig
from mmgef.data.dataset import Dataset
from mmgef.data.split import make_split
from mmgef.data.synthetic import SyntheticConfig, generate
from mmgef.errors import ConfigError


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return generate(SyntheticConfig(n_users=300, n_items=200, seed=1))


def _pairs(m):
    c = m.tocoo()
    return set(zip(c.row.tolist(), c.col.tolist()))


def test_random_split_is_disjoint_complete_and_about_8_1_1(ds):
    s = make_split(ds, "random", seed=0)
    tr, va, te = _pairs(s.train), _pairs(s.valid), _pairs(s.test)
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert len(tr | va | te) == ds.n_interactions
    assert abs(len(tr) / ds.n_interactions - 0.8) < 0.03
    assert abs(len(te) / ds.n_interactions - 0.1) < 0.03
    # every user with >= 3 interactions has at least one valid and one test item
    counts = np.bincount(ds.users, minlength=ds.n_users)
    for u in np.flatnonzero(counts >= 3):
        assert s.valid[u].nnz >= 1 and s.test[u].nnz >= 1


def test_random_split_seeded(ds):
    a, b, c = make_split(ds, "random", 0), make_split(ds, "random", 0), make_split(ds, "random", 1)
    assert (a.test != b.test).nnz == 0
    assert (a.test != c.test).nnz > 0


def test_users_with_fewer_than_three_interactions_stay_in_training():
    ds = Dataset("t", np.array(["a", "b"]), np.array(["x", "y", "z", "w"]),
                 users=np.array([0, 0, 1, 1, 1, 1]), items=np.array([0, 1, 0, 1, 2, 3]))
    s = make_split(ds, "random", 0)
    assert s.train[0].nnz == 2 and s.valid[0].nnz == 0 and s.test[0].nnz == 0
    assert s.valid[1].nnz == 1 and s.test[1].nnz == 1


def test_temporal_split_puts_latest_in_test(ds):
    s = make_split(ds, "temporal", 0)
    ts = {(u, i): t for u, i, t in zip(ds.users.tolist(), ds.items.tolist(), ds.timestamps.tolist())}
    for u in range(50):
        tr = [ts[(u, i)] for i in s.train[u].indices]
        te = [ts[(u, i)] for i in s.test[u].indices]
        if tr and te:
            assert max(tr) <= min(te)


def test_cold_split_removes_cold_items_from_training(ds):
    s = make_split(ds, "cold", 0, cold_ratio=0.2)
    seen = np.unique(ds.items)
    assert len(s.cold_items) == round(0.2 * len(seen))
    assert abs(len(s.cold_valid_items) - len(s.cold_test_items)) <= 1
    assert not set(s.cold_valid_items) & set(s.cold_test_items)
    assert s.train[:, s.cold_items].nnz == 0
    assert set(s.test.tocoo().col.tolist()) <= set(s.cold_test_items.tolist())
    assert set(s.valid.tocoo().col.tolist()) <= set(s.cold_valid_items.tolist())
    # all interactions of cold test items are in test
    assert s.test.nnz == int(np.isin(ds.items, s.cold_test_items).sum())
    assert s.candidates("test") is None  # MM-GEF §4.5: "the test set contains all items"


def test_cold_all_item_protocol_ranks_warm_items_too(ds):
    """A model that scores every warm item above every cold one gets zero cold recall when all items compete,
    and full credit under cold_only, where warm items are never ranked."""
    from mmgef.training.trainer import make_evaluators

    results = {}
    for protocol in ("all", "cold_only"):
        s = make_split(ds, "cold", 0, cold_ratio=0.2, cold_eval=protocol)
        warm_first = torch.zeros(ds.n_items)
        warm_first[torch.as_tensor(np.setdiff1d(np.arange(ds.n_items), s.cold_items))] = 1.0
        _, test = make_evaluators(s, TrainConfig(topk=[20], eval_batch_size=64), "cpu")
        results[protocol] = test.evaluate(lambda users, items: warm_first[items].expand(len(users), -1))["recall@20"]
    assert s.candidates("test") is s.cold_test_items
    assert results["all"] == 0.0
    assert results["cold_only"] > 0.5


def test_cold_split_with_warm_targets_mixes_warm_and_new_items(ds):
    """cold_targets=new+warm: the same held-out items as the papers' protocol, and about 10% + 10% of the warm
    interactions per user in validation and test beside them; nothing of a cold item is trained on."""
    new = make_split(ds, "cold", 0)
    mixed = make_split(ds, "cold", 0, cold_targets="new+warm")
    assert np.array_equal(mixed.cold_test_items, new.cold_test_items)
    assert mixed.train[:, mixed.cold_items].nnz == 0
    assert _pairs(new.test) < _pairs(mixed.test) and _pairs(new.valid) < _pairs(mixed.valid)
    warm_test = _pairs(mixed.test) - _pairs(new.test)
    assert not {i for _, i in warm_test} & set(mixed.cold_items.tolist())
    assert not _pairs(mixed.train) & (_pairs(mixed.valid) | _pairs(mixed.test))
    assert len(_pairs(mixed.train) | _pairs(mixed.valid) | _pairs(mixed.test)) == ds.n_interactions
    warm_total = ds.n_interactions - int(np.isin(ds.items, new.cold_items).sum())
    assert abs(len(warm_test) / warm_total - 0.1) < 0.03
    # a model that ranks every new item first now loses the warm hits it displaces
    from mmgef.training.trainer import make_evaluators

    cold_first = torch.zeros(ds.n_items)
    cold_first[torch.as_tensor(new.cold_items)] = 1.0
    recall = {}
    for name, s in (("new", new), ("mixed", mixed)):
        _, test = make_evaluators(s, TrainConfig(topk=[20], eval_batch_size=64), "cpu")
        recall[name] = test.evaluate(lambda users, items: cold_first[items].expand(len(users), -1))["recall@20"]
    assert recall["mixed"] < 0.8 * recall["new"]


def test_warm_targets_need_every_item_ranked(ds):
    with pytest.raises(ConfigError, match="every item must be ranked"):
        make_split(ds, "cold", 0, cold_eval="cold_only", cold_targets="new+warm")


def test_given_split_needs_labels(ds):
    with pytest.raises(ConfigError, match="no given split"):
        make_split(ds, "given", 0)
    assert make_split(ds, "auto", 0).kind == "random"


def test_item_degree_by_part_measures_how_popular_each_parts_items_are_in_training():
    import scipy.sparse as sp

    from mmgef.data.split import Split

    def pairs(rows, cols):
        return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(4, 5))

    # item 0: 4 training users, item 1: 2, item 2: 1; items 3 and 4 none
    train = pairs([0, 1, 2, 3, 0, 1, 2], [0, 0, 0, 0, 1, 1, 2])
    s = Split("given", train, valid=pairs([3, 2], [1, 3]), test=pairs([0, 1, 2, 3], [4, 4, 3, 2]))
    got = s.item_degree_by_part(rare=1)
    assert got["train"] == {"median_item_degree": 4.0, "share_untrained": 0.0, "share_at_most_1": round(1 / 7, 4)}
    assert got["valid"] == {"median_item_degree": 1.0, "share_untrained": 0.5, "share_at_most_1": 0.5}
    assert got["test"] == {"median_item_degree": 0.0, "share_untrained": 0.75, "share_at_most_1": 1.0}
