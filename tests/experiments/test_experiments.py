"""`mmgef reproduce`: grid selection on validation, seeds, resume without repeats, reports, Ray Tune."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from mmgef import runs
from mmgef.config import resolve_run_config
from mmgef.errors import ConfigError
from mmgef.experiments.report import HEADLINE, plan_table, write_report
from mmgef.experiments.runner import Runner
from mmgef.experiments.spec import load_spec, substitute

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "configs" / "experiments" / "tiny_grid.yaml"


def test_every_experiment_spec_expands():
    for path in sorted((REPO / "configs" / "experiments").glob("*.yaml")):
        spec = load_spec(path)
        runner = Runner(spec, Path("/nonexistent"))
        cells = runner.plan(spec.datasets)
        lines = sum(max(1, sum(len(v) for v in row.sweep.values())) * len(row.datasets or spec.datasets) for row in spec.rows)
        assert len(cells) == lines * (2 if spec.warm_split else 1)
        assert all("$" not in c.label for c in cells)
        assert len({(c.column, c.label) for c in cells}) == len(cells)  # every table line is named uniquely


def test_a_claim_whose_seeds_cannot_tell_the_rows_apart_is_marked_inside_the_noise():
    from mmgef.experiments.report import claims_table
    from mmgef.experiments.spec import ClaimSpec

    def table(better: list[float], worse: list[float], ndcg: tuple[list[float], list[float]] | None = None) -> str:
        ndcg = ndcg or ([v / 2 for v in better], [v / 2 for v in worse])
        rows = [{"column": "d", "label": lab, "seed": s, "chosen": True, "test_recall@20": v, "test_ndcg@20": n}
                for lab, vals, nd in (("A", better, ndcg[0]), ("B", worse, ndcg[1])) for s, (v, n) in enumerate(zip(vals, nd))]
        cells = [SimpleNamespace(column="d", label=lab, row=SimpleNamespace(label=lab), sweep=None) for lab in ("A", "B")]
        return claims_table(pd.DataFrame(rows), cells, [ClaimSpec(text="A > B", better="A", worse="B")], ["d"]).splitlines()[-1]

    assert table([0.50, 0.52, 0.51], [0.40, 0.41, 0.405]).startswith("| A > B | holds (recall@20 0.5100 vs 0.4050, p = ")
    assert table([0.50, 0.40, 0.45], [0.44, 0.46, 0.43]).startswith("| A > B | holds, inside the noise (recall@20 0.4500 vs 0.4433")
    # NDCG alone apart: not inside the noise
    assert table([0.50, 0.40, 0.45], [0.44, 0.46, 0.43], ndcg=([0.30, 0.31, 0.32], [0.20, 0.205, 0.21])).startswith(
        "| A > B | holds (recall@20 0.4500 vs 0.4433")
    assert table([0.40, 0.41, 0.405], [0.50, 0.52, 0.51]).startswith("| A > B | does not hold (recall@20 ")
    assert table([0.44, 0.46, 0.43], [0.50, 0.40, 0.45]).startswith("| A > B | does not hold, inside the noise (")
    # the same runs chosen by two searches, or means apart by less than the 4 decimals shown: equal, not a direction
    assert table([0.50, 0.52, 0.51], [0.50, 0.52, 0.51]).startswith("| A > B | equal, means within 0.00005 (recall@20 0.5100")
    assert table([0.50002, 0.52002, 0.51002], [0.5, 0.52, 0.51]).startswith("| A > B | equal, means within 0.00005 (")
    assert table([0.5001, 0.5201, 0.5101], [0.5, 0.52, 0.51]).startswith("| A > B | holds, inside the noise (")


def test_claims_name_what_the_modality_letters_stand_for_on_each_dataset():
    from mmgef.experiments.report import _modality_names

    spec = load_spec(REPO / "configs" / "experiments" / "pretrain_ablation.yaml")
    assert _modality_names(spec, ["lastfm2k", "tiktok"]) == " Modalities A / B: lastfm2k: text / audio; tiktok: image / audio."
    assert _modality_names(load_spec(SPEC), ["synthetic"]) == ""  # no row names a modality letter


def test_epochs_a_paused_machine_stretched_are_counted_not_hidden(tmp_path):
    from mmgef.experiments.report import search_cost, stalled_seconds

    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps({"epoch": e, "train_seconds": t}) + "\n" for e, t in enumerate([1.0, 1.2, 6400.0, 0.9, 1.1])))
    assert stalled_seconds(history) == pytest.approx(6400.0 - 1.1)
    history.write_text("".join(json.dumps({"epoch": e, "train_seconds": t}) + "\n" for e, t in enumerate([1.0, 30.0, 1.1])))
    assert stalled_seconds(history) == 0.0  # 30× the median but under a minute longer: a slow epoch, not a pause
    assert stalled_seconds(tmp_path / "missing.jsonl") == 0.0
    df = pd.DataFrame({"label": ["A", "A"], "column": ["d", "d"], "stage": ["grid", "seed"], "chosen": [False, True],
                       "seed": [0, 1], "train_seconds": [6500.0, 100.0], "stalled_seconds": [6398.9, 0.0]})
    cell = SimpleNamespace(label="A", column="d", fixed={}, settings_source=None, chosen={"lr": 0.1}, grid=[None, None])
    text = search_cost(df, [cell])
    assert "total over all runs: 6600 s. Of that, 6399 s are epochs of 1 runs that took more than 20×" in text
    assert "Of that" not in search_cost(df.assign(stalled_seconds=0.0), [cell])


def test_substitute_modality_placeholders():
    assert substitute({"modalities": ["$A", "$B"], "x": "MM-GEF $A"}, {"A": "text", "B": "audio"}) == {
        "modalities": ["text", "audio"], "x": "MM-GEF text"}


def test_grid_selected_on_validation_and_report(tmp_path):
    spec = load_spec(SPEC)
    runner = Runner(spec, tmp_path / "exp", workers=2)
    before = runner.preview()  # nothing trained yet: every grid run to do, seeds a bound
    assert [(r["grid_done"], r["grid"], r["seeds_todo"], r["exact"]) for r in before] == [(0, 2, 1, False)] * 2
    cells = runner.run()
    for c in cells:
        best = max(c.grid, key=lambda pc: runner.results(pc[1])["valid"]["recall@20"])
        assert c.chosen == best[0]
        assert len(c.seeds) == 2 and c.seeds[0].digest() == best[1].digest()  # seed 0 reused, not rerun
    out = write_report(runner, cells, spec.datasets, 1.0)
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 2 * (2 + 1)  # per row: 2 grid points + 1 extra seed
    summary = (out / "summary.md").read_text()
    assert "MF-BPR" in summary and "LightGCN" in summary and "±" in summary
    chosen = df[df.chosen]
    wins = [chosen[chosen.label == "LightGCN"][f"test_{m}"].mean() > chosen[chosen.label == "MF-BPR"][f"test_{m}"].mean()
            for m in HEADLINE]
    a, b = (chosen[chosen.label == lab].sort_values("seed")["test_recall@20"].to_numpy() for lab in ("LightGCN", "MF-BPR"))
    from scipy.stats import ttest_rel
    p = ttest_rel(a, b).pvalue
    p_ndcg = ttest_rel(*(chosen[chosen.label == lab].sort_values("seed")["test_ndcg@20"] for lab in ("LightGCN", "MF-BPR"))).pvalue
    verdict = "holds" if all(wins) else "does not hold" if not any(wins) else "mixed"
    verdict += ", inside the noise" if verdict != "mixed" and not (p < 0.05 or p_ndcg < 0.05) else ""
    claim_line = (out / "claims.md").read_text().splitlines()[-1]
    assert claim_line.startswith(f"| LightGCN > MF | {verdict} (recall@20 ")  # the verdict the numbers give, exactly
    assert f"p = {p:.2g}" in claim_line.split("ndcg@20")[0]  # the paired test over seeds
    # the verdicts can be re-made from the report alone (benchmarks/remake_claims.py): the same lines
    from mmgef.experiments.report import write_claims
    write_claims(tmp_path / "remade.md", spec, pd.read_csv(out / "results.csv"), Runner(spec, tmp_path / "none").plan(spec.datasets),
                 spec.datasets, note="re-made")
    remade = (tmp_path / "remade.md").read_text().splitlines()
    assert "re-made" in remade and remade[-1] == claim_line
    assert (out / "synthetic_test_metrics.png").stat().st_size > 5000
    # a second run finds everything done, and its preview says so
    again = Runner(spec, tmp_path / "exp", workers=2)
    after = again.preview()
    assert [(r["grid_done"], r["seeds_todo"], r["exact"]) for r in after] == [(2, 0, True)] * 2
    assert all(r["mean_train_seconds"] > 0 for r in after)
    assert "0 runs to do" in plan_table(after, 2)
    n_done = len(again.done)
    again.run()
    assert len(again.done) == n_done


@pytest.mark.slow
def test_killed_reproduce_resumes_without_repeating(tmp_path):
    exp = tmp_path / "exp"
    cmd = [sys.executable, "-m", "mmgef.cli", "reproduce", str(SPEC), "--out", str(exp), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline and len(list(exp.glob("runs/**/results.json"))) < 2:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: the coordinator and its worker processes
    proc.wait()
    finished = {p.parent: p.stat().st_mtime for p in exp.glob("runs/**/results.json")}
    assert 2 <= len(finished) < 6, "kill came too late to test resuming"
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    after = {p.parent: p.stat().st_mtime for p in exp.glob("runs/**/results.json")}
    assert len(after) == 6
    assert all(after[d] == t for d, t in finished.items())  # finished runs were not repeated
    assert "already finished" in res.stdout


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_ray_tune_path_selects_the_same_config(tmp_path):
    pytest.importorskip("ray.tune")
    spec = load_spec(SPEC)
    local = Runner(spec, tmp_path / "local", workers=2).run()
    ray_cells = Runner(spec, tmp_path / "ray", ray_address="local").run()
    assert [c.chosen for c in local] == [c.chosen for c in ray_cells]
    assert len(list((tmp_path / "ray").glob("runs/**/results.json"))) == 6


SWEEP_SPEC = """
name: sweep_warm
datasets: [synthetic]
split: cold
warm_split: random
seeds: 2
report_k: [40]
common: {epochs: 2, patience: 5, lr: 0.01}
rows:
  - {label: MF, model: mf, baseline: true, sweep: {embedding_dim: [4, 16]}}
  - {label: LightGCN†, model: lightgcn}  # † (not in the original table) is ignored when matching published rows
  - {label: LGCN small, model: lightgcn, set: {embedding_dim: 8}, published_as: LightGCN, grid: {n_layers: [1, 2]}}
claims:
  - {text: "LightGCN > the strongest MF", better: LightGCN†, worse: [MF embedding_dim=4, MF embedding_dim=16]}
  - {text: "LightGCN > MF dim 4", better: LightGCN†, worse: MF embedding_dim=4}
published: published.csv
published_tables: [P T2]
search: {reg: [0.0, 0.001]}
"""


def test_sweep_lines_warm_split_and_published_numbers(tmp_path):
    (tmp_path / "published.csv").write_text("paper,table,dataset,label,metric,value,source\n"
                                            "P,T2,amazon-baby,LightGCN,recall@20,0.0698,the paper\n"
                                            "P,T3,amazon-baby,LightGCN,recall@20,0.0555,another table\n")
    (tmp_path / "spec.yaml").write_text(SWEEP_SPEC)
    spec = load_spec(tmp_path / "spec.yaml")
    runner = Runner(spec, tmp_path / "exp", workers=2)
    cells = runner.run()
    assert sorted({c.column for c in cells}) == ["synthetic", "synthetic (random)"]
    mf = [c for c in cells if c.sweep and c.column == "synthetic"]
    assert [c.sweep for c in mf] == [("embedding_dim", 4), ("embedding_dim", 16)]
    assert [cfg.params.embedding_dim for c in mf for cfg in c.seeds] == [4, 4, 16, 16]  # each value kept, not selected
    assert {c.seeds[0].data.split for c in cells} == {"cold", "random"}
    out = write_report(runner, cells, spec.datasets, 1.0)
    df = pd.read_csv(out / "results.csv")
    # the common reg search crosses the row's own grid: 2 points per line, 4 for the gridded row
    assert [len(c.grid) for c in cells if c.column == "synthetic"] == [2, 2, 2, 4]
    seed_rows = df[df.stage == "seed"]
    assert len(seed_rows) == 2 * 4 * 2  # splits x lines x seeds
    assert len(df) - len(seed_rows) == 2 * (1 + 1 + 1 + 3)  # grid points besides the chosen one
    assert set(df[df.sweep_param == "embedding_dim"]["sweep_value"]) == {4, 16}
    summary = (out / "summary.md").read_text()
    assert "synthetic (random) recall@20" in summary and "MF embedding_dim=16" in summary
    at40 = summary.split("Recall and NDCG @40:")[1].split("\n\n")[1].splitlines()
    assert at40[0].startswith("| model | synthetic recall@40 | synthetic ndcg@40 |") and "p vs" not in at40[0]
    assert all(line.count("|") == at40[0].count("|") for line in at40)
    lgcn_cold = df[(df.column == "synthetic") & (df.label == "LightGCN†")]["test_ndcg@40"]
    assert f"{lgcn_cold.mean():.4f} ± {lgcn_cold.std():.4f}" in next(line for line in at40 if line.startswith("| LightGCN"))
    assert "published (P T2: amazon-baby) recall@20" in summary and "OTHER DATA" in summary
    published = summary.split("## Published numbers beside ours")[1]
    assert "P T3" not in published  # only the tables the spec names
    assert next(line for line in published.splitlines() if line.startswith("| LightGCN† | ")).endswith(" | 0.0698 |")
    assert next(line for line in published.splitlines() if line.startswith("| LGCN small (published: LightGCN) |"))
    cost = summary.split("## Hyper-parameter search and its cost")[1].split("## Published")[0]
    assert "| LGCN small | synthetic | 4 |" in cost and '"reg"' in cost
    claims = (out / "claims.md").read_text()
    assert "not run" not in claims.splitlines()[-1]
    cold = df[(df.column == "synthetic") & df.chosen]
    means = {lab: cold[cold.label == lab]["test_recall@20"].mean() for lab in ("MF embedding_dim=4", "MF embedding_dim=16")}
    strongest_line = claims.splitlines()[-2]
    assert f"vs {max(means, key=means.get)}: recall@20" in strongest_line.split(" | ")[1]
    for png in ("synthetic_cold_vs_warm.png", "sensitivity_embedding_dim.png", "synthetic_random_test_metrics.png"):
        assert (out / png).stat().st_size > 5000


SETTINGS_SPEC = """
name: ablation
datasets: [synthetic]
split: random
seeds: 2
common: {epochs: 2, patience: 5}
search: {lr: [0.0001, 0.05], reg: [0.0, 0.001]}
rows:
  - {label: MF, model: mf}
  - {label: MF dim 4, model: mf, set: {embedding_dim: 4, reg: 0.0}, settings_from: MF}
"""


def test_a_row_with_settings_from_trains_only_its_seeds_with_the_searched_rows_choice(tmp_path):
    """The papers' ablations keep the full model's hyper-parameters: no grid of its own, the keys it sets stay its own."""
    (tmp_path / "spec.yaml").write_text(SETTINGS_SPEC)
    spec = load_spec(tmp_path / "spec.yaml")
    runner = Runner(spec, tmp_path / "exp", workers=1)
    full, ablation = runner.run()
    assert ablation.grid == [] and ablation.settings_source is full
    assert ablation.chosen == {"lr": full.chosen["lr"]}  # reg is the row's own
    assert [(cfg.train.lr, cfg.train.reg, cfg.params.embedding_dim, cfg.seed) for cfg in ablation.seeds] == [
        (full.chosen["lr"], 0.0, 4, 0), (full.chosen["lr"], 0.0, 4, 1)]
    assert len(list((tmp_path / "exp").glob("runs/**/results.json"))) == 4 + 1 + 2  # the search, MF's seed 1, the ablation
    out = write_report(runner, [full, ablation], spec.datasets, 1.0)
    summary = (out / "summary.md").read_text()
    cost = summary.split("## Hyper-parameter search and its cost")[1]
    line = next(row for row in cost.splitlines() if row.startswith("| MF dim 4 |"))
    seeds_s = pd.read_csv(out / "results.csv").query("label == 'MF dim 4'")["train_seconds"].sum()
    assert line.split(" | ")[2:5] == ["0", "0", f"{seeds_s:.0f}"] and line.endswith("(taken from MF) |")


ALTERNATIVES_SPEC = """
name: alternatives
datasets: [synthetic]
split: random
seeds: 2
common: {epochs: 2, patience: 5}
search: {lr: [0.0001, 0.05]}
rows:
  - {label: MF, model: mf, alternatives: {wide: {}, narrow: {embedding_dim: 4, reg: 0.01}}}
  - {label: MF narrow L2 0, model: mf, set: {reg: 0.0}, settings_from: MF}
"""


def test_alternatives_are_searched_as_one_hyper_parameter_and_their_settings_reach_the_runs(tmp_path):
    """A row's named bundles cross the grid; the chosen bundle's settings (and its name) go to every seed."""
    (tmp_path / "spec.yaml").write_text(ALTERNATIVES_SPEC)
    spec = load_spec(tmp_path / "spec.yaml")
    runner = Runner(spec, tmp_path / "exp", workers=1)
    full, ablation = runner.run()
    assert [point for point, _ in full.grid] == [{"lr": lr, "alternative": a} for lr in (0.0001, 0.05) for a in ("wide", "narrow")]
    dims = {point["alternative"]: (cfg.params.embedding_dim, cfg.train.reg) for point, cfg in full.grid}
    default = resolve_run_config(model="mf", data="synthetic")
    assert dims == {"wide": (default.params.embedding_dim, default.train.reg), "narrow": (4, 0.01)}
    best = max(full.grid, key=lambda pc: runner.results(pc[1])["valid"]["recall@20"])
    assert full.chosen == best[0] and full.seeds[0].digest() == best[1].digest()
    narrow = full.chosen["alternative"] == "narrow"
    # the ablation takes the chosen bundle from its source row, and its own set wins over the bundle's
    assert [(c.params.embedding_dim, c.train.reg) for c in ablation.seeds] == [(4 if narrow else default.params.embedding_dim, 0.0)] * 2
    out = write_report(runner, [full, ablation], spec.datasets, 1.0)
    assert f'"alternative": "{full.chosen["alternative"]}"' in (out / "summary.md").read_text()


def test_an_alternative_that_also_sets_a_searched_key_is_refused(tmp_path):
    (tmp_path / "spec.yaml").write_text(ALTERNATIVES_SPEC.replace("reg: 0.01", "lr: 0.01"))
    with pytest.raises(ConfigError, match=r"alternative 'narrow' sets \['lr'\].*Fix: keep each key in one place"):
        load_spec(tmp_path / "spec.yaml")

MIXING_SPEC = """
name: mixing
datasets: [synthetic]
split: random
seeds: 2
common: {epochs: 2, patience: 5, lr: 0.01}
rows:
  - {label: MF, model: mf, baseline: true, search: false}
  - {label: MM-GEF, model: mmgef, search: false}
"""


def test_the_report_lists_each_rows_learned_mixing_weights_over_the_seeds_that_recorded_them(tmp_path):
    (tmp_path / "spec.yaml").write_text(MIXING_SPEC)
    spec = load_spec(tmp_path / "spec.yaml")
    Runner(spec, tmp_path / "exp", workers=1).run()
    results = sorted((tmp_path / "exp").glob("runs/**/mmgef-*/results.json"))
    recorded = [json.loads(p.read_text())["mixing_weights"] for p in results]
    assert len(recorded) == 2 and all(len(w) == 4 for w in recorded)

    def section() -> str:
        runner = Runner(spec, tmp_path / "exp", workers=1)
        out = write_report(runner, runner.run(), spec.datasets, 1.0)
        return (out / "summary.md").read_text().split("## Learned mixing weights")[1]

    line = next(row for row in section().splitlines() if row.startswith("| MM-GEF |"))
    mean_ec = sum(w["attention E^c"] for w in recorded) / 2
    assert " | 2 of 2 | " in line and f"attention E^c {mean_ec:.3f} ± " in line
    assert "| MF |" not in section()  # MF mixes nothing
    old = json.loads(results[1].read_text())
    del old["mixing_weights"]  # a run made before the weights were recorded
    results[1].write_text(json.dumps(old))
    line = next(row for row in section().splitlines() if row.startswith("| MM-GEF |"))
    assert " | 1 of 2 | " in line and line.endswith(f"attention E^c {recorded[0]['attention E^c']:.3f} |")


@pytest.mark.parametrize("row, problem", [
    ("{label: B, model: mf, settings_from: Nope}", "'Nope' is not a row"),
    ("{label: B, model: mf, settings_from: MF dim 4}", "takes settings from another row itself"),
    ("{label: B, model: mf, settings_from: MF, grid: {embedding_dim: [4, 8]}}", "cannot also have a grid"),
    ("{label: S, model: mf, sweep: {embedding_dim: [4, 8]}}\n  - {label: B, model: mf, settings_from: S}", "is a sweep"),
    ("{label: B, model: mf, settings_from: MF, datasets: [synthetic, lastfm2k]}", None),
])
def test_settings_from_is_checked_when_the_spec_loads(tmp_path, row, problem):
    (tmp_path / "spec.yaml").write_text(SETTINGS_SPEC + f"  - {row}\n")
    if problem is None:
        load_spec(tmp_path / "spec.yaml")  # the source runs on every dataset: nothing to complain about
        return
    with pytest.raises(ConfigError, match=f"row 'B': settings_from .*{problem}"):
        load_spec(tmp_path / "spec.yaml")


def test_settings_from_a_row_that_starts_from_pretraining_must_start_from_it_too(tmp_path):
    (tmp_path / "spec.yaml").write_text(INIT_SPEC + "  - {label: B, model: lightgcn, settings_from: Pre → LightGCN + MixGCF}\n")
    with pytest.raises(ConfigError, match="runs after this one"):
        load_spec(tmp_path / "spec.yaml")


def test_a_sweep_searched_once_keeps_the_default_values_setting_for_every_point(tmp_path):
    """sweep_search=once (the papers' sensitivity analyses): lr × L2 searched at the default only, then every swept
    value trains with the chosen setting; the shared search is listed once in results.csv."""
    (tmp_path / "spec.yaml").write_text("""
name: once
datasets: [synthetic]
split: random
seeds: 2
common: {epochs: 2, patience: 5}
search: {lr: [0.0001, 0.05]}
rows:
  - {label: MF, model: mf, sweep: {embedding_dim: [4, 16]}, sweep_search: once}
""")
    spec = load_spec(tmp_path / "spec.yaml")
    runner = Runner(spec, tmp_path / "exp", workers=1)
    cells = runner.run()
    assert [c.sweep for c in cells] == [("embedding_dim", 4), ("embedding_dim", 16)]
    grids = [[cfg.digest() for _, cfg in c.grid] for c in cells]
    assert grids[0] == grids[1] and {cfg.params.embedding_dim for _, cfg in cells[0].grid} == {64}  # the default
    best = max(cells[0].grid, key=lambda pc: runner.results(pc[1])["valid"]["recall@20"])[0]
    assert all(c.chosen == best for c in cells)
    assert [(cfg.params.embedding_dim, cfg.train.lr, cfg.seed) for c in cells for cfg in c.seeds] == [
        (4, best["lr"], 0), (4, best["lr"], 1), (16, best["lr"], 0), (16, best["lr"], 1)]
    assert len(list((tmp_path / "exp").glob("runs/**/results.json"))) == 2 + 4  # one search, then the seeds
    out = write_report(runner, cells, spec.datasets, 1.0)
    df = pd.read_csv(out / "results.csv")
    assert len(df[df.stage == "grid"]) == 2 and len(df[df.stage == "seed"]) == 4
    cost = (out / "summary.md").read_text().split("## Hyper-parameter search and its cost")[1]
    second = next(line for line in cost.splitlines() if line.startswith("| MF embedding_dim=16 |"))
    seeds_s = df[df.label == "MF embedding_dim=16"]["train_seconds"].sum()
    assert second.split(" | ")[3:5] == ["0", f"{seeds_s:.0f}"]  # no search of its own; both seeds are its runs


def test_bad_sweep_and_published_path_are_clear_errors(tmp_path):
    (tmp_path / "spec.yaml").write_text(SWEEP_SPEC)
    with pytest.raises(ConfigError, match="published: published.csv does not exist"):
        load_spec(tmp_path / "spec.yaml")
    (tmp_path / "spec.yaml").write_text(SWEEP_SPEC.replace("published: published.csv\n", "").replace(
        "sweep: {embedding_dim: [4, 16]}", "sweep: {embedding_dim: [4, 16]}, grid: {embedding_dim: [8]}"))
    with pytest.raises(ConfigError, match="exactly one parameter that is not also in its grid"):
        load_spec(tmp_path / "spec.yaml")
    (tmp_path / "spec.yaml").write_text(SWEEP_SPEC.replace("published: published.csv\n", "").replace("[40]", "[30]"))
    with pytest.raises(ConfigError, match=r"report_k \[30\] is not evaluated"):
        load_spec(tmp_path / "spec.yaml")


INIT_SPEC = """
name: init_from
datasets: [synthetic]
split: random
seeds: 2
common: {epochs: 2, patience: 5, lr: 0.01}
rows:
  - {label: LightGCN, model: lightgcn, baseline: true}
  - {label: Pre, model: mcpt, grid: {cima_weight: [0.2, 0.8]}}
  - {label: Pre → LightGCN + MixGCF, model: lightgcn, set: {sampler: mixgcf, n_candidates: 4}, init_from: Pre}
"""


@pytest.mark.slow
def test_rows_initialised_from_a_pretraining_row_use_the_same_seed(tmp_path):
    (tmp_path / "spec.yaml").write_text(INIT_SPEC)
    spec = load_spec(tmp_path / "spec.yaml")
    runner = Runner(spec, tmp_path / "exp", workers=2)
    cells = runner.run()
    pre, fine = cells[1], cells[2]
    assert fine.source is pre
    for seed, cfg in enumerate(fine.seeds):
        assert cfg.train.init == str(runner.run_dir(pre.seeds[seed]) / "pretrained.safetensors")
        assert Path(cfg.train.init).exists() and cfg.train.sampler == "mixgcf"
    assert "train.init" not in fine.chosen
    (tmp_path / "bad.yaml").write_text(INIT_SPEC.replace("init_from: Pre}", "init_from: Nope}"))
    with pytest.raises(ConfigError, match="init_from 'Nope' must name a row"):
        load_spec(tmp_path / "bad.yaml")


def test_runs_finished_by_another_experiment_after_start_are_reused(tmp_path):
    spec = load_spec(SPEC)
    runner = Runner(spec, tmp_path / "exp", workers=1, reuse=[tmp_path / "other"])
    cfg = runner.plan(["synthetic"])[0].grid[0][1]
    runs.train(cfg, tmp_path / "other" / "shared-run")  # finished elsewhere once this runner is running
    runner.execute([cfg], "grid")
    assert runner.run_dir(cfg) == tmp_path / "other" / "shared-run"
    assert not (tmp_path / "exp" / "runs").exists()


def test_a_run_another_experiment_finishes_during_a_stage_is_not_trained_again(tmp_path, monkeypatch):
    """Runs are handed to workers one at a time, so a run that appears in a --reuse folder meanwhile is taken from there."""
    spec = load_spec(SPEC)
    runner = Runner(spec, tmp_path / "exp", workers=1, reuse=[tmp_path / "other"])
    first, second = (cfg for _, cfg in runner.plan(["synthetic"])[0].grid[:2])
    shared = tmp_path / "other" / "runs" / "shared"
    refresh = Runner._refresh

    def another_experiment_finishes_the_second_run(self: Runner) -> None:  # while the first run trains here
        if first.digest() in self.done and not shared.exists():
            runs.train(second, shared)
        refresh(self)

    monkeypatch.setattr(Runner, "_refresh", another_experiment_finishes_the_second_run)
    runner.execute([first, second], "grid")
    assert runner.run_dir(first) == tmp_path / "exp" / "runs" / "synthetic" / f"{first.model}-{first.digest()}"
    assert runner.run_dir(second) == shared
    assert not runner.run_dir(first).with_name(f"{second.model}-{second.digest()}").exists()
    assert runner.done[second.digest()]["valid"] == json.loads((shared / "results.json").read_text())["valid"]


def test_the_first_folder_holding_a_config_keeps_it(tmp_path):
    """Own folder first, then --reuse folders in the order given: a retrained copy never replaces a run."""
    spec = load_spec(SPEC)
    cfg = Runner(spec, tmp_path / "exp", workers=1).plan(["synthetic"])[0].grid[0][1]
    runs.train(cfg, tmp_path / "a" / "run")
    shutil.copytree(tmp_path / "a" / "run", tmp_path / "b" / "run")
    retrained = json.loads((tmp_path / "b" / "run" / "results.json").read_text())
    retrained["test"]["recall@20"] = -1.0
    (tmp_path / "b" / "run" / "results.json").write_text(json.dumps(retrained))
    first_a = Runner(spec, tmp_path / "exp", workers=1, reuse=[tmp_path / "a", tmp_path / "b"])
    first_b = Runner(spec, tmp_path / "exp", workers=1, reuse=[tmp_path / "b", tmp_path / "a"])
    assert first_a.run_dir(cfg) == tmp_path / "a" / "run" and first_b.run_dir(cfg) == tmp_path / "b" / "run"
    assert first_b.done[cfg.digest()]["test"]["recall@20"] == -1.0
    assert first_a.done[cfg.digest()]["test"]["recall@20"] != -1.0
    first_a._refresh()  # re-indexing keeps the first folder's run
    assert first_a.run_dir(cfg) == tmp_path / "a" / "run"
    shutil.copytree(tmp_path / "b" / "run", tmp_path / "exp" / "runs" / "own")
    assert Runner(spec, tmp_path / "exp", workers=1, reuse=[tmp_path / "a"]).run_dir(cfg) == tmp_path / "exp" / "runs" / "own"


def test_a_reuse_folders_run_this_version_cannot_read_is_skipped_not_fatal(tmp_path, caplog):
    spec = load_spec(SPEC)
    cfg = Runner(spec, tmp_path / "exp", workers=1).plan(["synthetic"])[0].grid[0][1]
    newer = tmp_path / "other" / "from-a-newer-mmgef"
    newer.mkdir(parents=True)
    (newer / "results.json").write_text("{}")
    (newer / "config.yaml").write_text("model: lightgcn\nparams: {option_of_the_future: 1}\n")
    runner = Runner(spec, tmp_path / "exp", workers=1, reuse=[tmp_path / "other"])
    assert newer in runner.unreadable and "from-a-newer-mmgef" in caplog.text
    assert runner.run_dir(cfg).is_relative_to(tmp_path / "exp")
    # in the experiment's own folder the same file is an error: a new run would land beside it
    own = tmp_path / "exp" / "runs" / "x"
    own.mkdir(parents=True)
    for f in ("results.json", "config.yaml"):
        (own / f).write_text((newer / f).read_text())
    with pytest.raises(ConfigError, match="option_of_the_future"):
        Runner(spec, tmp_path / "exp", workers=1)
