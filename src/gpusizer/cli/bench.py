"""``gpusizer bench``: load-test a running OpenAI-compatible server and store every request."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gpusizer.bench.client import BenchSettings, run_load
from gpusizer.bench.metrics import bench_metrics
from gpusizer.cli.common import console, guarded, parse_tokens
from gpusizer.errors import BadInputError
from gpusizer.store.runs import RunStore

__all__ = ["bench_command"]

DEFAULT_DB = Path.home() / ".local" / "share" / "gpusizer" / "runs.sqlite"


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
    input_len: Annotated[
        str, typer.Option(help="Prompt length in tokens (approximate; the server's count is stored)")
    ] = "256",
    output_len: Annotated[str, typer.Option(help="Output tokens (ignore_eos keeps it fixed)")] = "64",
    requests: Annotated[int, typer.Option(min=1, max=1_000_000, help="Measured requests per point")] = 32,
    warmup: Annotated[
        int, typer.Option(min=0, max=10_000, help="Warm-up requests per point, not measured")
    ] = 2,
    slo_ttft_ms: Annotated[float | None, typer.Option()] = None,
    slo_tpot_ms: Annotated[float | None, typer.Option()] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Name of the environment variable holding the API key")
    ] = None,
    timeout_s: Annotated[float, typer.Option(min=1, max=3600)] = 120.0,
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
) -> None:
    """Streaming load test: TTFT, TPOT, ITL, E2E percentiles, throughput, goodput; every request stored."""
    if api not in ("completions", "chat"):
        raise BadInputError("--api", f"unknown API {api!r}", "completions, chat")
    key = None
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise BadInputError("--api-key-env", f"environment variable {api_key_env} is not set")
    path = Path(db) if db else DEFAULT_DB
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError("--db", f"cannot create {path.parent} ({exc.strerror})") from exc
    store = RunStore(path)
    points: list[dict[str, Any]] = []
    try:
        for conc, r in _loads(concurrency, rate):
            s = BenchSettings(
                url=url,
                model=model,
                api="chat" if api == "chat" else "completions",
                input_len=parse_tokens("--input-len", input_len) or 1,
                output_len=parse_tokens("--output-len", output_len) or 1,
                requests=requests,
                warmup=warmup,
                concurrency=conc,
                rate=r,
                timeout_s=timeout_s,
                api_key=key,
            )
            started = datetime.now(UTC).isoformat(timespec="seconds")
            records = run_load(s)
            m = bench_metrics(
                records,
                slo_ttft_s=slo_ttft_ms / 1e3 if slo_ttft_ms else None,
                slo_tpot_s=slo_tpot_ms / 1e3 if slo_tpot_ms else None,
            )
            load = f"concurrency={conc}" if conc is not None else f"rate={r:g}"
            settings = {k: v for k, v in s.__dict__.items() if k != "api_key"}
            summary: dict[str, Any] = m.as_dict()
            try:  # a failing prediction must not lose the measurement
                if predict_model:
                    summary["predicted"] = _predict(predict_model, gpu, gpus, engine, s, m.mean_prompt_tokens)
            finally:
                run_id = store.add_run(
                    started_at=started,
                    url=url,
                    model=model,
                    api=s.api,
                    load=load,
                    settings=settings,
                    records=records,
                    summary=summary,
                )
            points.append({"run_id": run_id, "load": load, **summary})
    finally:
        store.close()
    if as_json:
        typer.echo(
            json.dumps(
                {"schema_version": 1, "url": url, "model": model, "db": str(path), "points": points}, indent=2
            )
        )
        return
    t = Table(title=f"{model} at {url} (runs stored in {path})", title_justify="left")
    for col in (
        "load",
        "ok",
        "failed",
        "req/s",
        "out tok/s",
        "TTFT p50",
        "TTFT p95",
        "TPOT p50",
        "TPOT p95",
        "ITL p95",
        "E2E p95",
        "goodput",
    ):
        t.add_column(col, justify="right")
    for p in points:
        t.add_row(
            p["load"],
            str(p["completed"]),
            str(p["failed"]),
            f"{p['requests_per_s']:.2f}",
            f"{p['output_tokens_per_s']:,.1f}",
            f"{p['ttft_ms']['p50']:,.1f}",
            f"{p['ttft_ms']['p95']:,.1f}",
            f"{p['tpot_ms']['p50']:,.2f}",
            f"{p['tpot_ms']['p95']:,.2f}",
            f"{p['itl_ms']['p95']:,.2f}",
            f"{p['e2e_ms']['p95']:,.0f}",
            f"{p['goodput']:.0%}",
        )
    console.print(t)
    console.print("[dim]milliseconds; warm-up requests excluded; every request is in the SQLite file[/]")
    if predict_model:
        c = Table(title="Measured vs predicted (gpusizer simulate at the same load)", title_justify="left")
        for col in ("load", "metric", "measured", "predicted", "error"):
            c.add_column(col, justify="right")
        for p in points:
            pred = p["predicted"]
            for metric, meas, est in (
                ("TTFT p50 ms", p["ttft_ms"]["p50"], pred["ttft_ms"]["p50"]),
                ("TPOT p50 ms", p["tpot_ms"]["p50"], pred["tpot_ms"]["p50"]),
                ("output tok/s", p["output_tokens_per_s"], pred["output_tokens_per_s"]),
            ):
                err = f"{100 * (est - meas) / meas:+.0f} %" if meas else "—"
                c.add_row(p["load"], metric, f"{meas:,.2f}", f"{est:,.2f}", err)
        console.print(c)


def _predict(
    model: str,
    gpu: str | None,
    gpus: int | None,
    engine: str | None,
    s: BenchSettings,
    prompt_tokens: float | None,
) -> dict[str, Any]:
    """gpusizer's simulation of the same load: same concurrency or rate, same lengths."""
    from gpusizer.api import efficiency_of, simulate
    from gpusizer.cli.simulate import sim_to_dict
    from gpusizer.simulate.workload import LengthDist

    if gpu is None:
        raise BadInputError("--gpu", "the prediction needs the GPU the server runs on")
    inp = LengthDist(mean=round(prompt_tokens or s.input_len))
    out = LengthDist(mean=s.output_len)
    res = simulate(
        model,
        gpu,
        rates=(s.rate,) if s.rate else (),
        users=(s.concurrency,) if s.concurrency else (),
        input_len=inp,
        output_len=out,
        requests=max(s.requests, 50),
        gpus=gpus,
        engine=engine,
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
