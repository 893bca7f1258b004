"""Validated shapes of the catalogue files (YAML under ``gpusizer/data``).

Every model is ``extra="forbid"`` so that a typo in a data file fails at load time
instead of silently dropping a number. Units are base units: bytes, bytes/s, FLOP/s, W.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Checkpoint",
    "CheckpointFile",
    "CloudFile",
    "CloudInstance",
    "CloudPrice",
    "EfficiencyFactor",
    "EfficiencyFile",
    "EngineAllReduce",
    "EngineCommand",
    "EngineDefaults",
    "EngineFile",
    "EngineOptionsFile",
    "FlopsTable",
    "GpuFile",
    "GpuSpec",
    "InterconnectFile",
    "KvDtype",
    "LinkSpec",
    "ModelEntry",
    "ModelFile",
    "PcieRates",
    "PriceFile",
    "PublishedCounts",
    "QuantFile",
    "QuantFormat",
    "Sourced",
    "SystemFile",
    "SystemKind",
    "SystemSpec",
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
class EngineAllReduce(_Strict):
    """The serving engines' own all-reduce kernel on a link (vLLM's, SGLang's and TensorRT-LLM's
    custom all-reduce, captured in a CUDA graph): per group size, ``latency_s + bytes /
    bandwidth_bps``. It beats NCCL by several times on a decode step's small messages."""

    latency_s: dict[int, float] = Field(description="fixed cost of one all-reduce by group size, seconds")
    bandwidth_bps: dict[int, float] = Field(description="message bytes per second by group size")
    source: str

    def seconds(self, n: int, message_bytes: float) -> float:
        """One all-reduce of ``message_bytes`` over ``n`` GPUs (the nearest measured group size
        at or above ``n``, else the largest)."""
        sizes = sorted(self.latency_s)
        k = next((m for m in sizes if m >= n), sizes[-1])
        return self.latency_s[k] + message_bytes / self.bandwidth_bps[k]


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
    engine_allreduce: EngineAllReduce | None = Field(
        default=None, description="the engines' custom all-reduce on this link; absent: NCCL's figures only"
    )
    source: str


class InterconnectFile(_Strict):
    links: dict[str, LinkSpec]


class EfficiencyFactor(_Strict):
    """Achieved fractions of peak for one engine on one GPU vendor."""

    engine: str
    vendor: str
    gpu_class: str = "any"
    # weight formats (quant keys) the row is for; absent: any. A row naming the deployment's
    # format wins over one that does not (llama.cpp's K-quants dequantise at their own cost).
    weight_formats: tuple[str, ...] | None = None
    bandwidth_fraction: Sourced
    compute_fraction: Sourced
    step_overhead_s: Sourced
    prefill_overhead_s: Sourced | None = None  # extra fixed cost of a step that prefills
    moe_compute_fraction: Sourced | None = None  # routed experts' grouped GEMMs; absent: compute_fraction
    kv_bandwidth_fraction: Sourced | None = None  # KV reads by attention; absent: as bandwidth_fraction
    layer_overhead_s: Sourced | None = None  # fixed cost per layer per step; absent: 0
    moe_layer_overhead_s: Sourced | None = None  # extra fixed cost per MoE layer per step; absent: 0
    sequence_layer_overhead_s: Sourced | None = None  # cost per sequence per layer; absent: 0
    sequence_overhead_s: Sourced | None = None  # cost per sequence per step; absent: 0
    prefill_moe_layer_overhead_s: Sourced | None = None  # per MoE layer of a prefilling step; absent: 0
    mla_layer_overhead_s: Sourced | None = None  # extra per MLA layer per step; absent: 0
    eager_layer_overhead_s: Sourced | None = None  # per layer of a decode step with no CUDA graph; absent: 0
    request_overhead_s: Sourced | None = None  # API server's share of each TTFT, outside the steps; absent: 0
    uncertainty: float | None = Field(default=None, ge=0, description="median |error| of the fit (fraction)")
    moe_uncertainty: float | None = Field(
        default=None, ge=0, description="median |error| on the row's MoE runs (fraction); absent: uncertainty"
    )


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


# ------------------------------------------------------------------ systems (plan: boxes)
SystemKind = Literal["desktop", "workstation", "pcie-server", "hgx", "oam-platform", "mac"]


class SystemSpec(_Strict):
    """A buildable box that GPUs go into (data/systems.yaml). ``price_usd`` is the host
    without its GPUs (for a Mac: the whole configuration, since the chip is the GPU).
    ``slots`` is each GPU slot's link when every slot is populated (``pcie5-x8`` …), in
    fill order; ``gpu_count`` fixes the GPU count of platforms sold only fully populated
    (HGX, MI300X OAM: 8). A platform names its GPUs in ``takes_gpus``; such module GPUs go in
    no other box. Other boxes take GPUs by ``takes_classes`` and ``takes_vendors``."""

    key: str
    name: str
    kind: SystemKind
    examples: str = Field(description="real products of this class")
    price_usd: float = Field(gt=0)
    price_basis: str
    date: str
    slots: tuple[str, ...] = Field(min_length=1)
    gpu_count: int | None = Field(default=None, gt=0)
    p2p: bool = Field(description="PCIe peer-to-peer between the slots (False: staged through host memory)")
    power_budget_w: float = Field(gt=0, description="PSU capacity for GPUs + host, W")
    host_power_w: float = Field(ge=0, description="host draw under load without GPUs, W")
    max_card_tdp_w: float | None = None
    takes_gpus: tuple[str, ...] = ()
    takes_classes: tuple[str, ...] = ()
    takes_vendors: tuple[str, ...] = ()
    unified_memory_bytes: int | None = Field(
        default=None, gt=0, description="Mac: this configuration's memory"
    )
    network: str | None = Field(default=None, description="scale-out link for engines spanning boxes")
    network_usd_per_box: float | None = None
    source: str
    unverified: tuple[str, ...] = ()
    note: str | None = None


class PcieRates(_Strict):
    """PCIe per-lane rates and the all-reduce efficiency with and without peer-to-peer."""

    per_lane_bps: dict[int, float]
    p2p_busbw_fraction: dict[int, float]
    p2p_latency_s: dict[int, float]
    staged_busbw_factor: float = Field(gt=0, le=1, description="no P2P: × the P2P bus bandwidth")
    staged_latency_factor: float = Field(ge=1, description="no P2P: × the P2P latency")
    no_p2p_gpus: dict[str, str] = Field(description="vendor/class → why its cards have no PCIe P2P")
    source: str


class SystemFile(_Strict):
    as_of: str
    pcie: PcieRates
    links: dict[str, LinkSpec] = {}
    systems: tuple[SystemSpec, ...]


# ------------------------------------------------------------------ cloud instances
class CloudInstance(_Strict):
    """A rentable instance type with its GPUs and on-demand list price."""

    key: str
    provider: str
    name: str
    gpu: str
    gpus: int = Field(gt=0)
    usd_per_hour: float = Field(gt=0, description="this instance (all its GPUs), on demand")
    per_gpu_counts: tuple[int, ...] = Field(
        default=(), description="pods rentable with these GPU counts at usd_per_hour / gpus per GPU"
    )
    date: str
    source: str
    unverified: tuple[str, ...] = ()
    note: str | None = None


class CloudFile(_Strict):
    as_of: str
    instances: tuple[CloudInstance, ...]


# ------------------------------------------------------------------ quantized checkpoints
class Checkpoint(_Strict):
    """A published quantized checkpoint of a catalogue model (a Hugging Face repo id, or an
    Ollama tag), and how its existence was checked."""

    model: str = Field(description="catalogue model id it quantizes")
    format: str = Field(description="quant.yaml key: awq, gptq, fp8, q4_k_m …")
    repo: str
    file: str | None = None  # GGUF: the file (or the quant tag for `-hf repo:TAG`)
    ollama: str | None = None  # Ollama library tag
    checked: str


class CheckpointFile(_Strict):
    as_of: str
    checkpoints: tuple[Checkpoint, ...]


# ------------------------------------------------------------------ engine command lines
class EngineCommand(_Strict):
    """The documented options of one engine's serving command (a test parses every printed
    command against these)."""

    command: str
    version: str
    source: str
    options: tuple[str, ...]
    env: tuple[str, ...] = ()


class EngineOptionsFile(_Strict):
    engines: dict[str, EngineCommand]
