"""How much of E^c does a training positive owe to its own user? The train / held-out gap behind ``cf_crossfit``.

E^c counts the users who have both items, so for a training pair (u, i) the row of i in E^c also counts u's own
pairs: i's E^c neighbours include u's other training items because u has them. A held-out pair (u, t) gets no such
help (u has no training pair with t). This measures, for every training pair and every validation pair, the share of
the E^c weight in the positive's row that lies on the user's other training items, with E^c built as MM-GEF builds it
(top-k per row, symmetrically normalised), and the same for training pairs when each user's E^c is built from the
other half of the users only (``cf_crossfit``). A large training share over a small held-out share means training
sees an E^c that the held-out items never see. A last column holds out a random 10% of the training pairs instead
(E^c built from the other 90%): what a held-out pair gets when held-out pairs are drawn like training pairs, so a
validation share far below it says the validation pairs differ from the training pairs in kind, which no check on
the training data alone can see. Validation only; no training.

    python benchmarks/bench_cf_leak.py [--datasets lastfm2k tiktok] [--weights count iuf] [--k 10]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from bench_cf_graph import given_binary_split

from mmgef.experiments.report import code_version
from mmgef.graphs.cooccurrence import cooccurrence_graph
from mmgef.graphs.sparse import sym_normalize
from mmgef.io import write_text
from mmgef.report import markdown_table


def own_share(graph: sp.csr_matrix, train: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Per pair (u, i): the share of row i of ``graph`` that lies on u's training items other than i."""
    rows = graph[items]
    on_own = np.asarray(rows.multiply(train[users]).sum(1)).ravel() - graph[items, items].A1 * train[users, items].A1
    total = np.asarray(rows.sum(1)).ravel()
    return on_own[total > 0] / total[total > 0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["lastfm2k", "tiktok"])
    ap.add_argument("--weights", nargs="+", default=["count", "iuf"])
    ap.add_argument("--k", type=int, default=10, help="neighbours kept per row (the model's cf_k)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/cf_graph"))
    args = ap.parse_args()
    rows = []
    for name in args.datasets:
        split, train = given_binary_split(name)
        pairs, held_out = train.tocoo(), sp.coo_matrix(split.valid)
        rng = np.random.default_rng(0)
        half = rng.integers(0, 2, train.shape[0])
        held = rng.random(pairs.nnz) < 0.1
        kept = sp.csr_matrix((np.ones(int((~held).sum()), np.float32), (pairs.row[~held], pairs.col[~held])),
                             shape=train.shape)
        for weight in args.weights:
            def build(m: sp.csr_matrix) -> sp.csr_matrix:
                return sym_normalize(cooccurrence_graph(m, args.k, weight=weight)).tocsr()
            full = build(train)
            # cf_crossfit: a user of half f is scored with E^c from the users outside f
            others = [build(sp.csr_matrix(sp.diags((half != f).astype(np.float32)) @ train)) for f in (0, 1)]
            in_half = [half[pairs.row] == f for f in (0, 1)]
            crossfit = np.concatenate([own_share(others[f], train, pairs.row[in_half[f]], pairs.col[in_half[f]])
                                       for f in (0, 1)])
            shares = [own_share(full, train, pairs.row, pairs.col), crossfit,
                      own_share(full, train, held_out.row, held_out.col),
                      own_share(build(kept), kept, pairs.row[held], pairs.col[held])]
            rows.append([name, weight, *(f"{s.mean():.3f}" for s in shares), f"{len(shares[0]):,}", f"{len(shares[2]):,}"])
            print(" | ".join(rows[-1]), flush=True)
    table = markdown_table(["dataset", "E^c weight", "training pairs", "training pairs, cross-fitted", "validation pairs",
                            "random 10% of training pairs, held out", "training pairs with an E^c row",
                            "validation pairs with an E^c row"], rows)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "leak.md", (
        "# Share of a positive's E^c row on the user's own other training items\n\n"
        f"Made by commit {code_version()} with: `python benchmarks/bench_cf_leak.py --datasets {' '.join(args.datasets)} "
        f"--weights {' '.join(args.weights)} --k {args.k}`. For each pair (u, i): the E^c weight of row i on u's "
        "other training items over the row's total, averaged over pairs whose item has an E^c row; E^c as MM-GEF "
        "builds it (top-k per row, symmetrically normalised); cross-fitted: u's E^c built from the other half of the "
        "users (`cf_crossfit`, halves drawn with seed 0); held out: E^c built from a random 90% of the training pairs "
        "(seed 0), measured on the other 10%; given split, validation pairs only.\n\n" + table + "\n"))


if __name__ == "__main__":
    main()
