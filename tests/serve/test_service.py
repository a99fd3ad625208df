"""The HTTP service: every endpoint and error, inductive items, durability, metrics, the page."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

import mmgef
from mmgef.serve.app import create_app
from mmgef.serve.catalog import Catalog
from mmgef.serve.store import Store
from tests.serve.conftest import TRAIN, with_images


@pytest.fixture(scope="module")
def mmgef_run(tiny_dir, tmp_path_factory):
    return mmgef.train({"model": "mmgef", "data": {"name": str(tiny_dir)}, "train": TRAIN},
                       tmp_path_factory.mktemp("serve") / "mmgef")


@pytest.fixture()
def client(mmgef_run, tmp_path):
    with TestClient(create_app(mmgef_run, db=tmp_path / "s.sqlite")) as c:
        yield c


def _content(run_dir, item: str) -> dict[str, list[float]]:
    cat = Catalog.load(run_dir)
    row = cat.base_items.index(item)
    return {m: x[row].tolist() for m, x in cat.ctx.content.items()}


def test_health_and_recommendations_match_the_python_api(client, mmgef_run):
    h = client.get("/health").json()
    offline = mmgef.load(mmgef_run)
    assert h["status"] == "ok" and h["model"] == "mmgef" and h["accepts_new_items"]
    assert h["items"] == len(offline.item_ids) and h["users"] == len(offline.user_ids)
    for user in offline.user_ids[:5]:
        got = client.get(f"/users/{user}/recommendations", params={"k": 20}).json()
        want = offline.recommend(user, 20)
        assert got["user"] == user and [x["item"] for x in got["items"]] == [i for i, _ in want]
        assert np.allclose([x["score"] for x in got["items"]], [s for _, s in want], atol=1e-5)
    seen = client.get(f"/users/{offline.user_ids[0]}/recommendations", params={"k": 1000, "exclude_seen": False}).json()
    assert len(seen["items"]) == len(offline.item_ids)


def test_similar_items_and_graph_neighbours(client, mmgef_run):
    item = mmgef.load(mmgef_run).item_ids[3]
    r = client.get(f"/items/{item}/similar", params={"k": 5}).json()
    assert r["item"] == item and len(r["items"]) == 5 and item not in [x["item"] for x in r["items"]]
    scores = [x["score"] for x in r["items"]]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 + 1e-6 for s in scores)
    assert 0 < len(r["graph_neighbours"]) <= 5


def test_errors(client, mmgef_run):
    user, item = mmgef.load(mmgef_run).user_ids[0], mmgef.load(mmgef_run).item_ids[0]
    r = client.get("/users/nobody/recommendations")
    assert r.status_code == 404 and "user 'nobody'" in r.json()["detail"]
    assert client.get("/items/nothing/similar").status_code == 404
    assert client.get(f"/users/{user}/recommendations", params={"k": 0}).status_code == 422
    assert client.get(f"/users/{user}/recommendations", params={"k": 1001}).status_code == 422
    widths = client.get("/health").json()["modalities"]
    good = {m: [0.1] * w for m, w in widths.items()}
    m0 = next(iter(widths))
    bad = client.post("/items", json={"item": "n1", "features": {**good, m0: [0.1] * (widths[m0] - 1)}})
    assert bad.status_code == 422 and f"modality '{m0}'" in bad.json()["detail"]
    nan = client.post("/items", content=('{"item": "n2", "features": {' + ", ".join(
        f'"{m}": [{"NaN" if m == m0 else "0.1"}' + ", 0.1" * (w - 1) + "]" for m, w in widths.items()) + "}}"),
        headers={"content-type": "application/json"})
    assert nan.status_code == 422
    assert client.post("/items", json={"item": item, "features": good}).status_code == 409
    assert client.post("/interactions", json={"user": user, "item": "nothing"}).status_code == 404


def test_a_new_item_is_placed_from_its_content_and_recommended_at_once(client, mmgef_run, tmp_path):
    offline = mmgef.load(mmgef_run)
    twin_of = offline.item_ids[7]
    r = client.post("/items", json={"item": "new-1", "title": "A new one", "features": _content(mmgef_run, twin_of)})
    assert r.status_code == 201 and r.json()["items"] == len(offline.item_ids) + 1
    similar = [x["item"] for x in client.get(f"/items/{twin_of}/similar", params={"k": 3}).json()["items"]]
    assert "new-1" in similar  # the same content lands next to its twin
    user = offline.user_ids[0]
    everything = client.get(f"/users/{user}/recommendations", params={"k": 1000}).json()["items"]
    new = next(x for x in everything if x["item"] == "new-1")
    assert new["title"] == "A new one" and math.isfinite(new["score"])
    assert client.get("/health").json()["added_items"] == 1
    # it survives a restart: a new app on the same store places it again
    with TestClient(create_app(mmgef_run, db=tmp_path / "s.sqlite")) as again:
        assert again.get("/items/new-1/similar").status_code == 200


def test_interactions_are_stored_durably(client, mmgef_run, tmp_path):
    offline = mmgef.load(mmgef_run)
    for user in ("brand-new-user", offline.user_ids[1]):
        r = client.post("/interactions", json={"user": user, "item": offline.item_ids[2]})
        assert r.status_code == 202
    df = Store(tmp_path / "s.sqlite").interactions()
    assert df[["user_id", "item_id"]].values.tolist() == [["brand-new-user", offline.item_ids[2]],
                                                           [offline.user_ids[1], offline.item_ids[2]]]
    import sqlite3

    assert sqlite3.connect(tmp_path / "s.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_metrics_count_requests_and_added_items(client, mmgef_run):
    user = mmgef.load(mmgef_run).user_ids[0]
    for _ in range(3):
        client.get(f"/users/{user}/recommendations")
    text = client.get("/metrics").text
    assert 'mmgef_requests_total{route="/users/{user_id}/recommendations",status="200"} 3.0' in text
    assert "mmgef_request_seconds_bucket" in text and "mmgef_items_added_total 0.0" in text


def test_the_page_and_the_explanations(client, mmgef_run):
    page = client.get("/")
    assert page.status_code == 200 and "Recommendations" in page.text and "/items" in page.text
    user = mmgef.load(mmgef_run).user_ids[0]
    r = client.get(f"/users/{user}/recommendations", params={"k": 5, "explain": True}).json()
    history = {x["item"] for x in r["history"]}
    assert history and all({b["item"] for b in x["because"]} <= history for x in r["items"])
    assert client.get("/users", params={"q": user}).json()["users"][0] == user
    item = mmgef.load(mmgef_run).item_ids[4]
    assert item in [x["item"] for x in client.get("/items", params={"q": item}).json()["items"]]
    assert client.get("/docs").status_code == 200


def test_a_model_without_content_refuses_new_items(tiny_dir, tmp_path):
    run = mmgef.train({"model": "lightgcn", "data": {"name": str(tiny_dir)}, "train": TRAIN}, tmp_path / "lgcn")
    with TestClient(create_app(run, db=tmp_path / "l.sqlite")) as c:
        r = c.post("/items", json={"item": "x", "features": {"text": [0.1]}})
        assert r.status_code == 409 and "no content path" in r.json()["detail"]
        assert not c.get("/health").json()["accepts_new_items"]


def test_faiss_index_gives_the_exact_top_k(mmgef_run):
    exact, indexed = Catalog.load(mmgef_run), Catalog.load(mmgef_run, faiss_above=10)
    assert indexed.view.index is not None and exact.view.index is None
    for user in exact.user_ids[:5]:
        a, b = exact.recommend(user, 10), indexed.recommend(user, 10)
        assert [i for i, _ in a] == [i for i, _ in b] and np.allclose([s for _, s in a], [s for _, s in b], atol=1e-5)


def test_workers_sharing_a_store_pick_up_each_others_items(mmgef_run, tmp_path, monkeypatch):
    """Two apps on one store (as uvicorn workers): each places the items the other added, in any order."""
    import mmgef.serve.app as app_module

    monkeypatch.setattr(app_module, "SYNC_EVERY_S", 0.0)
    offline = mmgef.load(mmgef_run)
    db = tmp_path / "shared.sqlite"
    with TestClient(create_app(mmgef_run, db=db)) as a, TestClient(create_app(mmgef_run, db=db)) as b:
        assert b.post("/items", json={"item": "from-b", "features": _content(mmgef_run, offline.item_ids[1])}).status_code == 201
        assert a.post("/items", json={"item": "from-a", "features": _content(mmgef_run, offline.item_ids[2])}).status_code == 201
        for c in (a, b):
            assert c.get("/items/from-a/similar").status_code == 200 and c.get("/items/from-b/similar").status_code == 200
            assert c.get("/health").json()["added_items"] == 2


@pytest.mark.parametrize("model,params", [("mmgef", {}), ("lattice", {}), ("mmgef", {"new_item_scores": "standardised"})])
def test_cold_start_through_the_service_equals_offline(tiny_dir, tmp_path, model, params):
    """Cold items held out, added back with POST /items: the API's Recall@20 is `mmgef evaluate`'s (with
    standardised new-item scores too: the added items are the untrained ones the moments are taken over)."""
    from mmgef.serve.cold_check import cold_start_through_service

    run = mmgef.train({"model": model, "params": params, "data": {"name": str(tiny_dir), "split": "cold", "cold_ids": "none"},
                       "train": TRAIN}, tmp_path / "run")
    got = cold_start_through_service(run, tmp_path / "s.sqlite")
    assert got["added"] >= 10 and got["offline"] > 0
    assert got["offline"] == mmgef.runs.evaluate(run)["test"]["recall@20"]  # `mmgef evaluate`'s own figure
    assert abs(got["served"] - got["offline"]) < 1e-6, got


def test_withheld_cold_items_keep_no_id_embedding(tiny_dir, tmp_path):
    run = mmgef.train({"model": "mmgef", "data": {"name": str(tiny_dir), "split": "cold", "cold_ids": "none"},
                       "train": TRAIN}, tmp_path / "run")
    p = mmgef.runs.load_run(run)
    cold = p.split.untrained_items()
    emb = p.model.backbone.item_emb.weight.detach()
    assert len(cold) and emb[cold].abs().max() == 0
    warm = np.setdiff1d(np.arange(emb.shape[0]), cold)
    assert emb[warm].abs().min(dim=1).values.gt(0).all()


def test_an_item_sent_as_text_is_encoded_as_mmgef_features_encoded_the_run(minilm_run, tmp_path):
    import pandas as pd

    titles = pd.read_csv(Path(mmgef.load(minilm_run).config.data.location) / "items.csv", dtype=str)
    with TestClient(create_app(minilm_run, db=tmp_path / "s.sqlite")) as c:
        r = c.post("/items", json={"item": "new-by-text", "text": titles.title[3], "title": "a twin of item 3"})
        assert r.status_code == 201, r.text
        recs = c.get(f"/users/{mmgef.load(minilm_run).user_ids[0]}/recommendations", params={"k": 1000}).json()["items"]
        assert "new-by-text" in [x["item"] for x in recs]
    cat = Catalog.load(minilm_run)
    row = cat.base_items.index(str(titles.item_id[3]))
    sent = cat.encode_text(titles.title[3])["text"]
    assert np.allclose(sent, cat.ctx.content["text"][row], atol=1e-5) and cat.text_sources["text"]["encoder"] == "text"
    assert np.abs(sent - cat.ctx.content["text"][row + 1]).max() > 1e-2  # another item's text differs


def test_text_for_a_run_without_an_encoder_manifest_is_a_422(client):
    r = client.post("/items", json={"item": "t", "text": "a red lamp"})
    assert r.status_code == 422 and "send 'features'" in r.json()["detail"]
    assert client.post("/items", json={"item": "t"}).status_code == 422  # neither features nor text


def test_train_reads_the_services_items_and_interactions_back(mmgef_run, tiny_dir, tmp_path):
    from mmgef.data.registry import load_dataset
    from mmgef.errors import DataError

    db = tmp_path / "s.sqlite"
    base = load_dataset(str(tiny_dir))
    with TestClient(create_app(mmgef_run, db=db)) as c:
        item = base.item_ids[0]
        assert c.post("/items", json={"item": "fresh", "features": _content(mmgef_run, item), "title": "Fresh"}).status_code == 201
        posts = [("newcomer", "fresh"), ("newcomer", item), (base.user_ids[0], "fresh"), ("newcomer", "fresh")]
        for user, it in posts:
            assert c.post("/interactions", json={"user": user, "item": it}).status_code == 202
    ds = load_dataset(str(db))
    assert ds.n_items == base.n_items + 1 and ds.n_users == base.n_users + 1
    assert ds.item_ids[-1] == "fresh" and ds.item_texts[-1] == "Fresh" and ds.user_ids[-1] == "newcomer"
    assert len(ds.users) == len(base.users) + 3  # the repeated pair is kept once
    for m, x in ds.content.items():
        assert np.allclose(x[-1], x[0]) and np.allclose(x[:-1], base.content[m])
    run = mmgef.train({"model": "mmgef", "data": {"name": str(db)}, "train": TRAIN}, tmp_path / "retrained")
    again = mmgef.load(run)
    assert "fresh" in again.item_ids and [i for i, _ in again.recommend("newcomer", 5)]
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(DataError, match="not a store"):
        load_dataset(str(tmp_path / "junk.sqlite"))


def test_a_store_bound_to_other_data_is_refused(mmgef_run, tmp_path):
    from mmgef.errors import ConfigError

    Store(tmp_path / "s.sqlite").bind("/somewhere/else")
    with pytest.raises(ConfigError, match="extends dataset /somewhere/else"):
        with TestClient(create_app(mmgef_run, db=tmp_path / "s.sqlite")):
            pass


def test_item_images_from_items_csv_are_served_and_listed(tiny_dir, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_dir, data)
    cells = with_images(data, {1: "https://example.org/one.png", 2: "images/gone.png", 3: ""})
    run = mmgef.train({"model": "mmgef", "data": {"name": str(data)}, "train": TRAIN}, tmp_path / "run")
    items = list(cells)
    with TestClient(create_app(run, db=tmp_path / "s.sqlite")) as c:
        got = c.get(f"/items/{items[0]}/image")
        assert got.status_code == 200 and got.headers["content-type"] == "image/png"
        assert got.content == (data / cells[items[0]]).read_bytes()
        away = c.get(f"/items/{items[1]}/image", follow_redirects=False)
        assert away.status_code == 307 and away.headers["location"] == "https://example.org/one.png"
        gone = c.get(f"/items/{items[2]}/image")
        assert gone.status_code == 404 and "gone.png" in gone.json()["detail"] and "items.csv" in gone.json()["detail"]
        assert c.get(f"/items/{items[3]}/image").status_code == 404
        assert c.get("/items/no-such-item/image").status_code == 404
        user = mmgef.load(run).user_ids[0]
        recs = c.get(f"/users/{user}/recommendations", params={"k": 1000, "explain": True}).json()
        listed = {x["item"]: x.get("image") for x in recs["items"] + recs["history"]}
        assert all((img is not None) == (i not in items[3:4]) for i, img in listed.items())
        assert all(img == f"/items/{i}/image" for i, img in listed.items() if img)
