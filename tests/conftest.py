"""Shared fixtures: small real architectures written as Hugging Face config dicts."""

from __future__ import annotations

from typing import Any

import pytest

# DeepSeek-V3 dimensions as listed in shared/reference/facts.md §A.1–A.2 (config_671B.json).
DEEPSEEK_V3: dict[str, Any] = dict(
    architectures=["DeepseekV3ForCausalLM"],
    model_type="deepseek_v3",
    hidden_size=7168,
    num_hidden_layers=61,
    num_attention_heads=128,
    num_key_value_heads=128,
    q_lora_rank=1536,
    kv_lora_rank=512,
    qk_nope_head_dim=128,
    qk_rope_head_dim=64,
    v_head_dim=128,
    vocab_size=129280,
    intermediate_size=18432,
    moe_intermediate_size=2048,
    n_routed_experts=256,
    n_shared_experts=1,
    num_experts_per_tok=8,
    first_k_dense_replace=3,
    moe_layer_freq=1,
    topk_method="noaux_tc",
    tie_word_embeddings=False,
    num_nextn_predict_layers=1,
    max_position_embeddings=163840,
    torch_dtype="bfloat16",
    quantization_config={
        "quant_method": "fp8",
        "fmt": "e4m3",
        "weight_block_size": [128, 128],
        "activation_scheme": "dynamic",
    },
)
# DeepSeek-R1-Distill-Qwen-7B (facts.md §A.6).
R1_QWEN_7B: dict[str, Any] = dict(
    architectures=["Qwen2ForCausalLM"],
    model_type="qwen2",
    hidden_size=3584,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    intermediate_size=18944,
    vocab_size=152064,
    tie_word_embeddings=False,
    max_position_embeddings=131072,
    sliding_window=4096,
    use_sliding_window=False,
    torch_dtype="bfloat16",
)
# Llama-3.1-8B (facts.md §A.6 via R1-Distill-Llama-8B, same shapes).
LLAMA_8B: dict[str, Any] = dict(
    architectures=["LlamaForCausalLM"],
    model_type="llama",
    hidden_size=4096,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    intermediate_size=14336,
    vocab_size=128256,
    tie_word_embeddings=False,
    max_position_embeddings=131072,
    torch_dtype="bfloat16",
)


@pytest.fixture
def v3_config() -> dict[str, Any]:
    return dict(DEEPSEEK_V3)


@pytest.fixture
def qwen7b_config() -> dict[str, Any]:
    return dict(R1_QWEN_7B)
