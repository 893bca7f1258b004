"""Command-line options shared by fit, perf and simulate, each defined once (name, help);
the commands import these aliases instead of repeating them.

Values are read by ``option(Model, field)``: the field of ``domain.options`` gives the type,
bounds and accepted values, so the CLI refuses exactly what the web API and the Python API
refuse — with one line naming the field (``users: must be 1..1000000, got 0``) and exit
status 2 (click would print a usage box, and lets NaN through every range check).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer
from pydantic import BaseModel

from gpusizer.cli.common import err_console
from gpusizer.domain.kv import kv_dtypes_for
from gpusizer.domain.options import DeploymentOptions, parse_field
from gpusizer.engines import ENGINE_NAMES
from gpusizer.errors import BadInputError

__all__ = [
    "AllowLongContextOpt",
    "EngineOpt",
    "EpOpt",
    "GpuMemOpt",
    "GpuOpt",
    "GpusOpt",
    "GpusPerNodeOpt",
    "JsonOpt",
    "KvDtypeOpt",
    "ModelArg",
    "PlainJsonOpt",
    "PpOpt",
    "QuantOpt",
    "TpOpt",
    "field_option",
    "number",
    "option",
    "refuse",
    "whole",
]


def refuse(flag: str, problem: str, accepted: str | None = None) -> NoReturn:
    """A bad option value while the command line is parsed: one line on stderr, exit 2."""
    err_console.print(
        f"[bold red]error:[/] {BadInputError(flag, problem, accepted).message}",
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(code=2)


def option(model: type[BaseModel], name: str) -> Callable[[Any], Any]:
    """A parser that reads an option as field ``name`` of ``model`` (``domain.options``)."""

    def parse(text: Any) -> Any:
        try:
            return parse_field(model, name, text)
        except BadInputError as exc:
            refuse(exc.field, exc.message.removeprefix(f"{exc.field}: "))

    return parse


def whole(flag: str, low: int, high: int) -> Callable[[Any], int]:
    """A parser for a whole-number option within ``low..high`` (both included)."""

    def parse(text: Any) -> int:
        if isinstance(text, int) and not isinstance(text, bool):
            value = text
        else:
            try:
                value = int(str(text).strip())
            except ValueError:
                refuse(flag, f"cannot read {text!r} as a whole number", f"{low}..{high}")
        if not low <= value <= high:
            refuse(flag, f"must be {low}..{high}, got {value}")
        return value

    return parse


def number(flag: str, low: float, high: float, *, above: bool = False) -> Callable[[Any], float]:
    """A parser for a finite number in ``[low, high]`` (``(low, high]`` with ``above``)."""
    lower = f"({low:g}" if above else f"[{low:g}"

    def parse(text: Any) -> float:
        try:
            value = float(text) if isinstance(text, int | float) else float(str(text).strip())
        except ValueError:
            refuse(flag, f"cannot read {text!r} as a number", f"{lower}, {high:g}]")
        if not math.isfinite(value):
            refuse(flag, f"must be a finite number, got {text!r}", f"{lower}, {high:g}]")
        if value < low or (above and value == low) or value > high:
            refuse(flag, f"must be in {lower}, {high:g}], got {value:g}")
        return value

    return parse


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
GpusOpt = Annotated[
    int | None,
    typer.Option(help="Number of GPUs (default: tp × pp), 1..4096", parser=option(DeploymentOptions, "gpus")),
]
TpOpt = Annotated[
    int | None, typer.Option(help="Tensor-parallel size", parser=option(DeploymentOptions, "tp"))
]
PpOpt = Annotated[
    int | None, typer.Option(help="Pipeline-parallel size", parser=option(DeploymentOptions, "pp"))
]
QuantOpt = Annotated[
    str | None,
    typer.Option(
        "--quant",
        "-q",
        help="Weight format: bf16, fp8, fp8-block, awq, gptq, int8, bnb-nf4, mxfp4, "
        "nvfp4, q4_k_m, or a llama.cpp type name (F16, Q8_0, Q4_K_M …) (default: as the checkpoint ships)",
        parser=option(DeploymentOptions, "quant"),
    ),
]
KvDtypeOpt = Annotated[
    str,
    typer.Option(
        help="KV cache dtype (data/quant.yaml). vLLM/SGLang: "
        + ", ".join(kv_dtypes_for("vllm", mla=True))
        + " (fp8_ds_mla: DeepSeek MLA only); llama.cpp -ctk/-ctv: "
        + ", ".join(kv_dtypes_for("llamacpp")),
        parser=option(DeploymentOptions, "kv_dtype"),
    ),
]
EngineOpt = Annotated[
    str | None,
    typer.Option(
        help=" | ".join(ENGINE_NAMES) + " (default vllm; llamacpp for GGUF/Apple)",
        parser=option(DeploymentOptions, "engine"),
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
SpecTokensOpt = Annotated[
    int,
    typer.Option(
        "--spec-tokens",
        help="Speculative decoding: tokens a one-layer draft (DeepSeek MTP, EAGLE) proposes per "
        "step, verified in one pass (SGLang --speculative-num-steps, vLLM num_speculative_tokens); 0: off",
    ),
]
SpecAcceptOpt = Annotated[
    float | None,
    typer.Option(
        "--spec-accept",
        help="Speculative decoding: mean tokens kept per step, as your server logs it (SGLang "
        "'accept len'); default 1 + 0.7 + 0.7² + … over the drafted tokens",
    ),
]
GpusPerNodeOpt = Annotated[
    int,
    typer.Option(
        help="GPUs per node (TP inside, PP across), 1..72", parser=option(DeploymentOptions, "gpus_per_node")
    ),
]
GpuMemOpt = Annotated[
    float | None,
    typer.Option(help="Override the GPU's memory (GiB)", parser=option(DeploymentOptions, "gpu_memory_gib")),
]
AllowLongContextOpt = Annotated[
    bool,
    typer.Option(
        "--allow-long-context",
        help="Allow a context beyond the model's max_position_embeddings (you extend it with RoPE "
        "scaling, e.g. YaRN; quality beyond the trained length is not guaranteed)",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object")]
PlainJsonOpt = Annotated[bool, typer.Option("--json")]  # plan, bench, compare: --json without a help line
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


def field_option(model: type[BaseModel], name: str, help_text: str, *decls: str) -> Any:
    """A ``typer.Option`` (for ``Annotated``) with flags ``decls`` (default: from the parameter's
    name) whose value is read as field ``name`` of ``model`` (see ``option``)."""
    return typer.Option(*decls, help=help_text, parser=option(model, name))
