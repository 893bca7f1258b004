"""vLLM (V1 engine, 0.8 → 0.30): ``vllm serve``.

Memory: ``gpu_memory_utilization`` is a share of *total* device memory that weights, the
profiled activation peak, non-torch memory and the KV pool must fit inside; what it counts
changed at 0.9.2, 0.11 and 0.21 (``band``). Scheduler defaults depend on the GPU's memory
and on ``vllm serve`` vs the ``LLM`` class. Sources: ../shared/reference/engine-memory.md §1.
"""

from __future__ import annotations

from gpusizer.engines.base import (
    PRE_QUANTIZED,
    Band,
    EngineSettings,
    EngineSpec,
    LaunchInput,
    MemoryFraction,
    SettingsInput,
    parse_version,
    version_at_least,
)
from gpusizer.units import GIB

__all__ = ["LATEST_VLLM", "SPEC"]

LATEST_VLLM = (0, 30)

# --quantization for a pre-quantized checkpoint, per vendor (Marlin kernels are CUDA-only;
# ROCm runs AWQ/GPTQ through its Triton/exllama kernels).
_QUANT_FLAG = {
    "nvidia": {"awq": "awq_marlin", "gptq": "gptq_marlin", "fp8": "fp8", "bnb-nf4": "bitsandbytes"},
    "amd": {"awq": "awq", "gptq": "gptq", "fp8": "fp8"},
}


def _band(inp: SettingsInput, version: tuple[int, ...]) -> Band:
    n = inp.numbers
    if not version_at_least(version, n["context_outside_from_version"]):
        return "legacy"
    if version_at_least(version, n["graph_estimate_from_version"]) and not inp.enforce_eager:
        return "graph-estimate"
    return "per-instance"


def _scheduler(inp: SettingsInput, v1: bool, used: list[str]) -> tuple[int, int]:
    """max_num_batched_tokens and max_num_seqs: the user's, else vLLM's defaults (§1.8)."""
    n = inp.numbers
    large = inp.visible_bytes >= n["large_gpu_threshold_gib"] * GIB and "a100" not in inp.gpu_key
    mnbt, mns = inp.max_num_batched_tokens, inp.max_num_seqs
    if v1:
        size = "large" if large else "small"
        kind = "serve" if inp.usage == "serve" else "offline"
        if mnbt is None:
            mnbt = int(n[f"mnbt_{kind}_{size}"])
            used.append(
                f"max_num_batched_tokens={mnbt} (vLLM V1 {kind} default, {'≥' if large else '<'}70 GiB GPU)"
            )
        if mns is None:
            mns = int(n[f"mns_{kind}_{size}"])
            used.append(f"max_num_seqs={mns} (vLLM V1 default)")
        return mnbt, mns
    if mnbt is None:
        mnbt = max(inp.max_model_len, int(n["v0_min_batched_tokens"]))
        used.append(f"max_num_batched_tokens={mnbt} (vLLM V0: max(max_model_len, 2048))")
    if mns is None:
        mns = int(n["v0_max_num_seqs"])
        used.append(f"max_num_seqs={mns} (vLLM V0 default)")
    return mnbt, mns


def _settings(inp: SettingsInput) -> EngineSettings:
    n = inp.numbers
    used: list[str] = []
    version: tuple[int, ...] = parse_version(inp.engine_version) or LATEST_VLLM
    if len(version) < 3:
        version = (*version, 0)
    util = inp.memory_fraction
    if util is None:
        new = version_at_least(version, n["new_utilization_from_version"])
        util = n["gpu_memory_utilization_default_new" if new else "gpu_memory_utilization_default_old"]
        used.append(f"gpu_memory_utilization={util:g} (vLLM {'≥0.25' if new else '<0.25'} default)")
    v1 = inp.engine_mode == "V1" if inp.engine_mode else version >= (0, 8, 0)
    mnbt, mns = _scheduler(inp, v1, used)
    block = inp.block_size
    if block is None:
        if inp.mla and v1 and inp.compute_capability >= 9.0:
            block = int(n["mla_block_size"])
            used.append(f"block_size={block} (FlashMLA on compute capability ≥ 9.0)")
        else:
            block = SPEC.default_block_size(n)
    rows = min(mnbt, mns)
    if v1 and not version_at_least(version, n["sampler_all_rows_before_version"]):
        rows = mnbt  # early V1 sampled every profiled token's logits
    return EngineSettings(
        engine="vllm",
        version=version,
        band=_band(inp, version),
        memory_fraction=util,
        max_num_batched_tokens=mnbt,
        max_num_seqs=mns,
        block_size=block,
        sampler_rows=rows,
        defaults_used=tuple(used),
    )


def _launch_args(inp: LaunchInput) -> list[str]:
    # vLLM runs DP attention as data-parallel ranks sharing expert-parallel MoE layers
    args = (
        ["--data-parallel-size", str(inp.tp), "--tensor-parallel-size", "1"]
        if inp.attention_dp
        else ["--tensor-parallel-size", str(inp.tp)]
    )
    if inp.pp > 1:
        args += ["--pipeline-parallel-size", str(inp.pp)]
    args += [
        "--max-model-len",
        str(inp.max_model_len),
        "--max-num-seqs",
        str(max(inp.users, 1)),
        "--gpu-memory-utilization",
        f"{inp.memory_fraction:g}",
    ]
    quant = _QUANT_FLAG.get(inp.vendor, _QUANT_FLAG["nvidia"]).get(inp.quant)
    if quant and (not inp.pre_quantized or inp.quant in PRE_QUANTIZED):
        args += ["--quantization", quant]
    if inp.kv_dtype != "auto":
        args += ["--kv-cache-dtype", inp.kv_dtype]
    if inp.ep or inp.attention_dp:
        args += ["--enable-expert-parallel"]
    if inp.nodes > 1:
        args += ["--distributed-executor-backend", "ray"]
    return [inp.repo, *args]


def _container_args(vendor: str, parts: list[str]) -> tuple[list[str], list[str]]:
    """vLLM's CUDA image runs `vllm serve` as its entrypoint; AMD's ROCm image does not."""
    if vendor == "nvidia":
        return [], ["--model", *parts[2:]]
    return parts[:1], [*parts[1:], "--host", "0.0.0.0", "--port", "8000"]


SPEC = EngineSpec(
    name="vllm",
    label="vLLM",
    summary="PagedAttention server; KV pool = total × gpu_memory_utilization − weights − activation peak",
    serving=True,
    paged=True,
    block_size_number="block_size",
    memory_fraction=MemoryFraction(
        setting="gpu_memory_utilization",
        flag="--gpu-memory-utilization",
        basis="total",
        meaning="share of total GPU memory for weights, activation peak and KV cache (default 0.9, 0.92 from ≈0.25)",
    ),
    activation="profile-forward",
    kv_split_over_tp=True,
    layer_split=False,
    mla_cache="latent",
    window_keeps_batch=True,
    prefix_cache_default=True,
    admission="on-demand",
    mixed_prefill=True,
    vendors=frozenset({"nvidia", "amd"}),
    auto_classes=frozenset({"consumer", "workstation", "datacenter"}),
    checkpoints="hf",
    compact_kv="fp8",
    compact_kv_needs_fp8=True,
    dp_attention=True,
    versioned=True,
    metrics_prefix="vllm",
    command=("vllm", "serve"),
    command_name="vllm",
    images={"nvidia": "vllm/vllm-openai:latest", "amd": "rocm/vllm:latest"},
    settings=_settings,
    launch_args=_launch_args,
    container_args=_container_args,
    numbers_base=None,
    sources=(
        "engine-memory.md §1 (vllm/v1/worker/gpu_worker.py, vllm/utils/mem_utils.py)",
        "docs.vllm.ai: automatic prefix caching on by default in V1",
    ),
)
