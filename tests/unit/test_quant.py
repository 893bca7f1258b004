"""Quantized weights cost more than their nominal bits."""

from __future__ import annotations

import pytest

from gpusizer.catalog.hf_config import arch_from_hf_config
from gpusizer.catalog.load import quant_catalogue
from gpusizer.catalog.resolve import resolve_quant
from gpusizer.domain.params import count_params
from gpusizer.domain.quant import apply_quant, native_quant_key
from gpusizer.domain.weights import total_weight_bytes
from tests.conftest import DEEPSEEK_V3, R1_QWEN_7B


def _fmt(name: str):  # type: ignore[no-untyped-def]
    return resolve_quant(name, quant_catalogue())


def test_awq_group_128_is_4_156_bits() -> None:
    assert _fmt("awq").linear_bits_per_weight == pytest.approx(4.15625)
    assert _fmt("AWQ-int4").key == "awq"


def test_awq_32b_is_not_half_a_byte_per_param() -> None:
    # R1-Distill-Qwen-32B: 32.76B params; peers take AWQ as 0.5 B/param (16.4 GB).
    cfg = dict(
        R1_QWEN_7B,
        hidden_size=5120,
        num_hidden_layers=64,
        num_attention_heads=40,
        num_key_value_heads=8,
        intermediate_size=27648,
    )
    counts = count_params(arch_from_hf_config(cfg))
    assert counts.total == pytest.approx(32.76e9, rel=1e-3)
    stored = total_weight_bytes(counts, apply_quant(_fmt("awq")))
    naive = counts.total * 0.5
    assert stored / naive > 1.08  # scales, zeros and 16-bit embeddings/lm_head


def test_native_fp8_block_from_config() -> None:
    assert native_quant_key(DEEPSEEK_V3["quantization_config"]) == "fp8-block"
    assert native_quant_key({"quant_method": "awq", "bits": 4, "group_size": 64}) == "awq"
    assert native_quant_key({"quant_method": "mxfp4"}) == "mxfp4"
    assert native_quant_key(None) is None


def test_group_size_from_checkpoint() -> None:
    q = apply_quant(_fmt("awq"), quantization_config={"quant_method": "awq", "group_size": 64}, native=True)
    assert q.bits("attention") == pytest.approx(4.3125)
    assert q.bits("embedding") == 16


def test_modules_to_not_convert_keep_16_bit() -> None:
    cfg = {
        "quant_method": "mxfp4",
        "modules_to_not_convert": [
            "model.layers.*.self_attn",
            "model.layers.*.mlp.router",
            "model.embed_tokens",
            "lm_head",
        ],
    }
    q = apply_quant(_fmt("mxfp4"), quantization_config=cfg, native=True)
    assert q.bits("experts") == pytest.approx(4.25)
    assert q.bits("attention") == 16 and q.bits("router") == 16


def test_v3_fp8_checkpoint_size() -> None:
    # 671B at ~1 byte + BF16 embeddings/head/routers/norms ≈ 642 GiB of main-model weights;
    # the published FP8 safetensors total (688.6 GB incl. 14B MTP) is consistent with this.
    counts = count_params(arch_from_hf_config(DEEPSEEK_V3))
    q = apply_quant(_fmt("fp8-block"), quantization_config=DEEPSEEK_V3["quantization_config"], native=True)
    main = total_weight_bytes(counts, q)
    mtp = counts.mtp_total * 8.002 / 8
    assert (main + mtp) == pytest.approx(688.6e9, rel=0.01)
