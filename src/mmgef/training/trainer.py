"""The BPR trainer: early stopping on validation, best weights kept, atomic resumable checkpoints.

Determinism: model initialisation is seeded by the run seed, and every epoch reseeds its own
sampling and dropout generators from (seed, epoch). A checkpoint therefore needs only the model,
the optimizer and the early-stopping counters, and a resumed run continues bit-for-bit on CPU.
"""

from __future__ import annotations

import json
import logging
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from mmgef.config import RunConfig, TrainConfig
from mmgef.data.split import Split
from mmgef.errors import ConfigError, MMGEFError
from mmgef.eval.evaluator import Evaluator
from mmgef.io import read_safetensors, read_safetensors_metadata, write_safetensors, write_text
from mmgef.models.base import Batch, Recommender
from mmgef.models.mixgcf import mixgcf_loss
from mmgef.training import distributed
from mmgef.training.allocator import release_freed_memory, reuse_freed_memory
from mmgef.training.distributed import ALONE, Group
from mmgef.training.sampling import HeldOutPairs

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.safetensors"
BEST_MODEL = "model.safetensors"
HISTORY = "history.jsonl"


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB.

    Reads VmHWM, which a new program image starts afresh; ``ru_maxrss`` is not reset by exec on
    Linux, so in a process spawned by a large parent it would report the parent's size.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


@dataclass
class TrainState:
    """Everything besides tensors that a resumed run needs."""

    epoch: int = 0  # epochs completed
    best_epoch: int = -1
    best_score: float = -1.0
    best_valid: dict[str, float] = field(default_factory=dict)
    bad_evals: int = 0
    train_seconds: float = 0.0
    stopped_early: bool = False
    digest: str = ""


def make_evaluators(split: Split, train: TrainConfig, device: torch.device | str) -> tuple[Evaluator, Evaluator]:
    """Validation masks training items; test masks training and validation items (``eval_mask="train"``:
    training items only, as MMRec does, so numbers can be set beside that toolbox's)."""
    ks = train.eval_ks
    for part in ("valid", "test"):
        cands = split.candidates(part)
        if cands is not None and len(cands) <= max(ks):
            log.warning("%s ranks only %d candidate item(s): recall and hit at K >= %d are 1.0 whatever the model. "
                        "Raise data.cold_ratio or use a larger dataset for a meaningful cold-start number.",
                        part, len(cands), len(cands))
    sizes = {"batch_size": train.eval_batch_size, "device": device, "item_block": train.eval_item_block,
             "sample_users": train.eval_users}
    valid = Evaluator(split.valid, [split.train], ks, candidates=split.candidates("valid"), **sizes)
    masked = [split.train, split.valid] if train.eval_mask == "train+valid" else [split.train]
    test = Evaluator(split.test, masked, ks, candidates=split.candidates("test"), **sizes)
    return valid, test


class Trainer:
    def __init__(self, cfg: RunConfig, model: Recommender, split: Split, run_dir: Path, sampler: Any,
                 device: torch.device, group: Group = ALONE) -> None:
        """``group``: this process's rank among data-parallel workers (training.distributed); rank 0 alone
        validates and writes to ``run_dir``."""
        self.cfg = cfg
        self.group = group
        self.model = model
        self.split = split
        self.run_dir = Path(run_dir)
        self.sampler = sampler
        self.device = device
        self.valid_eval, self.test_eval = make_evaluators(split, cfg.train, self.device)
        # MixGCF is a training objective over a layered model's per-layer embeddings; whether the
        # model has them was checked when the config was resolved.
        self.loss_fn = (lambda batch: mixgcf_loss(model, batch)) if cfg.train.sampler == "mixgcf" else model.loss  # type: ignore[arg-type]
        params = [p for p in model.parameters() if p.requires_grad]
        self.params = params
        self.optimizer = torch.optim.Adam(params, lr=cfg.train.lr) if params else None
        # parameters fitted on validation pairs (a model's held_out_parameters): the training step leaves them alone
        # and a step on a validation batch moves only them; one optimizer holds both, so checkpoints are unchanged
        self.held_out = model.held_out_parameters()
        if self.held_out and group.world > 1:
            raise ConfigError("train: the model fits its mixing weights on validation pairs (mix_on_valid), which "
                              "data-parallel workers do not support. Fix: set workers=1, or mix_on_valid=false.")
        held = {id(p) for p in self.held_out}
        self.trained_on_train = [p for p in params if id(p) not in held]  # what a held-out step leaves alone
        self.held_out_pairs = HeldOutPairs(split.valid, split.train) if self.held_out else None
        self.state = TrainState(digest=cfg.digest(stopping=False))
        self.best_weights: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self) -> None:
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update({f"best.{k}": v for k, v in self.best_weights.items()})
        groups: list[dict[str, Any]] = []
        if self.optimizer is not None:
            opt = self.optimizer.state_dict()
            for idx, st in opt["state"].items():
                for key, val in st.items():
                    tensors[f"optim.{idx}.{key}"] = val if torch.is_tensor(val) else torch.tensor(val)
            groups = opt["param_groups"]
        meta = {"state": json.dumps(self.state.__dict__), "param_groups": json.dumps(groups)}
        write_safetensors(self.run_dir / CHECKPOINT, tensors, metadata=meta)

    def load_checkpoint(self) -> None:
        path = self.run_dir / CHECKPOINT
        fix = f"delete {path} and re-run without --resume (training starts over)"
        meta = read_safetensors_metadata(path, fix)
        try:
            state = TrainState(**json.loads(meta["state"]))
            groups = json.loads(meta["param_groups"])
        except (KeyError, TypeError, json.JSONDecodeError):
            state = None
        if state is None or not state.digest:  # every checkpoint mmgef writes carries its config digest
            raise MMGEFError(f"{path}: not a checkpoint written by mmgef (its training state is missing or unreadable). "
                             f"Fix: {fix}.") from None
        if state.digest != self.state.digest:
            raise ConfigError(f"{path}: checkpoint belongs to another config (digest {state.digest}, this run "
                              f"{self.state.digest}). Fix: resume with the run's own config.yaml or use a new --out.")
        tensors = read_safetensors(path, fix)
        try:
            self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
            self.best_weights = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
            if self.optimizer is not None:
                opt_state: dict[int, dict[str, torch.Tensor]] = {}
                for k, v in tensors.items():
                    if k.startswith("optim."):
                        _, idx, key = k.split(".", 2)
                        opt_state.setdefault(int(idx), {})[key] = v
                self.optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
        except (RuntimeError, KeyError, ValueError) as err:
            raise MMGEFError(f"{path}: its tensors do not fit this model ({str(err).splitlines()[0][:120]}). Fix: {fix}.") from None
        tc = self.cfg.train
        if state.epoch > tc.epochs:
            raise ConfigError(f"{path}: the run has already trained {state.epoch} epochs, more than epochs={tc.epochs}. "
                              f"Fix: resume with --set epochs={state.epoch} or more.")
        # Stopping settings may change on resume (the digest leaves them out): a finished run
        # continues when the new epochs or patience allow more.
        state.stopped_early = state.bad_evals >= tc.patience
        if state.stopped_early:
            log.warning("%s stopped early after %d evaluations without improvement; raise patience (now %d) to "
                        "continue it", self.run_dir, state.bad_evals, tc.patience)
        self.state = state
        if self.group.is_main:
            self._truncate_history(state.epoch)

    def _truncate_history(self, epochs_done: int) -> None:
        """Drop history lines written after the checkpoint (a kill between the two writes, or mid-line)."""
        path = self.run_dir / HISTORY
        if not path.exists():
            return
        kept = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line)["epoch"] < epochs_done:
                    kept.append(line)
            except (json.JSONDecodeError, KeyError):
                continue  # a line cut short by the kill
        write_text(path, "".join(ln + "\n" for ln in kept))

    # ------------------------------------------------------------------ loop

    def _train_epoch(self, epoch: int, optimizer: torch.optim.Optimizer) -> float:
        """One pass over the training pairs; returns the mean loss per step. With several workers every rank
        draws the same batches (the same seed) and trains on its slice of each; gradients are averaged."""
        seed = epoch_seed(self.cfg.seed, epoch)
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        held_out_rng = np.random.default_rng([seed, 1])  # its own stream: the training batches stay those of the run
        self.model.train()
        self.model.on_epoch_start(epoch)
        batch_size = self.cfg.train.batch_for(len(self.sampler))
        n_batches = -(-len(self.sampler) // batch_size)
        total = 0.0
        bar = tqdm(self.sampler.batches(batch_size, rng), total=n_batches, leave=False, desc=f"epoch {epoch}",
                   disable=not (self.cfg.train.progress and self.group.is_main))
        for step, arrays in enumerate(bar):
            if self.group.world > 1:
                mine = self.group.shard(len(arrays[0]))
                arrays = tuple(x[mine] for x in arrays)
            optimizer.zero_grad(set_to_none=True)
            n_local, loss_value = len(arrays[0]), 0.0
            if n_local:
                loss = self.loss_fn(Batch(*(torch.as_tensor(x, device=self.device) for x in arrays)))
                if not torch.isfinite(loss):
                    raise self._diverged(f"the training loss became {loss.item()} at epoch {epoch}, batch {step}")
                loss.backward()
                loss_value = loss.item()
            if self.group.world > 1:
                n_all, loss_sum = distributed.all_reduce_gradients(self.params, n_local, loss_value * n_local)
                loss_value = loss_sum / max(1, n_all)
            for p in self.held_out:
                p.grad = None  # Adam skips a parameter without a gradient: the held-out step moves these
            optimizer.step()
            if self.held_out_pairs is not None:
                self._held_out_step(optimizer, self.held_out_pairs, len(arrays[0]), held_out_rng, epoch, step)
            total += loss_value
        return total / max(1, n_batches)

    def _held_out_step(self, optimizer: torch.optim.Optimizer, pairs: HeldOutPairs, n: int, rng: np.random.Generator,
                       epoch: int, step: int) -> None:
        """One step of the held-out parameters on the BPR loss of ``n`` of ``pairs``; nothing else moves."""
        optimizer.zero_grad(set_to_none=True)
        loss = self.model.loss(Batch(*(torch.as_tensor(x, device=self.device) for x in pairs.sample(n, rng))))
        if not torch.isfinite(loss):
            raise self._diverged(f"the validation-pair loss became {loss.item()} at epoch {epoch}, batch {step}")
        loss.backward()
        for p in self.trained_on_train:
            p.grad = None  # Adam skips a parameter without a gradient
        optimizer.step()

    def restore(self) -> None:
        """Continue from the run directory's checkpoint, if it has one (before ``fit``)."""
        if (self.run_dir / CHECKPOINT).exists():
            self.load_checkpoint()
            log.info("resumed %s after epoch %d", self.run_dir, self.state.epoch)

    def fit(self) -> dict[str, Any]:
        """Train until ``epochs`` or early stopping, then test the best weights (rank 0; other ranks return {})."""
        tc = self.cfg.train
        main = self.group.is_main
        if self.group.world > 1:
            distributed.broadcast_parameters(self.params)
        if tc.reuse_freed_memory:  # after the build, whose one-off temporaries may go back to the kernel
            reuse_freed_memory()
        if self.optimizer is not None and not self.state.stopped_early:
            history = open(self.run_dir / HISTORY, "a") if main else None
            try:
                for epoch in range(self.state.epoch, tc.epochs):
                    if tc.reuse_freed_memory:
                        release_freed_memory()  # what the last epoch and its evaluation left unused
                    t0 = time.perf_counter()
                    loss = self._train_epoch(epoch, self.optimizer)
                    train_s = time.perf_counter() - t0
                    self.state.train_seconds += train_s
                    record: dict[str, Any] = {"epoch": epoch, "loss": loss, "train_seconds": round(train_s, 4),
                                              "peak_rss_mb": round(peak_rss_mb(), 1)}
                    if main and ((epoch + 1) % tc.eval_every == 0 or epoch + 1 == tc.epochs):
                        record.update(self._validate(epoch))
                    self.state.epoch = epoch + 1
                    self.state.stopped_early = self.state.bad_evals >= tc.patience
                    if self.group.world > 1:  # rank 0 validated; every rank stops with it
                        self.state.stopped_early = distributed.broadcast_flag(self.state.stopped_early, self.device)
                    if history is not None:
                        # History first, checkpoint second: a kill between the two leaves a history line
                        # past the checkpoint, which resume drops and re-runs, never a missing line.
                        history.write(json.dumps(record, allow_nan=False) + "\n")  # strict JSON: NaN was refused above
                        history.flush()
                        self.save_checkpoint()
                    if self.state.stopped_early:
                        log.info("early stop after epoch %d (best %d)", epoch, self.state.best_epoch)
                        break
            finally:
                if history is not None:
                    history.close()
        return self._finish() if main else {}

    def _diverged(self, what: str) -> MMGEFError:
        kept = (f"the last good checkpoint (after epoch {self.state.epoch}) is kept and no result is written"
                if self.state.epoch else "no checkpoint or result was written")
        return MMGEFError(f"{self.run_dir}: {what}; {kept}. "
                          f"Fix: lower the learning rate (now {self.cfg.train.lr}) and train again.")

    def _validate(self, epoch: int) -> dict[str, Any]:
        self.model.eval()
        valid = self.valid_eval.evaluate(self.model.scores)
        if not all(np.isfinite(v) for v in valid.values()):
            raise self._diverged(f"the model's scores hold NaN or inf at epoch {epoch} (validation metrics are undefined)")
        score = valid[self.cfg.train.stop_metric]
        if score > self.state.best_score:
            self.state.best_score, self.state.best_epoch, self.state.best_valid = score, epoch, valid
            self.state.bad_evals = 0
            self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            self.state.bad_evals += 1
        return {"valid": {k: round(v, 6) for k, v in valid.items()}, "best_epoch": self.state.best_epoch}

    def _finish(self) -> dict[str, Any]:
        """Test once, with the best-validation weights."""
        if self.best_weights:
            self.model.load_state_dict(self.best_weights)
        self.model.eval()
        valid = self.state.best_valid or self.valid_eval.evaluate(self.model.scores)
        test = self.test_eval.evaluate(self.model.scores)
        write_safetensors(self.run_dir / BEST_MODEL, self.model.state_dict(), metadata={"digest": self.state.digest})
        return {
            "valid": valid,
            "test": test,
            "best_epoch": self.state.best_epoch,
            "epochs": self.state.epoch,
            "seconds_per_epoch": self.state.train_seconds / max(1, self.state.epoch),
            "train_seconds": self.state.train_seconds,
            "peak_rss_mb": peak_rss_mb(),
            "valid_users": self.valid_eval.n_users,
            "test_users": self.test_eval.n_users,
        }
