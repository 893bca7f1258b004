"""Progress on long runs: the core calls a plain callback; the CLI draws it with rich on a
terminal's stderr only, never with --json or when stderr is not a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from gpusizer import api
from gpusizer.cli.progress import progress_display


def test_plan_reports_its_search_and_its_simulations() -> None:
    heard: list[tuple[str, int, int | None]] = []
    res = api.plan(
        "qwen2.5-0.5b-instruct",
        context=4096,
        users=4,
        tpot_ms=50,
        classes=["consumer"],
        max_gpus=1,
        progress=lambda *a: heard.append(a),
    )
    search = [h for h in heard if h[0] == "search"]
    verify = [h for h in heard if h[0] == "verify"]
    assert search and search[-1][1] == search[-1][2]  # every GPU searched
    assert [h[1] for h in search] == list(range(1, len(search) + 1))
    assert len(verify) == res.simulations > 0
    assert all(h[2] == 60 for h in verify)  # the budget the simulations run under


def test_simulate_reports_each_load_point() -> None:
    heard: list[tuple[int, int]] = []
    api.simulate(
        "qwen2.5-0.5b-instruct", "T4", rates=(1.0, 2.0, 4.0), requests=10, progress=lambda *a: heard.append(a)
    )
    assert heard == [(1, 3), (2, 3), (3, 3)]


def test_display_draws_on_a_terminal_only() -> None:
    tty = Console(file=io.StringIO(), force_terminal=True, width=100)
    with progress_display(True, tty) as hear:
        assert hear is not None
        hear("search", 1, 2)
        hear("verify", 3, 60)
    assert "searching GPUs" in tty.file.getvalue()  # type: ignore[attr-defined]
    piped = Console(file=io.StringIO(), force_terminal=False)
    with progress_display(True, piped) as hear:
        assert hear is None
    with progress_display(False, tty) as hear:  # --json
        assert hear is None
