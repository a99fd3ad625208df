"""Cold start through the service against cold start offline.

Trains a model on the cold split (20% of items without training interactions), starts the service
with those items held out of the catalogue, adds them back with POST /items (their feature vectors
only), and computes test Recall@20 over every item from the service's answers; beside it,
`mmgef evaluate`'s number for the same run. The two differ by design in one term: offline, a cold
item keeps the ID embedding it was given at initialisation (trained only as a sampled negative);
through the service a new item has none (zero), so content alone places it.

    python benchmarks/serve_cold_start.py [--data lastfm2k] [--model mmgef] [--set key=value ...]

Writes benchmarks/results/serve/cold_start_<data>_<model>.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

import mmgef
from mmgef.config import resolve_run_config
from mmgef.runs import evaluate, load_run
from mmgef.serve.app import create_app
from mmgef.serve.catalog import Catalog

OUT = Path(__file__).parent / "results" / "serve"


def recall_from_service(client: TestClient, p, k: int = 20) -> float:
    """Test Recall@20 over every item, with train + valid items masked, from /recommendations answers."""
    split = p.split
    masked = (split.train + split.valid).tocsr()
    test = split.test.tocsr()
    item_ids = [str(i) for i in p.dataset.item_ids]
    user_ids = [str(u) for u in p.dataset.user_ids]
    recalls = []
    for u in np.flatnonzero(np.diff(test.indptr)):
        truth = {item_ids[j] for j in test.indices[test.indptr[u] : test.indptr[u + 1]]}
        hide = {item_ids[j] for j in masked.indices[masked.indptr[u] : masked.indptr[u + 1]]}
        got = client.get(f"/users/{user_ids[u]}/recommendations",
                         params={"k": min(1000, k + len(hide)), "exclude_seen": False}).json()["items"]
        top = [x["item"] for x in got if x["item"] not in hide][:k]
        recalls.append(len(truth & set(top)) / len(truth))
    return float(np.mean(recalls))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="lastfm2k")
    ap.add_argument("--model", default="mmgef")
    ap.add_argument("--set", action="append", default=[], dest="sets")
    args = ap.parse_args()
    cfg = resolve_run_config(model=args.model, data=args.data,
                             sets=["split=cold", "progress=false", "patience=10", *args.sets])
    with tempfile.TemporaryDirectory() as tmp:
        run = mmgef.train(cfg, Path(tmp) / "run")
        offline = evaluate(run)["test"]["recall@20"]
        p = load_run(run, keep_context=True)
        cold = sorted(set(np.flatnonzero(np.asarray(p.split.train.sum(0)).ravel() == 0).tolist()))
        cold_ids = [str(p.dataset.item_ids[j]) for j in cold]
        catalog = Catalog(p, hold_out=cold_ids)
        with TestClient(create_app(catalog=catalog, db=Path(tmp) / "s.sqlite")) as client:
            content = load_run(run, keep_context=True).ctx.content
            for j, item in zip(cold, cold_ids):
                r = client.post("/items", json={"item": item, "features": {m: x[j].tolist() for m, x in content.items()}})
                assert r.status_code == 201, r.text
            served = recall_from_service(client, p)
    lines = [f"# Cold start through the service: {args.data}, {args.model}", "",
             f"`python benchmarks/serve_cold_start.py --data {args.data} --model {args.model}"
             + "".join(f" --set {s}" for s in args.sets) + "`", "",
             f"{len(cold_ids)} items without training interactions held out of the catalogue, then added with POST /items.", "",
             "| | test Recall@20 (all items ranked) |", "|---|---|",
             f"| `mmgef evaluate` (offline) | {offline:.4f} |", f"| from the service's answers | {served:.4f} |"]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"cold_start_{args.data}_{args.model}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
