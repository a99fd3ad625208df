"""code_version: the commit a report cites, and when it is marked as having uncommitted changes."""

import shutil
import subprocess

import pytest

from mmgef.experiments.report import code_version


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_benchmarks_own_tables_do_not_mark_the_commit_and_code_changes_do(tmp_path, monkeypatch):
    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=tmp_path, check=True,
                              capture_output=True, text=True).stdout.strip()

    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "table.md").write_text("old\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "first")
    commit = git("rev-parse", "--short", "HEAD")
    monkeypatch.chdir(tmp_path / "benchmarks")  # a benchmark may run from a subfolder
    (tmp_path / "benchmarks" / "results" / "table.md").write_text("new\n")
    assert code_version() == f"`{commit}`"
    (tmp_path / "code.py").write_text("x = 2\n")
    assert code_version() == f"`{commit}` (with uncommitted changes)"
