"""Tables fold to the terminal's width instead of cutting cells to "che…" (issue 14)."""

from __future__ import annotations

import io
import shlex

import pytest
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from gpusizer.cli import common
from gpusizer.cli.app import app
from gpusizer.report.layout import fold_columns

COMMANDS = [
    "fit deepseek-r1 --gpu H200 --gpus 8 --context 32k --users 16",
    "fit qwen2.5-72b-instruct --gpu 'NVIDIA A100-SXM4-80GB' --tp 4 --kv-dtype fp8",
    "perf deepseek-r1-distill-qwen-7b --gpu 'RTX 4090' --input-len 1k --output-len 256",
    "plan deepseek-r1-distill-qwen-32b --context 32k --users 10 --ttft-ms 1000 --tokens-per-s-per-user 30",
    "models",
    "gpus",
    "quants",
]


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("line", COMMANDS)
def test_no_table_cell_is_cut(line: str, width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common.console, "_width", width)
    r = CliRunner().invoke(app, shlex.split(line))
    assert r.exit_code in (0, 1), r.output
    rows = [row for row in r.output.splitlines() if row[:1] in "┏┃┡│└"]
    assert rows, r.output  # a table was printed
    for row in rows:
        assert "…" not in row, f"{line} at {width} columns:\n{row}"
        assert len(row) <= width, row


def _render(table: Table, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(table)
    return out.getvalue()


def _table() -> Table:
    t = Table()
    t.add_column("hardware")
    t.add_column("capex $", justify="right")
    t.add_column("cloud $/h", justify="right")
    t.add_row(
        "1× Desktop tower with 2× NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition", "19,700", "0.87"
    )
    return t


def test_rich_alone_cuts_the_cell_this_layout_wraps_it() -> None:
    assert "…" in _render(_table(), 30)  # the failure this module exists for
    text = _render(fold_columns(_table(), 30), 30)
    assert "…" not in text
    assert "19,700" in text  # a number is never broken across lines
    flat = "".join(text.replace("│", " ").split())
    assert "Blackwell" in flat or "Blackwel" in flat  # the long cell is all there, folded


def test_low_value_columns_are_left_out_and_the_caption_says_so() -> None:
    t = fold_columns(_table(), 30, optional=("cloud $/h",))
    assert [c.header for c in t.columns] == ["hardware", "capex $"]
    assert t.caption and "cloud $/h" in t.caption
    wide = fold_columns(_table(), 200, optional=("cloud $/h",))
    assert len(wide.columns) == 3 and not wide.caption  # nothing dropped when it fits
