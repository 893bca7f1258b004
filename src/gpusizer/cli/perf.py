"""``gpusizer perf``: how fast — TTFT, time per output token, tokens/s — and what binds."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gpusizer.api import PerfResult
from gpusizer.api import perf as api_perf
from gpusizer.cli.common import console, guarded, write_report
from gpusizer.cli.deployment_options import Deployment, deployment_command
from gpusizer.cli.options import (
    AllowLongContextOpt,
    DpAttentionOpt,
    EfficiencyOpt,
    EpOpt,
    GpuMemOpt,
    GpusPerNodeOpt,
    JsonOpt,
    ReportOpt,
    SpecAcceptOpt,
    SpecTokensOpt,
    field_option,
)
from gpusizer.domain.options import WorkloadOptions as W
from gpusizer.domain.options import parse_field
from gpusizer.errors import BadInputError
from gpusizer.report.perf import perf_to_dict, render_perf

__all__ = ["perf_command"]

BatchOpt = Annotated[
    str | None,
    typer.Option("--batch", "-b", help="Batch sizes, e.g. 1,8,32 (default: 1,2,4… up to what fits)"),
]
UsersOpt = Annotated[
    int | None, field_option(W, "batch", "One row at this batch size, 1..4096", "--users", "-n")
]
InputLenOpt = Annotated[int, field_option(W, "input_len", "Prompt tokens, e.g. 1024 or 8k")]
OutputLenOpt = Annotated[int, field_option(W, "output_len", "Generated tokens")]
LinkOpt = Annotated[
    str | None, typer.Option(help="Force the GPU link: nvlink4, pcie4-x16, pcie4-x4, pcie-through-cpu …")
]
PlotOpt = Annotated[str | None, typer.Option("--plot", help="Write the roofline picture to this .svg file")]


@guarded
@deployment_command
def perf_command(
    dep: Deployment,
    batch: BatchOpt = None,
    users: UsersOpt = None,
    input_len: InputLenOpt = 1024,
    output_len: OutputLenOpt = 256,
    link: LinkOpt = None,
    ep: EpOpt = False,
    dp_attention: DpAttentionOpt = False,
    spec_tokens: SpecTokensOpt = 0,
    spec_accept: SpecAcceptOpt = None,
    gpus_per_node: GpusPerNodeOpt = 8,
    gpu_memory_gib: GpuMemOpt = None,
    allow_long_context: AllowLongContextOpt = False,
    plot: PlotOpt = None,
    efficiency: EfficiencyOpt = None,
    as_json: JsonOpt = False,
    report: ReportOpt = None,
) -> None:
    """Latency and throughput by batch size, with the binding resource and why."""
    dep.require_gpu(gpu_memory_gib)
    batches: tuple[int, ...] | None = None
    if batch:
        batches = tuple(parse_field(W, "batch", x) for x in batch.split(","))
    elif users:
        batches = (users,)
    res = api_perf(
        dep.model,
        dep.gpu,
        efficiency_file=efficiency,
        ep=ep,
        dp_attention=dp_attention,
        spec_tokens=spec_tokens,
        spec_accept=spec_accept,
        gpus_per_node=gpus_per_node,
        input_len=input_len,
        output_len=output_len,
        batches=batches,
        link=link,
        **dep.layout(),
        gpu_memory_gib=gpu_memory_gib,
        allow_long_context=allow_long_context,
    )
    if plot:
        _write_roofline(res, plot)
    if report:
        from gpusizer.report.pages import perf_report

        write_report(report, perf_report(res))
    if as_json:
        typer.echo(json.dumps(perf_to_dict(res), indent=2))
    else:
        render_perf(res, console)
        if plot:
            console.print(f"roofline written to {plot}")


def _write_roofline(res: PerfResult, plot: str) -> None:
    """The ``--plot`` picture, as an SVG file."""
    from pathlib import Path

    from gpusizer.report.roofline_svg import roofline_svg

    target = Path(plot)
    if target.suffix.lower() != ".svg":
        raise BadInputError("--plot", f"{plot!r} must end in .svg")
    try:
        target.write_text(roofline_svg(res), encoding="utf-8")
    except OSError as exc:
        raise BadInputError("--plot", f"cannot write {plot!r} ({exc.strerror})") from exc
