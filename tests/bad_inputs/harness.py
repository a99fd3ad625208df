"""Run one bad input through the CLI and check the standard every case must meet.

A case writes its inputs under a temporary folder and returns the command line. The check:
exit code 2, exactly one line on stderr that starts with ``error:`` and matches the case's
pattern (which names the file / line / key), a ``Fix:``, no traceback, and no output written
or changed in the folder beyond what the case allows (a refused command leaves nothing half-done).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from mmgef.cli import app

REPO = Path(__file__).resolve().parents[2]



@dataclass(frozen=True)
class Env:
    """What cases build on: a tiny native dataset and a finished 2-epoch MF run on it (both read-only)."""

    data: Path
    run: Path


Setup = Callable[[Path, Env], list[str]]


@dataclass(frozen=True)
class Case:
    name: str
    setup: Setup
    expect: str  # regex the error line must contain
    may_write: tuple[str, ...] = ()  # glob patterns (relative to the folder) the command may create or change

    def __str__(self) -> str:
        return self.name


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of every file but lock files (bookkeeping of a run directory, not output)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file() and p.name != ".lock"}


def run_case(case: Case, tmp: Path, env: Env) -> str:
    argv = case.setup(tmp, env)
    before = snapshot(tmp)
    res = CliRunner().invoke(app, argv)
    err = res.stderr.strip()
    assert res.exit_code == 2, f"{case}: exit {res.exit_code}\n{res.output}\n{res.exception!r}"
    assert "Traceback" not in res.output, res.output
    assert len(err.splitlines()) == 1, f"{case}: expected one line on stderr, got:\n{err}"
    assert err.startswith("error: ") and "Fix:" in err, err
    assert re.search(case.expect, err), f"{case}: {err!r} does not match {case.expect!r}"
    after = snapshot(tmp)
    changed = {k for k in after if before.get(k) != after[k]}
    allowed = {k for k in changed if any(Path(k).match(p) for p in case.may_write)}
    assert changed == allowed, f"{case}: wrote {sorted(changed - allowed)}"
    return err


# --------------------------------------------------------------------------- small writers


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def npy(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array, allow_pickle=True)
    return path


def train_args(data: Path, out: Path, *sets: str, model: str = "mf") -> list[str]:
    """The command line that made ``Env.run`` (so a case can resume it), plus ``sets``."""
    return ["train", "--model", model, "--data", str(data), "--out", str(out), "--set", "epochs=2",
            "--set", "progress=false", *(x for s in sets for x in ("--set", s))]


def mmrec(tmp: Path, inter: str | bytes, features: dict[str, np.ndarray] | None = None) -> list[str]:
    """A MMRec folder (d.inter + <m>_feat.npy) and `mmgef data validate` on it."""
    write(tmp / "d" / "d.inter", inter)
    for m, x in (features or {}).items():
        npy(tmp / "d" / f"{m}_feat.npy", x)
    return ["data", "validate", str(tmp / "d")]


GOOD_INTER = "userID\titemID\tx_label\n" + "".join(f"{u}\t{i}\t{lab}\n" for u in range(3) for i, lab in ((0, 0), (1, 0), (2, 1), (3, 2)))
