"""``gpusizer plan``: the cheapest hardware that meets the users' targets."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gpusizer.api import plan as run_plan
from gpusizer.cli.common import console, err_console, guarded, write_report, write_svgs
from gpusizer.cli.options import EfficiencyOpt, ReportOpt, option
from gpusizer.cli.progress import progress_display
from gpusizer.domain.options import SearchOptions as S
from gpusizer.domain.options import parse_field
from gpusizer.report.plan import plan_to_dict, plan_to_markdown, render_plan

__all__ = ["plan_command"]


def _list(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@guarded
def plan_command(
    model: Annotated[str, typer.Argument(help="Catalogue name, config.json, model directory or .gguf")],
    context: Annotated[
        int,
        typer.Option(
            "--context", "-L", help="Max tokens per request: 8k, 32k, 128k", parser=option(S, "context")
        ),
    ] = 8192,
    users: Annotated[
        int,
        typer.Option("--users", "-n", help="Concurrent users at full context", parser=option(S, "users")),
    ] = 1,
    input_len: Annotated[
        int | None,
        typer.Option(
            help="Typical prompt tokens for TTFT (default min(2k, context))", parser=option(S, "input_len")
        ),
    ] = None,
    output_len: Annotated[
        int, typer.Option(help="Typical output tokens", parser=option(S, "output_len"))
    ] = 512,
    ttft_ms: Annotated[
        float | None,
        typer.Option(help="Time-to-first-token target, ms", parser=option(S, "ttft_ms")),
    ] = None,
    tpot_ms: Annotated[
        float | None,
        typer.Option(help="Time-per-output-token target, ms", parser=option(S, "tpot_ms")),
    ] = None,
    tokens_per_s_per_user: Annotated[
        float | None,
        typer.Option(
            help="Per-user decode speed target (= 1000/TPOT ms)",
            parser=option(S, "tokens_per_s_per_user"),
        ),
    ] = None,
    gpu: Annotated[str | None, typer.Option("--gpu", help="Only these GPUs, comma-separated")] = None,
    gpu_class: Annotated[
        str | None, typer.Option("--class", help="consumer,workstation,datacenter,apple")
    ] = None,
    max_gpus: Annotated[int, typer.Option(help="Most GPUs per plan", parser=option(S, "max_gpus"))] = 8,
    quant: Annotated[
        str | None, typer.Option("--quant", "-q", help="Only these weight formats, comma-separated")
    ] = None,
    precision: Annotated[
        str, typer.Option(help="default (AWQ first, FP8 where supported) | high (BF16/native)")
    ] = "default",
    engine: Annotated[
        str,
        typer.Option(
            help="vllm | sglang | tensorrt-llm | llamacpp, a comma list, or auto (vLLM+SGLang on data-centre "
            "cards, vLLM+llama.cpp on consumer cards); Apple GPUs always use llama.cpp"
        ),
    ] = "vllm",
    kv_dtype: Annotated[
        str,
        typer.Option(
            help="KV-cache dtype. 'search' (default) tries the engine default and the 8-bit cache where "
            "the card and engine run it (FP8 on Ada/Hopper/Blackwell/MI300 under vLLM, SGLang, "
            "TensorRT-LLM; q8_0 on llama.cpp) and shows its quality note; or pin one: auto, fp8, q8_0"
        ),
    ] = "search",
    headroom: Annotated[
        float,
        typer.Option(
            parser=option(S, "headroom"),
            help="Share kept free: the KV pool must hold (1 + h) × the users and the simulated "
            "percentile must be under (1 − h) × the TTFT/TPOT targets",
        ),
    ] = 0.10,
    percentile: Annotated[
        int,
        typer.Option(
            help="Latency percentile the targets apply to: 50, 90, 95 or 99",
            parser=option(S, "percentile"),
        ),
    ] = 95,
    system: Annotated[
        str | None,
        typer.Option(
            "--system",
            help="Only these boxes, comma-separated: kinds (desktop, workstation, pcie-server, hgx, "
            "oam-platform, mac) or system keys from data/systems.yaml",
        ),
    ] = None,
    max_simulations: Annotated[
        int,
        typer.Option(help="Simulations the verification may run", parser=option(S, "max_simulations")),
    ] = 60,
    max_cost_per_hour: Annotated[
        float | None,
        typer.Option(
            help="Budget, USD per hour for the deployment",
            parser=option(S, "max_cost_per_hour"),
        ),
    ] = None,
    capex: Annotated[
        float | None,
        typer.Option(
            help="Hardware budget, USD: boxes + GPUs + network of the whole deployment",
            parser=option(S, "capex"),
        ),
    ] = None,
    profile: EfficiencyOpt = None,
    years: Annotated[
        float,
        typer.Option(help="Owned hardware: amortisation years", parser=option(S, "years")),
    ] = 3.0,
    kwh_price: Annotated[
        float, typer.Option(help="Owned hardware: USD per kWh", parser=option(S, "kwh_price"))
    ] = 0.15,
    rank_by: Annotated[
        str,
        typer.Option(
            help="owned (boxes + GPUs + network over --years + power) | cloud (dated instance prices)"
        ),
    ] = "owned",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    report: ReportOpt = None,
    plot: Annotated[
        str | None, typer.Option("--plot", help="Write the plan's charts as SVG files into this folder")
    ] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the plan as Markdown")] = False,
) -> None:
    """Right-size the hardware: a plan is N boxes of one kind (desktop, workstation, PCIe server,
    HGX/MI300X platform, Mac) with their GPUs, or N cloud instances.

    Searches GPU × box × GPUs per engine × replicas × weight format × KV dtype; keeps what fits
    with --headroom and meets the targets analytically; then simulates candidates in cost order
    until every pick shown (cheapest, fastest, best $/token) has met the targets at
    --percentile with --headroom. Costs: box + GPUs + network + power (owned) or instance-hours
    (cloud); $/M tokens from the simulated throughput. Prints launch commands for the pick's
    engine and platform (CUDA, ROCm, Apple; docker, compose, Kubernetes, LeaderWorkerSet)."""
    if tokens_per_s_per_user is not None:
        tpot = 1000.0 / tokens_per_s_per_user
        tpot_ms = min(tpot_ms, tpot) if tpot_ms else tpot
    with progress_display(not as_json) as hear:
        res = run_plan(
            model,
            context=context,
            users=users,
            input_len=input_len,
            output_len=output_len,
            ttft_ms=ttft_ms,
            tpot_ms=tpot_ms,
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
    if report or plot:
        doc = plan_to_dict(res)
        if report:
            from gpusizer.report.pages import plan_report

            write_report(report, plan_report(doc))
        if plot:
            from gpusizer.report.html import plan_charts

            for path in write_svgs("--plot", plot, plan_charts(doc)):
                err_console.print(f"[dim]wrote {path}[/]")
    if as_json:
        typer.echo(json.dumps(plan_to_dict(res), indent=2))
    elif markdown:
        typer.echo(plan_to_markdown(res))
    else:
        render_plan(res, console)
    raise typer.Exit(code=0 if res.picks.cheapest else 1)
