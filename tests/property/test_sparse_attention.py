"""DeepSeek Sparse Attention (DeepSeek-V3.2): a lightning indexer scores every cached key and
the MLA attention of each query reads only the top ``index_topk`` of them. The constants come
from DeepSeek's inference config (index_n_heads 64, index_head_dim 128, index_topk 2048) and
the engines' caches (SGLang's FP8 MLA cell of 656 B and 132 B of indexer keys per token per
layer; reference/facts.md A.4)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpusizer.api import fit
from gpusizer.catalog.load import efficiency_factors
from gpusizer.errors import BadInputError
from gpusizer.estimate.perf import efficiency_for
from gpusizer.estimate.roofline import Batch, build_step_model, window_pairs
from gpusizer.simulate.engine import run_engine
from gpusizer.simulate.run import engine_limits
from gpusizer.simulate.workload import Requests

LAYERS = 61
MLA_CELL = 656  # FP8 latent 512 + 16 B of scales + 128 B of BF16 RoPE
INDEXER_KEYS = 132  # 128 FP8 + one fp32 scale per 128-element block
TOPK = 2048


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 5000), done=st.integers(0, 9000), window=st.sampled_from([0, 1, 64, 2048, 4096]))
def test_window_pairs_counts_each_querys_capped_keys(n: int, done: int, window: int) -> None:
    keys = np.arange(done + 1, done + n + 1)
    expected = float(np.minimum(keys, window).sum()) if window else float(keys.sum())
    assert window_pairs(n, done, window) == expected


def _v32(engine: str = "sglang", context: int = 131072):  # type: ignore[no-untyped-def]
    res = fit("deepseek-v3.2", "H200", gpus=8, engine=engine, kv_dtype="fp8", max_model_len=context, users=8)
    dep = res.deployment
    eff, _ = efficiency_for(
        efficiency_factors(), dep.engine, dep.gpu.vendor, None, gpu_class=dep.gpu.gpu_class
    )
    return res, dep, eff


def test_decode_reads_the_latent_of_the_top_k_keys_and_the_indexer_keys_of_all() -> None:
    _, dep, eff = _v32()
    model = build_step_model(dep, eff)
    assert model.attn_window == TOPK
    for ctx in (500, 2048, 65536):
        kv = model.step(Batch(decode=(ctx,) * 4)).kv_bytes
        per_seq = LAYERS * (MLA_CELL * min(ctx, TOPK) + INDEXER_KEYS * ctx)  # every TP rank holds all of it
        assert kv == 4 * per_seq


def test_sparse_attention_only_pays_off_past_the_window() -> None:
    """Within 2,048 tokens the indexer is extra work; at 64K the attention reads a fraction of
    what dense MLA over the same cache would, and the step is faster."""
    _, dep, eff = _v32()
    sparse = build_step_model(dep, eff)
    dense = replace(sparse, attn_window=0, index_width=0.0, index_peak_flops=0.0)
    short = Batch(decode=(1024,) * 16)
    assert sparse.step(short).kv_bytes == dense.step(short).kv_bytes
    assert sparse.step(short).flops > dense.step(short).flops
    long = Batch(decode=(65536,) * 16)
    assert sparse.step(long).kv_bytes < dense.step(long).kv_bytes / 3
    assert sparse.step(long).total_s < dense.step(long).total_s
    # the last chunk of a 64K prompt: the indexer, replicated on all 8 ranks (64 heads x 128),
    # does more multiply-adds than the head-sharded dense MLA over the whole prefix (16 heads x
    # 320 per rank), but in FP8 at twice the 16-bit rate; the sparse MLA multiplies 2,048 keys
    # a query, absorbed (576 + 512) over 64 padded heads
    prompt = Batch(prefill=((8192, 57344),))
    assert sparse.step(prompt).compute_s < dense.step(prompt).compute_s


def test_sparse_kernels_multiply_every_index_slot_over_padded_heads() -> None:
    """FlashMLA's sparse kernels take 64 or 128 query heads and all ``index_topk`` slots of a
    query (unused ones masked): at TP 8 a rank's 16 heads are padded to 64 (vLLM's
    FlashMLASparse backend, SGLang's NSA backend), and the attention's multiply-adds do not
    shrink with the context, only the indexer's grow with it. DP attention keeps the 128
    heads on one rank for an eighth of the sequences."""
    absorbed = 2 * 512 + 64  # kv_lora_rank (QK and PV) + qk_rope_head_dim
    _, dep, eff = _v32()
    assert not dep.layout.attention_dp
    model = build_step_model(dep, eff)
    assert model.decode_width == model.prefill_width == 64 * absorbed
    short, longer = model.step(Batch(decode=(100,) * 4)), model.step(Batch(decode=(1500,) * 4))
    index_per_key = 2 * LAYERS * 64 * 128  # indexer heads x head dim, on every rank
    assert longer.flops - short.flops == pytest.approx(4 * 1400 * index_per_key)
    attention = 2 * LAYERS * 64 * absorbed * TOPK  # per query token, whatever its context
    dense = replace(model, attn_window=0, index_width=0.0, decode_width=0.0, prefill_width=0.0)
    assert short.flops - dense.step(Batch(decode=(100,) * 4)).flops == pytest.approx(
        4 * (attention + 100 * index_per_key)
    )
    res = fit("deepseek-v3.2", "H200", gpus=8, engine="sglang", dp_attention=True, max_model_len=32768)
    dp = build_step_model(res.deployment, eff)
    assert dp.attention_dp and dp.decode_width == 128 * absorbed


def test_llamacpp_runs_v32_dense() -> None:
    """llama.cpp has no sparse-attention kernels: its step model keeps dense attention."""
    res = fit("deepseek-v3.2", "H200", gpus=8, engine="llamacpp", quant="Q4_K_M", max_model_len=32768)
    dep = res.deployment
    eff, _ = efficiency_for(
        efficiency_factors(), dep.engine, dep.gpu.vendor, None, gpu_class=dep.gpu.gpu_class
    )
    assert build_step_model(dep, eff).attn_window == 0


def test_the_simulator_caps_each_sequence_at_the_window_like_the_step_model() -> None:
    """One 48K-token prompt decoding alone: every decode step the simulator times equals the
    step model's own step at that context, so both paths cap the same way."""
    res, dep, eff = _v32(context=65536)
    model = build_step_model(dep, eff)
    prompt, out = 49152, 6
    req = Requests(
        arrival_s=np.zeros(1), input_len=np.array([prompt]), output_len=np.array([out], dtype=np.int64)
    )
    trace = run_engine(model, req, engine_limits(dep, res.estimate))
    assert trace.output_tokens[0] == out
    decode_steps = trace.step_dt_s[-(out - 1) :]
    for i, dt in enumerate(decode_steps):
        ctx = prompt + 1 + i
        assert dt == model.step(Batch(decode=(ctx,))).total_s


def test_serving_engines_refuse_v32_where_its_sparse_kernels_are_not_built() -> None:
    """FlashMLA's sparse kernels and DeepGEMM's indexer exist for SM90 and SM100 only (vLLM
    issues 35021: A100/A800, 31936: RTX PRO 6000); SGLang serves V3.2 on MI300/MI350 ROCm."""
    for gpu, engine in (
        ("A100", "vllm"),
        ("RTX PRO 6000", "sglang"),
        ("L40S", "tensorrt-llm"),
        ("MI300X", "vllm"),
    ):
        with pytest.raises(BadInputError, match="sparse attention") as err:
            fit("deepseek-v3.2", gpu, gpus=8, engine=engine, max_model_len=8192)
        assert err.value.field == "gpu"
    for gpu, engine in (("H100", "vllm"), ("H20", "sglang"), ("B200", "tensorrt-llm"), ("MI300X", "sglang")):
        assert (
            fit("deepseek-v3.2", gpu, gpus=8, engine=engine, max_model_len=8192).deployment.engine == engine
        )
    # DeepSeek-V3.1 (dense MLA) keeps running on Ampere
    assert fit(
        "deepseek-v3.1", "A100", gpus=8, quant="awq", max_model_len=8192
    ).deployment.gpu.key.startswith("a100")
