"""new_item_scores=standardised: untrained items' scores take the trained items' mean and spread per user."""

import json

import numpy as np
import pytest
import torch

import mmgef
from mmgef import runs
from mmgef.data.split import make_split
from mmgef.data.synthetic import SyntheticConfig, generate
from mmgef.models.base import ModelContext
from mmgef.models.new_items import standardise_new_items
from tests.helpers import make_model


def test_untrained_scores_take_the_trained_items_moments_and_keep_their_order():
    g = torch.Generator().manual_seed(0)
    users, items = torch.randn(5, 8, generator=g), torch.randn(300, 8, generator=g)
    items[:60] = 0.2 * items[:60] - 1.0  # the untrained items: lower, narrower scores
    cold = torch.zeros(300, dtype=torch.bool)
    cold[:60] = True
    raw = users @ items.T
    u, i = standardise_new_items(users, items, cold)
    out = torch.cat([u @ i[:128].T, u @ i[128:].T], dim=1)  # in item blocks, as the evaluator scores
    assert u.shape == (5, 17) and i.shape == (300, 17)
    assert torch.allclose(out[:, ~cold], raw[:, ~cold], atol=1e-5)  # trained items untouched
    assert torch.allclose(out[:, cold].mean(1), raw[:, ~cold].mean(1), atol=1e-4)
    assert torch.allclose(out[:, cold].std(1), raw[:, ~cold].std(1), atol=1e-4)
    assert not torch.allclose(raw[:, cold].mean(1), raw[:, ~cold].mean(1), atol=1e-1)  # they differed before
    assert torch.equal(out[:, cold].argsort(1), raw[:, cold].argsort(1))


def test_without_own_items_the_scale_is_the_warm_items_each_user_can_still_be_shown():
    g = torch.Generator().manual_seed(1)
    users, items = torch.randn(6, 8, generator=g), torch.randn(200, 8, generator=g)
    cold = torch.zeros(200, dtype=torch.bool)
    cold[150:] = True
    rows = torch.tensor([0, 0, 0, 1, 3, 3, 5])  # user 2 and 4 have no training items
    cols = torch.tensor([3, 7, 9, 10, 0, 149, 20])
    u, i = standardise_new_items(users, items, cold, (rows, cols))
    out, raw = u @ i.T, users @ items.T
    assert torch.allclose(out[:, ~cold], raw[:, ~cold], atol=1e-5)
    for user in range(6):
        shown = torch.ones(200, dtype=torch.bool)
        shown[cols[rows == user]] = False
        warm = raw[user, ~cold & shown]
        assert torch.allclose(out[user, cold].mean(), warm.mean(), atol=1e-4)
        assert torch.allclose(out[user, cold].std(), warm.std(), atol=1e-4)
    u_all, i_all = standardise_new_items(users, items, cold)  # with the own items in, user 0's scale differs
    assert not torch.allclose((u_all @ i_all.T)[0, cold], out[0, cold], atol=1e-4)


def test_with_fewer_than_two_untrained_items_the_vectors_are_unchanged():
    users, items = torch.randn(4, 6), torch.randn(50, 6)
    one = torch.zeros(50, dtype=torch.bool)
    one[7] = True
    u, i = standardise_new_items(users, items, one)
    assert u is users and i is items


@pytest.fixture(scope="module")
def cold_ctx() -> ModelContext:
    ds = generate(SyntheticConfig(n_users=150, n_items=100, seed=3))
    split = make_split(ds, "cold", 0)
    assert len(split.untrained_items()) >= 10
    return ModelContext(ds.n_users, ds.n_items, split.train, ds.content)


@pytest.mark.parametrize("name,value", [("mmgef", "standardised"), ("vbpr", "standardised"), ("lightgcn", "standardised"),
                                        ("vbpr", "standardised_unseen")])
def test_the_option_changes_only_untrained_items_scores(cold_ctx, name, value):
    untrained = np.diff(cold_ctx.train.tocsc().indptr) == 0
    torch.manual_seed(0)
    raw = make_model(name, {}, cold_ctx).eval()
    torch.manual_seed(0)
    std = make_model(name, {"new_item_scores": value}, cold_ctx).eval()
    std.load_state_dict(raw.state_dict())
    users = torch.arange(20)
    a, b = raw.scores(users), std.scores(users)
    assert torch.allclose(a[:, ~untrained], b[:, ~untrained], atol=1e-5)
    if value == "standardised":
        assert torch.allclose(b[:, untrained].mean(1), b[:, ~untrained].mean(1), atol=1e-4)
    if name != "lightgcn":  # LightGCN's untrained items hold only their random ID rows: already near the mean
        assert not torch.allclose(a[:, untrained], b[:, untrained], atol=1e-3)
    u, i = std.ranking_vectors()
    assert torch.allclose(u[users] @ i.T, b)
    assert not {"untrained", "own_rows", "own_cols"} & set(std.state_dict())  # derived from the training data, never saved


def test_a_training_step_refreshes_the_standardised_scores(cold_ctx):
    model = make_model("vbpr", {"new_item_scores": "standardised"}, cold_ctx).eval()
    before = model.scores(torch.arange(5)).clone()
    model.train()
    with torch.no_grad():
        model.user_emb.weight.mul_(2.0)
    model.eval()
    assert torch.allclose(model.scores(torch.arange(5)), 2 * before, atol=1e-4)  # affine in u: doubles with u


def test_a_saved_run_reproduces_its_metrics_and_serves_the_scores_it_was_measured_with(tiny_dir, tmp_path):
    run = mmgef.train({"model": "vbpr", "params": {"new_item_scores": "standardised"},
                       "data": {"name": str(tiny_dir), "split": "cold"},
                       "train": {"epochs": 2, "progress": False, "lr": 0.01}}, tmp_path / "run")
    loaded = mmgef.load(run)
    reported = json.loads((run / "results.json").read_text())["test"]
    assert runs.evaluate(run)["test"] == pytest.approx(reported)
    user_ids, users = loaded.user_embeddings()
    item_ids, items = loaded.item_embeddings()
    scores = loaded.model.scores(torch.arange(len(user_ids))).cpu().numpy()
    assert np.allclose(users @ items.T, scores, atol=1e-5)
    item, score = loaded.recommend(user_ids[2], k=1, exclude_seen=False)[0]
    assert item == item_ids[int(np.argmax(scores[2]))]
