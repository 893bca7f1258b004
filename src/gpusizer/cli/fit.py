"""``gpusizer fit``: does a model fit, how is each GPU's memory spent, how many users."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gpusizer.api import fit as api_fit
from gpusizer.cli.common import console, guarded, write_report
from gpusizer.cli.deployment_options import Deployment, deployment_command
from gpusizer.cli.options import (
    AllowLongContextOpt,
    DpAttentionOpt,
    EpOpt,
    GpuMemOpt,
    GpusPerNodeOpt,
    JsonOpt,
    ReportOpt,
    field_option,
    option,
)
from gpusizer.domain.options import DeploymentOptions as D
from gpusizer.report.fit import fit_to_dict, render_fit

__all__ = ["fit_command"]

EngineVersionOpt = Annotated[
    str | None, typer.Option(help="Engine version, e.g. 0.11.0 (vLLM's accounting changed at 0.9.2 and 0.21)")
]
ContextOpt = Annotated[
    int | None,
    field_option(
        D, "max_model_len", "Context per request: 4096, 32k, 128k", "--max-model-len", "--context", "-L"
    ),
]
UsersOpt = Annotated[int, field_option(D, "users", "Concurrent requests at full context", "--users", "-n")]
GpuMemoryUtilizationOpt = Annotated[
    float | None,
    field_option(
        D,
        "gpu_memory_utilization",
        "vLLM gpu_memory_utilization / SGLang mem_fraction_static / TRT-LLM free fraction, 0.05..1",
    ),
]
MaxNumSeqsOpt = Annotated[int | None, typer.Option(parser=option(D, "max_num_seqs"))]
MaxBatchedTokensOpt = Annotated[
    int | None, field_option(D, "max_num_batched_tokens", "Token budget per step, e.g. 8192, 16k")
]
BlockSizeOpt = Annotated[int | None, typer.Option(parser=option(D, "block_size"))]
EnforceEagerOpt = Annotated[bool, typer.Option(help="No CUDA graphs")]
MtpOpt = Annotated[bool, typer.Option(help="DeepSeek MTP speculative decoding (loads the MTP layer)")]
OfflineOpt = Annotated[bool, typer.Option(help="vLLM LLM class (offline) defaults instead of `vllm serve`")]
GpuBandwidthOpt = Annotated[
    float | None, field_option(D, "gpu_bandwidth_gbps", "Override memory bandwidth (GB/s)")
]
GpuFileOpt = Annotated[str | None, typer.Option(help="A YAML file describing a custom GPU")]
HfOpt = Annotated[bool, typer.Option("--hf", help="Look MODEL up on the Hugging Face Hub (network)")]


@guarded
@deployment_command
def fit_command(
    dep: Deployment,
    engine_version: EngineVersionOpt = None,
    max_model_len: ContextOpt = None,
    users: UsersOpt = 1,
    gpu_memory_utilization: GpuMemoryUtilizationOpt = None,
    max_num_seqs: MaxNumSeqsOpt = None,
    max_num_batched_tokens: MaxBatchedTokensOpt = None,
    block_size: BlockSizeOpt = None,
    enforce_eager: EnforceEagerOpt = False,
    mtp: MtpOpt = False,
    offline: OfflineOpt = False,
    ep: EpOpt = False,
    dp_attention: DpAttentionOpt = False,
    gpus_per_node: GpusPerNodeOpt = 8,
    gpu_memory_gib: GpuMemOpt = None,
    gpu_bandwidth_gbps: GpuBandwidthOpt = None,
    allow_long_context: AllowLongContextOpt = False,
    gpu_file: GpuFileOpt = None,
    hf: HfOpt = False,
    as_json: JsonOpt = False,
    report: ReportOpt = None,
) -> None:
    """Per-GPU VRAM breakdown, verdict, max concurrency and max context.

    Exit status: 0 fits, 1 does not fit, 2 bad input.
    """
    dep.require_gpu(
        gpu_memory_gib, gpu_file, accepted="a GPU name (see `gpusizer gpus`), --gpu-memory-gib or --gpu-file"
    )
    res = api_fit(
        dep.model,
        dep.gpu,
        ep=ep,
        dp_attention=dp_attention,
        gpus_per_node=gpus_per_node,
        **dep.layout(),
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
