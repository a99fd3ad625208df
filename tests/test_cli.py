import json

from typer.testing import CliRunner

from mmgef.cli import app

runner = CliRunner()


def test_help_on_every_verb():
    for verb in (["train"], ["evaluate"], ["inspect"], ["recommend"], ["data", "stats"], ["data", "validate"], ["data", "synth"], ["demo"]):
        res = runner.invoke(app, [*verb, "--help"])
        assert res.exit_code == 0 and "Usage" in res.output


def test_train_recommend_evaluate(tiny_dir, tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", "--model", "mf", "--data", str(tiny_dir), "--out", str(out),
                              "--set", "epochs=3", "--set", "progress=false", "--set", "threads=1", "--seed", "1"])
    assert res.exit_code == 0, res.output
    assert "recall@20" in res.output and json.loads((out / "results.json").read_text())["threads"] == 1
    rec = runner.invoke(app, ["recommend", str(out), "--user", "u5", "--k", "4"])
    assert rec.exit_code == 0, rec.output
    lines = rec.output.strip().splitlines()
    assert len(lines) == 4 and all(line.split("\t")[1].startswith("i") for line in lines)
    ev = runner.invoke(app, ["evaluate", str(out)])
    assert ev.exit_code == 0 and "| test |" in ev.output
    bad = runner.invoke(app, ["recommend", str(out), "--user", "nobody"])
    assert bad.exit_code == 2 and "user 'nobody' is not in this run's data" in bad.output


def test_errors_are_one_line_with_exit_code_2(tmp_path):
    res = runner.invoke(app, ["train", "--model", "nope", "--data", "synthetic"])
    assert res.exit_code == 2 and "unknown model 'nope'" in res.output
    res = runner.invoke(app, ["data", "validate", str(tmp_path)])
    assert res.exit_code == 2 and "no known layout" in res.output


def test_data_stats_on_native_layout(tiny_dir):
    res = runner.invoke(app, ["data", "stats", str(tiny_dir)])
    assert res.exit_code == 0 and '"users": 120' in res.output and '"image"' in res.output
    stats = json.loads(res.output)
    assert set(stats["item_training_degree"]) == {"train", "valid", "test"}
    assert stats["item_training_degree"]["train"]["share_untrained"] == 0.0  # a training pair's item has been trained


def test_demo_trains_the_quick_models_and_names_the_slow_ones(tmp_path):
    res = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--epochs", "2"])
    assert res.exit_code == 0, res.output
    rows = [line for line in (tmp_path / "demo" / "results.md").read_text().splitlines() if line.startswith("| ") and "synthetic" in line]
    assert [r.split("|")[1].strip() for r in rows] == ["cb", "mf", "vbpr", "lightgcn", "freedom", "lattice", "mmgef"]
    assert "[7/7] mmgef" in res.output and "done in" in res.output and "mmgef demo --all" in res.output


def test_reproduce_dry_run_lists_the_runs_and_trains_nothing(tmp_path):
    from pathlib import Path

    spec = Path(__file__).resolve().parents[1] / "configs" / "experiments" / "tiny_grid.yaml"
    res = runner.invoke(app, ["reproduce", str(spec), "--dry-run", "--out", str(tmp_path / "exp")])
    assert res.exit_code == 0, res.output
    assert "| MF-BPR | synthetic | 0 / 2 | ≤ 1 | – |" in res.output and "6 runs to do at most" in res.output
    assert not list(tmp_path.glob("**/results.json"))
