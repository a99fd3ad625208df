"""A run, end to end: config → data → split → model → trainer → run directory.

Run directory layout (design.md): ``config.yaml`` (resolved), ``history.jsonl``,
``checkpoint.safetensors`` (resume point), ``model.safetensors`` (best weights), ``results.json``,
and for a pre-training model ``pretrained.safetensors`` (its user/item vectors, for ``--init``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mmgef.config import RunConfig, load_run_config, save_run_config
from mmgef.data.dataset import Dataset
from mmgef.data.registry import load_dataset, spec_location
from mmgef.data.split import Split, make_split
from mmgef.devices import resolve_device, set_threads
from mmgef.errors import ConfigError, MMGEFError
from mmgef.graphs.modules import set_gather_precision
from mmgef.io import check_unlocked, locked_dir, read_safetensors, write_json
from mmgef.models.base import ModelContext, Recommender, withhold_item_ids
from mmgef.models.registry import build_model
from mmgef.training.distributed import ALONE, Group, worker_device
from mmgef.training.pretrained import PRETRAINED, load_pretrained, write_pretrained
from mmgef.training.sampling import UniformSampler
from mmgef.training.trainer import BEST_MODEL, CHECKPOINT, Trainer, make_evaluators

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    cfg: RunConfig
    dataset: Dataset
    split: Split
    model: Recommender
    device: torch.device
    fingerprint: dict[str, str]
    ctx: ModelContext | None = None  # kept only on request: the service extends the catalogue from it


def check_fingerprint(saved: dict[str, str] | None, current: dict[str, str], where: str) -> None:
    """A one-line error naming what changed between the data a run was trained on and the data now."""
    if saved is None:
        return
    changed = sorted(k for k in saved.keys() | current.keys() if saved.get(k) != current.get(k))
    if changed:
        raise MMGEFError(f"{where}: the data changed since this run was trained ({', '.join(changed)} differ). "
                         "Fix: restore the data the run was trained on, or retrain on the new data.")


def prepare(cfg: RunConfig, keep_context: bool = False, device: str | None = None) -> Prepared:
    """Data, split and model of ``cfg`` (on ``device``, default the config's)."""
    device = resolve_device(device or cfg.train.device)
    # A model that names its modalities gets them loaded even when they are not the dataset's
    # defaults; a model that uses no content loads none (wide features cost memory).
    modalities = cfg.data.modalities if cfg.data.modalities is not None else getattr(cfg.params, "modalities", None)
    if not cfg.params.uses_content:
        modalities = []
    dataset = load_dataset(cfg.data.location or cfg.data.name, modalities, cfg.data.encoding)
    split = make_split(dataset, cfg.data.split, cfg.seed, cfg.data.ratios, cfg.data.cold_ratio, cfg.data.cold_eval,
                       cfg.data.cold_targets)
    torch.manual_seed(cfg.seed)
    # Without keep_context the model gets the content arrays to keep (it may normalise them in place rather
    # than copy them) and the dataset drops its reference after the build: the fingerprint is taken first.
    fingerprint = dataset.fingerprint()
    ctx = ModelContext(dataset.n_users, dataset.n_items, split.train, dataset.content, dataset.user_content,
                       dataset.joint_modalities, owns_content=not keep_context)
    model = build_model(cfg.params, ctx, cfg.train.reg).to(device)
    if cfg.train.gather_precision != "float32" and not set_gather_precision(model, cfg.train.gather_precision):
        raise ConfigError(f"gather_precision={cfg.train.gather_precision}: model '{cfg.model}' has no constant graph "
                          "whose products it would round; drop the setting")
    if cfg.train.init:
        load_pretrained(cfg.train.init, model, dataset)
    if cfg.data.cold_ids == "none" and not withhold_item_ids(model, split.untrained_items()):
        raise ConfigError(f"cold_ids=none: model '{cfg.model}' has no item ID embedding to withhold; drop the setting")
    dataset.content, dataset.user_content = {}, {}
    return Prepared(cfg, dataset, split, model, device, fingerprint, ctx if keep_context else None)


def default_run_dir(cfg: RunConfig) -> Path:
    name = Path(cfg.data.name).name
    return Path("runs") / f"{name}-{cfg.model}-seed{cfg.seed}-{cfg.digest()[:8]}"


RUN_FILES = {"config.yaml", "history.jsonl", CHECKPOINT, BEST_MODEL, "results.json", PRETRAINED, ".lock"}


def check_run_dir(run_dir: Path, cfg: RunConfig, resume: bool, warn: bool = True) -> RunConfig | None:
    """Refuse a directory this run must not write into; return the config of the run it holds, if any."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir}: is a file. Fix: pass a directory path for the run.")
    if not (run_dir / "config.yaml").exists():
        foreign = sorted(p.name for p in run_dir.iterdir() if p.name not in RUN_FILES and not p.name.endswith(".tmp")) \
            if run_dir.is_dir() else []
        if foreign:
            raise ConfigError(f"--out {run_dir}: holds files that are not an mmgef run ({', '.join(foreign[:3])}"
                              f"{', …' if len(foreign) > 3 else ''}); a run would overwrite its neighbours. "
                              "Fix: pass a new or empty directory.")
        if resume and warn:
            log.warning("--resume: %s holds no run yet; starting from scratch", run_dir)
        return None
    saved = load_run_config(run_dir / "config.yaml")
    if saved.digest(stopping=False) != cfg.digest(stopping=False):
        raise ConfigError(f"{run_dir}/config.yaml: this directory holds a run of another config. "
                          "Fix: pass --out with a new directory, or resume with that run's config "
                          "(only epochs and patience may change on --resume).")
    if not resume and (run_dir / CHECKPOINT).exists():
        raise ConfigError(f"{run_dir}: already holds a run. Fix: add --resume to continue it or use another --out.")
    if resume and warn and not (run_dir / CHECKPOINT).exists():
        log.warning("--resume: %s holds no checkpoint; starting from scratch", run_dir)
    return saved


def train(cfg: RunConfig, run_dir: Path | None = None, resume: bool = False, ray_address: str | None = None) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir`` (locked while it runs) and write its results.

    ``train.workers`` > 1 trains data-parallel in that many local processes; ``ray_address`` ('local' or a
    cluster) runs the workers as a Ray Train job instead. This process holds the lock either way.
    """
    run_dir = Path(run_dir) if run_dir else default_run_dir(cfg)
    check_unlocked(run_dir)  # fail fast, before the data loads
    check_run_dir(run_dir, cfg, resume, warn=False)
    cfg = cfg.model_copy(deep=True)
    cfg.data.location = spec_location(cfg.data.location or cfg.data.name)
    if cfg.train.workers > 1 or ray_address:
        from mmgef.training import distributed

        with locked_dir(run_dir):
            check_run_dir(run_dir, cfg, resume)
            if ray_address:
                distributed.launch_ray(cfg, run_dir, resume, ray_address)
            else:
                distributed.launch_local(cfg, run_dir, resume)
        return {**json.loads((run_dir / "results.json").read_text()), "run_dir": str(run_dir)}
    threads = set_threads(cfg.train.threads)  # before the graphs are built: their kNN is the first heavy step
    p = prepare(cfg)
    with locked_dir(run_dir):
        saved = check_run_dir(run_dir, cfg, resume)  # again under the lock: another process may have written it
        return _fit(p, run_dir, resume, saved, threads, ALONE)


def train_worker(cfg: RunConfig, run_dir: Path, resume: bool, group: Group) -> None:
    """One data-parallel worker, inside its torch.distributed group; the launcher has checked and locked ``run_dir``."""
    threads = set_threads(cfg.train.threads, group.world)
    p = prepare(cfg, device=worker_device(cfg.train.device, group))
    saved = load_run_config(run_dir / "config.yaml") if (run_dir / "config.yaml").exists() else None
    _fit(p, run_dir, resume, saved, threads, group)


def _fit(p: Prepared, run_dir: Path, resume: bool, saved: RunConfig | None, threads: int, group: Group) -> dict[str, Any]:
    """Train a prepared run; the main process (rank 0) writes config, weights and results."""
    cfg = p.cfg
    if saved is not None:
        check_fingerprint(saved.data.fingerprint, p.fingerprint, str(run_dir / "config.yaml"))
    cfg.data.fingerprint = p.fingerprint
    n_candidates = cfg.train.n_candidates if cfg.train.sampler == "mixgcf" else 0
    sampler = UniformSampler(p.split.train, n_candidates, cfg.train.negatives) if p.model.trainable else None
    trainer = Trainer(cfg, p.model, p.split, run_dir, sampler, p.device, group)
    if resume:
        trainer.restore()  # a checkpoint that does not fit fails here, before config.yaml changes
    if group.is_main:
        save_run_config(cfg, run_dir / "config.yaml")
    metrics = trainer.fit()  # leaves the best-validation weights in the model
    if not group.is_main:
        return {}
    if cfg.params.pretrains:
        write_pretrained(run_dir / PRETRAINED, p.model, p.dataset)
    results = {
        "model": cfg.model,
        "dataset": p.dataset.name,
        "synthetic": p.dataset.synthetic,
        "split": p.split.kind,
        "seed": cfg.seed,
        "threads": threads,
        "workers": group.world,
        **metrics,
        "mixing_weights": p.model.mixing_weights(),  # of the best-validation weights, as `mmgef inspect` prints them
        "run_dir": str(run_dir),
    }
    write_json(run_dir / "results.json", results)
    return results


def load_run(run_dir: Path, keep_context: bool = False) -> Prepared:
    """Rebuild a finished run's data, split and model with its best weights (``keep_context``: and
    the model's inputs, which adding items to the catalogue needs)."""
    run_dir = Path(run_dir)
    for f in ("config.yaml", BEST_MODEL):
        if not (run_dir / f).is_file():
            raise MMGEFError(f"{run_dir / f}: not found. Fix: point to a finished run directory (one `mmgef train` wrote).")
    cfg = load_run_config(run_dir / "config.yaml")
    p = prepare(cfg, keep_context)
    check_fingerprint(cfg.data.fingerprint, p.fingerprint, str(run_dir / "config.yaml"))
    weights = read_safetensors(run_dir / BEST_MODEL, "retrain the run (`mmgef train` with its config.yaml), or restore the file")
    try:
        p.model.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise MMGEFError(f"{run_dir / BEST_MODEL}: weights do not match the model ({first}). "
                         "Fix: the file belongs to another run; retrain or restore it.") from None
    p.model.eval()
    return p


def evaluate(run_dir: Path) -> dict[str, dict[str, float]]:
    return evaluate_loaded(load_run(run_dir))


def evaluate_loaded(p: Prepared) -> dict[str, dict[str, float]]:
    """Validation and test metrics of a loaded run, as its results.json reports them."""
    valid, test = make_evaluators(p.split, p.cfg.train, p.device)
    return {"valid": valid.evaluate(p.model.scores), "test": test.evaluate(p.model.scores)}
