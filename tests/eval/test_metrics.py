import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mmgef.eval.evaluator import Evaluator, top_k_by_index
from mmgef.eval.metrics import compute


def test_metrics_by_hand():
    # user 0: ranks 1 and 3 relevant out of 2 relevant; user 1: nothing relevant in top 3 of 4 relevant
    hits = torch.tensor([[1, 0, 1], [0, 0, 0]])
    n_rel = torch.tensor([2, 4])
    m = compute(hits, n_rel, [1, 3])
    assert m["recall@3"].tolist() == [1.0, 0.0]
    assert m["precision@3"].tolist() == pytest.approx([2 / 3, 0.0])
    assert m["recall@1"].tolist() == [0.5, 0.0]
    assert m["hit@1"].tolist() == [1.0, 0.0]
    idcg = 1 + 1 / math.log2(3)
    assert m["ndcg@3"][0].item() == pytest.approx((1 + 1 / math.log2(4)) / idcg)
    assert m["ndcg@1"][0].item() == pytest.approx(1.0)  # IDCG over min(K, |rel|) = 1 position


def _slow_reference(scores, target, exclude, ks, candidates=None):
    """Obvious per-user loops, no vectorisation."""
    out = {}
    n_users = 0
    for u in range(scores.shape[0]):
        rel = set(target[u].indices.tolist())
        if not rel:
            continue
        n_users += 1
        banned = set(exclude[u].indices.tolist())
        items = [i for i in range(scores.shape[1]) if i not in banned and (candidates is None or i in candidates)]
        ranked = sorted(items, key=lambda i: (-scores[u, i], i))
        for k in ks:
            top = ranked[:k]
            h = [1 if i in rel else 0 for i in top]
            dcg = sum(x / math.log2(r + 2) for r, x in enumerate(h))
            idcg = sum(1 / math.log2(r + 2) for r in range(min(k, len(rel))))
            for name, v in (("recall", sum(h) / len(rel)), ("precision", sum(h) / k), ("ndcg", dcg / idcg), ("hit", float(sum(h) > 0))):
                out[f"{name}@{k}"] = out.get(f"{name}@{k}", 0.0) + v
    return {k: v / n_users for k, v in out.items()}


@pytest.mark.parametrize("use_candidates", [False, True])
def test_evaluator_matches_slow_reference(use_candidates):
    rng = np.random.default_rng(0)
    n_users, n_items = 37, 50
    scores = rng.normal(size=(n_users, n_items)).astype(np.float32)
    train = sp.random(n_users, n_items, density=0.15, random_state=1, format="csr")
    train.data[:] = 1
    test = sp.random(n_users, n_items, density=0.08, random_state=2, format="csr")
    test = (test - test.multiply(train)).tocsr()
    test.eliminate_zeros()
    test.data[:] = 1
    candidates = np.sort(rng.choice(n_items, 25, replace=False)) if use_candidates else None
    ks = [1, 5, 20]
    ev = Evaluator(test, [train], ks, batch_size=8, candidates=candidates)
    got = ev.evaluate(lambda users, items: torch.from_numpy(scores)[users][:, items])
    want = _slow_reference(scores, test, train, ks, None if candidates is None else set(candidates.tolist()))
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    per_user = ev.per_user(lambda users, items: torch.from_numpy(scores)[users][:, items])
    assert per_user.keys() == got.keys()
    for key, values in per_user.items():  # one value per evaluated user, in ev.users order; their mean is evaluate's
        assert values.shape == (ev.n_users,) and values.mean() == pytest.approx(got[key], abs=1e-12), key
    u = int(ev.users[3])
    first = _slow_reference(scores[u : u + 1], test[u], train[u], ks, None if candidates is None else set(candidates.tolist()))
    assert {key: values[3] for key, values in per_user.items()} == pytest.approx(first, abs=1e-12)


def test_evaluator_masks_training_items_and_skips_users_without_targets():
    # 3 items; user 0 trained on item 0 (highest score) and tests on item 1; user 1 has no test item.
    train = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32))
    test = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 0]], dtype=np.float32))
    scores = torch.tensor([[9.0, 5.0, 1.0], [0.0, 0.0, 0.0]])
    ev = Evaluator(test, [train], [1])
    assert ev.n_users == 1
    m = ev.evaluate(lambda u, items: scores[u][:, items])
    assert m["recall@1"] == 1.0  # item 0 is masked, so item 1 comes first
    no_mask = Evaluator(test, [], [1]).evaluate(lambda u, items: scores[u][:, items])
    assert no_mask["recall@1"] == 0.0


def test_k_larger_than_catalogue_counts_missing_ranks_as_misses():
    test = sp.csr_matrix(np.array([[1, 0]], dtype=np.float32))
    m = Evaluator(test, [], [5]).evaluate(lambda u, items: torch.tensor([[1.0, 0.0]])[:, items])
    assert m["recall@5"] == 1.0 and m["precision@5"] == pytest.approx(0.2)


def test_non_positive_k_is_rejected():
    with pytest.raises(ValueError, match="positive"):
        Evaluator(sp.csr_matrix((2, 2)), [], [0])


@pytest.mark.parametrize("block", [1, 7, 40, 10_000])
def test_item_blocks_merge_to_the_same_top_k_as_one_block(block):
    rng = np.random.default_rng(3)
    n_users, n_items = 50, 97
    scores = torch.from_numpy(rng.standard_normal((n_users, n_items)).astype(np.float32))
    train = sp.random(n_users, n_items, density=0.1, random_state=4, format="csr")
    test = sp.random(n_users, n_items, density=0.05, random_state=5, format="csr")
    test = (test - test.multiply(train.astype(bool))).tocsr()
    test.eliminate_zeros()
    cands = np.sort(rng.choice(n_items, 60, replace=False))
    whole = Evaluator(test, [train], [1, 5, 20, 50], batch_size=16, candidates=cands, item_block=n_items)
    blocked = Evaluator(test, [train], [1, 5, 20, 50], batch_size=16, candidates=cands, item_block=block)
    seen: list[int] = []

    def score(users, items):
        seen.append(len(range(n_items)[items]))
        return scores[users][:, items]

    users = whole.users[:16]
    assert torch.equal(whole.top_items(score, users), blocked.top_items(score, users))
    assert max(seen) <= max(block, n_items) and min(seen) <= block
    assert blocked.evaluate(score) == pytest.approx(whole.evaluate(score), abs=1e-12)


def test_ties_rank_by_item_index_whatever_k_block_or_batch():
    """Scores drawn from 3 levels: most of the top K is tied. The top items must be the largest scores with
    the lowest indices among equals, and a K-truncated list must be the prefix of a longer one."""
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 300
    scores = torch.from_numpy(rng.integers(0, 3, (n_users, n_items)).astype(np.float32))
    test = sp.random(n_users, n_items, density=0.1, random_state=1, format="csr")

    def score(users, items):
        return scores[users][:, items]

    # expected: by score descending, then index ascending
    expected = torch.from_numpy(np.lexsort((np.arange(n_items)[None].repeat(n_users, 0), -scores.numpy()), axis=1))
    users = np.arange(n_users)
    for ks, block, batch in [([20], 65_536, 1024), ([60], 65_536, 7), ([5, 60], 13, 1024), ([60], 1, 3)]:
        ev = Evaluator(test, [], ks, batch_size=batch, item_block=block)
        top = ev.top_items(score, users)
        assert torch.equal(top, expected[:, : ks[-1]]), (ks, block)
    r20 = Evaluator(test, [], [20]).evaluate(score)["recall@20"]
    assert Evaluator(test, [], [10, 20, 60], item_block=17).evaluate(score)["recall@20"] == pytest.approx(r20, abs=1e-12)


def test_top_k_by_index_keeps_untied_rows_as_topk_orders_them():
    values = torch.tensor([[0.5, 2.0, 1.0, 2.0], [3.0, 1.0, 2.0, 0.0]])
    vals, ids = top_k_by_index(values, torch.arange(4).expand(2, -1), 2)
    assert ids.tolist() == [[1, 3], [0, 2]] and vals.tolist() == [[2.0, 2.0], [3.0, 2.0]]


def test_a_seeded_user_sample_is_reproducible_and_a_subset():
    test = sp.random(500, 40, density=0.1, random_state=1, format="csr")
    a = Evaluator(test, [], [5], sample_users=100, seed=7)
    b = Evaluator(test, [], [5], sample_users=100, seed=7)
    full = Evaluator(test, [], [5])
    assert a.n_users == 100 and np.array_equal(a.users, b.users) and set(a.users) <= set(full.users)
    assert not np.array_equal(a.users, Evaluator(test, [], [5], sample_users=100, seed=8).users)
