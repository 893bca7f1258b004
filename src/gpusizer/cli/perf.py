"""``gpusizer perf``: how fast — TTFT, time per output token, tokens/s — and what binds."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gpusizer.api import perf as api_perf
from gpusizer.cli.common import console, guarded, write_report
from gpusizer.cli.options import (
    AllowLongContextOpt,
    DpAttentionOpt,
    EfficiencyOpt,
    EngineOpt,
    EpOpt,
    GpuMemOpt,
    GpuOpt,
    GpusOpt,
    GpusPerNodeOpt,
    JsonOpt,
    KvDtypeOpt,
    ModelArg,
    PpOpt,
    QuantOpt,
    ReportOpt,
    TpOpt,
    option,
)
from gpusizer.domain.options import WorkloadOptions as W
from gpusizer.domain.options import parse_field
from gpusizer.errors import BadInputError
from gpusizer.report.perf import perf_to_dict, render_perf

__all__ = ["perf_command"]


@guarded
def perf_command(
    model: ModelArg,
    gpu: GpuOpt = None,
    gpus: GpusOpt = None,
    tp: TpOpt = None,
    pp: PpOpt = None,
    quant: QuantOpt = None,
    kv_dtype: KvDtypeOpt = "auto",
    engine: EngineOpt = None,
    batch: Annotated[
        str | None,
        typer.Option("--batch", "-b", help="Batch sizes, e.g. 1,8,32 (default: 1,2,4… up to what fits)"),
    ] = None,
    users: Annotated[
        int | None,
        typer.Option("--users", "-n", help="One row at this batch size, 1..4096", parser=option(W, "batch")),
    ] = None,
    input_len: Annotated[
        int, typer.Option(help="Prompt tokens, e.g. 1024 or 8k", parser=option(W, "input_len"))
    ] = 1024,
    output_len: Annotated[int, typer.Option(help="Generated tokens", parser=option(W, "output_len"))] = 256,
    link: Annotated[
        str | None, typer.Option(help="Force the GPU link: nvlink4, pcie4-x16, pcie4-x4, pcie-through-cpu …")
    ] = None,
    ep: EpOpt = False,
    dp_attention: DpAttentionOpt = False,
    gpus_per_node: GpusPerNodeOpt = 8,
    gpu_memory_gib: GpuMemOpt = None,
    allow_long_context: AllowLongContextOpt = False,
    plot: Annotated[
        str | None, typer.Option("--plot", help="Write the roofline picture to this .svg file")
    ] = None,
    efficiency: EfficiencyOpt = None,
    as_json: JsonOpt = False,
    report: ReportOpt = None,
) -> None:
    """Latency and throughput by batch size, with the binding resource and why."""
    if gpu is None and gpu_memory_gib is None:
        raise BadInputError("--gpu", "missing", "a GPU name (see `gpusizer gpus`)")
    batches: tuple[int, ...] | None = None
    if batch:
        batches = tuple(parse_field(W, "batch", x) for x in batch.split(","))
    elif users:
        batches = (users,)
    res = api_perf(
        model,
        gpu,
        efficiency_file=efficiency,
        ep=ep,
        dp_attention=dp_attention,
        gpus_per_node=gpus_per_node,
        input_len=input_len,
        output_len=output_len,
        batches=batches,
        link=link,
        gpus=gpus,
        tp=tp,
        pp=pp,
        quant=quant,
        kv_dtype=kv_dtype,
        engine=engine,
        gpu_memory_gib=gpu_memory_gib,
        allow_long_context=allow_long_context,
    )
    if plot:
        from pathlib import Path

        from gpusizer.report.roofline_svg import roofline_svg

        target = Path(plot)
        if target.suffix.lower() != ".svg":
            raise BadInputError("--plot", f"{plot!r} must end in .svg")
        try:
            target.write_text(roofline_svg(res), encoding="utf-8")
        except OSError as exc:
            raise BadInputError("--plot", f"cannot write {plot!r} ({exc.strerror})") from exc
    if report:
        from gpusizer.report.pages import perf_report

        write_report(report, perf_report(res))
    if as_json:
        typer.echo(json.dumps(perf_to_dict(res), indent=2))
    else:
        render_perf(res, console)
        if plot:
            console.print(f"roofline written to {plot}")
