"""Bad input to `mmgef features`, `data synth` and `reproduce`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bad_inputs.harness import REPO, Case, Env, run_case, write

ITEMS = "item_id,title\na,red shoes\nb,blue hat\n"


def _features(t: Path, *extra: str, items: str | bytes = ITEMS) -> list[str]:
    return ["features", "--items", str(write(t / "items.csv", items)), "--out", str(t / "feats"), *extra]


def _clip_dir(t: Path, files: dict[str, str]) -> str:
    (t / "clip").mkdir()
    for name, text in files.items():
        write(t / "clip" / name, text)
    return str(t / "clip")


def _clip(t: Path, files: dict[str, str] | None) -> list[str]:
    """Items with a real image, and the CLIP model directory ``files`` (None: no --model-path)."""
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(t / "a.png")
    argv = _features(t, "--encoder", "clip", items="item_id,title,image\na,red square,a.png\n")
    return argv if files is None else [*argv, "--model-path", _clip_dir(t, files)]


TINY_GRID = REPO / "configs" / "experiments" / "tiny_grid.yaml"

CASES = [
    # features
    Case("features-items-missing", lambda t, e: ["features", "--items", str(t / "no.csv"), "--out", str(t / "f")], r"no\.csv: items file not found"),
    Case("features-out-is-a-file", lambda t, e: (write(t / "feats", "x"), _features(t))[1], r"feats: is a file, but --out must be a folder"),
    Case("features-cuda-without-gpu", lambda t, e: _features(t, "--device", "cuda"), r"--device 'cuda' asked for but no CUDA device"),
    Case("features-bad-device", lambda t, e: _features(t, "--device", "tpu"), r"--device 'tpu': not a device name"),
    Case("features-empty-model-dir", lambda t, e: _clip(t, {}),
         r"clip: the CLIP model directory is empty"),
    Case("features-partial-clip-dir", lambda t, e: _clip(t, {"config.json": "{}"}),
         r"clip: not a complete transformers CLIP model directory"),
    Case("features-model-dir-missing", lambda t, e: _features(t, "--model-path", str(t / "none")), r"none: text model directory not found"),
    Case("features-clip-without-path", lambda t, e: _clip(t, None), r"--encoder clip needs a local model"),
    Case("features-unknown-encoder", lambda t, e: _features(t, "--encoder", "bert"), r"mmgef features: 'encoder'"),
    Case("features-zero-batch", lambda t, e: _features(t, "--batch-size", "0"), r"mmgef features: 'batch_size': Input should be greater than 0"),
    Case("features-items-not-utf8", lambda t, e: _features(t, items="item_id,title\na,caf\xe9\n".encode("latin-1")),
         r"items\.csv:2: byte b'\\xe9' .* not valid utf-8"),
    Case("features-no-id-column", lambda t, e: _features(t, items="id,title\na,x\n"), r"items\.csv:1: header lacks 'item_id'"),
    Case("features-duplicate-id", lambda t, e: _features(t, items=ITEMS + "a,again\n"), r"items\.csv:4: item_id 'a' repeats"),
    Case("features-no-rows", lambda t, e: _features(t, items="item_id,title\n"), r"items\.csv: has a header but no rows"),
    Case("features-empty-text", lambda t, e: _features(t, items=ITEMS + "c,\n"), r"items\.csv:4: item 'c': empty text.*--on-missing"),
    Case("features-missing-image", lambda t, e: _features(t, "--encoder", "clip", items="item_id,title,image\na,x,no.jpg\n"),
         r"items\.csv:2: item 'a': missing image file .*no\.jpg.*--on-missing"),
    Case("features-no-image-column", lambda t, e: _features(t, "--encoder", "clip"), r"items\.csv:1: no image column 'image'"),
    # data synth
    Case("synth-too-few-users", lambda t, e: ["data", "synth", str(t / "s"), "--users", "5"], r"mmgef data synth: 'n_users'.*Fix: pass --users > 10"),
    Case("synth-negative-seed", lambda t, e: ["data", "synth", str(t / "s"), "--seed", "-2"], r"'seed': Input should be greater than or equal to 0"),
    Case("synth-out-is-a-file", lambda t, e: ["data", "synth", str(write(t / "s", "x"))], r"s: is a file"),
    Case("synth-out-not-empty", lambda t, e: ["data", "synth", str(write(t / "s" / "mine.csv", "x").parent)], r"s: is not empty"),
    # reproduce
    Case("reproduce-spec-missing", lambda t, e: ["reproduce", str(t / "spec.yaml")], r"spec\.yaml: config file not found"),
    Case("reproduce-spec-unknown-key", lambda t, e: ["reproduce", str(write(t / "spec.yaml", TINY_GRID.read_text() + "colour: red\n"))],
         r"spec\.yaml: unknown key 'colour'"),
    Case("reproduce-unknown-dataset", lambda t, e: ["reproduce", str(TINY_GRID), "--datasets", "imagenet", "--out", str(t / "x")],
         r"--datasets \['imagenet'\]: not in"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_command_input(case: Case, tmp_path: Path, env: Env) -> None:
    run_case(case, tmp_path, env)
