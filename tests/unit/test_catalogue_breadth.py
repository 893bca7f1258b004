"""Catalogue breadth (issue 14): the models, GPU names and GGUF type names a user types
resolve, and every model's derived parameter count agrees with its owner's published one."""

from __future__ import annotations

import pytest

from gpusizer.catalog.hf_config import arch_from_hf_config
from gpusizer.catalog.load import (
    checkpoints,
    gpu_catalogue,
    model_catalogue,
    model_config,
    quant_catalogue,
)
from gpusizer.catalog.resolve import resolve_gpu, resolve_model, resolve_quant
from gpusizer.domain.params import count_params
from gpusizer.domain.quant import native_quant_key
from gpusizer.errors import BadInputError

# Names as a user would type them → catalogue id. Each entry's published count and its
# source (the model card) sit in the catalogue entry itself (``published``).
NAMED = {
    "qwen2.5-32b-instruct": "Qwen/Qwen2.5-32B-Instruct",
    "Qwen2.5-Coder-32B-Instruct": "Qwen/Qwen2.5-Coder-32B-Instruct",
    "qwq-32b": "Qwen/QwQ-32B",
    "qwen3-coder-30b-a3b-instruct": "Qwen/Qwen3-Coder-30B-A3B-Instruct",
    "Qwen3-235B-A22B-Instruct-2507": "Qwen/Qwen3-235B-A22B-Instruct-2507",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8": "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8",
    "gemma-3-1b-it": "google/gemma-3-1b-it",
    "gemma-3-4b-it": "google/gemma-3-4b-it",
    "gemma-3-12b-it": "google/gemma-3-12b-it",
    "gemma-3-27b-it": "google/gemma-3-27b-it",
    "glm-4.5": "zai-org/GLM-4.5",
    "GLM-4.5-Air": "zai-org/GLM-4.5-Air",
    "glm-4.6": "zai-org/GLM-4.6",
    "llama-3-70b": "meta-llama/Meta-Llama-3-70B",
    "Meta-Llama-3-70B-Instruct": "meta-llama/Meta-Llama-3-70B-Instruct",
    "llama-4-scout": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "Llama-4-Maverick-17B-128E-Instruct": "meta-llama/Llama-4-Maverick-17B-128E-Instruct",
    "mistral-small-24b-instruct-2501": "mistralai/Mistral-Small-24B-Instruct-2501",
    "Mistral-Small-3.1-24B-Instruct-2503": "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
    "mistral-small-3.2": "mistralai/Mistral-Small-3.2-24B-Instruct-2506",
    "Mistral-Large-Instruct-2407": "mistralai/Mistral-Large-Instruct-2407",
    "mistral-large-instruct-2411": "mistralai/Mistral-Large-Instruct-2411",
    "phi-3-medium-4k-instruct": "microsoft/Phi-3-medium-4k-instruct",
    "Phi-3-medium-128k-instruct": "microsoft/Phi-3-medium-128k-instruct",
    "phi-3.5-mini-instruct": "microsoft/Phi-3.5-mini-instruct",
    "Phi-3.5-MoE-instruct": "microsoft/Phi-3.5-MoE-instruct",
    "kimi-k2.5": "moonshotai/Kimi-K2.5",
    "Kimi-K2-Instruct-0905": "moonshotai/Kimi-K2-Instruct-0905",
}


@pytest.mark.parametrize(("typed", "model_id"), sorted(NAMED.items()))
def test_models_users_name_resolve(typed: str, model_id: str) -> None:
    entry = resolve_model(typed, model_catalogue())
    assert entry.id == model_id
    assert entry.published is not None and entry.published.source.strip(), model_id


def _counts(model_id: str) -> tuple[int, int]:
    entry = next(e for e in model_catalogue() if e.id == model_id)
    c = count_params(arch_from_hf_config(model_config(entry), entry.id))
    return c.total, c.active


@pytest.mark.parametrize("entry", [e for e in model_catalogue() if e.published], ids=lambda e: e.id)
def test_derived_count_within_five_percent_of_the_model_card(entry) -> None:  # type: ignore[no-untyped-def]
    # The card figures are rounded ("7B" for 6.74B, "14B" for 14.66B); 5 % covers that rounding
    # (Llama-4-Maverick counted every layer as MoE once: 778B against the card's 400B).
    total, active = _counts(entry.id)
    pub = entry.published
    if pub.total_params:
        assert total == pytest.approx(pub.total_params, rel=0.05), entry.id
    if pub.active_params:
        # "activated" figures differ in whether embeddings count: 15 %, not 5 %
        assert active == pytest.approx(pub.active_params, rel=0.15), entry.id


# Models whose owner publishes no count of their own shape, with the reason.
NO_PUBLISHED_COUNT = {
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": "named 1.5B after Qwen2.5-Math-1.5B (tied embeddings, "
    "1.54B), but the distill unties them: 1.78B; no published figure for that shape",
}


def test_every_model_has_a_published_count() -> None:
    missing = {e.id for e in model_catalogue() if not e.published}
    assert missing == set(NO_PUBLISHED_COUNT)


# Quantized releases users name by repo id, and the format their quantization_config gives.
QUANTIZED = {
    "Qwen/Qwen2.5-32B-Instruct-AWQ": "awq",
    "Qwen/Qwen2.5-32B-Instruct-GPTQ-Int4": "gptq",
    "Qwen/Qwen2.5-72B-Instruct-AWQ": "awq",
    "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ": "awq",
    "Qwen/QwQ-32B-AWQ": "awq",
    "Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8": "fp8-block",
    "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8": "fp8-block",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8": "fp8-block",
    "zai-org/GLM-4.5-FP8": "fp8-block",
    "zai-org/GLM-4.5-Air-FP8": "fp8-block",
    "zai-org/GLM-4.6-FP8": "fp8-block",
    "moonshotai/Kimi-K2.5": "gptq",  # compressed-tensors int4 group 32 on the routed experts
}


@pytest.mark.parametrize(("model_id", "fmt"), sorted(QUANTIZED.items()))
def test_quantized_releases_carry_their_own_format(model_id: str, fmt: str) -> None:
    entry = resolve_model(model_id.split("/")[1].lower(), model_catalogue())
    assert entry.id == model_id
    assert (
        native_quant_key(
            model_config(entry).get("quantization_config")
            or model_config(entry).get("text_config", {}).get("quantization_config")
        )
        == fmt
    )
    # the same shape as the 16-bit release it quantizes: the published count still holds
    assert entry.published is not None


def test_llama4_counts_shared_expert_and_interleaved_dense_layers() -> None:
    scout_total, scout_active = _counts("meta-llama/Llama-4-Scout-17B-16E-Instruct")
    mav_total, mav_active = _counts("meta-llama/Llama-4-Maverick-17B-128E-Instruct")
    # model cards: Scout 109B / Maverick 400B total, 17B activated each (the cards' totals
    # include the vision encoder, which is not counted here)
    assert 105e9 < scout_total < 109e9
    assert 395e9 < mav_total < 405e9
    assert 16.5e9 < scout_active < 17.5e9 and 16.5e9 < mav_active < 17.5e9


def _llama4_text(**over: object) -> dict[str, object]:
    text: dict[str, object] = {
        "model_type": "llama4_text",
        "hidden_size": 64,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "vocab_size": 100,
        "intermediate_size": 32,
        "intermediate_size_mlp": 96,
        "num_local_experts": 8,
        "num_experts_per_tok": 1,
        "interleave_moe_layer_step": 2,
    }
    text.update(over)
    return {"architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4", "text_config": text}


def test_llama4_layer_layout_from_config() -> None:
    a = arch_from_hf_config(_llama4_text())
    assert a.moe_layers == (1, 3)  # Llama4TextConfig: range(step - 1, layers, step)
    assert a.moe is not None and a.moe.num_shared_experts == 1
    assert a.moe.expert_intermediate_size == 32 and a.intermediate_size == 96
    assert arch_from_hf_config(_llama4_text(moe_layers=[0, 2])).moe_layers == (0, 2)
    assert arch_from_hf_config(_llama4_text(interleave_moe_layer_step=1)).moe_layers == (0, 1, 2, 3)


def test_llama4_moe_layers_are_bounds_checked() -> None:
    with pytest.raises(BadInputError, match="moe_layers"):
        arch_from_hf_config(_llama4_text(moe_layers=[0, 5000]))


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("NVIDIA H20-3e", "h20-3e"),
        ("nvidia h20-3e", "h20-3e"),
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA H100 NVL", "h100-nvl"),
        ("NVIDIA GeForce RTX 4090", "rtx-4090"),
        ("NVIDIA GeForce RTX 5090", "rtx-5090"),
        ("NVIDIA GeForce RTX 3090", "rtx-3090"),
        ("NVIDIA RTX 6000 Ada Generation", "rtx-6000-ada"),
        ("NVIDIA RTX A6000", "rtx-a6000"),
        ("NVIDIA A100-SXM4-80GB", "a100-sxm-80gb"),
        ("NVIDIA A100-SXM4-40GB", "a100-sxm-40gb"),
        ("NVIDIA A100 80GB PCIe", "a100-pcie-80gb"),
        ("NVIDIA L40S", "l40s"),
        ("Tesla T4", "t4"),
        ("AMD Instinct MI300X", "mi300x"),
        ("amd instinct mi325x", "mi325x"),
        ("AMD Instinct MI250X/MI250", "mi250x"),  # rocm-smi's name
        ("AMD Instinct MI300X VF", "mi300x"),  # an SR-IOV function in a cloud VM
    ],
)
def test_nvidia_smi_and_marketing_names_resolve(typed: str, key: str) -> None:
    assert resolve_gpu(typed, gpu_catalogue()).gpu.key == key


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("F16", "f16-gguf"),
        ("BF16", "bf16"),
        ("F32", "fp32"),
        ("Q8_0", "q8_0"),
        ("Q6_K", "q6_k"),
        ("Q5_K_M", "q5_k_m"),
        ("Q5_K", "q5_k_m"),
        ("Q4_K_M", "q4_k_m"),
        ("Q4_K", "q4_k_m"),
        ("q4_k_s", "q4_k_s"),
        ("Q4_0", "q4_0"),
        ("IQ4_XS", "iq4_xs"),
        ("IQ4_NL", "iq4_nl"),
        ("Q3_K_M", "q3_k_m"),
        ("Q2_K", "q2_k"),
        ("IQ2_XXS", "iq2_xxs"),
        ("IQ1_S", "iq1_s"),
    ],
)
def test_llamacpp_type_names_resolve(typed: str, key: str) -> None:
    assert resolve_quant(typed, quant_catalogue()).key == key


def test_checkpoints_name_catalogue_models_and_formats() -> None:
    ids = {e.id for e in model_catalogue()}
    for c in checkpoints():
        assert c.model in ids, c.model
        resolve_quant(c.format, quant_catalogue())
        assert c.checked.strip(), c.repo
    added = {c.model for c in checkpoints()} & set(NAMED.values())
    assert len(added) >= 10  # the models added for issue 14 carry their quantized releases


def test_a_quantization_config_inside_text_config_is_read() -> None:
    """Kimi-K2.5 keeps its INT4 (compressed-tensors, group 32) quantization_config inside
    text_config; the experts must be sized at 4 bits, not at the 16-bit width (the model
    card: INT4 weights, ~1T parameters, which would be ~240 GiB per GPU on 8 GPUs in BF16)."""
    from gpusizer.api import fit

    res = fit("kimi-k2.5", "H200", gpus=8, max_model_len=8192)
    assert res.deployment.quant.fmt.kind != "float"
    assert max(r.weights_bytes for r in res.estimate.ranks) / 2**30 < 100
