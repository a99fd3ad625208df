"""The GPU check, prepared for a session lent one: training runs on CUDA, agrees with the CPU, and how fast.

1. agreement: LightGCN and the mmgef+ preset on the built-in synthetic data, the same seed and epochs on the
   CPU and on ``--device``: validation / test Recall@20 of each and the largest gap between their per-epoch
   losses (the sparse products sum in another order on a GPU, so equal to a few decimals, not bit for bit);
2. speed: seconds per epoch of MM-GEF at Amazon-Baby size (19,445 users × 7,050 items, generated 4096-d +
   384-d features) and at 100k users × 100k items × 2M interactions, each on the CPU and on ``--device`` in the
   same call (timings compare only within one machine);
3. data-parallel: ``--workers 2`` with nccl where the machine has two GPUs; with one GPU it says so and skips
   (nccl takes one GPU per rank).

On the device machine (its python3 has PyTorch; the other dependencies travel as wheels: ``make
device-wheels`` here, then carry ``.whl``)::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:src
    python3 benchmarks/device_check.py --out $OUT

Here, to check the script itself (no GPU: the "device" runs are CPU runs too): ``python
benchmarks/device_check.py --device cpu --quick``. Writes ``device_check.md`` and ``device_check.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from mmgef import runs
from mmgef.config import resolve_run_config
from mmgef.data.formats import write_native
from mmgef.data.synthetic import SyntheticConfig, generate
from mmgef.io import write_json, write_text


def train(model: str, data: str, device: str, out: Path, sets: list[str]) -> dict:
    """One run; its per-epoch losses and training seconds from history.jsonl."""
    cfg = resolve_run_config(model=model, data=data, seed=0, sets=[f"device={device}", "progress=false", *sets])
    t = time.perf_counter()
    res = runs.train(cfg, out)
    wall = time.perf_counter() - t
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    epochs = [h for h in history if "loss" in h]
    return {"valid": res["valid"]["recall@20"], "test": res["test"]["recall@20"], "losses": [h["loss"] for h in epochs],
            "epoch_s": sum(h["train_seconds"] for h in epochs[1:]) / max(1, len(epochs) - 1), "wall_s": wall}


def synthetic(root: Path, cfg: SyntheticConfig) -> str:
    write_native(generate(cfg), root)
    return str(root)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/device"))
    ap.add_argument("--quick", action="store_true", help="small sizes and few epochs (to check the script on a CPU)")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch {torch.__version__} sees no CUDA device. Fix: run it on the "
                         "device machine, or pass --device cpu to check the script.")
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor() or "CPU"
    lines = [f"# Device check: {args.device} ({gpu}), torch {torch.__version__}", "",
             f"`python benchmarks/device_check.py --device {args.device}{' --quick' if args.quick else ''}`", ""]
    report: dict = {"device": args.device, "name": gpu, "torch": torch.__version__}
    epochs = 3 if args.quick else 20
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lines += ["## 1. The same training on the CPU and on the device (built-in synthetic data, seed 0, "
                  f"{epochs} epochs, no early stop)", "",
                  "| model | CPU valid / test R@20 | device valid / test R@20 | largest loss gap | CPU s/epoch | device s/epoch |",
                  "|---|---|---|---|---|---|"]
        for model in ("lightgcn", "mmgef+"):
            sets = [f"epochs={epochs}", f"patience={epochs}"]
            cpu = train(model, "synthetic", "cpu", root / f"{model}-cpu", sets)
            dev = train(model, "synthetic", args.device, root / f"{model}-dev", sets)
            gap = max(abs(a - b) for a, b in zip(cpu["losses"], dev["losses"]))
            report[f"agreement {model}"] = {"cpu": cpu, "device": dev, "loss_gap": gap}
            lines.append(f"| {model} | {cpu['valid']:.4f} / {cpu['test']:.4f} | {dev['valid']:.4f} / {dev['test']:.4f} | "
                         f"{gap:.2e} | {cpu['epoch_s']:.2f} | {dev['epoch_s']:.2f} |")
        sizes = {"Baby-size": SyntheticConfig(n_users=19_445, n_items=7_050, mean_interactions=8, image_dim=4096, text_dim=384),
                 "100k × 100k": SyntheticConfig(n_users=100_000, n_items=100_000, mean_interactions=20, image_dim=128,
                                                 text_dim=384, candidate_pool=2_000, reviews=False)}
        if args.quick:
            sizes = {"quick": SyntheticConfig(n_users=600, n_items=400, image_dim=256, text_dim=64, reviews=False)}
        lines += ["", "## 2. MM-GEF seconds per epoch (synthetic data of each size, 3 epochs; batch 2048, at 100k "
                  "`steps_per_epoch=32` and 10,000 evaluated users)", "",
                  "| data | interactions | CPU s/epoch | device s/epoch | device wall s (load, graphs, 3 epochs, evaluation) |",
                  "|---|---|---|---|---|"]
        for name, size in sizes.items():
            data = synthetic(root / name.replace(" ", "_"), size)
            large = ["steps_per_epoch=32", "eval_users=10000"] if size.n_items >= 100_000 else []
            sets = ["epochs=3", "patience=3", "knn_method=exact", *large]
            cpu = train("mmgef", data, "cpu", root / f"{name}-cpu", sets)
            dev = train("mmgef", data, args.device, root / f"{name}-dev", sets)
            report[f"speed {name}"] = {"cpu": cpu, "device": dev}
            n = sum(1 for _ in (Path(data) / "interactions.csv").open()) - 1
            lines.append(f"| {name} | {n:,} | {cpu['epoch_s']:.2f} | {dev['epoch_s']:.2f} | {dev['wall_s']:.1f} |")
        lines += ["", "## 3. Data-parallel training on the device", ""]
        if args.device.startswith("cuda") and torch.cuda.device_count() >= 2:
            two = train("lightgcn", "synthetic", args.device, root / "two", [f"epochs={epochs}", f"patience={epochs}", "workers=2"])
            one = report["agreement lightgcn"]["device"]
            report["nccl"] = two
            lines.append(f"2 workers (nccl): valid R@20 {two['valid']:.4f}, {two['epoch_s']:.2f} s/epoch; "
                         f"1 worker: {one['valid']:.4f}, {one['epoch_s']:.2f} s/epoch.")
        else:
            lines.append(f"Skipped: nccl takes one GPU per rank and this machine has "
                         f"{torch.cuda.device_count() if torch.cuda.is_available() else 0}.")
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "device_check.json", report)
    write_text(args.out / "device_check.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
