"""``gpusizer fit``: does a model fit, how is each GPU's memory spent, how many users."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gpusizer.api import fit as api_fit
from gpusizer.cli.common import console, guarded, write_report
from gpusizer.cli.options import (
    AllowLongContextOpt,
    DpAttentionOpt,
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
from gpusizer.domain.options import DeploymentOptions as D
from gpusizer.errors import BadInputError
from gpusizer.report.fit import fit_to_dict, render_fit

__all__ = ["fit_command"]


@guarded
def fit_command(
    model: ModelArg,
    gpu: GpuOpt = None,
    gpus: GpusOpt = None,
    tp: TpOpt = None,
    pp: PpOpt = None,
    quant: QuantOpt = None,
    kv_dtype: KvDtypeOpt = "auto",
    engine: EngineOpt = None,
    engine_version: Annotated[
        str | None,
        typer.Option(help="Engine version, e.g. 0.11.0 (vLLM's accounting changed at 0.9.2 and 0.21)"),
    ] = None,
    max_model_len: Annotated[
        int | None,
        typer.Option(
            "--max-model-len",
            "--context",
            "-L",
            help="Context per request: 4096, 32k, 128k",
            parser=option(D, "max_model_len"),
        ),
    ] = None,
    users: Annotated[
        int,
        typer.Option("--users", "-n", help="Concurrent requests at full context", parser=option(D, "users")),
    ] = 1,
    gpu_memory_utilization: Annotated[
        float | None,
        typer.Option(
            help="vLLM gpu_memory_utilization / SGLang mem_fraction_static / TRT-LLM free fraction, 0.05..1",
            parser=option(D, "gpu_memory_utilization"),
        ),
    ] = None,
    max_num_seqs: Annotated[int | None, typer.Option(parser=option(D, "max_num_seqs"))] = None,
    max_num_batched_tokens: Annotated[
        int | None,
        typer.Option(
            help="Token budget per step, e.g. 8192, 16k", parser=option(D, "max_num_batched_tokens")
        ),
    ] = None,
    block_size: Annotated[int | None, typer.Option(parser=option(D, "block_size"))] = None,
    enforce_eager: Annotated[bool, typer.Option(help="No CUDA graphs")] = False,
    mtp: Annotated[
        bool, typer.Option(help="DeepSeek MTP speculative decoding (loads the MTP layer)")
    ] = False,
    offline: Annotated[
        bool, typer.Option(help="vLLM LLM class (offline) defaults instead of `vllm serve`")
    ] = False,
    ep: EpOpt = False,
    dp_attention: DpAttentionOpt = False,
    gpus_per_node: GpusPerNodeOpt = 8,
    gpu_memory_gib: GpuMemOpt = None,
    gpu_bandwidth_gbps: Annotated[
        float | None,
        typer.Option(help="Override memory bandwidth (GB/s)", parser=option(D, "gpu_bandwidth_gbps")),
    ] = None,
    allow_long_context: AllowLongContextOpt = False,
    gpu_file: Annotated[str | None, typer.Option(help="A YAML file describing a custom GPU")] = None,
    hf: Annotated[bool, typer.Option("--hf", help="Look MODEL up on the Hugging Face Hub (network)")] = False,
    as_json: JsonOpt = False,
    report: ReportOpt = None,
) -> None:
    """Per-GPU VRAM breakdown, verdict, max concurrency and max context.

    Exit status: 0 fits, 1 does not fit, 2 bad input.
    """
    if gpu is None and gpu_memory_gib is None and gpu_file is None:
        raise BadInputError(
            "--gpu", "missing", "a GPU name (see `gpusizer gpus`), --gpu-memory-gib or --gpu-file"
        )
    res = api_fit(
        model,
        gpu,
        ep=ep,
        dp_attention=dp_attention,
        gpus_per_node=gpus_per_node,
        gpus=gpus,
        tp=tp,
        pp=pp,
        quant=quant,
        kv_dtype=kv_dtype,
        engine=engine,
        engine_version=engine_version,
        max_model_len=max_model_len,
        users=users,
        gpu_memory_utilization=gpu_memory_utilization,
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens,
        block_size=block_size,
        enforce_eager=enforce_eager,
        speculative_mtp=mtp,
        usage="offline" if offline else "serve",
        gpu_memory_gib=gpu_memory_gib,
        gpu_bandwidth_gbps=gpu_bandwidth_gbps,
        gpu_file=gpu_file,
        hf=hf,
        allow_long_context=allow_long_context,
    )
    if report:
        from gpusizer.report.pages import fit_report

        write_report(report, fit_report(res))
    if as_json:
        typer.echo(json.dumps(fit_to_dict(res), indent=2))
    else:
        render_fit(res, console)
    raise typer.Exit(code=0 if res.estimate.fits else 1)
