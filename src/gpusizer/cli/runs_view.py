"""Rich tables for measured load points (``bench``, ``runs``, ``compare``); the cells come
from ``gpusizer.report.bench``, which the HTML report uses too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from gpusizer.report.bench import compare_cells, compare_rows, point_table

__all__ = ["compare_rows", "compare_table", "points_table"]


def points_table(points: Sequence[dict[str, Any]], *, title: str) -> Table:
    t = Table(title=title, title_justify="left")
    cols, rows = point_table(points)
    for col in cols:
        t.add_column(col, justify="left" if col in ("load", "status") else "right")
    for row in rows:
        t.add_row(*row)
    return t


def compare_table(points: Sequence[dict[str, Any]]) -> Table:
    c = Table(title="Measured vs predicted (gpusizer simulate at the same load)", title_justify="left")
    for col in ("load", "metric", "measured", "predicted", "error"):
        c.add_column(col, justify="right")
    for row in compare_cells(points):
        c.add_row(*row)
    return c
