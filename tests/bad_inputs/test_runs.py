"""Bad configs, run directories, checkpoints and resumes, through `mmgef train`, `evaluate`, `recommend`, `export`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mmgef.io import locked_dir
from tests.bad_inputs.harness import Case, Env, run_case, train_args, write

RUN_WRITES = ("run/config.yaml", "run/history.jsonl")  # what a run that fails mid-training may leave


def _train(*sets: str, model: str = "mf") -> object:
    return lambda t, e: train_args(e.data, t / "run", *sets, model=model)


def _with_run(t: Path, e: Env) -> Path:
    shutil.copytree(e.run, t / "run")
    return t / "run"


def _copy_data_and_run(t: Path, e: Env) -> Path:
    """A run whose data lives in the case's folder (so the case may change it)."""
    shutil.copytree(e.data, t / "data")
    run = _with_run(t, e)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["data"]["name"] = cfg["data"]["location"] = str(t / "data")
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return run


def _reordered_items(t: Path, e: Env) -> list[str]:
    run = _copy_data_and_run(t, e)
    lines = (t / "data" / "items.csv").read_text().splitlines(keepends=True)
    lines[1], lines[2] = lines[2], lines[1]
    (t / "data" / "items.csv").write_text("".join(lines))
    return ["evaluate", str(run)]


def _truncate(name: str, argv: object) -> object:
    def setup(t: Path, e: Env) -> list[str]:
        run = _with_run(t, e)
        data = (run / name).read_bytes()
        (run / name).write_bytes(data[: len(data) // 3])
        return argv(t, e)  # type: ignore[operator]
    return setup


def _foreign_tensors(t: Path, e: Env) -> list[str]:
    import torch
    from safetensors.torch import save_file

    run = _with_run(t, e)
    save_file({"x": torch.zeros(2)}, str(run / "checkpoint.safetensors"), metadata={"state": "{}", "param_groups": "[]"})
    return train_args(e.data, run, "epochs=3")


def _locked(t: Path, e: Env) -> list[str]:
    # The lock is taken by this process on a separate open file: flock refuses the command's own attempt.
    holder = locked_dir(t / "held")
    holder.__enter__()
    _locked.holder = holder  # type: ignore[attr-defined]  # released by the test after the case
    return train_args(e.data, t / "held")


def _init_garbage(t: Path, e: Env) -> list[str]:
    write(t / "pre.safetensors", b"\x00" * 40)
    return train_args(e.data, t / "run", model="lightgcn") + ["--init", str(t / "pre.safetensors")]


CASES = [
    # configs and options
    Case("unknown-model", lambda t, e: ["train", "--model", "lightgnc"], r"unknown model 'lightgnc'.*lightgcn"),
    Case("unknown-set-key", _train("learning_rate=0.1"), r"--set learning_rate: unknown key"),
    Case("set-without-equals", _train("lr"), r"--set 'lr': expected key=value"),
    Case("negative-seed", lambda t, e: [*train_args(e.data, t / "run"), "--seed", "-1"], r"'seed': Input should be greater than or equal to 0"),
    Case("zero-epochs", _train("epochs=0"), r"'train\.epochs': Input should be greater than or equal to 1"),
    Case("negative-lr", _train("lr=-1"), r"'train\.lr': Input should be greater than 0"),
    Case("lr-not-a-number", _train("lr=fast"), r"'train\.lr': Input should be a valid number"),
    Case("negative-layers", _train("n_layers=-2", model="lightgcn"), r"'params\.n_layers'"),
    Case("mixgcf-on-mf", _train("sampler=mixgcf"), r"MixGCF mixes per-layer embeddings"),
    Case("unknown-stop-metric", _train("stop_metric=auc@20"), r"stop_metric 'auc@20' is not computed"),
    Case("cuda-without-gpu", _train("device=cuda"), r"train\.device 'cuda' asked for but no CUDA device"),
    Case("bad-device-name", _train("device=gpu0"), r"train\.device 'gpu0': not a device name"),
    Case("ratios-not-one", _train("ratios=[0.5,0.1,0.1]"), r"split ratios must be non-negative and sum to 1"),
    Case("unknown-modality", _train("modalities=[smell]", model="vbpr"), r"has no modality \['smell'\]"),
    Case("unknown-split", lambda t, e: [*train_args(e.data, t / "run"), "--split", "weird"], r"'data\.split'"),
    Case("config-file-missing", lambda t, e: ["train", "--config", str(t / "nope.yaml")], r"nope\.yaml: config file not found"),
    Case("config-invalid-yaml", lambda t, e: ["train", "--config", str(write(t / "c.yaml", "model: mf\ntrain: {lr: [\n"))],
         r"c\.yaml:\d+: invalid YAML"),
    Case("config-not-a-mapping", lambda t, e: ["train", "--config", str(write(t / "c.yaml", "- mf\n"))], r"c\.yaml: expected a mapping"),
    Case("config-unknown-section-key", lambda t, e: ["train", "--config", str(write(t / "c.yaml", "model: mf\ntrian: {lr: 0.1}\n"))],
         r"c\.yaml: unknown key 'trian'"),
    Case("config-without-model", lambda t, e: ["train", "--config", str(write(t / "c.yaml", "seed: 1\n"))], r"c\.yaml: no model given"),
    Case("unknown-dataset", lambda t, e: ["train", "--model", "mf", "--data", "nope"], r"dataset 'nope': neither a directory"),
    Case("init-missing", lambda t, e: [*train_args(e.data, t / "run", model="lightgcn"), "--init", str(t / "p.safetensors")],
         r"--init .*p\.safetensors: file not found"),
    Case("init-garbage", _init_garbage, r"pre\.safetensors: corrupt or truncated safetensors file"),
    # run directories
    Case("out-is-a-file", lambda t, e: train_args(e.data, write(t / "run", "x")), r"--out .*run: is a file"),
    Case("out-holds-other-files", lambda t, e: (write(t / "run" / "thesis.tex", "x"), train_args(e.data, t / "run"))[1],
         r"--out .*run: holds files that are not an mmgef run \(thesis\.tex\)"),
    Case("diverging-loss", _train("lr=1e30", model="lightgcn"),
         r"(training loss became (nan|inf)|scores hold NaN or inf).*(no result is written|no checkpoint or result was written)\. Fix: lower the learning rate",
         may_write=RUN_WRITES),
    Case("run-dir-in-use", _locked, r"held: this run directory is in use by another mmgef process \(pid \d+\)"),
    Case("run-of-another-config", lambda t, e: (_with_run(t, e), train_args(e.data, t / "run", "lr=0.01"))[1],
         r"run/config\.yaml: this directory holds a run of another config"),
    Case("run-exists-without-resume", lambda t, e: (_with_run(t, e), train_args(e.data, t / "run"))[1],
         r"run: already holds a run\. Fix: add --resume"),
    Case("resume-truncated-checkpoint", _truncate("checkpoint.safetensors", lambda t, e: [*train_args(e.data, t / "run", "epochs=3"), "--resume"]),
         r"checkpoint\.safetensors: corrupt or truncated safetensors file.*Fix: delete .* re-run without --resume"),
    Case("resume-foreign-checkpoint", lambda t, e: [*_foreign_tensors(t, e), "--resume"], r"checkpoint\.safetensors: not a checkpoint written by mmgef"),
    Case("resume-fewer-epochs", lambda t, e: (_with_run(t, e), [*train_args(e.data, t / "run", "epochs=1"), "--resume"])[1],
         r"the run has already trained 2 epochs, more than epochs=1"),
    # evaluate / recommend / export on runs
    Case("evaluate-not-a-run", lambda t, e: ["evaluate", str(t)], r"config\.yaml: not found\. Fix: point to a finished run"),
    Case("evaluate-truncated-model", _truncate("model.safetensors", lambda t, e: ["evaluate", str(t / "run")]),
         r"model\.safetensors: corrupt or truncated safetensors file.*Fix: retrain"),
    Case("evaluate-garbage-config", lambda t, e: (_with_run(t, e), write(t / "run" / "config.yaml", "model: [\n"), ["evaluate", str(t / "run")])[2],
         r"config\.yaml:\d+: invalid YAML"),
    Case("evaluate-data-reordered", _reordered_items, r"the data changed since this run was trained \(.*item ids.*\)"),
    Case("recommend-unknown-user", lambda t, e: ["recommend", str(e.run), "--user", "nobody"], r"user 'nobody' is not in this run's data"),
    Case("recommend-zero-k", lambda t, e: ["recommend", str(e.run), "--user", "u1", "--k", "0"], r"--k 0: must be a positive integer"),
    Case("recommend-no-user", lambda t, e: ["recommend", str(e.run)], r"no user given"),
    Case("recommend-users-file-missing", lambda t, e: ["recommend", str(e.run), "--users-file", str(t / "u.txt")], r"--users-file .*u\.txt: not found"),
    Case("export-out-is-a-file", lambda t, e: ["export", str(e.run), "--out", str(write(t / "emb", "x"))], r"--out .*emb: exists and is not a directory"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_run_input(case: Case, tmp_path: Path, env: Env) -> None:
    try:
        run_case(case, tmp_path, env)
    finally:
        holder = getattr(_locked, "holder", None)
        if holder is not None:
            holder.__exit__(None, None, None)
            del _locked.holder  # type: ignore[attr-defined]
