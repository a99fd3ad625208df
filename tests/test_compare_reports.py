"""benchmarks/compare_reports.py: a new row paired with rivals kept only in other reports' results.csv."""

import pandas as pd
import pytest
from scipy.stats import ttest_rel

from tests.helpers import load_benchmark


def _report(folder, rows):
    """A results.csv with the columns compare_reports reads: chosen seed runs (and one grid run it must skip)."""
    folder.mkdir()
    frame = pd.DataFrame([{"label": lab, "dataset": "tiktok", "split": split, "seed": seed, "chosen": chosen,
                           "sweep_param": "", "test_recall@20": r, "test_ndcg@20": n}
                          for lab, split, seed, chosen, r, n in rows])
    frame.to_csv(folder / "results.csv", index=False)
    return folder


def test_rows_are_paired_by_seed_on_their_own_split_and_the_first_report_wins(tmp_path):
    compare = load_benchmark("compare_reports")
    ours = _report(tmp_path / "new", [("Ours", "given", s, True, 0.10 + 0.01 * s, 0.05 + 0.002 * s) for s in range(3)]
                   + [("Ours", "given", 0, False, 0.9, 0.9)])  # a grid run: not a seed of the chosen setting
    first = _report(tmp_path / "first", [("LATTICE (k searched)", "given", s, True, 0.11 + 0.008 * s, 0.04 + 0.003 * s)
                                         for s in range(3)]
                    + [("LightGCN", "cold", s, True, 0.5, 0.5) for s in range(3)])  # another split: not a rival here
    second = _report(tmp_path / "second", [("LATTICE (k searched)", "given", s, True, 0.0, 0.0) for s in range(3)]
                     + [("LightGCN", "given", s, True, 0.05, 0.02) for s in range(3)])
    text, compared = compare.compare(ours, "Ours", [first, second])
    lattice = next(line for line in text.splitlines() if line.startswith("| LATTICE (k searched) |"))
    assert "| first |" in lattice  # the first report holding a rival on this split wins
    a, b = [0.10, 0.11, 0.12], [0.11, 0.118, 0.126]
    assert f"recall@20 0.1100 vs 0.1180, p = {ttest_rel(a, b).pvalue:.2g}" in lattice and "| mixed (" in lattice  # ndcg wins
    assert "Strongest rival on mean test recall@20: **LATTICE (k searched)**" in text
    assert "Ours: recall@20 0.1100 ± 0.0100" in text  # its grid run left out
    assert "0.5000" not in text  # the rival's cold-split runs left out
    assert sorted(compared.groupby("label").report.first().items()) == [  # what the plot shows, from where
        ("LATTICE (k searched)", "first"), ("LightGCN", "second"), ("Ours", "new")]
    _report(tmp_path / "short", [("LightGCN", "given", s, True, 0.05, 0.02) for s in range(2)])
    with pytest.raises(SystemExit, match=r"\['LightGCN'\] ran seeds other than \[0, 1, 2\]"):
        compare.compare(ours, "Ours", [tmp_path / "short"])
