"""benchmarks/choose_mmgef_plus.py: the preset is chosen from validation means only."""

import importlib.util
from pathlib import Path

import pandas as pd

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "choose_mmgef_plus.py"


def _chooser():
    spec = importlib.util.spec_from_file_location("choose_mmgef_plus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(label, dataset, valids, tests):
    return [{"label": label, "dataset": dataset, "seed": s, "stage": "seed", "chosen": True, "digest": f"{label}{dataset}{s}",
             "valid_recall@20": v, "test_recall@20": t} for s, (v, t) in enumerate(zip(valids, tests))]


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
    params, lines = chooser.choose(chooser.validation_means([csv]))
    assert params == {"cf_weight": "shrunk"}
    verdicts = {line[0]: line[2] for line in lines}
    assert verdicts == {"+ shrunk E^c": "kept", "+ Jaccard E^c": "kept", "+ un-normalised h": "left out",
                        "+ learned h gate": "left out"}


def test_a_cold_start_report_counts_as_one_more_dataset(tmp_path):
    ordinary = _rows("MM-GEF", "a", [0.40], [0.1]) + _rows("+ content term", "a", [0.41], [0.1])
    cold = [{**r, "split": "cold", "digest": r["digest"] + "c"}
            for r in _rows("MM-GEF", "a", [0.05], [0.1]) + _rows("+ content term", "a", [0.04], [0.1])]
    for name, rows in (("o.csv", ordinary), ("c.csv", cold)):
        pd.DataFrame(rows).to_csv(tmp_path / name, index=False)
    chooser = _chooser()
    means = chooser.validation_means([tmp_path / "o.csv", tmp_path / "c.csv"])
    assert list(means.columns) == ["a", "a cold"]
    assert chooser.choose(means)[0] == {}  # better on the ordinary split, worse on cold: left out
    assert chooser.choose(chooser.validation_means([tmp_path / "o.csv"]))[0] == {"content_term": True}
