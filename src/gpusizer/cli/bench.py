"""``gpusizer bench``: load-test a running OpenAI-compatible server and store every request."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gpusizer.bench.client import BenchSettings, Prompt, run_load, server_base
from gpusizer.bench.interrupt import Interrupt
from gpusizer.bench.lifecycle import close_run, now_iso, open_runs, summarize
from gpusizer.bench.prompts import PromptSizing, load_dataset, size_synthetic_prompt
from gpusizer.cli.common import console, err_console, guarded, parse_tokens, write_report
from gpusizer.cli.options import ReportOpt, number, whole
from gpusizer.cli.runs_view import compare_table, points_table, server_clock_table
from gpusizer.errors import BadInputError
from gpusizer.store.paths import default_db
from gpusizer.store.runs import RequestRecord, RunStatus, RunStore

__all__ = ["DEFAULT_DB", "bench_command", "predict_point"]

DEFAULT_DB = default_db()


def _loads(concurrency: str | None, rate: str | None) -> list[tuple[int | None, float | None]]:
    if bool(concurrency) == bool(rate):
        raise BadInputError("--concurrency/--rate", "give concurrency levels or request rates (one of them)")
    try:
        if concurrency:
            return [(int(c), None) for c in concurrency.split(",")]
        assert rate is not None
        return [(None, float(r)) for r in rate.split(",")]
    except ValueError as exc:
        raise BadInputError(
            "--concurrency/--rate", f"cannot read {concurrency or rate!r}", "e.g. 1,4,16"
        ) from exc


@guarded
def bench_command(
    url: Annotated[str, typer.Argument(help="Server base URL, e.g. http://127.0.0.1:8000")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name the server expects")],
    api: Annotated[str, typer.Option(help="completions | chat")] = "completions",
    concurrency: Annotated[
        str | None, typer.Option(help="Closed loop: concurrent requests, e.g. 1,4,16")
    ] = None,
    rate: Annotated[str | None, typer.Option(help="Open loop: Poisson requests/s, e.g. 1,2,4")] = None,
    burstiness: Annotated[
        float,
        typer.Option(
            help="With --rate: gamma shape of the gaps, 1 = Poisson, below 1 burstier",
            parser=number("--burstiness", 0.01, 100),
        ),
    ] = 1.0,
    input_len: Annotated[
        str,
        typer.Option(
            help="Prompt tokens (sized with the server's /tokenize when it has one, else estimated)"
        ),
    ] = "256",
    output_len: Annotated[str, typer.Option(help="Output tokens (ignore_eos keeps it fixed)")] = "64",
    dataset: Annotated[
        str | None,
        typer.Option(
            help='JSONL prompts instead of synthetic ones: {"prompt"} | {"messages"} | ShareGPT, optional "output_len"'
        ),
    ] = None,
    requests: Annotated[
        int | None,
        typer.Option(
            help="Measured requests per point (default 32; a cap with --duration)",
            parser=whole("--requests", 1, 10_000_000),
        ),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(
            help="Seconds per point (new requests stop then)", parser=number("--duration", 0.1, 7 * 86400)
        ),
    ] = None,
    warmup: Annotated[
        int,
        typer.Option(help="Warm-up requests per point, not measured", parser=whole("--warmup", 0, 10_000)),
    ] = 2,
    slo_ttft_ms: Annotated[
        float | None,
        typer.Option(help="TTFT target for goodput", parser=number("--slo-ttft-ms", 0, 1e8, above=True)),
    ] = None,
    slo_tpot_ms: Annotated[
        float | None,
        typer.Option(help="TPOT target for goodput", parser=number("--slo-tpot-ms", 0, 1e8, above=True)),
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Name of the environment variable holding the API key")
    ] = None,
    timeout_s: Annotated[
        float,
        typer.Option(help="Deadline of each whole request, seconds", parser=number("--timeout-s", 1, 3600)),
    ] = 120.0,
    metrics_interval: Annotated[
        float,
        typer.Option(
            help="Scrape the server's /metrics every S seconds (0: off)",
            parser=number("--metrics-interval", 0, 3600),
        ),
    ] = 1.0,
    db: Annotated[str | None, typer.Option(help=f"SQLite file for the runs (default {DEFAULT_DB})")] = None,
    predict_model: Annotated[
        str | None,
        typer.Option(
            help="Compare with gpusizer's prediction for this model (catalogue name, config.json or .gguf)"
        ),
    ] = None,
    gpu: Annotated[
        str | None, typer.Option("--gpu", help="GPU the server runs on, for the prediction")
    ] = None,
    gpus: Annotated[
        int | None,
        typer.Option(help="GPUs the server uses, for the prediction", parser=whole("--gpus", 1, 4096)),
    ] = None,
    engine: Annotated[str | None, typer.Option(help="Engine behind the URL, for the prediction")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    report: ReportOpt = None,
) -> None:
    """Streaming load test: TTFT, TPOT, ITL, E2E percentiles, throughput, goodput; every request stored.

    Exit status: 0 measured, 1 a load point where no request succeeded (still stored), 2 bad
    input, 130 interrupted by Ctrl-C and 143 by SIGTERM (the partial run is stored)."""
    interrupt = Interrupt()
    with interrupt.installed():
        try:
            _bench(
                interrupt,
                url=url,
                model=model,
                api=api,
                concurrency=concurrency,
                rate=rate,
                burstiness=burstiness,
                input_len=input_len,
                output_len=output_len,
                dataset=dataset,
                requests=requests,
                duration=duration,
                warmup=warmup,
                slo_ttft_ms=slo_ttft_ms,
                slo_tpot_ms=slo_tpot_ms,
                api_key_env=api_key_env,
                timeout_s=timeout_s,
                metrics_interval=metrics_interval,
                db=db,
                predict_model=predict_model,
                gpu=gpu,
                gpus=gpus,
                engine=engine,
                as_json=as_json,
                report=report,
            )
        except KeyboardInterrupt:  # in a blocking step that had nothing to store yet
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(code=interrupt.exit_code) from None


def _bench(
    interrupt: Interrupt,
    *,
    url: str,
    model: str,
    api: str,
    concurrency: str | None,
    rate: str | None,
    burstiness: float,
    input_len: str,
    output_len: str,
    dataset: str | None,
    requests: int | None,
    duration: float | None,
    warmup: int,
    slo_ttft_ms: float | None,
    slo_tpot_ms: float | None,
    api_key_env: str | None,
    timeout_s: float,
    metrics_interval: float,
    db: str | None,
    predict_model: str | None,
    gpu: str | None,
    gpus: int | None,
    engine: str | None,
    as_json: bool,
    report: str | None,
) -> None:
    if api not in ("completions", "chat"):
        raise BadInputError("--api", f"unknown API {api!r}", "completions, chat")
    if predict_model and gpu is None:
        raise BadInputError("--gpu", "the prediction needs the GPU the server runs on")
    base = server_base(url)
    headers: dict[str, str] = {}
    key = None
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise BadInputError("--api-key-env", f"environment variable {api_key_env} is not set")
        headers["Authorization"] = f"Bearer {key}"
    prompts = load_dataset(dataset) if dataset else []
    in_tokens = parse_tokens("--input-len", input_len) or 1
    out_tokens = parse_tokens("--output-len", output_len) or 1
    n_requests = requests if requests is not None else (10_000_000 if duration else 32)
    points_settings = [
        BenchSettings(
            url=url,
            model=model,
            api="chat" if api == "chat" else "completions",
            input_len=in_tokens,
            output_len=out_tokens,
            requests=n_requests,
            duration_s=duration,
            warmup=warmup,
            concurrency=conc,
            rate=r,
            burstiness=burstiness,
            timeout_s=timeout_s,
            api_key=key,
            metrics_interval_s=metrics_interval,
        )
        for conc, r in _loads(concurrency, rate)
    ]  # every point checked before anything is stored
    path = Path(db) if db else DEFAULT_DB
    with interrupt.raising():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInputError("--db", f"cannot create {path.parent} ({exc.strerror})") from exc
        store = open_runs(path, write=True)
    current: dict[str, int] = {}

    def hard_stop(signum: int) -> None:
        """A second signal: close the run as interrupted and end the process at once; the
        requests stored so far stay. It runs inside a signal handler, so it does no more
        than two SQL statements (no rich, no numpy, no import: the main thread may be half-way
        through one); the next command to open the file computes the run's summary. Handlers
        run between bytecodes of the main thread, so no SQLite call is under way on the
        store's connection: a request being written is committed, then the run closed, on
        that same connection (another one would wait for the lock this one holds)."""
        os.write(2, b"interrupted again: stopping now\n")
        run_id = current.get("run_id")
        if run_id is not None:
            with contextlib.suppress(Exception):
                if store.db.in_transaction:
                    store.db.commit()
                store.mark_final(run_id, summary=None, status="interrupted", finished_at=now_iso())
        os._exit(128 + signum)

    interrupt.on_second = hard_stop
    sizing = None
    points: list[dict[str, Any]] = []
    try:
        if not prompts:
            with interrupt.raising():
                sizing = size_synthetic_prompt(
                    base, model, in_tokens, headers=headers, timeout_s=min(timeout_s, 10)
                )
        for index, s in enumerate(points_settings, 1):
            if interrupt.requested:
                break
            s = replace(s, prompt_words=sizing.words if sizing else None)
            settings = {
                **s.public(),
                "slo_ttft_ms": slo_ttft_ms,
                "slo_tpot_ms": slo_tpot_ms,
                "dataset": str(Path(dataset).resolve()) if dataset else None,
                "prompt_tokens_source": "dataset" if prompts else (sizing.source if sizing else "estimated"),
            }
            load = _load_label(s)
            run_id = store.start_run(
                started_at=now_iso(), url=url, model=model, api=s.api, load=load, settings=settings
            )
            current["run_id"] = run_id
            status, summary = _point(
                store,
                run_id,
                s,
                prompts,
                interrupt,
                as_json,
                predict_model,
                gpu,
                gpus,
                engine,
                sweep=(index, len(points_settings)),
            )
            current.pop("run_id")
            points.append({"run_id": run_id, "load": load, "status": status, **summary})
            if status != "complete":
                break
    finally:
        store.close()
    if report:
        from gpusizer.report.pages import bench_report

        write_report(report, bench_report(points, url=url, model=model, db=str(path)))
    _report(
        points, url=url, model=model, path=path, sizing=sizing, as_json=as_json, predicted=bool(predict_model)
    )
    if interrupt.requested:
        raise typer.Exit(code=interrupt.exit_code)
    empty = [p["load"] for p in points if not p["completed"]]
    if empty:  # stored all the same; a script must not read an empty point as a measurement
        err_console.print(f"[red]no request succeeded at {', '.join(empty)}: nothing was measured there[/]")
        raise typer.Exit(code=1)


def _point(
    store: RunStore,
    run_id: int,
    s: BenchSettings,
    prompts: list[Prompt],
    interrupt: Interrupt,
    quiet: bool,
    predict_model: str | None,
    gpu: str | None,
    gpus: int | None,
    engine: str | None,
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
        with _progress(s, quiet=quiet, sweep=sweep) as advance:

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
        if predict_model and status == "complete":
            measured = summarize(store, run_id)
            with interrupt.raising():  # a prediction takes seconds; Ctrl-C skips it
                extra["predicted"] = predict_point(
                    predict_model,
                    gpu,
                    gpus,
                    engine,
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


def _load_label(s: BenchSettings) -> str:
    return f"concurrency={s.concurrency}" if s.concurrency is not None else f"rate={s.rate:g}"


@contextmanager
def _progress(
    s: BenchSettings, *, quiet: bool, sweep: tuple[int, int] = (1, 1)
) -> Iterator[Callable[[RequestRecord], None]]:
    """A progress bar on stderr per load point, naming the point's place in the sweep
    ("point 2/3 · concurrency=4"); silent when stderr is not a terminal or for --json."""
    index, points = sweep
    label = _load_label(s) if points == 1 else f"point {index}/{points} · {_load_label(s)}"
    total = s.requests + s.warmup if s.duration_s is None else None
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=quiet or not err_console.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=total, failed=0)
        failed = 0

        def advance(rec: RequestRecord) -> None:
            nonlocal failed
            failed += rec.error is not None
            bar.update(task, advance=1, failed=failed)

        yield advance


def _report(
    points: list[dict[str, Any]],
    *,
    url: str,
    model: str,
    path: Path,
    sizing: PromptSizing | None,
    as_json: bool,
    predicted: bool,
) -> None:
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


def predict_point(
    model: str,
    gpu: str | None,
    gpus: int | None,
    engine: str | None,
    *,
    concurrency: int | None,
    rate: float | None,
    input_tokens: float,
    output_tokens: int,
    requests: int,
    burstiness: float = 1.0,
) -> dict[str, Any]:
    """gpusizer's simulation of the same load: same concurrency or rate (and burstiness), same
    lengths."""
    from gpusizer.api import efficiency_of, simulate
    from gpusizer.report.simulate import sim_to_dict
    from gpusizer.simulate.workload import LengthDist

    if gpu is None:
        raise BadInputError("--gpu", "the prediction needs the GPU the server runs on")
    res = simulate(
        model,
        gpu,
        rates=(rate,) if rate else (),
        users=(concurrency,) if concurrency else (),
        input_len=LengthDist(mean=max(1, round(input_tokens))),
        output_len=LengthDist(mean=output_tokens),
        requests=min(max(requests, 50), 5000),
        gpus=gpus,
        engine=engine,
        burstiness=burstiness,
    )
    d = sim_to_dict(res)
    result: dict[str, Any] = {
        k: d[k] for k in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "output_tokens_per_s", "requests_per_s")
    }
    dep = res.fit.deployment
    eff, row, _ = efficiency_of(dep)
    result["efficiency"] = {  # what the prediction assumed, so `calibrate` can rescale it
        "row": row,
        "engine": dep.engine,
        "vendor": dep.gpu.vendor,
        "gpu_class": dep.gpu.gpu_class,
        "gpu": dep.gpu.key,
        "bandwidth_fraction": eff.bandwidth_fraction,
        "compute_fraction": eff.compute_fraction,
        "step_overhead_s": eff.step_overhead_s,
    }
    return result
