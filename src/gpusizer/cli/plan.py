"""``gpusizer plan``: the cheapest hardware that meets the users' targets."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gpusizer.api import PlanResult
from gpusizer.api import plan as run_plan
from gpusizer.cli.common import console, err_console, guarded, write_report, write_svgs
from gpusizer.cli.options import EfficiencyOpt, PlainJsonOpt, ReportOpt, field_option
from gpusizer.cli.progress import progress_display
from gpusizer.domain.options import SearchOptions as S
from gpusizer.domain.options import parse_field
from gpusizer.report.plan import plan_to_dict, plan_to_markdown, render_plan

__all__ = ["plan_command"]

ModelArg = Annotated[str, typer.Argument(help="Catalogue name, config.json, model directory or .gguf")]
ContextOpt = Annotated[
    int, field_option(S, "context", "Max tokens per request: 8k, 32k, 128k", "--context", "-L")
]
UsersOpt = Annotated[int, field_option(S, "users", "Concurrent users at full context", "--users", "-n")]
InputLenOpt = Annotated[
    int | None, field_option(S, "input_len", "Typical prompt tokens for TTFT (default min(2k, context))")
]
OutputLenOpt = Annotated[int, field_option(S, "output_len", "Typical output tokens")]
TtftOpt = Annotated[float | None, field_option(S, "ttft_ms", "Time-to-first-token target, ms")]
TpotOpt = Annotated[float | None, field_option(S, "tpot_ms", "Time-per-output-token target, ms")]
SpeedOpt = Annotated[
    float | None,
    field_option(S, "tokens_per_s_per_user", "Per-user decode speed target (= 1000/TPOT ms)"),
]
GpusOpt = Annotated[str | None, typer.Option("--gpu", help="Only these GPUs, comma-separated")]
ClassOpt = Annotated[str | None, typer.Option("--class", help="consumer,workstation,datacenter,apple")]
MaxGpusOpt = Annotated[int, field_option(S, "max_gpus", "Most GPUs per plan")]
QuantsOpt = Annotated[
    str | None, typer.Option("--quant", "-q", help="Only these weight formats, comma-separated")
]
PrecisionOpt = Annotated[
    str, typer.Option(help="default (AWQ first, FP8 where supported) | high (BF16/native)")
]
EnginesOpt = Annotated[
    str,
    typer.Option(
        help="vllm | sglang | tensorrt-llm | llamacpp, a comma list, or auto (vLLM+SGLang on data-centre "
        "cards, vLLM+llama.cpp on consumer cards); Apple GPUs always use llama.cpp"
    ),
]
KvDtypeOpt = Annotated[
    str,
    typer.Option(
        help="KV-cache dtype. 'search' (default) tries the engine default and the 8-bit cache where "
        "the card and engine run it (FP8 on Ada/Hopper/Blackwell/MI300 under vLLM, SGLang, "
        "TensorRT-LLM; q8_0 on llama.cpp) and shows its quality note; or pin one: auto, fp8, q8_0"
    ),
]
HeadroomOpt = Annotated[
    float,
    field_option(
        S,
        "headroom",
        "Share kept free: the KV pool must hold (1 + h) × the users and the simulated "
        "percentile must be under (1 − h) × the TTFT/TPOT targets",
    ),
]
PercentileOpt = Annotated[
    int, field_option(S, "percentile", "Latency percentile the targets apply to: 50, 90, 95 or 99")
]
SystemOpt = Annotated[
    str | None,
    typer.Option(
        "--system",
        help="Only these boxes, comma-separated: kinds (desktop, workstation, pcie-server, hgx, "
        "oam-platform, mac) or system keys from data/systems.yaml",
    ),
]
MaxSimulationsOpt = Annotated[int, field_option(S, "max_simulations", "Simulations the verification may run")]
MaxCostOpt = Annotated[
    float | None, field_option(S, "max_cost_per_hour", "Budget, USD per hour for the deployment")
]
CapexOpt = Annotated[
    float | None,
    field_option(S, "capex", "Hardware budget, USD: boxes + GPUs + network of the whole deployment"),
]
YearsOpt = Annotated[float, field_option(S, "years", "Owned hardware: amortisation years")]
KwhPriceOpt = Annotated[float, field_option(S, "kwh_price", "Owned hardware: USD per kWh")]
RankByOpt = Annotated[
    str,
    typer.Option(help="owned (boxes + GPUs + network over --years + power) | cloud (dated instance prices)"),
]
PlotOpt = Annotated[
    str | None, typer.Option("--plot", help="Write the plan's charts as SVG files into this folder")
]
MarkdownOpt = Annotated[bool, typer.Option("--markdown", help="Print the plan as Markdown")]


def _list(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@guarded
def plan_command(
    model: ModelArg,
    context: ContextOpt = 8192,
    users: UsersOpt = 1,
    input_len: InputLenOpt = None,
    output_len: OutputLenOpt = 512,
    ttft_ms: TtftOpt = None,
    tpot_ms: TpotOpt = None,
    tokens_per_s_per_user: SpeedOpt = None,
    gpu: GpusOpt = None,
    gpu_class: ClassOpt = None,
    max_gpus: MaxGpusOpt = 8,
    quant: QuantsOpt = None,
    precision: PrecisionOpt = "default",
    engine: EnginesOpt = "vllm",
    kv_dtype: KvDtypeOpt = "search",
    headroom: HeadroomOpt = 0.10,
    percentile: PercentileOpt = 95,
    system: SystemOpt = None,
    max_simulations: MaxSimulationsOpt = 60,
    max_cost_per_hour: MaxCostOpt = None,
    capex: CapexOpt = None,
    profile: EfficiencyOpt = None,
    years: YearsOpt = 3.0,
    kwh_price: KwhPriceOpt = 0.15,
    rank_by: RankByOpt = "owned",
    as_json: PlainJsonOpt = False,
    report: ReportOpt = None,
    plot: PlotOpt = None,
    markdown: MarkdownOpt = False,
) -> None:
    """Right-size the hardware: a plan is N boxes of one kind (desktop, workstation, PCIe server,
    HGX/MI300X platform, Mac) with their GPUs, or N cloud instances.

    Searches GPU × box × GPUs per engine × replicas × weight format × KV dtype; keeps what fits
    with --headroom and meets the targets analytically; then simulates candidates in cost order
    until every pick shown (cheapest, fastest, best $/token) has met the targets at
    --percentile with --headroom. Costs: box + GPUs + network + power (owned) or instance-hours
    (cloud); $/M tokens from the simulated throughput. Prints launch commands for the pick's
    engine and platform (CUDA, ROCm, Apple; docker, compose, Kubernetes, LeaderWorkerSet)."""
    with progress_display(not as_json) as hear:
        res = run_plan(
            model,
            context=context,
            users=users,
            input_len=input_len,
            output_len=output_len,
            ttft_ms=ttft_ms,
            tpot_ms=_tpot_target(tpot_ms, tokens_per_s_per_user),
            gpus=_list(gpu),
            classes=_list(gpu_class),
            max_gpus=max_gpus,
            quants=_list(quant),
            precision=parse_field(S, "precision", precision),
            engine=_list(engine) or ["vllm"],
            kv_dtype=None if kv_dtype == "search" else kv_dtype,
            headroom=headroom,
            percentile=percentile,
            systems=_list(system),
            max_simulations=max_simulations,
            max_cost_per_hour=max_cost_per_hour,
            max_capex=capex,
            efficiency_file=profile,
            years=years,
            kwh_price=kwh_price,
            rank_by=parse_field(S, "rank_by", rank_by),
            progress=hear,
        )
    _write_files(res, report, plot)
    _answer(res, as_json=as_json, markdown=markdown)


def _tpot_target(tpot_ms: float | None, tokens_per_s_per_user: float | None) -> float | None:
    """--tpot-ms, or the per-user speed as a TPOT target, whichever is tighter."""
    if tokens_per_s_per_user is None:
        return tpot_ms
    tpot = 1000.0 / tokens_per_s_per_user
    return min(tpot_ms, tpot) if tpot_ms else tpot


def _answer(res: PlanResult, *, as_json: bool, markdown: bool) -> None:
    """The plan on stdout; exit status 1 when nothing meets the targets."""
    if as_json:
        typer.echo(json.dumps(plan_to_dict(res), indent=2))
    elif markdown:
        typer.echo(plan_to_markdown(res))
    else:
        render_plan(res, console)
    raise typer.Exit(code=0 if res.picks.cheapest else 1)


def _write_files(res: PlanResult, report: str | None, plot: str | None) -> None:
    """The ``--report`` page and the ``--plot`` charts, when asked for."""
    if not (report or plot):
        return
    doc = plan_to_dict(res)
    if report:
        from gpusizer.report.pages import plan_report

        write_report(report, plan_report(doc))
    if plot:
        from gpusizer.report.html import plan_charts

        for path in write_svgs("--plot", plot, plan_charts(doc)):
            err_console.print(f"[dim]wrote {path}[/]")
