"""TensorRT-LLM (1.x, PyTorch backend): ``trtllm-serve``.

Memory: ``free_gpu_memory_fraction`` (flag ``--kv_cache_free_gpu_memory_fraction``, default
0.9) is the share of the memory still free after weights, the profiled activation peak and
CUDA graphs that goes to the KV pool — not a share of the whole GPU. Blocks of 32 tokens.
Admission: ``GUARANTEED_NO_EVICT`` (a request starts only if prompt + max output fits).
Quantized weights come from NVIDIA ModelOpt checkpoints. Sources:
../shared/reference/engine-memory.md §3; TensorRT-LLM SchedulerConfig docs.
"""

from __future__ import annotations

from gpusizer.engines.base import EngineSettings, EngineSpec, LaunchInput, MemoryFraction, SettingsInput

__all__ = ["SPEC"]


def _settings(inp: SettingsInput) -> EngineSettings:
    n = inp.numbers
    used: list[str] = []
    frac = inp.memory_fraction or n["free_gpu_memory_fraction"]
    if inp.memory_fraction is None:
        used.append(f"free_gpu_memory_fraction={frac:g} (TensorRT-LLM default)")
    return EngineSettings(
        engine="tensorrt-llm",
        version=(1,),
        band="n/a",
        memory_fraction=frac,
        max_num_batched_tokens=inp.max_num_batched_tokens or int(n["max_num_tokens"]),
        max_num_seqs=inp.max_num_seqs or int(n["max_batch_size"]),
        block_size=inp.block_size or SPEC.default_block_size(n),
        defaults_used=tuple(used),
    )


# Decode batches TensorRT-LLM 1.x captures as CUDA graphs by default (CudaGraphConfig with
# max_batch_size 0 -> 128 and enable_padding false); other decode batches run eagerly.
DEFAULT_GRAPH_BATCHES = (*range(1, 32), 32, 64, 128)

# The LLM API options file the printed command writes and passes (--extra_llm_api_options).
OPTIONS_PATH = "/tmp/extra-llm-api-options.yaml"


def _options_file(inp: LaunchInput) -> tuple[str, str]:
    """CUDA graphs for every decode batch up to the plan's users. TensorRT-LLM 1.x captures
    decode graphs only for batches 1-31, 32, 64 and 128 by default (CudaGraphConfig:
    max_batch_size 0 -> 128, enable_padding false) and runs other batch sizes eagerly; with
    padding on, a batch runs the next captured graph. The simulated speed assumes graphs."""
    opts = [f"cuda_graph_config: {{enable_padding: true, max_batch_size: {max(inp.users, 1)}}}"]
    if inp.kv_dtype != "auto":  # the KV dtype has no flag: it goes in the options file
        opts.insert(0, f"kv_cache_config: {{dtype: {inp.kv_dtype}}}")
    return OPTIONS_PATH, "{" + ", ".join(opts) + "}"


def _launch_args(inp: LaunchInput) -> list[str]:
    args = [
        inp.repo,
        "--backend",
        "pytorch",
        "--tp_size",
        str(inp.tp),
        "--pp_size",
        str(inp.pp),
        "--max_batch_size",
        str(max(inp.users, 1)),
        "--max_seq_len",
        str(inp.max_model_len),
        "--kv_cache_free_gpu_memory_fraction",
        f"{inp.memory_fraction:g}",
        "--extra_llm_api_options",
        OPTIONS_PATH,
    ]
    return args


SPEC = EngineSpec(
    name="tensorrt-llm",
    label="TensorRT-LLM",
    summary="NVIDIA's server; KV pool = free_gpu_memory_fraction × memory free after weights and activations",
    serving=True,
    paged=True,
    block_size_number="tokens_per_block",
    memory_fraction=MemoryFraction(
        setting="free_gpu_memory_fraction",
        flag="--kv_cache_free_gpu_memory_fraction",
        basis="free-after-peak",
        meaning="share of the memory left free after weights, activation peak and CUDA graphs "
        "that goes to the KV cache (default 0.9)",
    ),
    activation="profile-forward",
    kv_split_over_tp=True,
    layer_split=False,
    mla_cache="latent",
    window_keeps_batch=False,
    prefix_cache_default=False,
    admission="guaranteed-no-evict",
    mixed_prefill=True,
    vendors=frozenset({"nvidia"}),
    auto_classes=frozenset(),
    checkpoints="modelopt",
    compact_kv="fp8",
    compact_kv_needs_fp8=True,
    dp_attention=False,
    versioned=False,
    metrics_prefix=None,
    command=("trtllm-serve",),
    command_name="trtllm-serve",
    images={"nvidia": "nvcr.io/nvidia/tensorrt-llm/release:1.0.0"},
    settings=_settings,
    launch_args=_launch_args,
    options_file=_options_file,
    default_graph_batches=DEFAULT_GRAPH_BATCHES,
    sources=(
        "engine-memory.md §3 (tensorrt_llm/llmapi/llm_args.py KvCacheConfig)",
        "nvidia.github.io/TensorRT-LLM useful-runtime-flags: GUARANTEED_NO_EVICT is the default "
        "capacity scheduler policy",
        "tensorrt_llm/llmapi/llm_args.py CudaGraphConfig (1.0): decode graphs for batch sizes "
        "1-31, 32, 64, 128 unless enable_padding / max_batch_size are set",
    ),
)
