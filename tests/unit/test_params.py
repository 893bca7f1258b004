"""Parameter counts derived from the architecture against published counts."""

from __future__ import annotations

import pytest

from gpusizer.catalog.hf_config import arch_from_hf_config
from gpusizer.domain.params import count_params
from tests.conftest import DEEPSEEK_V3, LLAMA_8B, R1_QWEN_7B


def test_deepseek_v3_main_model_is_671_03b() -> None:
    # DeepSeek-V3 README_WEIGHTS: 671B main model (facts.md §A.3 derives 671.03B).
    c = count_params(arch_from_hf_config(DEEPSEEK_V3))
    assert c.total == pytest.approx(671.03e9, rel=1e-4)
    # "total size on Hugging Face is 685B = 671B main + 14B MTP"; MTP unique 11.5B published.
    assert c.mtp_total == pytest.approx(11.5e9, rel=0.02)
    # 37B activated per token published (36.7B + embeddings by their convention).
    assert c.active == pytest.approx(37e9, rel=0.03)


def test_r1_distill_qwen_7b_exact() -> None:
    # Published safetensors parameter count of DeepSeek-R1-Distill-Qwen-7B (issue #2).
    assert count_params(arch_from_hf_config(R1_QWEN_7B)).total == 7_615_616_512


def test_llama_3_1_8b_exact() -> None:
    # Llama-3.1-8B model card: 8,030,261,248 parameters.
    assert count_params(arch_from_hf_config(LLAMA_8B)).total == 8_030_261_248


def test_mla_without_q_lora_counts_plain_q_proj() -> None:
    # DeepSeek-V2-Lite: 15.7B total / 2.4B activated (DeepSeek-V2 README: 16B, 2.4B).
    cfg = dict(
        DEEPSEEK_V3,
        hidden_size=2048,
        num_hidden_layers=27,
        num_attention_heads=16,
        num_key_value_heads=16,
        q_lora_rank=None,
        vocab_size=102400,
        intermediate_size=10944,
        moe_intermediate_size=1408,
        n_routed_experts=64,
        n_shared_experts=2,
        num_experts_per_tok=6,
        first_k_dense_replace=1,
        topk_method="greedy",
        num_nextn_predict_layers=0,
    )
    c = count_params(arch_from_hf_config(cfg))
    assert c.total == pytest.approx(15.7e9, rel=0.01)
    assert c.active == pytest.approx(2.66e9, rel=0.01)  # facts.md §A.3 (D) incl. embeddings


def test_tied_embeddings_count_once() -> None:
    tied = count_params(arch_from_hf_config(dict(LLAMA_8B, tie_word_embeddings=True)))
    untied = count_params(arch_from_hf_config(LLAMA_8B))
    assert untied.total - tied.total == 128256 * 4096
