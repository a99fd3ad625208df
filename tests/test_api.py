"""The Python API on raw ids, and the CLI that sits on it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file
from typer.testing import CliRunner

import mmgef
from mmgef.cli import app
from mmgef.data.formats import read_native
from mmgef.errors import MMGEFError


@pytest.fixture(scope="module")
def run_dir(tiny_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "run"
    return mmgef.train({"model": "lightgcn", "data": {"name": str(tiny_dir)},
                        "train": {"epochs": 3, "progress": False, "lr": 0.01}}, out)


@pytest.fixture(scope="module")
def model(run_dir):
    return mmgef.load(run_dir)


def test_train_returns_the_run_directory(run_dir):
    assert (run_dir / "results.json").is_file() and (run_dir / "model.safetensors").is_file()


def test_recommend_excludes_everything_the_user_has_and_is_sorted(model, tiny_dir):
    ds = read_native(tiny_dir)
    user = "u5"
    had = {str(ds.item_ids[i]) for i in ds.items[ds.users == list(ds.user_ids).index(user)]}
    recs = model.recommend(user, k=10)
    assert len(recs) == 10 and not had & {i for i, _ in recs}
    scores = [s for _, s in recs]
    assert scores == sorted(scores, reverse=True)
    with_seen = model.recommend(user, k=len(model.item_ids), exclude_seen=False)
    assert had <= {i for i, _ in with_seen}


def test_recommend_many_equals_one_by_one(model):
    users = model.user_ids[:7] + [model.user_ids[0]]
    many = model.recommend_many(users, k=5, batch_size=3)
    single = [model.recommend(u, k=5) for u in users]
    assert [[i for i, _ in r] for r in many] == [[i for i, _ in r] for r in single]
    assert np.allclose([[s for _, s in r] for r in many], [[s for _, s in r] for r in single], atol=1e-6)


def test_recommend_matches_the_embeddings(model):
    user_ids, users = model.user_embeddings()
    item_ids, items = model.item_embeddings()
    assert users.shape == (len(user_ids), items.shape[1]) and items.shape[0] == len(item_ids)
    item, score = model.recommend(user_ids[3], k=1, exclude_seen=False)[0]
    assert score == pytest.approx(float(users[3] @ items[item_ids.index(item)]), rel=1e-5)
    assert item == item_ids[int(np.argmax(items @ users[3]))]


def test_similar_items_are_cosine_neighbours_without_the_item(model):
    item_ids, items = model.item_embeddings()
    similar = model.similar_items(item_ids[0], k=5)
    assert item_ids[0] not in {i for i, _ in similar} and len(similar) == 5
    unit = items / np.linalg.norm(items, axis=1, keepdims=True)
    sims = unit @ unit[0]
    sims[0] = -np.inf
    assert similar[0][0] == item_ids[int(np.argmax(sims))]


def test_unknown_ids_and_bad_k_are_clear_errors(model):
    with pytest.raises(MMGEFError, match="user 'nobody' is not in this run's data"):
        model.recommend("nobody")
    with pytest.raises(MMGEFError, match="item 'nothing' is not in this run's data"):
        model.similar_items("nothing")
    with pytest.raises(MMGEFError, match="k=0: must be a positive integer"):
        model.recommend(model.user_ids[0], k=0)


def test_cli_recommend_equals_the_api_for_one_user_and_a_file_of_users(model, run_dir, tmp_path):
    runner = CliRunner()
    one = runner.invoke(app, ["recommend", str(run_dir), "--user", "u5", "--k", "4"])
    assert one.exit_code == 0, one.output
    rows = [line.split("\t") for line in one.output.strip().splitlines()]
    assert [(r[1], round(float(r[2]), 4)) for r in rows] == [(i, round(s, 4)) for i, s in model.recommend("u5", k=4)]
    users = tmp_path / "users.txt"
    users.write_text("u1\nu2\n\nu3\n")
    many = runner.invoke(app, ["recommend", str(run_dir), "--users-file", str(users), "--k", "3", "--json"])
    assert many.exit_code == 0, many.output
    got = json.loads(many.output)
    want = model.recommend_many(["u1", "u2", "u3"], k=3)
    assert list(got) == ["u1", "u2", "u3"]
    assert [[(d["item"], d["score"]) for d in got[u]] for u in got] == want


def test_export_writes_vectors_with_their_ids(model, run_dir, tmp_path):
    res = CliRunner().invoke(app, ["export", str(run_dir), "--out", str(tmp_path / "exp")])
    assert res.exit_code == 0, res.output
    tensors = load_file(str(tmp_path / "exp" / "embeddings.safetensors"))
    assert (tmp_path / "exp" / "item_ids.txt").read_text().split() == model.item_ids
    assert (tmp_path / "exp" / "user_ids.txt").read_text().split() == model.user_ids
    assert np.allclose(tensors["item_emb"], model.item_embeddings()[1])
    assert json.loads((tmp_path / "exp" / "manifest.json").read_text())["items"] == len(model.item_ids)


def test_models_lists_every_model_and_one_models_keys():
    runner = CliRunner()
    listing = runner.invoke(app, ["models"])
    assert listing.exit_code == 0 and all(f"| {m} |" in listing.output for m in ("mmgef", "lattice", "freedom", "mcpt"))
    keys = runner.invoke(app, ["models", "mmgef"])
    assert keys.exit_code == 0 and "| cf_k | int | 10 |" in keys.output and "| lambda_coeff | float | 0.9 |" in keys.output
    bad = runner.invoke(app, ["models", "nope"])
    assert bad.exit_code == 2 and "unknown model or preset 'nope'" in bad.output
