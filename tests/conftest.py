"""Shared fixtures: a tiny synthetic dataset on disk and the path to the real shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmgef.data.formats import write_native
from mmgef.data.synthetic import SyntheticConfig, generate

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MMGEF_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _project_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dataset configs resolve against the repository whatever the test's working directory."""
    monkeypatch.setenv("MMGEF_ROOT", str(REPO))


@pytest.fixture(scope="session")
def tiny_cfg() -> SyntheticConfig:
    return SyntheticConfig(n_users=120, n_items=90, mean_interactions=12, seed=3)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory, tiny_cfg: SyntheticConfig) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    write_native(generate(tiny_cfg), root)
    return root


def shared_dataset(name: str) -> Path:
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"real dataset {path} not present (expected ../shared/data beside the repo)")
    return path
