"""KV dtypes come from data/quant.yaml alone; tensor parallelism follows the engines' head
rules. Regression tests for issue 14 (llama.cpp q8_0 KV exits 2 in fit and loses every plan
candidate; --tp 5 accepted for 8 KV heads) and issue 15 (--tp 1024 reported as a
--gpus-per-node error)."""

from __future__ import annotations

import pytest

from gpusizer.api import fit
from gpusizer.catalog.load import kv_dtype_table
from gpusizer.domain.kv import kv_dtypes_for, kv_element_bytes, resolve_kv_dtype
from gpusizer.domain.scenario import tp_problem, valid_tp
from gpusizer.errors import BadInputError


def test_llamacpp_q8_0_kv_fits_at_ggml_block_size() -> None:
    # llama.cpp -ctk q8_0 -ctv q8_0: 34 bytes per 32 values (ggml-common.h block_q8_0)
    res = fit("llama-3.1-8b-instruct", "RTX 4090", engine="llamacpp", kv_dtype="q8_0", max_model_len=8192)
    a = res.deployment.model
    assert res.deployment.kv_dtype == "q8_0"
    assert res.estimate.kv_bytes_per_token == pytest.approx(a.num_layers * 2 * 8 * 128 * 34 / 32)
    assert res.estimate.rule_of_thumb_bytes > res.estimate.total_weight_bytes


@pytest.mark.parametrize("name", ["q4_0", "Q8_0", "f16", "bf16", "auto", "q5_1", "iq4_nl"])
def test_every_llamacpp_cache_type_runs(name: str) -> None:
    res = fit("qwen2.5-7b-instruct", "RTX 4090", engine="llamacpp", kv_dtype=name, max_model_len=4096)
    assert res.estimate.kv_bytes_per_token > 0


def test_kv_dtype_names_and_engines_come_from_the_catalogue() -> None:
    table = kv_dtype_table()
    assert resolve_kv_dtype("bfloat16") == "bf16"
    assert resolve_kv_dtype(" Q8_0 ") == "q8_0"
    for key, d in table.items():
        assert d.engines, key
        assert set(kv_dtypes_for(d.engines[0], mla=True)) >= {key}
        if key not in ("auto", "fp8_ds_mla"):
            assert kv_element_bytes(key, 2.0) == d.value
    assert "q8_0" in kv_dtypes_for("llamacpp") and "fp8" not in kv_dtypes_for("llamacpp")
    assert "q8_0" not in kv_dtypes_for("vllm") and "fp8_ds_mla" not in kv_dtypes_for("vllm")


def test_wrong_engine_kv_dtype_names_the_engines_that_take_it() -> None:
    with pytest.raises(BadInputError, match="it is for llamacpp"):
        fit("qwen2.5-7b-instruct", "H100", kv_dtype="q8_0")
    with pytest.raises(BadInputError, match="not a llamacpp KV cache type"):
        fit("qwen2.5-7b-instruct", "H100", engine="llamacpp", kv_dtype="fp8")
    with pytest.raises(BadInputError, match="unknown KV dtype"):
        fit("qwen2.5-7b-instruct", "H100", kv_dtype="int3")


def test_tp_that_splits_neither_way_is_refused_with_the_reason() -> None:
    # Qwen2.5-14B: 40 query heads, 8 KV heads. TP 5 divides 40 but neither divides 8 nor is a
    # multiple of it: vLLM refuses it (num_kv_heads % tp == 0 or tp % num_kv_heads == 0).
    with pytest.raises(BadInputError, match=r"^tp: 5 neither divides the 8 KV heads") as err:
        fit("qwen2.5-14b-instruct", "H100", tp=5)
    assert "accepted: 1, 2, 4, 8" in err.value.message
    assert fit("qwen2.5-14b-instruct", "H100", tp=8).deployment.layout.tp == 8


def test_tp_above_kv_heads_replicates() -> None:
    # Qwen2.5-1.5B: 12 query heads, 2 KV heads; TP 4 replicates each KV head on 2 ranks.
    res = fit("qwen2.5-1.5b-instruct", "H100", tp=4)
    assert res.estimate.kv.replicated_over_tp
    assert "each rank keeps a replica" in res.estimate.kv.what
    with pytest.raises(BadInputError, match="does not divide the 12 attention heads"):
        fit("qwen2.5-1.5b-instruct", "H100", tp=8)


def test_tp_rule_matches_vllm_for_every_size() -> None:
    res = fit("qwen2.5-14b-instruct", "H100")
    a = res.deployment.model
    for tp in range(1, 65):
        ok = a.num_attention_heads % tp == 0 and (a.num_kv_heads % tp == 0 or tp % a.num_kv_heads == 0)
        assert (tp_problem(a, tp) is None) == ok, tp
    assert valid_tp(a) == (1, 2, 4, 8, 40)


def test_tp_beyond_any_scale_up_domain_is_a_tp_error() -> None:
    with pytest.raises(BadInputError) as err:
        fit("qwen2.5-14b-instruct", "H100", tp=1024)
    assert err.value.field == "tp" and "72" in err.value.message


def test_context_beyond_the_model_needs_explicit_consent() -> None:
    with pytest.raises(BadInputError, match="maximum of 32,768") as err:
        fit("qwen2.5-72b-instruct", "H100", gpus=4, max_model_len=131072, allow_long_context=False)
    assert "--allow-long-context" in err.value.message
    res = fit("qwen2.5-72b-instruct", "H100", gpus=4, max_model_len=131072, allow_long_context=True)
    assert any("RoPE scaling" in n for n in res.notes)
