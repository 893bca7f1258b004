"""Command-line options shared by fit, perf and simulate, each defined once (name, help,
bounds); the commands import these aliases instead of repeating them."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = [
    "EngineOpt",
    "EpOpt",
    "GpuMemOpt",
    "GpuOpt",
    "GpusOpt",
    "GpusPerNodeOpt",
    "JsonOpt",
    "KvDtypeOpt",
    "ModelArg",
    "PpOpt",
    "QuantOpt",
    "TpOpt",
]

ModelArg = Annotated[
    str,
    typer.Argument(
        help="Catalogue name or HF id (deepseek-r1-distill-qwen-7b), a config.json, a model directory, "
        "or a .gguf file"
    ),
]
GpuOpt = Annotated[
    str | None,
    typer.Option(
        "--gpu",
        "-g",
        help="GPU name: H100, 'RTX 4090', 'NVIDIA A100-SXM4-80GB', MI300X … (see `gpusizer gpus`)",
    ),
]
GpusOpt = Annotated[int | None, typer.Option(help="Number of GPUs (default: tp × pp)", min=1, max=4096)]
TpOpt = Annotated[int | None, typer.Option(help="Tensor-parallel size", min=1, max=1024)]
PpOpt = Annotated[int | None, typer.Option(help="Pipeline-parallel size", min=1, max=256)]
QuantOpt = Annotated[
    str | None,
    typer.Option(
        "--quant",
        "-q",
        help="Weight format: bf16, fp8, fp8-block, awq, gptq, int8, bnb-nf4, mxfp4, "
        "nvfp4, q4_k_m … (default: as the checkpoint ships)",
    ),
]
KvDtypeOpt = Annotated[
    str, typer.Option(help="KV cache dtype: auto, bf16, fp16, fp8, fp8_e5m2, fp8_ds_mla, q8_0, q4_0")
]
EngineOpt = Annotated[
    str | None,
    typer.Option(
        help="vllm | sglang | tensorrt-llm | llamacpp | transformers (default vllm; llamacpp for GGUF/Apple)"
    ),
]
EpOpt = Annotated[
    bool, typer.Option("--ep", help="Expert parallel for MoE (all-to-all instead of all-reduce)")
]
DpAttentionOpt = Annotated[
    bool,
    typer.Option(
        "--dp-attention",
        help="Data-parallel attention (SGLang --enable-dp-attention): each rank "
        "keeps only its requests' KV; attention weights replicated",
    ),
]
GpusPerNodeOpt = Annotated[int, typer.Option(min=1, max=72, help="GPUs per node (TP inside, PP across)")]
GpuMemOpt = Annotated[float | None, typer.Option(help="Override the GPU's memory (GiB)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object")]
EfficiencyOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "--efficiency",
        help="Calibration profile name or efficiency YAML (from `gpusizer calibrate`), used before the catalogue",
    ),
]
ReportOpt = Annotated[
    str | None,
    typer.Option(
        "--report", help="Also write a self-contained HTML report (tables and charts) to this .html file"
    ),
]
