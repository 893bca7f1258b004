"""What ``gpusizer bench`` shows: a progress bar per load point while it runs, then the
measured points as tables (or one JSON object)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gpusizer.bench.client import BenchSettings
from gpusizer.bench.prompts import PromptSizing
from gpusizer.cli.common import console
from gpusizer.cli.runs_view import compare_table, points_table, server_clock_table
from gpusizer.store.runs import RequestRecord

__all__ = ["load_label", "progress_bar", "render_points"]


def load_label(s: BenchSettings) -> str:
    return f"concurrency={s.concurrency}" if s.concurrency is not None else f"rate={s.rate:g}"


@contextmanager
def progress_bar(
    s: BenchSettings, *, err: Console, quiet: bool, sweep: tuple[int, int] = (1, 1)
) -> Iterator[Callable[[RequestRecord], None]]:
    """A progress bar on ``err`` (stderr) per load point, naming the point's place in the
    sweep ("point 2/3 · concurrency=4"); silent when it is not a terminal or for --json."""
    index, points = sweep
    label = load_label(s) if points == 1 else f"point {index}/{points} · {load_label(s)}"
    total = s.requests + s.warmup if s.duration_s is None else None
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=quiet or not err.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=total, failed=0)
        failed = 0

        def advance(rec: RequestRecord) -> None:
            nonlocal failed
            failed += rec.error is not None
            bar.update(task, advance=1, failed=failed)

        yield advance


def render_points(
    points: list[dict[str, Any]],
    *,
    url: str,
    model: str,
    path: Path,
    sizing: PromptSizing | None,
    as_json: bool,
    predicted: bool,
) -> None:
    """The measured points: one JSON object, or a table with the notes that go with it."""
    if as_json:
        typer.echo(
            json.dumps(
                {"schema_version": 1, "url": url, "model": model, "db": str(path), "points": points}, indent=2
            )
        )
        return
    if not points:
        return
    console.print(points_table(points, title=f"{model} at {url} (runs stored in {path})"))
    note = (
        "milliseconds; TTFT and E2E timed from the request on the wire (send: the client's own time "
        "before that); warm-up requests excluded; every request is in the SQLite file"
    )
    if sizing is not None:
        note += f"; prompt length: {sizing.source}"
    console.print(f"[dim]{note}[/]")
    clock = server_clock_table(points)
    if clock is not None:
        console.print(clock)
    for p in points:
        if str(p.get("token_counts", "server usage")).startswith("estimated"):
            console.print(f"[yellow]{p['load']}: token counts {p['token_counts']}[/]", highlight=False)
        if p["failures"]:
            causes = ", ".join(f"{n} × {c}" for c, n in p["failures"].items())
            console.print(f"[yellow]{p['load']}: failed requests: {causes}[/]", highlight=False)
        if p["status"] == "interrupted":
            cut = p.get("cancelled") or 0
            cut_text = f"; {cut} request(s) in flight were cancelled, not counted as failures" if cut else ""
            console.print(
                f"[yellow]{p['load']}: interrupted; the requests finished so far are stored (run {p['run_id']})"
                f"{cut_text}[/]"
            )
    if predicted:
        console.print(compare_table([p for p in points if "predicted" in p]))
