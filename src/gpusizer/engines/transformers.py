"""Hugging Face transformers (``generate`` with ``DynamicCache``): the reference, not a server.

Memory: nothing is pre-allocated; the cache grows with the sequences and holds full
per-head K/V (DeepSeek MLA decompressed: 128 heads × (192 + 128), 71× the latent).
Several GPUs split the layers (``device_map="auto"``). No serving command: ``plan`` does not
size it. Sources: ../shared/reference/engine-memory.md §5.
"""

from __future__ import annotations

from gpusizer.engines.base import EngineSettings, EngineSpec, SettingsInput

__all__ = ["SPEC"]


def _settings(inp: SettingsInput) -> EngineSettings:
    """The whole prompt is one forward (no chunking), the batch is the users."""
    return EngineSettings(
        engine="transformers",
        version=(0,),
        band="n/a",
        memory_fraction=1.0,
        max_num_batched_tokens=inp.max_num_batched_tokens or inp.max_model_len,
        max_num_seqs=inp.max_num_seqs or inp.users,
        block_size=1,
        defaults_used=(),
    )


SPEC = EngineSpec(
    name="transformers",
    label="HF transformers",
    summary="PyTorch reference: KV grows with the sequences (DynamicCache), full per-head K/V",
    serving=False,
    paged=False,
    block_size_number=None,
    memory_fraction=None,
    activation="eager-batch",
    kv_split_over_tp=False,
    layer_split=True,
    mla_cache="full-heads",
    window_keeps_batch=False,
    prefix_cache_default=False,
    admission="static-batch",
    mixed_prefill=True,
    vendors=frozenset({"nvidia", "amd", "apple"}),
    auto_classes=frozenset(),
    checkpoints="hf",
    compact_kv=None,
    compact_kv_needs_fp8=False,
    dp_attention=False,
    versioned=False,
    metrics_prefix=None,
    command=(),
    command_name="",
    images={},
    settings=_settings,
    launch_args=None,
    sources=("engine-memory.md §5 (transformers DynamicCache, DeepSeek-V3 modeling code)",),
)
