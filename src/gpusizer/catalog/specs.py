"""Validated shapes of the catalogue files (YAML under ``gpusizer/data``).

Every model is ``extra="forbid"`` so that a typo in a data file fails at load time
instead of silently dropping a number. Units are base units: bytes, bytes/s, FLOP/s, W.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "CloudPrice",
    "EfficiencyFactor",
    "EfficiencyFile",
    "EngineDefaults",
    "EngineFile",
    "FlopsTable",
    "GpuFile",
    "GpuSpec",
    "InterconnectFile",
    "KvDtype",
    "LinkSpec",
    "ModelEntry",
    "ModelFile",
    "PriceFile",
    "PublishedCounts",
    "QuantFile",
    "QuantFormat",
    "Sourced",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------------- models
class PublishedCounts(_Strict):
    """Parameter counts as the model's owner published them (a test oracle, not an input)."""

    total_params: int | None = None
    active_params: int | None = None
    source: str


class ModelEntry(_Strict):
    """One catalogue model: its Hugging Face ``config.json`` kept unmodified, plus provenance."""

    id: str = Field(description="Hugging Face repo id, exact case")
    aliases: tuple[str, ...] = ()
    context_length: int | None = Field(default=None, gt=0)
    published: PublishedCounts | None = None
    config_source: str
    config_note: str | None = None
    config: dict[str, Any] | None = None
    config_from: str | None = None

    @model_validator(mode="after")
    def _one_config(self) -> ModelEntry:
        if (self.config is None) == (self.config_from is None):
            raise ValueError(f"{self.id}: give exactly one of `config` or `config_from`")
        return self


class ModelFile(_Strict):
    family: str
    models: tuple[ModelEntry, ...]


# ------------------------------------------------------------------------------- GPUs
class FlopsTable(_Strict):
    """Dense tensor-core FLOP/s per math dtype (no structured sparsity)."""

    fp32: float | None = None
    tf32: float | None = None
    fp16: float | None = None
    bf16: float | None = None
    fp8: float | None = None
    int8: float | None = None
    fp6: float | None = None
    fp4: float | None = None
    int4: float | None = None


GpuClass = Literal["consumer", "workstation", "datacenter", "apple"]
Vendor = Literal["nvidia", "amd", "apple"]


class GpuSpec(_Strict):
    """A GPU as the catalogue knows it. ``memory_visible_bytes`` is what the driver reports
    as total device memory (``cudaMemGetInfo`` total), which is what engines budget from."""

    key: str
    name: str
    vendor: Vendor
    gpu_class: GpuClass
    architecture: str
    compute_capability: str | None = None
    aliases: tuple[str, ...] = ()
    memory_bytes: int = Field(gt=0)
    memory_visible_bytes: int | None = Field(default=None, gt=0)
    memory_bandwidth_bps: float = Field(gt=0)
    flops: FlopsTable = FlopsTable()
    scale_up_link: str | None = None
    scale_up_bandwidth_bps: float | None = None
    host_link: str | None = None
    tdp_w: float | None = None
    list_price_usd: float | None = None
    source: str
    unverified: tuple[str, ...] = ()
    note: str | None = None


class GpuFile(_Strict):
    gpus: tuple[GpuSpec, ...]


# ----------------------------------------------------------------------- quantization
ParamGroup = Literal[
    "embedding",
    "lm_head",
    "attention",
    "mlp",
    "experts",
    "shared_experts",
    "router",
    "norm",
    "bias",
    "indexer",
    "mtp",
]


class QuantFormat(_Strict):
    """A weight storage format and its real cost in bits per weight.

    ``bits_per_weight`` of a quantized tensor = ``weight_bits`` + ``(scale_bits +
    zero_bits) / group_size`` (+ ``extra_bits_per_weight`` for per-row items such as
    GPTQ's ``g_idx``), unless ``bits_per_weight`` is given outright (GGUF mixes, where
    the published whole-model figure already includes the mix).
    """

    key: str
    aliases: tuple[str, ...] = ()
    description: str
    kind: Literal["float", "int-group", "fp8", "gguf", "microscaling", "bnb"]
    weight_bits: float = Field(gt=0, le=32)
    group_size: int | None = Field(default=None, gt=0)
    scale_bits: float = 0.0
    zero_bits: float = 0.0
    extra_bits_per_weight: float = 0.0
    bits_per_weight: float | None = Field(default=None, gt=0, le=32)
    quantized_groups: tuple[ParamGroup, ...]
    compute_dtype: Literal["fp32", "fp16", "bf16", "fp8", "int8", "fp4"] = "bf16"
    engines: tuple[str, ...] = ("vllm", "sglang", "tensorrt-llm", "transformers")
    precision_rank: int = Field(ge=0, le=10, description="0 = lossless … 10 = most lossy")
    source: str

    @property
    def linear_bits_per_weight(self) -> float:
        """Effective stored bits per weight of a tensor this format quantizes."""
        if self.bits_per_weight is not None:
            return self.bits_per_weight
        per_group = (self.scale_bits + self.zero_bits) / self.group_size if self.group_size else 0.0
        return self.weight_bits + per_group + self.extra_bits_per_weight


class QuantFile(_Strict):
    formats: tuple[QuantFormat, ...]
    kv_dtypes: dict[str, KvDtype]


class Sourced(_Strict):
    """A number with its provenance."""

    value: float
    unit: str
    source: str
    note: str | None = None


class KvDtype(Sourced):
    """A KV-cache element format (data/quant.yaml ``kv_dtypes``): its size, the names engines
    and users give it, and the engines whose cache accepts it."""

    aliases: tuple[str, ...] = ()
    engines: tuple[str, ...] = Field(min_length=1, description="engines that cache K/V in this format")


QuantFile.model_rebuild()


# ---------------------------------------------------------------------------- engines
class EngineDefaults(_Strict):
    """Named, sourced numbers of one engine (one version band)."""

    engine: str
    versions: str
    numbers: dict[str, Sourced]


class EngineFile(_Strict):
    engines: tuple[EngineDefaults, ...]


# ------------------------------------------------------------------ interconnects, efficiency
class LinkSpec(_Strict):
    """A GPU-to-GPU link as all-reduce sees it."""

    bandwidth_bps: float = Field(gt=0, description="per direction, bytes/s")
    busbw_fraction: float = Field(gt=0, le=1, description="achieved all-reduce bus bandwidth / link rate")
    latency_s: float = Field(ge=0, description="one small all-reduce between 2 GPUs, seconds")
    latency_growth: Literal["log2", "linear"] = Field(
        default="linear",
        description="how small-message all-reduce latency grows with n GPUs: switched NVLink "
        "≈ α·(1 + log2(n/2)); PCIe ≈ α·n/2 (facts.md C.8.1: H100 7.3/11.3/18.7 µs, "
        "RTX PRO 6000 PCIe 9.2/16.9/34.2 µs at 2/4/8 GPUs)",
    )
    source: str


class InterconnectFile(_Strict):
    links: dict[str, LinkSpec]


class EfficiencyFactor(_Strict):
    """Achieved fractions of peak for one engine on one GPU vendor."""

    engine: str
    vendor: str
    gpu_class: str = "any"
    bandwidth_fraction: Sourced
    compute_fraction: Sourced
    step_overhead_s: Sourced
    prefill_overhead_s: Sourced | None = None  # extra fixed cost of a step that prefills
    kv_bandwidth_fraction: Sourced | None = None  # KV reads by attention; absent: as bandwidth_fraction
    layer_overhead_s: Sourced | None = None  # fixed cost per layer per step; absent: 0
    moe_layer_overhead_s: Sourced | None = None  # extra fixed cost per MoE layer per step; absent: 0
    sequence_layer_overhead_s: Sourced | None = None  # cost per sequence per layer; absent: 0
    sequence_overhead_s: Sourced | None = None  # cost per sequence per step; absent: 0
    prefill_layer_overhead_s: Sourced | None = None  # per layer of a prefilling step; absent: 0
    uncertainty: float | None = Field(default=None, ge=0, description="median |error| of the fit (fraction)")


class EfficiencyFile(_Strict):
    factors: tuple[EfficiencyFactor, ...]


# -------------------------------------------------------------------------------- prices
class CloudPrice(_Strict):
    usd_per_gpu_hour: float = Field(gt=0)
    provider: str
    date: str
    source: str


class PriceFile(_Strict):
    as_of: str
    prices: dict[str, CloudPrice]
