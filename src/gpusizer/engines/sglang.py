"""SGLang (0.4.x–0.5.x): ``python3 -m sglang.launch_server``.

Memory: ``--mem-fraction-static`` is the share of the free memory after NCCL init that
weights and the KV pool may take; the rest is slack for activations and CUDA graphs. When
unset, SGLang derives it from a reserve formula over the GPU's memory tier. Admission keeps
a decaying reserve for running requests' remaining output (``new_token_ratio``); prefill
and decode run in separate batches unless ``--enable-mixed-chunk``. Sources:
../shared/reference/engine-memory.md §2 (python/sglang/srt/server_args.py).
"""

from __future__ import annotations

from gpusizer.engines.base import (
    ONLINE_QUANTS,
    EngineSettings,
    EngineSpec,
    LaunchInput,
    MemoryFraction,
    SettingsInput,
)
from gpusizer.units import MIB

__all__ = ["SPEC"]

# engine-memory.md §2.2 (_handle_gpu_memory_settings): GPU-memory tiers (MiB, upper bound) →
# chunked prefill size and CUDA-graph max batch (the TP<4 column)
_TIERS = (
    (20 * 1024, 2048, 8),
    (35 * 1024, 2048, 24),
    (60 * 1024, 4096, 32),
    (90 * 1024, 8192, 256),
    (160 * 1024, 8192, 256),
    (float("inf"), 16384, 512),
)
_LARGE_GPU_MIB = 60 * 1024  # the reserve floor applies above this
_MAX_RUNNING_REQUESTS = 4096  # max_num_reqs ceiling (§2.1)


def _settings(inp: SettingsInput) -> EngineSettings:
    n = inp.numbers
    used: list[str] = []
    vis_mib = inp.visible_bytes / MIB
    chunk, graph_bs = next((c, b) for limit, c, b in _TIERS if vis_mib < limit)
    mnbt = inp.max_num_batched_tokens or chunk
    mfs = inp.memory_fraction
    if mfs is None:
        reserved = (
            n["reserved_base_mib"]
            + max(mnbt, 2048) * n["reserved_per_chunk_token_mib"]
            + graph_bs * n["reserved_per_graph_bs_mib"]
            + inp.tp * inp.pp / 8 * n["reserved_per_tp8_mib"]
        )
        if vis_mib > _LARGE_GPU_MIB:
            reserved = max(reserved, n["reserved_floor_large_gpu_mib"])
        mfs = round((vis_mib - reserved) / vis_mib, 3)
        used.append(f"mem_fraction_static={mfs:g} (SGLang reserve formula: {reserved:.0f} MiB)")
    page = inp.block_size or int(n["mla_page_size"] if inp.mla else n["page_size"])
    return EngineSettings(
        engine="sglang",
        version=(0,),
        band="n/a",
        memory_fraction=mfs,
        max_num_batched_tokens=mnbt,
        max_num_seqs=inp.max_num_seqs or _MAX_RUNNING_REQUESTS,
        block_size=page,
        defaults_used=tuple(used),
    )


def _launch_args(inp: LaunchInput) -> list[str]:
    args = ["--model-path", inp.repo, "--tp-size", str(inp.tp)]
    if inp.pp > 1:
        args += ["--pp-size", str(inp.pp)]
    if inp.attention_dp:
        args += ["--dp-size", str(inp.tp), "--enable-dp-attention"]
    args += [
        "--context-length",
        str(inp.max_model_len),
        "--max-running-requests",
        str(max(inp.users, 1)),
        "--mem-fraction-static",
        f"{inp.memory_fraction:g}",
    ]
    if not inp.pre_quantized and inp.quant in ONLINE_QUANTS:
        args += ["--quantization", inp.quant]
    if inp.kv_dtype != "auto":  # SGLang spells the generic fp8 cache fp8_e4m3
        args += ["--kv-cache-dtype", "fp8_e4m3" if inp.kv_dtype == "fp8" else inp.kv_dtype]
    return args


SPEC = EngineSpec(
    name="sglang",
    label="SGLang",
    summary="RadixAttention server; KV pool = free-after-NCCL × mem_fraction_static − weights",
    serving=True,
    paged=True,
    block_size_number="page_size",
    memory_fraction=MemoryFraction(
        setting="mem_fraction_static",
        flag="--mem-fraction-static",
        basis="free-after-load",
        meaning="share of the memory free after NCCL init for weights + KV pool; the rest is "
        "slack for activations and CUDA graphs (default from a reserve formula, ≈0.83 on an H100)",
    ),
    activation="profile-forward",
    kv_split_over_tp=True,
    layer_split=False,
    mla_cache="latent",
    window_keeps_batch=False,
    prefix_cache_default=True,
    admission="reserve-ratio",
    mixed_prefill=False,
    vendors=frozenset({"nvidia", "amd"}),
    auto_classes=frozenset({"workstation", "datacenter"}),
    checkpoints="hf",
    compact_kv="fp8",
    compact_kv_needs_fp8=True,
    dp_attention=True,
    versioned=False,
    metrics_prefix="sglang",
    command=("python3", "-m", "sglang.launch_server"),
    command_name="sglang",
    images={"nvidia": "lmsysorg/sglang:latest"},
    settings=_settings,
    launch_args=_launch_args,
    sources=(
        "engine-memory.md §2 (python/sglang/srt/server_args.py, model_runner.py)",
        "python/sglang/srt/global_config.py: default_init_new_token_ratio 0.7 (admission reserve)",
        "docs.sglang.ai server arguments: radix cache on unless --disable-radix-cache; "
        "--enable-mixed-chunk off by default",
    ),
)
