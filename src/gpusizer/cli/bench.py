"""``gpusizer bench``: load-test a running OpenAI-compatible server and store every request."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gpusizer.bench.client import BenchSettings, run_load
from gpusizer.bench.metrics import bench_metrics, server_summary
from gpusizer.bench.prompts import PromptSizing, load_dataset, size_synthetic_prompt
from gpusizer.cli.common import console, err_console, guarded, parse_tokens, write_report
from gpusizer.cli.options import ReportOpt
from gpusizer.cli.runs_view import compare_table, points_table, server_clock_table
from gpusizer.errors import BadInputError
from gpusizer.store.paths import default_db
from gpusizer.store.runs import RequestRecord, RunStore

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
        float, typer.Option(help="With --rate: gamma shape of the gaps, 1 = Poisson, below 1 burstier")
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
            min=1, max=10_000_000, help="Measured requests per point (default 32; a cap with --duration)"
        ),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(min=0.1, max=7 * 86400, help="Seconds per point (new requests stop then)")
    ] = None,
    warmup: Annotated[
        int, typer.Option(min=0, max=10_000, help="Warm-up requests per point, not measured")
    ] = 2,
    slo_ttft_ms: Annotated[float | None, typer.Option()] = None,
    slo_tpot_ms: Annotated[float | None, typer.Option()] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Name of the environment variable holding the API key")
    ] = None,
    timeout_s: Annotated[float, typer.Option(min=1, max=3600)] = 120.0,
    metrics_interval: Annotated[
        float, typer.Option(min=0, max=3600, help="Scrape the server's /metrics every S seconds (0: off)")
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
        int | None, typer.Option(min=1, max=4096, help="GPUs the server uses, for the prediction")
    ] = None,
    engine: Annotated[str | None, typer.Option(help="Engine behind the URL, for the prediction")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    report: ReportOpt = None,
) -> None:
    """Streaming load test: TTFT, TPOT, ITL, E2E percentiles, throughput, goodput; every request stored.

    Exit status: 0 measured, 1 a load point where no request succeeded (still stored), 2 bad
    input, 130 interrupted (the partial run is stored)."""
    if api not in ("completions", "chat"):
        raise BadInputError("--api", f"unknown API {api!r}", "completions, chat")
    if predict_model and gpu is None:
        raise BadInputError("--gpu", "the prediction needs the GPU the server runs on")
    headers: dict[str, str] = {}
    key = None
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise BadInputError("--api-key-env", f"environment variable {api_key_env} is not set")
        headers["Authorization"] = f"Bearer {key}"
    prompts = load_dataset(dataset) if dataset else []
    loads = _loads(concurrency, rate)
    in_tokens = parse_tokens("--input-len", input_len) or 1
    out_tokens = parse_tokens("--output-len", output_len) or 1
    n_requests = requests if requests is not None else (10_000_000 if duration else 32)
    path = Path(db) if db else DEFAULT_DB
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError("--db", f"cannot create {path.parent} ({exc.strerror})") from exc
    store = RunStore(path)
    sizing = None
    if not prompts and url.startswith(("http://", "https://")):
        sizing = size_synthetic_prompt(url, model, in_tokens, headers=headers, timeout_s=min(timeout_s, 10))
    points: list[dict[str, Any]] = []
    interrupted = False
    try:
        for conc, r in loads:
            s = BenchSettings(
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
                prompt_words=sizing.words if sizing else None,
            )
            load = f"concurrency={conc}" if conc is not None else f"rate={r:g}"
            settings = {
                **s.public(),
                "dataset": str(Path(dataset).resolve()) if dataset else None,
                "prompt_tokens_source": "dataset" if prompts else (sizing.source if sizing else "estimated"),
            }
            run_id = store.start_run(
                started_at=_now(), url=url, model=model, api=s.api, load=load, settings=settings
            )
            with _progress(load, s, quiet=as_json) as advance:

                def on_record(rec: RequestRecord, run_id: int = run_id, advance: Any = advance) -> None:
                    store.add_request(run_id, rec)
                    advance(rec)

                try:
                    run_load(
                        s,
                        prompts=prompts,
                        on_record=on_record,
                        on_metrics=lambda m, run_id=run_id: store.add_metrics(run_id, m),  # type: ignore[misc]
                    )
                except KeyboardInterrupt:
                    interrupted = True
            records = store.requests(run_id)  # what was stored is what is reported
            m = bench_metrics(
                records,
                slo_ttft_s=slo_ttft_ms / 1e3 if slo_ttft_ms else None,
                slo_tpot_s=slo_tpot_ms / 1e3 if slo_tpot_ms else None,
            )
            summary: dict[str, Any] = {**m.as_dict(), "server": server_summary(store.metrics(run_id))}
            try:  # a failing prediction must not lose the measurement
                if predict_model and not interrupted:
                    summary["predicted"] = predict_point(
                        predict_model,
                        gpu,
                        gpus,
                        engine,
                        concurrency=s.concurrency,
                        rate=s.rate,
                        burstiness=s.burstiness,
                        input_tokens=m.mean_prompt_tokens or s.input_len,
                        output_tokens=s.output_len,
                        requests=m.completed,
                    )
            finally:
                store.finish_run(
                    run_id,
                    summary=summary,
                    status="interrupted" if interrupted else "complete",
                    finished_at=_now(),
                )
            points.append(
                {
                    "run_id": run_id,
                    "load": load,
                    "status": "interrupted" if interrupted else "complete",
                    **summary,
                }
            )
            if interrupted:
                break
    finally:
        store.close()
    if report:
        from gpusizer.report.pages import bench_report

        write_report(report, bench_report(points, url=url, model=model, db=str(path)))
    _report(
        points, url=url, model=model, path=path, sizing=sizing, as_json=as_json, predicted=bool(predict_model)
    )
    if interrupted:
        raise typer.Exit(code=130)
    empty = [p["load"] for p in points if not p["completed"]]
    if empty:  # stored all the same; a script must not read an empty point as a measurement
        err_console.print(f"[red]no request succeeded at {', '.join(empty)}: nothing was measured there[/]")
        raise typer.Exit(code=1)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextmanager
def _progress(load: str, s: BenchSettings, *, quiet: bool) -> Iterator[Callable[[RequestRecord], None]]:
    """A progress bar on stderr per load point; silent when stderr is not a terminal or for --json."""
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
        task = bar.add_task(load, total=total, failed=0)
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
            console.print(
                f"[yellow]{p['load']}: interrupted; the requests finished so far are stored (run {p['run_id']})[/]"
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
