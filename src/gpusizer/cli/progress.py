"""Progress for long runs (a plan's search and verifying simulations, a simulate sweep): a
rich progress display on stderr, shown only when stderr is a terminal and the output is not
``--json``. The core hears nothing of rich: it calls a plain ``progress(stage, done, total)``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from gpusizer.cli.common import err_console

__all__ = ["Hear", "progress_display"]

Hear = Callable[[str, int, "int | None"], None]

# What each stage is called on screen.
_STAGES = {
    "search": "searching GPUs",
    "verify": "simulations run",
    "points": "load points simulated",
}


@contextmanager
def progress_display(enabled: bool, console: Console | None = None) -> Iterator[Hear | None]:
    """A ``progress(stage, done, total)`` callback drawing on ``console`` (stderr), or None
    when ``enabled`` is false or the console is not a terminal. The display is removed when
    the run ends, so the answer printed after it stands alone."""
    out = console or err_console
    if not enabled or not out.is_terminal:
        yield None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=out, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def hear(stage: str, done: int, total: int | None) -> None:
            shown = None if stage == "verify" else total  # a budget, not a count to reach
            if stage not in tasks:
                tasks[stage] = bar.add_task(_STAGES.get(stage, stage), total=shown)
            bar.update(tasks[stage], completed=done, total=shown)

        yield hear
