"""The shape of one engine's definition (``EngineSpec``) and the plain values its hooks
read and return. Pure: no file, network or clock here; the numbers come from
data/engines.yaml through ``gpusizer.catalog.load`` (cached package data)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from gpusizer.catalog.load import engine_defaults, kv_dtype_table
from gpusizer.errors import BadInputError

__all__ = [
    "ONLINE_QUANTS",
    "PRE_QUANTIZED",
    "ActivationModel",
    "Admission",
    "Band",
    "CheckpointKind",
    "Engine",
    "EngineSettings",
    "EngineSpec",
    "LaunchInput",
    "MemoryBasis",
    "MemoryFraction",
    "MlaCache",
    "SettingsInput",
    "Vendor",
    "parse_version",
    "version_at_least",
]

# The engine names, as a type. Each has one module in this package; the registry test checks
# that this list, the registry and every other list of engine names agree.
Engine = Literal["vllm", "sglang", "tensorrt-llm", "llamacpp", "transformers"]
Vendor = Literal["nvidia", "amd", "apple"]
# How the engine decides to start a waiting request:
#   on-demand            admit while free blocks hold the prompt; preempt under KV pressure (vLLM)
#   reserve-ratio        keep a decaying share of each running request's remaining output free (SGLang)
#   guaranteed-no-evict  admit only if prompt + max output fits; never preempt (TensorRT-LLM default)
#   slots                a fixed number of slots (-np), each with its share of the context (llama.cpp)
#   static-batch         the caller's batch runs to the end; no scheduler (HF transformers generate)
Admission = Literal["on-demand", "reserve-ratio", "guaranteed-no-evict", "slots", "static-batch"]
# What the memory-fraction setting is a fraction of:
#   total            total device memory; weights, activations and KV must fit inside (vLLM)
#   free-after-load  free memory after NCCL init, for weights + KV; the rest is slack (SGLang)
#   free-after-peak  memory still free after weights and the profiled peak, given to KV (TRT-LLM)
MemoryBasis = Literal["total", "free-after-load", "free-after-peak"]
# The activation peak the engine reserves for: a profiled forward of the token budget
# (vLLM-like), llama.cpp's compute buffer for n_ubatch tokens, or an eager whole-batch forward.
ActivationModel = Literal["profile-forward", "compute-buffer", "eager-batch"]
# What a DeepSeek MLA layer caches: the compressed latent, the latent as K only (V read from
# K), or the decompressed per-head K/V.
MlaCache = Literal["latent", "latent-k", "full-heads"]
# Which checkpoints the serving command loads: Hugging Face safetensors (AWQ/GPTQ/FP8 …),
# GGUF files, or NVIDIA ModelOpt-quantized checkpoints.
CheckpointKind = Literal["hf", "gguf", "modelopt"]
Band = Literal["legacy", "per-instance", "graph-estimate", "n/a"]

# Weight formats an engine makes from a 16-bit checkpoint at load time, and formats that need
# a checkpoint quantized beforehand.
ONLINE_QUANTS = ("fp8",)
PRE_QUANTIZED = ("awq", "gptq", "mxfp4", "nvfp4", "bnb-nf4")


def parse_version(text: str | None) -> tuple[int, int, int] | None:
    """'0.8.5.post1' → (0, 8, 5); 'v0.11' → (0, 11, 0); None stays None."""
    if text is None:
        return None
    m = re.match(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m:
        raise BadInputError("engine_version", f"cannot read version {text!r}", "e.g. 0.11.0, 0.8.5")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def version_at_least(version: tuple[int, ...], number: float) -> bool:
    """version >= number; catalogue versions encode 0.21 → (0, 21, 0), 0.0902 → (0, 9, 2)."""
    major = int(number)
    frac = round((number - major) * 10000)
    minor, patch = (frac // 100, frac % 100) if frac >= 100 else (frac, 0)
    return tuple(version[:3]) >= (major, minor, patch)


@dataclass(frozen=True, kw_only=True)
class EngineSettings:
    """The settings a deployment runs with: the user's values, else the engine's defaults."""

    engine: str
    version: tuple[int, ...]
    band: Band
    memory_fraction: float  # vLLM gpu_memory_utilization | SGLang mem_fraction_static | TRT free fraction
    max_num_batched_tokens: int
    max_num_seqs: int
    block_size: int
    sampler_rows: int = 0  # rows of [rows, vocab] logits in the profiled sampler run (0: min(T, seqs))
    defaults_used: tuple[str, ...]  # "gpu_memory_utilization=0.92 (vLLM ≥0.25 default)", …


@dataclass(frozen=True, kw_only=True)
class SettingsInput:
    """What an engine's defaults depend on (plain values taken from a Deployment)."""

    numbers: Mapping[str, float]  # the engine's data/engines.yaml numbers
    visible_bytes: int  # device memory as the driver reports it
    gpu_key: str
    compute_capability: float
    mla: bool
    tp: int
    pp: int
    max_model_len: int
    users: int
    memory_fraction: float | None  # the user's value of the engine's memory-fraction setting
    max_num_seqs: int | None
    max_num_batched_tokens: int | None
    block_size: int | None
    engine_version: str | None
    engine_mode: Literal["V0", "V1"] | None
    usage: str  # "serve" | "offline"
    enforce_eager: bool


@dataclass(frozen=True, kw_only=True)
class LaunchInput:
    """What a launch command says (plain values taken from a Deployment and its checkpoint)."""

    repo: str  # what the engine loads
    pre_quantized: bool  # the checkpoint is already in the plan's weight format
    quant: str  # weight-format key (data/quant.yaml)
    vendor: str
    tp: int
    pp: int
    nodes: int
    attention_dp: bool
    ep: bool
    max_model_len: int
    users: int
    memory_fraction: float  # value of the engine's own memory-fraction setting
    kv_dtype: str
    gguf_tag: str | None = None  # GGUF engines: the file tag in a Hugging Face repo (Q4_K_M)


@dataclass(frozen=True, kw_only=True)
class MemoryFraction:
    """The one setting that tells an engine how much GPU memory it may take. Engines name
    and define it differently, so a number for one is wrong for another."""

    setting: str  # the engine's own name for it
    flag: str  # its command-line flag
    basis: MemoryBasis
    meaning: str  # one sentence for the user


def _default_container_args(vendor: str, parts: list[str]) -> tuple[list[str], list[str]]:
    """(command, args) for a container whose image has no serving entrypoint."""
    del vendor
    return parts[:1], [*parts[1:], "--host", "0.0.0.0", "--port", "8000"]


def _no_note(inp: LaunchInput) -> str:
    del inp
    return ""


def _no_options_file(inp: LaunchInput) -> tuple[str, str] | None:
    del inp
    return None


@dataclass(frozen=True, kw_only=True)
class EngineSpec:
    """Everything gpusizer knows about one inference engine, in one place.

    Behaviour is described by typed fields; the few rules that are really the engine's own
    (its default settings, its command line) are hooks in the engine's module. Numbers with
    sources live in data/engines.yaml (``numbers()``); KV dtypes in data/quant.yaml
    (``kv_dtypes()``)."""

    name: Engine
    label: str  # as users write it: "vLLM", "llama.cpp"
    summary: str
    serving: bool  # an OpenAI-compatible server with continuous batching and a pre-allocated KV pool
    paged: bool  # KV in fixed-size blocks/pages drawn from one pool
    block_size_number: str | None  # data/engines.yaml number with the default block (None: 1 token)
    memory_fraction: MemoryFraction | None  # None: the engine takes what it needs, no fraction
    activation: ActivationModel
    kv_split_over_tp: bool  # GQA KV heads are sharded over tensor-parallel ranks
    layer_split: bool  # several GPUs split the layers (llama.cpp -ngl, device_map="auto"), not TP
    mla_cache: MlaCache
    window_keeps_batch: bool  # sliding layers keep window + max_num_batched_tokens (vLLM SlidingWindowSpec)
    prefix_cache_default: bool  # reuses cached prompt prefixes across requests out of the box
    admission: Admission
    mixed_prefill: bool  # prefill chunks share a step with decodes (SGLang: off by default)
    vendors: frozenset[str]  # GPU vendors it runs on: nvidia, amd, apple
    auto_classes: frozenset[str]  # GPU classes `plan --engine auto` tries it on
    checkpoints: CheckpointKind
    compact_kv: str | None  # the 8-bit KV cache `plan` tries (fp8, q8_0); None: none
    compact_kv_needs_fp8: bool  # … only on GPUs with FP8 tensor cores
    gguf_quants: tuple[str, str] | None = None  # (usual, high-precision) GGUF types plan tries
    dp_attention: bool  # its command runs data-parallel attention for MLA models (plan tries it)
    prefill_chunk_number: str | None = None  # data/engines.yaml number: prompt tokens per step
    # when the engine's token budget is not the prefill chunk (llama.cpp n_batch)
    versioned: bool  # memory accounting depends on the version the user gives
    metrics_prefix: str | None  # Prometheus metric prefix ("vllm" for vllm:num_requests_running)
    command: tuple[str, ...]  # the serving command; () when the engine has none
    command_name: str  # how reports title that command
    images: Mapping[str, str]  # container image per vendor
    settings: Callable[[SettingsInput], EngineSettings]
    launch_args: Callable[[LaunchInput], list[str]] | None
    launch_note: Callable[[LaunchInput], str] = _no_note
    # (path, one-line YAML) of a settings file the command reads: written by the printed
    # command itself (`echo … > path && engine …`), so it runs as printed anywhere
    options_file: Callable[[LaunchInput], tuple[str, str] | None] = _no_options_file
    # decode batch sizes captured as CUDA graphs when the user sets nothing; None: every batch
    # up to the engine's cap, padded (vLLM, SGLang)
    default_graph_batches: tuple[int, ...] | None = None
    container_args: Callable[[str, list[str]], tuple[list[str], list[str]]] = _default_container_args
    numbers_base: str | None = "vllm"  # engine whose numbers this one inherits (vLLM's profile constants)
    sources: tuple[str, ...] = field(default=())

    def numbers(self) -> dict[str, float]:
        """The named constants of this engine (data/engines.yaml), over ``numbers_base``'s."""
        out: dict[str, float] = {}
        for name in (self.numbers_base, self.name):
            d = engine_defaults(name) if name else None
            if d is not None:
                out.update({k: v.value for k, v in d.numbers.items()})
        return out

    def kv_dtypes(self, *, mla: bool = False) -> tuple[str, ...]:
        """The KV dtype keys this engine's cache takes (data/quant.yaml); ``fp8_ds_mla`` only for MLA."""
        return tuple(
            k for k, d in kv_dtype_table().items() if self.name in d.engines and (mla or k != "fp8_ds_mla")
        )

    def default_block_size(self, numbers: Mapping[str, float]) -> int:
        """Tokens per KV block (page) when the user sets none."""
        return int(numbers[self.block_size_number]) if self.block_size_number else 1

    def prefill_chunk(self, settings: EngineSettings) -> int:
        """Prompt tokens one step prefills: the token budget, or the engine's own chunk."""
        if self.prefill_chunk_number is None:
            return settings.max_num_batched_tokens
        return int(self.numbers()[self.prefill_chunk_number])

    @property
    def has_command(self) -> bool:
        return bool(self.command) and self.launch_args is not None
