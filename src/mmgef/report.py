"""Small result tables shared by the CLI and the benchmarks (Markdown, printable)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def fmt(x: Any) -> str:
        return f"{x:.4f}" if isinstance(x, float) else str(x)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def results_table(results: Sequence[dict[str, Any]], metrics: Sequence[str] = ("recall@20", "precision@20", "ndcg@20")) -> str:
    """One row per run: model, dataset, test metrics, best epoch and speed."""
    header = ["model", "dataset", *[f"test {m}" for m in metrics], "best epoch", "s/epoch"]
    rows = []
    for r in results:
        name = r["dataset"] + (" (synthetic)" if r.get("synthetic") else "")
        rows.append([r["model"], name, *[float(r["test"][m]) for m in metrics], r["best_epoch"], round(r["seconds_per_epoch"], 3)])
    return markdown_table(header, rows)
