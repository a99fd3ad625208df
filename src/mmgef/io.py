"""File I/O at the boundary: atomic writes (a killed process never leaves a half-written artifact),
text decoding that names the bad line, safetensors reads that name a corrupt file, run-directory locks."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from mmgef.errors import DataError, MMGEFError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the same directory; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes 0600 (and some writers recreate the file): the result follows the user's umask like any file
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_npy(path: str | Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)


def write_safetensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def _corrupt(path: Path, err: Exception, fix: str) -> MMGEFError:
    return MMGEFError(f"{path}: corrupt or truncated safetensors file ({str(err).splitlines()[0][:120]}). Fix: {fix}")


def read_safetensors(path: str | Path, fix: str = "delete it and re-run") -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file; a truncated or garbage file is one error naming it and ``fix``."""
    path = Path(path)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise _corrupt(path, err, fix) from None


def read_safetensors_metadata(path: str | Path, fix: str = "delete it and re-run") -> dict[str, str]:
    path = Path(path)
    try:
        with safe_open(str(path), "pt") as fh:
            return fh.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise _corrupt(path, err, fix) from None


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """A text file decoded with ``encoding``; undecodable bytes are one error naming the line and the encoding."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        return raw.decode(encoding)
    except LookupError:
        raise MMGEFError(f"encoding '{encoding}' is unknown. Fix: use a Python codec name, e.g. utf-8, latin-1, cp1252.") from None
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(path, f"byte {raw[err.start:err.start + 1]!r} at offset {err.start} is not valid {encoding}",
                        "re-save the file as UTF-8, or pass its encoding with --encoding (e.g. --encoding latin-1)",
                        line=line) from None


def _busy(path: Path, fh: Any, what: str) -> MMGEFError | None:
    """Try the exclusive lock on an open lock file; the error to raise when another process holds it."""
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "unknown"
        return MMGEFError(f"{path}: this {what} is in use by another mmgef process (pid {holder}). "
                          "Fix: wait for it to finish, or pass another --out.")
    return None


def check_unlocked(path: str | Path, what: str = "run directory") -> None:
    """Fail at once when another process holds ``path``'s lock (without creating anything)."""
    path = Path(path)
    if not (path / ".lock").is_file():
        return
    with open(path / ".lock", "a+") as fh:
        if err := _busy(path, fh, what):
            raise err


@contextmanager
def locked_dir(path: str | Path, what: str = "run directory") -> Iterator[None]:
    """Hold an exclusive lock on ``path/.lock`` (fcntl) while the body runs.

    A second process that writes into the same directory fails at once with the holder's pid,
    instead of interleaving its history and checkpoints with the first. The kernel drops the
    lock when the holder dies, so a killed run never leaves a stale lock behind.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "a+") as fh:
        if err := _busy(path, fh, what):
            raise err
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
