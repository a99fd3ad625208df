"""One finished run for the cases that need one (evaluate, recommend, resume)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmgef.cli import app
from tests.bad_inputs.harness import Env, train_args


@pytest.fixture(scope="session")
def env(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Env:
    run = tmp_path_factory.mktemp("bad-inputs") / "run"
    res = CliRunner().invoke(app, train_args(tiny_dir, run))
    assert res.exit_code == 0, res.output
    return Env(tiny_dir, run)
