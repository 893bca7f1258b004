"""Rich tables for measured load points (``bench``, ``runs``, ``compare``); the cells come
from ``gpusizer.report.bench``, which the HTML report uses too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from gpusizer.report.bench import SERVER_CLOCK_COLUMNS, compare_cells, point_table, server_clock_cells

__all__ = ["cells_table", "compare_table", "points_table", "server_clock_table"]


def cells_table(title: str, cols: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    """A rich table of report cells: load and status left-aligned, the figures right."""
    t = Table(title=title, title_justify="left")
    for col in cols:
        t.add_column(
            col, justify="left" if col in ("load", "status", "metric", "server's figure") else "right"
        )
    for row in rows:
        t.add_row(*row)
    return t


def points_table(points: Sequence[dict[str, Any]], *, title: str) -> Table:
    return cells_table(title, *point_table(points))


def compare_table(points: Sequence[dict[str, Any]]) -> Table:
    return cells_table(
        "Measured vs predicted (gpusizer simulate at the same load)",
        ["load", "metric", "measured", "predicted", "error"],
        compare_cells(points),
    )


def server_clock_table(points: Sequence[dict[str, Any]]) -> Table | None:
    """The server's own timings beside the client's (llama.cpp); None when it sent none."""
    rows = server_clock_cells(points)
    return cells_table("What the server's own clock said (ms)", SERVER_CLOCK_COLUMNS, rows) if rows else None
