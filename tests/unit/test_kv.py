"""KV bytes per token per engine, against facts.md §A.7 / engine-memory.md §6."""

from __future__ import annotations

import pytest

from gpusizer.catalog.hf_config import arch_from_hf_config
from gpusizer.domain.kv import kv_layout
from gpusizer.errors import BadInputError
from tests.conftest import DEEPSEEK_V3, LLAMA_8B, R1_QWEN_7B


def test_mla_latent_is_70272_bytes_and_replicated_over_tp() -> None:
    a = arch_from_hf_config(DEEPSEEK_V3)
    for tp in (1, 8, 16):
        kv = kv_layout(a, "vllm", tp=tp)
        assert kv.bytes_per_token() == 70_272  # 61 × 576 × 2 B, every rank
        assert kv.replicated_over_tp


def test_mla_fp8_and_fp8_ds_mla() -> None:
    a = arch_from_hf_config(DEEPSEEK_V3)
    assert kv_layout(a, "sglang", "fp8").bytes_per_token() == 35_136
    assert kv_layout(a, "vllm", "fp8_ds_mla").bytes_per_token() == 40_016


def test_v32_indexer_adds_132_bytes_per_layer() -> None:
    a = arch_from_hf_config(
        dict(DEEPSEEK_V3, model_type="deepseek_v32", index_n_heads=64, index_head_dim=128, index_topk=2048)
    )
    assert kv_layout(a, "vllm", "fp8").bytes_per_token() == 48_068  # 61 × (656 + 132)


def test_transformers_decompresses_mla_71x() -> None:
    a = arch_from_hf_config(DEEPSEEK_V3)
    assert kv_layout(a, "transformers").bytes_per_token() == 4_997_120


def test_llamacpp_mla_vless_cache() -> None:
    a = arch_from_hf_config(DEEPSEEK_V3)
    assert kv_layout(a, "llamacpp", "f16").bytes_per_token() == 70_272
    assert kv_layout(a, "llamacpp", "q8_0").bytes_per_token() == pytest.approx(61 * 612)


def test_gqa_split_over_tp_and_replicated_beyond_kv_heads() -> None:
    a = arch_from_hf_config(R1_QWEN_7B)  # 4 KV heads
    assert kv_layout(a, "vllm").bytes_per_token() == 57_344
    assert kv_layout(a, "vllm", tp=2).bytes_per_token() == 57_344 / 2
    assert kv_layout(a, "vllm", tp=4).bytes_per_token() == 57_344 / 4
    eight = kv_layout(a, "vllm", tp=8)  # 4 heads < 8 ranks: each rank keeps one head
    assert eight.bytes_per_token() == 57_344 / 4
    assert eight.replicated_over_tp


def test_llama_8b_fp8() -> None:
    a = arch_from_hf_config(LLAMA_8B)
    assert kv_layout(a, "vllm").bytes_per_token() == 131_072
    assert kv_layout(a, "vllm", "fp8").bytes_per_token() == 65_536


def test_llamacpp_types_rejected_elsewhere() -> None:
    a = arch_from_hf_config(LLAMA_8B)
    with pytest.raises(BadInputError, match=r"^kv_dtype: "):
        kv_layout(a, "vllm", "q8_0")
    with pytest.raises(BadInputError, match="fp8_ds_mla"):
        kv_layout(a, "vllm", "fp8_ds_mla")


def test_sliding_window_only_when_enabled() -> None:
    # Qwen2 ships sliding_window with use_sliding_window false: no layer slides.
    assert not arch_from_hf_config(R1_QWEN_7B).has_sliding_layers
    mistral = arch_from_hf_config(
        dict(LLAMA_8B, model_type="mistral", sliding_window=4096, max_position_embeddings=32768)
    )
    assert mistral.has_sliding_layers and mistral.sliding_window == 4096
    gemma2 = arch_from_hf_config(dict(LLAMA_8B, model_type="gemma2", sliding_window=4096))
    assert gemma2.layer_attention[:4] == ("sliding", "full", "sliding", "full")
