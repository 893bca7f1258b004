"""llama.cpp (``llama-server``, b6000+): GGUF weights, no memory fraction.

Memory: the KV cache is allocated for ``-c`` cells (padded to 256) shared by the ``-np``
slots, plus compute buffers sized by ``n_ubatch``; nothing is reserved beyond that. Several
GPUs split the layers (``-ngl``/``--split-mode layer``), so KV heads are not sharded. KV
dtypes are llama.cpp's cache types (``-ctk/-ctv q8_0`` …, which need flash attention).
Sources: ../shared/reference/engine-memory.md §4; tools/server/README.md.
"""

from __future__ import annotations

from gpusizer.engines.base import EngineSettings, EngineSpec, LaunchInput, SettingsInput

__all__ = ["SPEC"]

_F16_CACHES = ("auto", "f16")  # the default cache type: no flag needed


def _settings(inp: SettingsInput) -> EngineSettings:
    return EngineSettings(
        engine="llamacpp",
        version=(0,),
        band="n/a",
        memory_fraction=1.0,
        max_num_batched_tokens=inp.max_num_batched_tokens or int(inp.numbers.get("n_ubatch", 512)),
        max_num_seqs=inp.max_num_seqs or inp.users,
        block_size=1,
        defaults_used=(),
    )


def _launch_args(inp: LaunchInput) -> list[str]:
    """One slot per user, the context shared by the slots (``-c`` = users × context)."""
    users = max(inp.users, 1)
    source = ["-hf", f"{inp.repo}:{inp.gguf_tag}"] if inp.gguf_tag else ["-m", inp.repo]
    args = [*source, "-ngl", "99", "-c", str(inp.max_model_len * users), "-np", str(users)]
    if inp.pp > 1:
        args += ["--split-mode", "layer", "--tensor-split", ",".join(["1"] * inp.pp)]
    if inp.kv_dtype not in _F16_CACHES:  # a quantized V cache needs flash attention
        args += ["-ctk", inp.kv_dtype, "-ctv", inp.kv_dtype, "--flash-attn", "on"]
    return args


def _container_args(vendor: str, parts: list[str]) -> tuple[list[str], list[str]]:
    """The image's entrypoint is llama-server."""
    del vendor
    return [], [*parts[1:], "--host", "0.0.0.0", "--port", "8000"]


SPEC = EngineSpec(
    name="llamacpp",
    label="llama.cpp",
    summary="GGUF server for CPUs, Apple and consumer GPUs; KV for -c cells plus compute buffers",
    serving=False,
    paged=False,
    block_size_number=None,
    memory_fraction=None,
    activation="compute-buffer",
    kv_split_over_tp=False,
    layer_split=True,
    mla_cache="latent-k",
    window_keeps_batch=False,
    prefix_cache_default=False,
    admission="slots",
    mixed_prefill=True,
    vendors=frozenset({"nvidia", "amd", "apple"}),
    auto_classes=frozenset({"consumer", "apple"}),
    checkpoints="gguf",
    compact_kv="q8_0",
    compact_kv_needs_fp8=False,
    gguf_quants=("q4_k_m", "q8_0"),
    dp_attention=False,
    prefill_chunk_number="n_batch",
    versioned=False,
    metrics_prefix="llamacpp",
    command=("llama-server",),
    command_name="llama-server",
    images={"nvidia": "ghcr.io/ggml-org/llama.cpp:server-cuda"},
    settings=_settings,
    launch_args=_launch_args,
    container_args=_container_args,
    sources=(
        "engine-memory.md §4 (src/llama-kv-cache.cpp, src/llama-context.cpp)",
        "common/arg.cpp kv_cache_types; tools/server/README.md (-np slots, --cache-reuse off by default)",
    ),
)
