"""Loopback load test of `mmgef serve`: latency percentiles, requests/s and errors per endpoint.

A bounded test, 127.0.0.1 only, from a fixed number of concurrent connections (16): ¾ of the
requests ask for recommendations, ¼ for similar items. The service runs
in its own process (uvicorn, one worker unless --workers) over a run trained here for one epoch on
GENERATED data of the given size (serving cost depends on the catalogue's size, not on the model's
quality).

The load comes from ``wrk`` (Debian's package; C, two threads) when it is installed: each endpoint
for ``--seconds`` (default 15) in turn. Else (``--client python``) a fixed count of requests
(``--requests``, default 5,000) from asyncio + httpx in this process, whose own CPU use on a 2-core
machine inflates the latencies it measures.

    python benchmarks/bench_serve.py [--users 19445 --items 7050] [--requests 5000] [--concurrency 16]
                                     [--workers 1] [--client wrk|python] [--name baby]

Writes benchmarks/results/serve/<name>.json and .md and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from mmgef.experiments.report import code_version

OUT = Path(__file__).parent / "results" / "serve"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train_run(users: int, items: int, model: str, tmp: Path) -> Path:
    import mmgef
    from mmgef.data.formats import write_native
    from mmgef.data.synthetic import SyntheticConfig, generate

    data = tmp / "data"
    write_native(generate(SyntheticConfig(n_users=users, n_items=items, seed=0, reviews=False)), data)
    return mmgef.train({"model": model, "data": {"name": str(data)},
                        "train": {"epochs": 1, "progress": False, "batch_size": 8192}}, tmp / "run")


async def load(base: str, paths: list[str], concurrency: int, limit_s: float) -> list[tuple[str, float, int]]:
    """(route, seconds, status) per request; stops at the time limit."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for p in paths:
        queue.put_nowait(p)
    results: list[tuple[str, float, int]] = []
    deadline = time.perf_counter() + limit_s

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            while not queue.empty() and time.perf_counter() < deadline:
                path = queue.get_nowait()
                t0 = time.perf_counter()
                try:
                    status = (await c.get(path)).status_code
                except httpx.HTTPError:
                    status = 0
                results.append((path.split("/")[1] + ("/similar" if "similar" in path else "/recommendations"),
                                time.perf_counter() - t0, status))

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return results


WRK_SCRIPT = """
local paths, sent = {}, 0
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
end
function request()
  sent = sent + 1
  return wrk.format("GET", paths[(sent - 1) % #paths + 1])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests": %d, "p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "errors": %d, "wall_s": %.3f}\\n',
    summary.requests, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.connect + e.read + e.write + e.timeout + e.status, summary.duration / 1e6))
end
"""


def load_wrk(base: str, paths: list[str], concurrency: int, seconds: float, tmp: Path) -> tuple[list[dict], float]:
    """One wrk run of ``seconds`` per endpoint (2 threads, ``concurrency`` connections)."""
    (tmp / "load.lua").write_text(WRK_SCRIPT)
    rows, wall = [], 0.0
    for route in ("users/recommendations", "items/similar"):
        mine = [p for p in paths if p.split("?")[0].endswith(route.split("/")[1])]
        (tmp / "paths.txt").write_text("\n".join(mine) + "\n")
        out = subprocess.run(["wrk", "-t2", f"-c{concurrency}", f"-d{int(seconds)}s", "--timeout", "30s",
                              "-s", str(tmp / "load.lua"), base, "--", str(tmp / "paths.txt")],
                             capture_output=True, text=True, check=True).stdout
        got = json.loads(out.split("WRK ", 1)[1].splitlines()[0])
        wall += got.pop("wall_s")
        rows.append({"endpoint": route, **got})
    return rows, wall


def per_endpoint(results: list[tuple[str, float, int]]) -> list[dict]:
    rows = []
    for route in sorted({r for r, _, _ in results}, reverse=True):
        lat = np.array([s for r, s, _ in results if r == route]) * 1000
        errors = sum(1 for r, _, st in results if r == route and st != 200)
        rows.append({"endpoint": route, "requests": len(lat), "errors": errors, "p50_ms": float(np.percentile(lat, 50)),
                     "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max())})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=19_445)
    ap.add_argument("--items", type=int, default=7_050)
    ap.add_argument("--model", default="mmgef")
    ap.add_argument("--requests", type=int, default=5_000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--limit-s", type=float, default=300, help="python client: stop after this many seconds")
    ap.add_argument("--seconds", type=float, default=15, help="wrk: seconds of load per endpoint")
    ap.add_argument("--client", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python")
    ap.add_argument("--adds", type=int, default=5, help="POST /items timed after the load (each rebuilds the model)")
    ap.add_argument("--name", default="baby")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_str:
        tmp = Path(tmp_str)
        t0 = time.perf_counter()
        run = train_run(args.users, args.items, args.model, tmp)
        port = free_port()
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        server = subprocess.Popen([str(Path(sys.executable).parent / "mmgef"), "serve", str(run), "--port", str(port),
                                   "--workers", str(args.workers)], env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    health = httpx.get(f"{base}/health", timeout=1).json()
                    break
                except httpx.HTTPError:
                    time.sleep(0.5)
            else:
                raise SystemExit("the service did not start within 5 minutes")
            startup = time.perf_counter() - t0
            users = httpx.get(f"{base}/users", params={"limit": 1000}).json()["users"]
            items = [x["item"] for x in httpx.get(f"{base}/items", params={"limit": 1000}).json()["items"]]
            rng = random.Random(0)
            paths = [f"/users/{rng.choice(users)}/recommendations?k=20" if n % 4 else f"/items/{rng.choice(items)}/similar?k=20"
                     for n in range(args.requests)]
            if args.client == "wrk":
                rows, wall = load_wrk(base, paths, args.concurrency, args.seconds, tmp)
            else:
                t1 = time.perf_counter()
                rows = per_endpoint(asyncio.run(load(base, paths, args.concurrency, args.limit_s)))
                wall = time.perf_counter() - t1
            widths = health["modalities"]
            add_s = []
            for n in range(args.adds):  # a new item rebuilds the model over the catalogue: measured, not loaded
                t2 = time.perf_counter()
                r = httpx.post(f"{base}/items", timeout=600, json={"item": f"bench-new-{n}", "features": {
                    m: np.random.default_rng(n).normal(size=w).tolist() for m, w in widths.items()}})
                add_s.append(time.perf_counter() - t2)
                assert r.status_code in (201, 409), r.text
        finally:
            server.terminate()
            server.wait(30)
    n_requests = sum(r["requests"] for r in rows)
    report = {"name": args.name, "users": args.users, "items": args.items, "model": args.model, "workers": args.workers,
              "concurrency": args.concurrency, "client": args.client, "requests": n_requests, "wall_s": wall,
              "requests_per_s": n_requests / wall, "errors": sum(r["errors"] for r in rows), "endpoints": rows,
              "startup_s_incl_training": startup, "add_item_s": add_s, "cpus": os.cpu_count(), "commit": code_version()}
    lines = [f"# `mmgef serve` load test: {args.name} ({args.users:,} users × {args.items:,} items, {args.model}, "
             f"{args.workers} worker(s), {args.concurrency} concurrent connections, load from {args.client}, loopback, "
             f"{os.cpu_count()} CPUs)", "",
             f"`python benchmarks/bench_serve.py --users {args.users} --items {args.items} --model {args.model} "
             + (f"--seconds {args.seconds:g} " if args.client == "wrk" else f"--requests {args.requests} ")
             + f"--concurrency {args.concurrency} --workers {args.workers} --client {args.client} --adds {args.adds} "
             f"--name {args.name}` (commit {report['commit']})", "",
             "| endpoint | requests | errors | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['endpoint']} | {r['requests']} | {r['errors']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} |"
              for r in rows]
    lines += ["", f"{n_requests} requests in {wall:.1f} s: **{n_requests / wall:.0f} requests/s**, "
              f"{report['errors']} errors. POST /items (rebuilds the model over the catalogue): "
              f"{', '.join(f'{s:.2f}' for s in add_s)} s."]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (OUT / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
