"""Serving-path speed of the Python API on the built-in data: load a run once, then recommend.

Trains each model for 2 epochs on the built-in synthetic data (2,000 users, 1,500 items) into a
temporary run, then times ``mmgef.load`` and ``recommend_many`` for 1,000 users (k = 20).

    python benchmarks/bench_api.py [--models lightgcn mmgef] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import mmgef
from mmgef.experiments.report import code_version
from mmgef.report import markdown_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["lightgcn", "vbpr", "lattice", "mmgef"])
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            run = mmgef.train({"model": name, "train": {"epochs": 2, "progress": False}}, Path(tmp) / name)
            t = time.perf_counter()
            model = mmgef.load(run)
            load_s = time.perf_counter() - t
            users = model.user_ids[: args.users]
            t = time.perf_counter()
            model.recommend_many(users, k=20)
            many_s = time.perf_counter() - t
            t = time.perf_counter()
            model.recommend(users[0], k=20)
            one_ms = (time.perf_counter() - t) * 1000
            rows.append([name, round(load_s, 2), len(users), round(many_s, 3), round(one_ms, 2)])
            print(rows[-1], flush=True)
    commit = code_version()
    text = (f"# Python API speed on the built-in data (torch {torch.__version__}, {torch.get_num_threads()} threads, CPU)\n\n"
            f"`python benchmarks/bench_api.py` at commit {commit}: each model trained 2 epochs on the built-in data, "
            "then loaded once; `recommend_many` over the first users, k = 20, everything the user has excluded.\n\n"
            + markdown_table(["model", "mmgef.load s", "users", "recommend_many s", "one recommend ms"], rows) + "\n")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "api_speed.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
