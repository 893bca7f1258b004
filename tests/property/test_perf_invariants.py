"""Invariants of the step-time model."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from gpusizer.api import fit
from gpusizer.estimate.roofline import Batch, Efficiency, step_time

EFF = Efficiency(bandwidth_fraction=0.8, compute_fraction=0.7, step_overhead_s=2e-4)
BASE = fit("deepseek-r1-distill-qwen-7b", "H100", max_model_len=8192).deployment
MOE = fit("qwen/qwen3-30b-a3b", "H100", max_model_len=8192).deployment


@settings(max_examples=50, deadline=None)
@given(
    bw=st.floats(1e11, 1e13), more=st.floats(1.0, 10.0), batch=st.integers(1, 256), ctx=st.integers(1, 8192)
)
def test_more_bandwidth_never_makes_decode_slower(bw: float, more: float, batch: int, ctx: int) -> None:
    slow = replace(BASE, gpu=BASE.gpu.model_copy(update={"memory_bandwidth_bps": bw}))
    fast = replace(BASE, gpu=BASE.gpu.model_copy(update={"memory_bandwidth_bps": bw * more}))
    b = Batch(decode=(ctx,) * batch)
    assert step_time(fast, b, EFF).total_s <= step_time(slow, b, EFF).total_s


@settings(max_examples=50, deadline=None)
@given(batch=st.integers(1, 512), extra=st.integers(1, 512), ctx=st.integers(1, 8192))
def test_bigger_batches_never_lower_throughput_or_per_step_time(batch: int, extra: int, ctx: int) -> None:
    for dep in (BASE, MOE):
        small = step_time(dep, Batch(decode=(ctx,) * batch), EFF).total_s
        big = step_time(dep, Batch(decode=(ctx,) * (batch + extra)), EFF).total_s
        assert big >= small
        assert (batch + extra) / big >= batch / small * 0.999


def test_moe_batch_touches_more_experts() -> None:
    one = step_time(MOE, Batch(decode=(1024,)), EFF)
    many = step_time(MOE, Batch(decode=(1024,) * 64), EFF)
    assert many.weight_bytes > one.weight_bytes * 2  # 8 of 128 experts per token → most hit at 64


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 256), ctx=st.integers(1, 8192), tp=st.sampled_from([2, 4]))
def test_tp_over_nvlink_never_slower_than_over_pcie(batch: int, ctx: int, tp: int) -> None:
    from gpusizer.catalog.load import interconnects

    dep = fit("deepseek-r1-distill-qwen-7b", "H100", tp=tp, max_model_len=8192).deployment
    links = interconnects()
    b = Batch(decode=(ctx,) * batch)
    nv = step_time(dep, b, replace(EFF, link=links["nvlink4"])).total_s
    for slow in ("pcie5-x16", "pcie4-x16", "pcie4-x4", "pcie-through-cpu"):
        assert nv <= step_time(dep, b, replace(EFF, link=links[slow])).total_s


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 64), ctx=st.integers(1, 8192))
def test_quantized_model_never_reads_more_weight_bytes(batch: int, ctx: int) -> None:
    b = Batch(decode=(ctx,) * batch)
    bf16 = step_time(BASE, b, EFF).weight_bytes
    for q in ("fp8", "awq", "gptq"):
        quantized = fit("deepseek-r1-distill-qwen-7b", "H100", quant=q, max_model_len=8192).deployment
        assert step_time(quantized, b, EFF).weight_bytes < bf16


def test_expert_parallel_replaces_moe_all_reduce_with_all_to_all() -> None:
    from gpusizer.catalog.load import interconnects

    links = interconnects()
    eff = replace(EFF, link=links["nvlink4"])
    tp_dep = fit("qwen/qwen3-30b-a3b", "H100", tp=4, max_model_len=8192).deployment
    ep_dep = fit("qwen/qwen3-30b-a3b", "H100", tp=4, ep=True, max_model_len=8192).deployment
    b = Batch(decode=(2048,) * 64)
    tp_t, ep_t = step_time(tp_dep, b, eff), step_time(ep_dep, b, eff)
    assert tp_t.weight_bytes == ep_t.weight_bytes  # same bytes per rank either way
    assert tp_t.comm_s > 0 and ep_t.comm_s > 0 and tp_t.comm_s != ep_t.comm_s


def test_pipeline_across_nodes_pays_the_network() -> None:
    from gpusizer.catalog.load import interconnects

    links = interconnects()
    dep = fit("deepseek-r1", "H100", gpus=16, max_model_len=8192).deployment
    assert (dep.layout.tp, dep.layout.pp, dep.layout.nodes) == (8, 2, 2)
    b = Batch(decode=(4096,) * 8)
    fast = step_time(dep, b, replace(EFF, link=links["nvlink4"], node_link=links["infiniband-ndr"]))
    slow = step_time(dep, b, replace(EFF, link=links["nvlink4"], node_link=links["roce-100g"]))
    assert slow.comm_s > fast.comm_s


def test_dp_attention_trades_replicated_attention_weights_for_kv_capacity() -> None:
    # DeepSeek MLA under TP replicates the latent on every rank; DP attention keeps each
    # request's cache on one rank (SGLang --enable-dp-attention), at the price of replicated
    # attention weights.
    tp = fit("deepseek-r1", "H200", gpus=8, max_model_len=32768, users=64).estimate
    dp = fit(
        "deepseek-r1", "H200", gpus=8, max_model_len=32768, users=64, dp_attention=True, ep=True
    ).estimate
    assert dp.limiting.weights_bytes > tp.limiting.weights_bytes
    assert dp.max_concurrency > 4 * tp.max_concurrency
    assert dp.fits and not tp.fits


def test_fp8_weights_halve_the_linear_layers_time_not_the_attentions() -> None:
    """FP8 GEMMs run at twice the BF16 tensor rate on Hopper; the serving engines' attention
    kernels stay 16-bit, so a deep-context prefill chunk gains far less from FP8 weights than
    a short one."""
    fp8 = fit("deepseek-r1-distill-qwen-7b", "H100", quant="fp8", max_model_len=32768).deployment
    bf16 = fit("deepseek-r1-distill-qwen-7b", "H100", max_model_len=32768).deployment

    def ratio(chunk: tuple[int, int]) -> float:
        b = Batch(prefill=(chunk,))
        return step_time(fp8, b, EFF).compute_s / step_time(bf16, b, EFF).compute_s

    short, deep = ratio((512, 0)), ratio((4096, 28672))
    assert 0.5 <= short < 0.55  # almost all linear FLOPs: FP8 halves them
    assert deep > 0.7  # most FLOPs are attention over 28K cached tokens: still 16-bit


def test_routed_experts_run_at_their_own_fraction_of_peak() -> None:
    """DeepSeek-V3 multiplies 58 MoE layers x 8 routed experts x 3 x 7168 x 2048 expert
    parameters per token (config.json: 61 layers, first_k_dense_replace 3, num_experts_per_tok
    8, hidden_size 7168, moe_intermediate_size 2048); only those FLOPs slow down when the
    grouped GEMMs reach a lower share of peak, on MoE models and never on dense ones."""
    from gpusizer.estimate.roofline import build_step_model

    ds = fit("deepseek-r1", "H200", tp=8, max_model_len=8192).deployment
    model = build_step_model(ds, EFF)
    routed = sum(st.expert_params for st in model.stages) * 8
    assert routed == 58 * 8 * 3 * 7168 * 2048
    b = Batch(prefill=((8192, 0),))
    for dep in (ds, MOE):
        fast = step_time(dep, b, EFF).compute_s
        slow = step_time(dep, b, replace(EFF, moe_compute_fraction=0.35)).compute_s
        assert slow > fast * 1.2
    assert (
        step_time(BASE, b, replace(EFF, moe_compute_fraction=0.35)).compute_s
        == step_time(BASE, b, EFF).compute_s
    )
