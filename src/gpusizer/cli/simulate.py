"""``gpusizer simulate``: latency percentiles under load, with continuous batching."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from gpusizer.api import SimulateResult
from gpusizer.api import simulate as api_simulate
from gpusizer.cli.common import (
    console,
    err_console,
    guarded,
    parse_tokens,
    read_text_file,
    write_report,
    write_svgs,
)
from gpusizer.cli.deployment_options import Deployment, deployment_command
from gpusizer.cli.options import (
    AllowLongContextOpt,
    DpAttentionOpt,
    EfficiencyOpt,
    EpOpt,
    GpuMemOpt,
    JsonOpt,
    ReportOpt,
    SpecAcceptOpt,
    SpecTokensOpt,
    field_option,
)
from gpusizer.cli.progress import progress_display
from gpusizer.domain.options import SloOptions as SLO
from gpusizer.domain.options import WorkloadOptions as W
from gpusizer.domain.options import parse_field
from gpusizer.errors import BadInputError
from gpusizer.report.layout import fold_columns
from gpusizer.report.perf import spec_line
from gpusizer.report.simulate import POINT_COLUMNS, point_rows, sim_charts, sim_to_dict
from gpusizer.simulate.workload import DEFAULT_JITTER, LengthDist

__all__ = ["parse_length", "simulate_command"]

MAX_SWEEP_POINTS = 64  # loads in one --rate/--users sweep
MAX_HISTOGRAM_BYTES = 16 * 1024 * 1024  # a length histogram file (lines 'tokens count')


def read_histogram(field: str, path: str) -> LengthDist:
    """An empirical length histogram: one ``tokens count`` pair per line (``#`` comments,
    commas or spaces), e.g. exported from a server's logs."""
    text = read_text_file(field, path, MAX_HISTOGRAM_BYTES)
    values: list[int] = []
    counts: list[float] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#")[0].replace(",", " ").strip()
        if not line:
            continue
        try:
            tokens, count = line.split()
            values.append(int(tokens))
            counts.append(float(count))
        except ValueError as exc:
            raise BadInputError(field, f"{path} line {n}: expected 'tokens count', got {line!r}") from exc
        if values[-1] < 1 or counts[-1] < 0:
            raise BadInputError(field, f"{path} line {n}: tokens must be ≥ 1 and counts ≥ 0")
    if not values or sum(counts) <= 0:
        raise BadInputError(field, f"{path} has no lengths with a positive count")
    mean = sum(v * c for v, c in zip(values, counts, strict=True)) / sum(counts)
    return LengthDist(
        kind="empirical", values=tuple(values), weights=tuple(counts), mean=mean, low=1, high=max(values)
    )


def parse_length(field: str, text: str) -> LengthDist:
    """'1024' | '2k' | 'uniform:128:2048' | 'normal:1024:256' | 'lognormal:1024:512' | 'hist:FILE'."""
    if text.startswith("hist:"):
        return read_histogram(field, text[5:])
    parts = text.split(":")
    try:
        if len(parts) == 1:
            return LengthDist(kind="fixed", mean=parse_tokens(field, parts[0]) or 1)
        kind, a, b = parts
        x = parse_tokens(field, a) or 1
        y = parse_tokens(field, b) or 1
    except ValueError as exc:
        raise BadInputError(
            field, f"cannot read {text!r}", "N, uniform:LO:HI, normal:MEAN:STD, lognormal:MEAN:STD, hist:FILE"
        ) from exc
    if kind == "uniform":
        if x > y:
            raise BadInputError(field, f"uniform low {x} > high {y}")
        return LengthDist(kind="uniform", low=x, high=y, mean=(x + y) / 2)
    if kind in ("normal", "lognormal"):
        return LengthDist(kind=kind, mean=x, std=y, low=1, high=int(x + 6 * y))  # type: ignore[arg-type]
    raise BadInputError(field, f"unknown distribution {kind!r}", "uniform, normal, lognormal")


def _numbers(field: str, text: str | None) -> tuple[Any, ...]:
    """A comma-separated sweep, each value read as ``WorkloadOptions.<field>``."""
    if not text:
        return ()
    values = tuple(parse_field(W, field, v) for v in text.split(","))
    if len(values) > MAX_SWEEP_POINTS:
        raise BadInputError(field, f"at most {MAX_SWEEP_POINTS} points in one sweep, got {len(values)}")
    return values


RateOpt = Annotated[str | None, typer.Option(help="Open loop: requests/s, or a sweep 1,2,4,8")]
UsersOpt = Annotated[str | None, typer.Option(help="Closed loop: concurrent users, or a sweep 1,8,32")]
InputLenOpt = Annotated[
    str,
    typer.Option(
        help="1024 | uniform:LO:HI | normal:MEAN:STD | lognormal:MEAN:STD | hist:FILE (lines 'tokens count')"
    ),
]
OutputLenOpt = Annotated[str, typer.Option(help="as --input-len")]
RequestsOpt = Annotated[int, field_option(W, "requests", "Requests to simulate, 1..2000000")]
DurationOpt = Annotated[
    float | None, field_option(W, "duration", "Open loop: simulate S seconds of arrivals (sets --requests)")
]
PrefixTokensOpt = Annotated[
    int, field_option(W, "prefix_tokens", "Leading prompt tokens shared within a group (a system prompt)")
]
PrefixGroupsOpt = Annotated[int, field_option(W, "prefix_groups", "Distinct shared prefixes")]
PrefixCachingOpt = Annotated[
    bool | None,
    typer.Option(
        "--prefix-caching/--no-prefix-caching",
        help="Reuse cached prefixes (default: as the engine ships: on for vLLM and SGLang)",
    ),
]
ThinkTimeOpt = Annotated[
    float, field_option(W, "think_time_s", "Closed loop: seconds between a reply and the next request")
]
BurstinessOpt = Annotated[
    float, field_option(W, "burstiness", "Gamma shape of inter-arrivals: 1 = Poisson, <1 bursty")
]
JitterOpt = Annotated[
    float,
    field_option(
        W,
        "jitter",
        "Fixed lengths drawn within ± this fraction (at least ±1 token), so closed-loop users "
        "do not stay in synchronised waves; 0 = exact lengths, lockstep",
    ),
]
SeedOpt = Annotated[int, field_option(W, "seed", "Random seed of the sampled workload")]
SloTtftOpt = Annotated[
    float | None, field_option(SLO, "ttft_ms", "TTFT target per request (ms), for goodput")
]
SloTpotOpt = Annotated[
    float | None, field_option(SLO, "tpot_ms", "TPOT target per request (ms), for goodput")
]
TraceOpt = Annotated[
    str | None, typer.Option("--trace", help="JSONL of arrival_s, input_tokens, output_tokens")
]
PlotOpt = Annotated[
    str | None, typer.Option("--plot", help="Write time-series and latency-CDF SVGs into this folder")
]


@guarded
@deployment_command
def simulate_command(
    dep: Deployment,
    ep: EpOpt = False,
    dp_attention: DpAttentionOpt = False,
    spec_tokens: SpecTokensOpt = 0,
    spec_accept: SpecAcceptOpt = None,
    rate: RateOpt = None,
    users: UsersOpt = None,
    input_len: InputLenOpt = "1024",
    output_len: OutputLenOpt = "256",
    requests: RequestsOpt = 1000,
    duration: DurationOpt = None,
    prefix_tokens: PrefixTokensOpt = 0,
    prefix_groups: PrefixGroupsOpt = 1,
    prefix_caching: PrefixCachingOpt = None,
    think_time_s: ThinkTimeOpt = 0.0,
    burstiness: BurstinessOpt = 1.0,
    jitter: JitterOpt = DEFAULT_JITTER,
    seed: SeedOpt = 0,
    slo_ttft_ms: SloTtftOpt = None,
    slo_tpot_ms: SloTpotOpt = None,
    gpu_memory_gib: GpuMemOpt = None,
    allow_long_context: AllowLongContextOpt = False,
    trace: TraceOpt = None,
    plot: PlotOpt = None,
    efficiency: EfficiencyOpt = None,
    as_json: JsonOpt = False,
    report: ReportOpt = None,
) -> None:
    """Simulate the engine under load: TTFT/TPOT/ITL/E2E percentiles, throughput, goodput."""
    dep.require_gpu(gpu_memory_gib)
    rates = _numbers("rate", rate)
    if duration is not None:
        if not rates or users:
            raise BadInputError("--duration", "works with --rate (open loop); a closed loop takes --requests")
        requests = max(1, min(2_000_000, round(max(rates) * duration)))
    sim_users = _numbers("concurrency", users)
    with progress_display(not as_json) as hear:
        if hear is not None:
            hear("points", 0, len(rates or sim_users) or 1)
        res = api_simulate(
            dep.model,
            dep.gpu,
            progress=(lambda done, total: hear("points", done, total)) if hear is not None else None,
            efficiency_file=efficiency,
            trace_rows=_read_trace(trace) if trace else None,
            rates=rates,
            users=sim_users,
            input_len=parse_length("input_len", input_len),
            output_len=parse_length("output_len", output_len),
            requests=requests,
            think_time_s=think_time_s,
            burstiness=burstiness,
            jitter=jitter,
            seed=seed,
            slo_ttft_ms=slo_ttft_ms,
            slo_tpot_ms=slo_tpot_ms,
            prefix_tokens=prefix_tokens,
            prefix_groups=prefix_groups,
            prefix_caching=prefix_caching,
            **dep.layout(),
            ep=ep,
            dp_attention=dp_attention,
            spec_tokens=spec_tokens,
            spec_accept=spec_accept,
            gpu_memory_gib=gpu_memory_gib,
            allow_long_context=allow_long_context,
        )
    _show(res, requests=requests, prefix_tokens=prefix_tokens, plot=plot, report=report, as_json=as_json)


def _show(
    res: SimulateResult,
    *,
    requests: int,
    prefix_tokens: int,
    plot: str | None,
    report: str | None,
    as_json: bool,
) -> None:
    """The plots, the report, the warnings, then the answer: JSON or tables."""
    written = _plots(res, plot) if plot else []
    if report:
        from gpusizer.report.pages import simulate_report

        write_report(report, simulate_report(res))
    for line in res.warnings:
        err_console.print(f"[bold yellow]warning:[/] {line}", highlight=False, soft_wrap=True)
    if as_json:
        typer.echo(json.dumps({**sim_to_dict(res), "warnings": list(res.warnings)}, indent=2))
        return
    _render(res, requests, prefix_tokens, written)


def _render(res: SimulateResult, requests: int, prefix_tokens: int, written: list[str]) -> None:
    """The simulation as tables and sentences on stdout."""
    dep = res.fit.deployment
    console.print(
        f"[bold]{res.fit.model.name}[/] · {dep.quant.label} · {dep.layout.gpus}× {dep.gpu.name} · "
        f"{dep.engine} · KV pool {res.fit.estimate.kv_cache_tokens:,} tokens · {requests:,} requests"
    )
    if dep.spec_tokens:
        console.print(f"[dim]{spec_line(dep)}[/]")
    t = Table(title="Simulated continuous batching (percentiles over requests)", title_justify="left")
    for col in POINT_COLUMNS:
        t.add_column(col, justify="left" if col == "load" else "right")
    for row in point_rows(res):
        t.add_row(*row)
    # on a narrow terminal the least-read columns go first (all are in --json and --report)
    optional = ("ITL p95", "TTFT p99", "preempt", "req/s", "E2E p95", "TPOT p95")
    console.print(fold_columns(t, console.width, optional))
    console.print("[dim]latencies in ms unless marked; goodput = share of requests meeting the SLOs given[/]")
    band = (
        f"± {100 * res.uncertainty:.0f} % (median out-of-sample error of the factors, {res.efficiency_row})"
        if res.uncertainty is not None
        else f"uncertainty unknown: factors {res.efficiency_row} not fitted on published runs"
    )
    console.print(f"speed {band}", highlight=False)
    for p in res.points:
        tag = f"{p.rate:g} req/s" if p.rate is not None else f"{p.users} users" if p.users else "trace"
        console.print(f"[dim]{tag}: {p.binds}[/]", highlight=False)
    if prefix_tokens:
        for p in res.points:
            hits = p.stats.prefix_hit_tokens / max(1, p.stats.requests)
            console.print(
                f"prefix cache: {hits:,.0f} of the {prefix_tokens:,} shared prompt tokens per request served "
                "from the cache"
                + ("" if hits else " (caching is off for this engine; --prefix-caching turns it on)"),
                highlight=False,
            )
    if res.knee is not None:
        load = f"{res.knee.rate:g} req/s" if res.knee.rate is not None else f"{res.knee.users} users"
        console.print(f"[yellow]knee:[/] the SLOs first fail (goodput < 95 %) at {load}")
    for path in written:
        console.print(f"wrote {path}")


MAX_TRACE_BYTES = 100 * 1024 * 1024


def _read_trace(path: str) -> list[dict[str, float]]:
    lines = read_text_file("--trace", path, MAX_TRACE_BYTES).splitlines()
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInputError("--trace", f"line {n} is not JSON") from exc
        if not isinstance(row, dict):
            raise BadInputError("--trace", f"line {n} is not a JSON object")
        rows.append(row)
    return rows


def _plots(res: SimulateResult, folder: str) -> list[str]:
    """Queue, running batch and KV use over time, and TTFT/TPOT CDFs, one SVG each per load."""
    return write_svgs("--plot", folder, sim_charts(res))
