"""Cold start through the service against cold start offline, on one run trained with the cold split.

The run's items without training interactions are held out of the catalogue, added back one by one
with ``POST /items`` (their feature vectors only), and test Recall@K over every item is computed
from the service's ``/recommendations`` answers. With ``cold_ids=none`` (cold items have no ID
embedding, as a new item has none) the two figures are the same model applied to the same items
and agree to float precision; with the papers' default (``trained``: a cold item keeps the ID
embedding it got as a sampled negative) they differ by that term.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from fastapi.testclient import TestClient

from mmgef.eval.metrics import compute
from mmgef.runs import Prepared, evaluate_loaded, load_run
from mmgef.serve.app import create_app
from mmgef.serve.catalog import Catalog


def recall_from_service(client: TestClient, p: Prepared, k: int = 20) -> float:
    """Test Recall@K over every item, train + valid items masked as offline, from /recommendations answers."""
    masked = (p.split.train + p.split.valid).tocsr()
    test = p.split.test.tocsr()
    item_ids = [str(i) for i in p.dataset.item_ids]
    user_ids = [str(u) for u in p.dataset.user_ids]
    hits, n_rel = [], []
    for u in np.flatnonzero(np.diff(test.indptr)):
        truth = {item_ids[j] for j in test.indices[test.indptr[u] : test.indptr[u + 1]]}
        hide = {item_ids[j] for j in masked.indices[masked.indptr[u] : masked.indptr[u + 1]]}
        got = client.get(f"/users/{user_ids[u]}/recommendations",
                         params={"k": min(1000, k + len(hide)), "exclude_seen": False}).json()["items"]
        top = [x["item"] for x in got if x["item"] not in hide][:k]
        hits.append([x in truth for x in top] + [False] * (k - len(top)))
        n_rel.append(len(truth))
    return float(compute(torch.tensor(hits), torch.tensor(n_rel), [k])[f"recall@{k}"].mean())


def cold_start_through_service(run_dir: Path, db: Path, k: int = 20) -> dict[str, float | int]:
    """``offline`` (`mmgef evaluate`'s test Recall@K) and ``served`` (the same from the service's answers
    after the cold items were added through it), and how many items were added. The run is loaded once:
    the catalogue rebuilds its own model, so the loaded one is evaluated as it is."""
    p = load_run(run_dir, keep_context=True)
    offline = evaluate_loaded(p)["test"][f"recall@{k}"]
    content = p.ctx.content  # type: ignore[union-attr]
    cold = p.split.untrained_items()
    cold_ids = [str(p.dataset.item_ids[j]) for j in cold]
    vectors = {item: {m: x[j].tolist() for m, x in content.items()} for j, item in zip(cold, cold_ids)}
    with TestClient(create_app(catalog=Catalog(p, hold_out=cold_ids), db=db)) as client:
        for item in cold_ids:
            r = client.post("/items", json={"item": item, "features": vectors[item]})
            if r.status_code != 201:
                raise RuntimeError(f"POST /items {item}: {r.status_code} {r.text}")
        served = recall_from_service(client, p, k)
    return {"offline": offline, "served": served, "added": len(cold_ids)}
