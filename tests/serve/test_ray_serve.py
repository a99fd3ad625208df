"""The service as a Ray Serve deployment on a local Ray instance: the same answers as the Python API."""

from __future__ import annotations

import socket

import httpx
import numpy as np
import pytest

import mmgef

pytest.importorskip("ray.serve")
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]


def test_ray_serve_deployment_answers_like_the_python_api(tiny_dir, tmp_path):
    import ray
    from ray import serve

    from mmgef.serve.ray_app import deploy
    from tests.serve.conftest import TRAIN

    run = mmgef.train({"model": "mmgef", "data": {"name": str(tiny_dir)}, "train": TRAIN}, tmp_path / "run")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        deploy(run, "local", port=port, replicas=1, db=tmp_path / "s.sqlite")
        base = f"http://127.0.0.1:{port}"
        r = httpx.get(f"{base}/health", timeout=60)
        assert r.status_code == 200, (r.status_code, r.text[:500])
        health = r.json()
        offline = mmgef.load(run)
        assert health["model"] == "mmgef" and health["items"] == len(offline.item_ids)
        user = offline.user_ids[0]
        got = httpx.get(f"{base}/users/{user}/recommendations", params={"k": 10}, timeout=60).json()["items"]
        want = offline.recommend(user, 10)
        assert [x["item"] for x in got] == [i for i, _ in want]
        assert np.allclose([x["score"] for x in got], [s for _, s in want], atol=1e-5)
        assert httpx.get(f"{base}/users/nobody/recommendations", timeout=60).status_code == 404
        widths = health["modalities"]
        r = httpx.post(f"{base}/items", timeout=120, json={
            "item": "via-ray", "features": {m: np.ones(w).tolist() for m, w in widths.items()}})
        assert r.status_code == 201, r.text
        assert httpx.get(f"{base}/items/via-ray/similar", params={"k": 3}, timeout=60).status_code == 200
    finally:
        serve.shutdown()
        ray.shutdown()
