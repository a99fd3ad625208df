"""Run an experiment: grid on validation (seed 0), then the chosen setting with every seed.

Runs are keyed by the digest of their resolved config: a run whose ``results.json`` exists
anywhere under the experiment directory is never repeated, so a killed experiment resumes.
Local worker processes by default; Ray Tune with ``ray_address`` ('local' or a cluster).
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmgef.config import RunConfig, load_run_config
from mmgef.errors import ConfigError
from mmgef.experiments.spec import (
    ExperimentSpec,
    RowSpec,
    grid_points,
    placeholders,
    run_config,
    substitute,
    sweep_points,
)
from mmgef.training.pretrained import PRETRAINED

log = logging.getLogger(__name__)


@dataclass
class Cell:
    """One (row, dataset, split[, sweep value]) of a table: its grid runs, chosen point and seed runs."""

    row: RowSpec
    dataset: str
    split: str
    label: str
    column: str  # the table column group: the dataset, suffixed with the split when it is not the main one
    sweep: tuple[str, Any] | None = None
    source: Cell | None = None  # the pre-training cell whose embeddings initialise this one (init_from)
    settings_source: Cell | None = None  # the searched cell whose chosen settings this one takes (settings_from)
    grid: list[tuple[dict[str, Any], RunConfig]] = field(default_factory=list)
    chosen: dict[str, Any] = field(default_factory=dict)
    seeds: list[RunConfig] = field(default_factory=list)

    @property
    def fixed(self) -> dict[str, Any]:
        """The swept value where it is set on the seed runs only (``sweep_search: once``: the grid ran at the default)."""
        return dict([self.sweep]) if self.sweep and self.row.sweep_search == "once" else {}


def train_config(cfg_json: str, run_dir: str) -> dict[str, Any]:
    """Worker entry: one ordinary training run, single-threaded so workers do not contend."""
    from mmgef import runs

    cfg = RunConfig.model_validate_json(cfg_json)
    cfg.train.threads = int(os.environ.get("MMGEF_WORKER_THREADS", "1"))
    cfg.train.progress = False  # parallel per-epoch bars would interleave; the runner reports progress
    path = Path(run_dir)
    return runs.train(cfg, path, resume=(path / "checkpoint.safetensors").exists())


class Runner:
    def __init__(self, spec: ExperimentSpec, exp_dir: Path, workers: int = 2, ray_address: str | None = None,
                 reuse: list[Path] | None = None) -> None:
        self.spec, self.exp_dir, self.workers, self.ray_address = spec, Path(exp_dir), workers, ray_address
        self.done: dict[str, dict[str, Any]] = {}
        self.run_dirs: dict[str, Path] = {}
        self.unreadable: set[Path] = set()  # runs in --reuse folders this version cannot read (warned once)
        self.shadowed: set[Path] = set()  # runs whose config an earlier folder already holds
        self.roots = [self.exp_dir, *(Path(r) for r in reuse or [])]
        self._refresh()

    def _refresh(self) -> None:
        """Index finished runs again: another experiment sharing a ``--reuse`` folder may have added some."""
        for root in self.roots:
            self._index(root)

    def _index(self, root: Path) -> None:
        """Find finished runs anywhere under ``root``, keyed by the digest of their config.

        The first folder that holds a config's run keeps it — the experiment's own folder, then the
        ``--reuse`` folders in the order given — so a report's runs follow from its command: a copy of
        the same config retrained elsewhere (another commit, another seed's luck) never replaces it.
        A run in a ``--reuse`` folder that this version cannot read (written by a newer mmgef with an
        option this one lacks, say) is skipped with a warning: it cannot be one of this spec's configs.
        In the experiment's own folder it stays an error, since a new run would land beside it.
        """
        known = set(self.run_dirs.values()) | self.unreadable | self.shadowed
        for res in sorted(root.glob("**/results.json")):
            cfg_file = res.parent / "config.yaml"
            if res.parent not in known and cfg_file.exists():
                try:
                    digest = load_run_config(cfg_file).digest()
                except ConfigError as err:
                    if root == self.exp_dir:
                        raise
                    log.warning("--reuse: skipping %s (%s)", res.parent, err)
                    self.unreadable.add(res.parent)
                    continue
                if digest in self.done:
                    self.shadowed.add(res.parent)
                    continue
                self.done[digest] = json.loads(res.read_text())
                self.run_dirs[digest] = res.parent

    def run_dir(self, cfg: RunConfig) -> Path:
        return self.run_dirs.get(cfg.digest(), self.exp_dir / "runs" / Path(cfg.data.name).name / f"{cfg.model}-{cfg.digest()}")

    def execute(self, configs: list[RunConfig], stage: str) -> None:
        self._refresh()
        todo = {c.digest(): c for c in configs if c.digest() not in self.done}
        if not todo:
            return
        t0, total = time.time(), len(todo)
        print(f"[{self.spec.name}] {stage}: {total} runs to do, {len({c.digest() for c in configs}) - total} already finished",
              flush=True)
        if self.ray_address:
            from mmgef.experiments.ray_backend import run_with_tune

            for digest, result in run_with_tune(list(todo.values()), [str(self.run_dir(c)) for c in todo.values()], self.ray_address):
                self.done[digest] = result
                self.run_dirs[digest] = self.run_dir(todo[digest])
            return
        queue, finished = list(todo.items()), 0
        with ProcessPoolExecutor(self.workers) as pool:
            running: dict[Future, tuple[str, Path]] = {}  # each run and the folder it trains in
            while queue or running:
                # Submitted one at a time as a worker frees, so a run that an experiment sharing a --reuse
                # folder finished meanwhile is taken from there instead of being trained twice.
                while queue and len(running) < self.workers:
                    digest, cfg = queue.pop(0)
                    if digest in self.done:
                        total -= 1
                        print(f"[{self.spec.name}] {stage}: {cfg.model} on {cfg.data.name} seed {cfg.seed} finished "
                              f"meanwhile in {self.run_dirs[digest]}", flush=True)
                        continue
                    path = self.run_dir(cfg)
                    running[pool.submit(train_config, cfg.model_dump_json(), str(path))] = digest, path
                if not running:
                    break
                for fut in wait(running, return_when=FIRST_COMPLETED).done:
                    digest, path = running.pop(fut)
                    self.done[digest], self.run_dirs[digest] = fut.result(), path
                    finished += 1
                    elapsed = time.time() - t0
                    eta = elapsed / finished * (total - finished)
                    print(f"[{self.spec.name}] {stage}: {finished}/{total} done, {len(running)} running, {len(queue)} waiting, "
                          f"ETA {eta:.0f}s — {todo[digest].model} on {todo[digest].data.name} seed {todo[digest].seed}",
                          flush=True)
                self._refresh()

    def plan(self, datasets: list[str]) -> list[Cell]:
        cells = []
        splits = [self.spec.split] + ([self.spec.warm_split] if self.spec.warm_split else [])
        for split in splits:
            for dataset in datasets:
                names = placeholders(self.spec, dataset)
                column = dataset if split == self.spec.split else f"{dataset} ({split})"
                for row in self.spec.rows:
                    if row.datasets is not None and dataset not in row.datasets:
                        continue
                    for sweep in sweep_points(row):
                        label = substitute(row.label, names) + (f" {sweep[0]}={sweep[1]}" if sweep else "")
                        cell = Cell(row, dataset, split, label, column, sweep)
                        # sweep_search=once: searched at the default value, shared by every swept value (cell.fixed)
                        fixed = dict([sweep]) if sweep and row.sweep_search == "each" else {}
                        cell.grid = [] if row.settings_from else [
                            ({**point, **fixed}, run_config(self.spec, row, dataset, split, 0, {**point, **fixed}))
                            for point in grid_points(self.spec, row)]
                        cells.append(cell)
        for c in cells:
            if c.row.init_from:
                c.source = self._cell(cells, c, c.row.init_from)
            if c.row.settings_from:
                c.settings_source = self._cell(cells, c, c.row.settings_from)
        return cells

    @staticmethod
    def _cell(cells: list[Cell], c: Cell, label: str) -> Cell:
        return next(s for s in cells if s.column == c.column and s.row.label == label and not s.sweep)

    def run(self, datasets: list[str] | None = None, seeds: int | None = None) -> list[Cell]:
        """Rows without ``init_from`` first (grid, then seeds); then the rows that start from their embeddings."""
        n_seeds = seeds or self.spec.seeds
        cells = self.plan(datasets or self.spec.datasets)
        self._run_stage([c for c in cells if not c.source], n_seeds, "")
        dependent = [c for c in cells if c.source]
        if dependent:
            for c in dependent:
                c.grid = [(point, self._config(c, 0, point)) for point, _ in c.grid]
            self._run_stage(dependent, n_seeds, "initialised from pre-training, ")
        return cells

    def _config(self, c: Cell, seed: int, point: dict[str, Any]) -> RunConfig:
        init = {"train.init": str(self.run_dir(c.source.seeds[seed]) / PRETRAINED)} if c.source else {}
        return run_config(self.spec, c.row, c.dataset, c.split, seed, {**point, **init})

    def _run_stage(self, cells: list[Cell], n_seeds: int, what: str) -> None:
        self.execute([cfg for c in cells for _, cfg in c.grid], f"{what}grid (seed 0, selected on validation)")
        self._choose(cells, n_seeds)
        self.execute([cfg for c in cells for cfg in c.seeds], f"{what}{n_seeds} seeds of the chosen settings")

    def _choose(self, cells: list[Cell], n_seeds: int) -> None:
        """Each cell's point with the best validation metric over its finished grid, and its seed configs."""
        key = self.spec.select_metric
        for c in sorted(cells, key=lambda c: c.settings_source is not None):  # a settings source is chosen first
            if c.settings_source:
                c.chosen = {k: v for k, v in c.settings_source.chosen.items() if k not in c.row.set}
            else:
                best_point, _ = max(c.grid, key=lambda pc: self.done[pc[1].digest()]["valid"][key])
                c.chosen = {k: v for k, v in best_point.items() if k != "train.init"}
            c.seeds = [self._config(c, s, {**c.chosen, **c.fixed}) for s in range(n_seeds)]

    def preview(self, datasets: list[str] | None = None, seeds: int | None = None) -> list[dict[str, Any]]:
        """What ``run`` would train, without training anything: per cell, its grid runs finished and in all, the seed
        runs still to train (exact once its grid and its settings source's are finished; before that, at most
        seeds − 1 besides the grid's seed-0 run), and the mean training seconds of the cell's finished runs (what a
        remaining run may cost; none before its first run). Cells initialised from a pre-training (``init_from``)
        have run configs only once that pre-training has run: their counts are upper bounds until then."""
        n_seeds = seeds or self.spec.seeds
        cells = self.plan(datasets or self.spec.datasets)
        self._refresh()
        complete = [c for c in cells if not c.source and all(cfg.digest() in self.done for _, cfg in c.grid)]
        self._choose([c for c in complete if not c.settings_source or c.settings_source in complete], n_seeds)
        out = []
        for c in cells:
            grid_done = None if c.source else sum(cfg.digest() in self.done for _, cfg in c.grid)
            exact = bool(c.seeds)
            # without a grid (settings_from) seed 0 is a seed run too
            seeds_todo = sum(cfg.digest() not in self.done for cfg in c.seeds) if exact else n_seeds - bool(c.grid)
            # a pre-training's dependants have no configs of their own before it runs (plan() leaves out train.init)
            past = [] if c.source else [float(self.done[cfg.digest()].get("train_seconds", 0.0))
                                        for cfg in [g for _, g in c.grid] + c.seeds if cfg.digest() in self.done]
            out.append({"label": c.label, "dataset": c.column, "grid_done": grid_done, "grid": len(c.grid),
                        "seeds_todo": seeds_todo, "exact": exact,
                        "mean_train_seconds": sum(past) / len(past) if past else None})
        return out

    def results(self, cfg: RunConfig) -> dict[str, Any]:
        return self.done[cfg.digest()]

