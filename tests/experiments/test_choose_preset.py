"""benchmarks/choose_mmgef_plus.py: the preset is chosen from validation means only."""

import json

import pandas as pd

from tests.helpers import load_benchmark


def _chooser():
    return load_benchmark("choose_mmgef_plus")


def _rows(label, dataset, valids, tests, params=None):
    return [{"label": label, "dataset": dataset, "seed": s, "stage": "seed", "chosen": True, "digest": f"{label}{dataset}{s}",
             "valid_recall@20": v, "test_recall@20": t, "params": json.dumps({"h_gate": "none", "content_term": False,
                                                                             "cf_weight": "count", **(params or {})})}
            for s, (v, t) in enumerate(zip(valids, tests))]


def test_kept_only_when_not_below_mm_gef_on_every_dataset_and_test_never_read(tmp_path):
    rows = []
    for d in ("a", "b"):
        rows += _rows("MM-GEF", d, [0.40, 0.42], [0.1, 0.1])
        rows += _rows("+ shrunk E^c", d, [0.42, 0.43], [0.0, 0.0])       # better on both: kept
        rows += _rows("+ Jaccard E^c", d, [0.41, 0.42], [0.9, 0.9])      # better on both, less than shrunk: loses cf_weight
    rows += _rows("+ un-normalised h", "a", [0.45, 0.45], [0.9, 0.9])  # better on a, worse on b: left out
    rows += _rows("+ un-normalised h", "b", [0.30, 0.30], [0.9, 0.9])
    rows += _rows("+ learned h gate", "a", [0.50, 0.50], [0.9, 0.9])   # not run on b: left out
    csv = tmp_path / "results.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    chooser = _chooser()
    params, lines, checks = chooser.choose(chooser.validation_means(chooser.chosen_seed_runs([csv])))
    assert checks == []  # no settings given: the combination is not checked
    assert params == {"cf_weight": "shrunk"}
    verdicts = {line[0]: line[2] for line in lines}
    assert verdicts == {"+ shrunk E^c": "kept", "+ Jaccard E^c": "kept alone; a stronger row's value of the same setting won",
                        "+ un-normalised h": "left out", "+ learned h gate": "left out"}


def test_a_cold_start_report_counts_as_one_more_dataset(tmp_path):
    ordinary = _rows("MM-GEF", "a", [0.40], [0.1]) + _rows("+ content term", "a", [0.41], [0.1])
    cold = [{**r, "split": "cold", "digest": r["digest"] + "c"}
            for r in _rows("MM-GEF", "a", [0.05], [0.1]) + _rows("+ content term", "a", [0.04], [0.1])]
    for name, rows in (("o.csv", ordinary), ("c.csv", cold)):
        pd.DataFrame(rows).to_csv(tmp_path / name, index=False)
    chooser = _chooser()
    means = chooser.validation_means(chooser.chosen_seed_runs([tmp_path / "o.csv", tmp_path / "c.csv"]))
    assert list(means.columns) == ["a", "a cold"]
    assert chooser.choose(means)[0] == {}  # better on the ordinary split, worse on cold: left out
    assert chooser.choose(chooser.validation_means(chooser.chosen_seed_runs([tmp_path / "o.csv"])))[0] == {"content_term": True}


def test_a_row_in_several_reports_is_read_from_the_first_only(tmp_path):
    """A later report that re-runs MM-GEF (another grid point, other digests) must not move the baseline."""
    first = _rows("MM-GEF", "a", [0.40, 0.40], [0.1, 0.1]) + _rows("+ content term", "a", [0.41, 0.41], [0.1, 0.1])
    later = [{**r, "digest": r["digest"] + "-rerun"} for r in _rows("MM-GEF", "a", [0.44, 0.44], [0.1, 0.1])]
    later += _rows("+ IUF E^c", "a", [0.42, 0.42], [0.1, 0.1], {"cf_weight": "iuf"})
    for name, rows in (("first.csv", first), ("later.csv", later)):
        pd.DataFrame(rows).to_csv(tmp_path / name, index=False)
    chooser = _chooser()
    means = chooser.validation_means(chooser.chosen_seed_runs([tmp_path / "first.csv", tmp_path / "later.csv"]))
    assert means.loc["MM-GEF", "a"] == 0.40 and means.loc["+ IUF E^c", "a"] == 0.42
    later_first = chooser.validation_means(chooser.chosen_seed_runs([tmp_path / "later.csv", tmp_path / "first.csv"]))
    assert later_first.loc["MM-GEF", "a"] == 0.44


def test_options_that_tie_alone_but_lose_together_are_dropped_weakest_first(tmp_path):
    rows = []
    for d, (base, content, jaccard, gate, trio, pair) in {"a": (0.40, 0.45, 0.43, 0.41, 0.46, 0.46),
                                                          "b": (0.09, 0.095, 0.091, 0.090, 0.085, 0.089)}.items():
        rows += _rows("MM-GEF", d, [base], [0.0])
        rows += _rows("+ content term", d, [content], [0.0], {"content_term": True})
        rows += _rows("+ Jaccard E^c", d, [jaccard], [0.0], {"cf_weight": "jaccard"})
        rows += _rows("+ learned h gate", d, [gate], [0.0], {"h_gate": "global"})
        rows += _rows("MM-GEF+", d, [trio], [0.0], {"content_term": True, "cf_weight": "jaccard", "h_gate": "global"})
        rows += _rows("+ content term + Jaccard E^c", d, [pair], [0.0], {"content_term": True, "cf_weight": "jaccard"})
    csv = tmp_path / "results.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    chooser = _chooser()
    seeds = chooser.chosen_seed_runs([csv])
    means, measured = chooser.validation_means(seeds), chooser.measured_settings(seeds)
    params, lines, checks = chooser.choose(means, measured)
    # all three tie or beat MM-GEF alone; together they lose on b, so the gate goes, then Jaccard: content term alone
    assert params == {"content_term": True}
    assert [c[2] for c in checks] == ["below MM-GEF: + learned h gate dropped", "below MM-GEF: + Jaccard E^c dropped",
                                      "chosen"]
    verdicts = {line[0]: line[2] for line in lines}
    assert verdicts["+ content term"] == "kept" and verdicts["+ learned h gate"].startswith("kept alone")
    assert "+ content term + Jaccard E^c" not in verdicts  # a combination row is not an option of its own
    # a combination no row measured is not adopted: its weakest option goes, down to one a row measured
    params, _, checks = chooser.choose(means, {k: v for k, v in measured.items() if k != "+ content term + Jaccard E^c"})
    assert [c[1] for c in checks][1] == "not measured" and checks[1][2].endswith("+ Jaccard E^c dropped")
    assert params == {"content_term": True} and checks[-1][2] == "chosen"


def test_a_shadowed_value_takes_its_key_back_when_the_stronger_option_is_dropped(tmp_path):
    # Jaccard and IUF both set cf_weight; Jaccard's mean gain is larger, but no row measures it with the content
    # term, while a row measures IUF with it: dropping Jaccard must hand cf_weight to IUF, not drop IUF unseen.
    rows = []
    for d, (base, content, jaccard, iuf, content_iuf) in {"a": (0.40, 0.45, 0.44, 0.41, 0.46),
                                                          "b": (0.09, 0.095, 0.095, 0.092, 0.097)}.items():
        rows += _rows("MM-GEF", d, [base], [0.0])
        rows += _rows("+ content term", d, [content], [0.0], {"content_term": True})
        rows += _rows("+ Jaccard E^c", d, [jaccard], [0.0], {"cf_weight": "jaccard"})
        rows += _rows("+ IUF E^c", d, [iuf], [0.0], {"cf_weight": "iuf"})
        rows += _rows("+ content term + IUF E^c", d, [content_iuf], [0.0], {"content_term": True, "cf_weight": "iuf"})
    csv = tmp_path / "results.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    chooser = _chooser()
    chooser.improvement_rows = lambda: [type("Row", (), {"label": label, "set": values})() for label, values in (
        ("+ content term", {"content_term": True}), ("+ Jaccard E^c", {"cf_weight": "jaccard"}),
        ("+ IUF E^c", {"cf_weight": "iuf"}))]
    seeds = chooser.chosen_seed_runs([csv])
    params, lines, checks = chooser.choose(chooser.validation_means(seeds), chooser.measured_settings(seeds))
    assert [c[2] for c in checks] == ["no row has set {'content_term': True, 'cf_weight': 'jaccard'}: + Jaccard E^c dropped",
                                      "chosen"]
    assert params == {"content_term": True, "cf_weight": "iuf"}
    verdicts = {line[0]: line[2] for line in lines}
    assert verdicts == {"+ content term": "kept", "+ IUF E^c": "kept",
                        "+ Jaccard E^c": "kept alone, dropped from the combination"}
