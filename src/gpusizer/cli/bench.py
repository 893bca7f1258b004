"""``gpusizer bench``: load-test a running OpenAI-compatible server and store every request.

The options are read in ``bench_options``, the sweep is driven by ``bench_sweep``, and
``bench_render`` shows it; ``predict_point`` (``bench_predict``) is importable from here too.
"""

from __future__ import annotations

from pathlib import Path

from gpusizer.bench.interrupt import Interrupt
from gpusizer.cli.bench_options import (
    DEFAULT_DB,
    ApiKeyEnvOpt,
    ApiOpt,
    BenchArgs,
    BurstinessOpt,
    ConcurrencyOpt,
    DatasetOpt,
    DbOpt,
    DurationOpt,
    EngineOpt,
    GpuOpt,
    GpusOpt,
    InputLenOpt,
    MetricsIntervalOpt,
    ModelOpt,
    OutputLenOpt,
    PredictModelOpt,
    RateOpt,
    RequestsOpt,
    SloTpotOpt,
    SloTtftOpt,
    TimeoutOpt,
    UrlArg,
    WarmupOpt,
)
from gpusizer.cli.bench_predict import predict_point
from gpusizer.cli.bench_sweep import run_sweep
from gpusizer.cli.common import err_console, guarded
from gpusizer.cli.options import PlainJsonOpt, ReportOpt

__all__ = ["DEFAULT_DB", "bench_command", "predict_point"]


@guarded
def bench_command(
    url: UrlArg,
    model: ModelOpt,
    api: ApiOpt = "completions",
    concurrency: ConcurrencyOpt = None,
    rate: RateOpt = None,
    burstiness: BurstinessOpt = 1.0,
    input_len: InputLenOpt = "256",
    output_len: OutputLenOpt = "64",
    dataset: DatasetOpt = None,
    requests: RequestsOpt = None,
    duration: DurationOpt = None,
    warmup: WarmupOpt = 2,
    slo_ttft_ms: SloTtftOpt = None,
    slo_tpot_ms: SloTpotOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    timeout_s: TimeoutOpt = 120.0,
    metrics_interval: MetricsIntervalOpt = 1.0,
    db: DbOpt = None,
    predict_model: PredictModelOpt = None,
    gpu: GpuOpt = None,
    gpus: GpusOpt = None,
    engine: EngineOpt = None,
    as_json: PlainJsonOpt = False,
    report: ReportOpt = None,
) -> None:
    """Streaming load test: TTFT, TPOT, ITL, E2E percentiles, throughput, goodput; every request stored.

    Exit status: 0 measured, 1 a load point where no request succeeded (still stored), 2 bad
    input, 130 interrupted by Ctrl-C and 143 by SIGTERM (the partial run is stored)."""
    args = BenchArgs(
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
        predict_model=predict_model,
        gpu=gpu,
        gpus=gpus,
        engine=engine,
        as_json=as_json,
        report=report,
    )
    interrupt = Interrupt()
    with interrupt.installed():
        try:
            run_sweep(interrupt, args, Path(db) if db else DEFAULT_DB, err_console)
        except KeyboardInterrupt:  # in a blocking step that had nothing to store yet
            err_console.print("[yellow]interrupted[/]")
            interrupt.exit_now()
