"""Tables that fit the terminal: on a narrow screen a cell wraps onto more lines instead
of being cut to "che…" (issue 14).

Rich shrinks a table wider than the console by narrowing its wrappable columns, widest
first (down to nothing), and as a last resort cuts cells with an ellipsis. Here:

- every column wraps at spaces and folds a word longer than itself, so no cell is cut;
- a right-justified (number) column is held at the width of its widest number, its header
  wrapping above it, so numbers never break across lines;
- when the numbers plus a readable minimum for each text column still do not fit, the
  caller's low-value columns are left out, in the order given, and the caption says which.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Column, Table
from rich.text import Text

__all__ = ["fold_columns"]

TEXT_MIN = 14  # a text column narrower than this reads as a column of word fragments


def _plain(cell: object) -> str:
    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        return Text.from_markup(cell).plain
    return ""


def _widest(column: Column) -> int:
    return max((len(line) for c in column.cells for line in _plain(c).splitlines()), default=0)


def _header_word(column: Column) -> int:
    return max((len(w) for w in _plain(column.header).split()), default=1)


def _needed(table: Table) -> int:
    """Columns at their fixed or readable-minimum width, with padding and borders."""
    total = len(table.columns) + 1  # vertical rules, edges included
    for column in table.columns:
        if column.width is not None:
            inner = column.width
        else:
            inner = max(min(_widest(column), TEXT_MIN), _header_word(column))
        total += inner + 2  # padding (0, 1)
    return total


def fold_columns(table: Table, width: int | None = None, optional: Sequence[str] = ()) -> Table:
    """``table`` with every column wrapping and folding and each number column fixed at its
    widest cell. With the console ``width``, the ``optional`` columns (by header, least
    useful first) are left out while the table cannot otherwise fit. Returned for use
    inline: ``console.print(fold_columns(t, console.width, ("cloud $/h",)))``."""
    for column in table.columns:
        column.no_wrap = False
        column.overflow = "fold"
        if column.justify == "right" and column.width is None:
            column.width = max(_widest(column), _header_word(column))
    if width is None:
        return table
    left_out = []
    for name in optional:
        if _needed(table) <= width:
            break
        hit = next((c for c in table.columns if _plain(c.header) == name), None)
        if hit is not None:
            table.columns.remove(hit)
            left_out.append(name)
    for index, column in enumerate(table.columns):
        column._index = index  # rich reads a column's position from it (padding, edges)
    if _needed(table) > width:  # still too narrow: let the numbers wrap too, never cut
        for column in table.columns:
            column.width = None
    if left_out:
        note = f"left out to fit {width} columns: {', '.join(left_out)}"
        table.caption = f"{table.caption} · {note}" if table.caption else note
        table.caption_justify = "left"
    return table
