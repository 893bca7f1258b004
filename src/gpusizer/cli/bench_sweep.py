"""The sweep ``gpusizer bench`` drives: one stored run per load point, each request committed
as it completes, and every run left in a final state however the sweep ends (a point that
measured nothing, Ctrl-C, SIGTERM, a second signal, an error of the bench itself)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from gpusizer.bench.client import BenchSettings, Prompt, run_load
from gpusizer.bench.interrupt import Interrupt
from gpusizer.bench.lifecycle import close_run, now_iso, open_runs, summarize
from gpusizer.bench.prompts import PromptSizing, size_synthetic_prompt
from gpusizer.cli.bench_options import BenchArgs, Sweep, read_sweep
from gpusizer.cli.bench_predict import predict_point
from gpusizer.cli.bench_render import load_label, progress_bar, render_points
from gpusizer.cli.common import write_report
from gpusizer.errors import BadInputError
from gpusizer.store.runs import RequestRecord, RunStatus, RunStore

__all__ = ["run_sweep"]


def run_sweep(interrupt: Interrupt, a: BenchArgs, path: Path, err: Console) -> None:
    """Measure every load point of ``a`` into the runs file at ``path``, then show them;
    progress and warnings go to ``err``. Exits 1 when a point measured nothing, and with
    the signal's status when interrupted."""
    sweep = read_sweep(a)  # every point checked before anything is stored
    with interrupt.raising():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInputError("--db", f"cannot create {path.parent} ({exc.strerror})") from exc
        store = open_runs(path, write=True)
    run = _SweepRun(store, a, sweep, interrupt, err)
    interrupt.on_second = run.hard_stop
    try:
        points = run.measure()
    finally:
        store.close()
    if a.report:
        from gpusizer.report.pages import bench_report

        write_report(a.report, bench_report(points, url=a.url, model=a.model, db=str(path)))
    predicted = bool(a.predict_model)
    render_points(
        points, url=a.url, model=a.model, path=path, sizing=run.sizing, as_json=a.as_json, predicted=predicted
    )
    if interrupt.requested:
        interrupt.exit_now()
    empty = [p["load"] for p in points if not p["completed"]]
    if empty:  # stored all the same; a script must not read an empty point as a measurement
        err.print(f"[red]no request succeeded at {', '.join(empty)}: nothing was measured there[/]")
        raise typer.Exit(code=1)


@dataclass
class _SweepRun:
    """One sweep under way: the store it writes, and the run being measured now."""

    store: RunStore
    a: BenchArgs
    sweep: Sweep
    interrupt: Interrupt
    err: Console
    sizing: PromptSizing | None = None
    current_run: int | None = None  # the run being measured, which a second signal closes

    def measure(self) -> list[dict[str, Any]]:
        """Each load point in turn, as a stored run; the sweep stops at the first that does
        not complete. The points measured, even when an interrupt cut the sweep short."""
        points: list[dict[str, Any]] = []
        if not self.sweep.prompts:
            with self.interrupt.raising():
                self.sizing = size_synthetic_prompt(
                    self.sweep.base,
                    self.a.model,
                    self.sweep.input_tokens,
                    headers=self.sweep.headers,
                    timeout_s=min(self.a.timeout_s, 10),
                )
        for index, s in enumerate(self.sweep.points, 1):
            if self.interrupt.requested:
                break
            s = replace(s, prompt_words=self.sizing.words if self.sizing else None)
            point = self.run_point(s, place=(index, len(self.sweep.points)))
            points.append(point)
            if point["status"] != "complete":
                break
        return points

    def hard_stop(self, signum: int) -> None:
        """A second signal: close the run as interrupted and end the process at once; the
        requests stored so far stay. It runs inside a signal handler, so it does no more
        than two SQL statements (no rich, no numpy, no import: the main thread may be half-way
        through one); the next command to open the file computes the run's summary. Handlers
        run between bytecodes of the main thread, so no SQLite call is under way on the
        store's connection: a request being written is committed, then the run closed, on
        that same connection (another one would wait for the lock this one holds)."""
        os.write(2, b"interrupted again: stopping now\n")
        run_id = self.current_run
        if run_id is not None:
            with contextlib.suppress(Exception):
                if self.store.db.in_transaction:
                    self.store.db.commit()
                self.store.mark_final(run_id, summary=None, status="interrupted", finished_at=now_iso())
        os._exit(128 + signum)

    def run_point(self, s: BenchSettings, *, place: tuple[int, int]) -> dict[str, Any]:
        """Store a new run for the load point ``s``, measure it, and return it as a point."""
        a, sizing = self.a, self.sizing
        settings = {
            **s.public(),
            "slo_ttft_ms": a.slo_ttft_ms,
            "slo_tpot_ms": a.slo_tpot_ms,
            "dataset": str(Path(a.dataset).resolve()) if a.dataset else None,
            "prompt_tokens_source": "dataset"
            if self.sweep.prompts
            else (sizing.source if sizing else "estimated"),
        }
        load = load_label(s)
        run_id = self.store.start_run(
            started_at=now_iso(), url=a.url, model=a.model, api=s.api, load=load, settings=settings
        )
        self.current_run = run_id
        status, summary = _point(
            self.store, run_id, s, self.sweep.prompts, self.interrupt, a, self.err, sweep=place
        )
        self.current_run = None
        return {"run_id": run_id, "load": load, "status": status, **summary}


def _point(
    store: RunStore,
    run_id: int,
    s: BenchSettings,
    prompts: list[Prompt],
    interrupt: Interrupt,
    a: BenchArgs,
    err: Console,
    sweep: tuple[int, int] = (1, 1),
) -> tuple[RunStatus, dict[str, Any]]:
    """Run one load point into ``run_id`` and give the run its final state: ``complete``,
    ``interrupted`` (a signal; the requests in flight are stored as cancelled) or ``failed``
    (the bench itself broke, say the runs file stopped taking writes; the error goes on up)."""
    status: RunStatus = "failed"
    extra: dict[str, Any] = {}

    def beat() -> None:
        with contextlib.suppress(sqlite3.Error):
            store.heartbeat(run_id)

    try:
        with progress_bar(s, err=err, quiet=a.as_json, sweep=sweep) as advance:

            def on_record(rec: RequestRecord) -> None:
                store.add_request(run_id, rec)
                advance(rec)

            run_load(
                s,
                prompts=prompts,
                on_record=on_record,
                on_metrics=lambda m: store.add_metrics(run_id, m),
                interrupt=interrupt,
                heartbeat=beat,
            )
        status = "interrupted" if interrupt.requested else "complete"
        if a.predict_model and status == "complete":
            measured = summarize(store, run_id)
            with interrupt.raising():  # a prediction takes seconds; Ctrl-C skips it
                extra["predicted"] = predict_point(
                    a.predict_model,
                    a.gpu,
                    a.gpus,
                    a.engine,
                    concurrency=s.concurrency,
                    rate=s.rate,
                    burstiness=s.burstiness,
                    input_tokens=measured["mean_prompt_tokens"] or s.input_len,
                    output_tokens=s.output_len,
                    requests=measured["completed"],
                )
    except KeyboardInterrupt:
        pass  # during the prediction: the measurement itself is complete and is kept
    finally:
        try:
            summary = close_run(store, run_id, status, extra)
        except Exception:
            if status != "failed":
                raise
            summary = {}  # the original error matters more; the next open closes the run
    return status, summary
