"""The all-reduce a serving step pays: the engines' own kernel for decode-sized messages, NCCL's
ring for prefill-sized ones (estimate/collectives.py, data/interconnects.yaml)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpusizer.catalog.load import interconnects
from gpusizer.estimate.collectives import ACT_BYTES, Collectives, allreduce_latency

# Measured by NVIDIA with SGLang 0.5.9's and vLLM 0.19.0's custom all-reduce under a CUDA graph
# (aiconfigurator 0.12.0, systems/data/<system>/comm/<engine>/<version>/custom_allreduce_perf
# .parquet; bf16 elements → microseconds). These are engine-version rows, not the medians the
# catalogue holds, so each is matched within 30 %.
MEASURED_US = [
    # (link, GPUs, elements, SGLang 0.5.9, vLLM 0.19.0)
    ("nvlink4", 8, 8192, 5.2, 5.2),  # H200: one token of DeepSeek-V3's 7,168 hidden
    ("nvlink4", 8, 65536, 7.8, 8.0),
    ("nvlink4", 8, 1048576, 20.2, 18.3),
    ("nvlink4", 2, 8192, 4.4, 4.5),
    ("nvlink5", 8, 8192, 7.8, 8.2),  # B200
    ("nvlink3", 8, 8192, 6.6, None),  # A100 (vLLM 0.14.0 there: 6.5)
]


def _collectives(link: str, tp: int, *, layers: int = 1, ep: bool = False) -> Collectives:
    return Collectives(
        link=interconnects()[link],
        node_link=None,
        hidden=7168,
        tp=tp,
        pp=1,
        topk=8,
        ep=ep,
        attention_dp=False,
        tp_comm=True,
        stages_per_node=1,
        stage_layers=((layers, 0),),
    )


@pytest.mark.parametrize(("link", "gpus", "elements", "sglang_us", "vllm_us"), MEASURED_US)
def test_engine_allreduce_matches_the_measured_kernel(
    link: str, gpus: int, elements: int, sglang_us: float, vllm_us: float | None
) -> None:
    spec = interconnects()[link].engine_allreduce
    assert spec is not None
    predicted = spec.seconds(gpus, elements * ACT_BYTES) * 1e6
    for measured in (m for m in (sglang_us, vllm_us) if m is not None):
        assert predicted == pytest.approx(measured, rel=0.30)


def test_a_decode_step_all_reduces_at_the_engine_kernel_cost_not_nccl_cost() -> None:
    """DeepSeek-V3 at one user on 8×H200: two all-reduces per layer. nccl-tests put one 8-GPU
    all-reduce at ~20 µs (facts.md C.8.1, 64 KiB); the engines' kernel at ~5 µs."""
    one_layer = _collectives("nvlink4", 8).seconds(1) / 2
    assert 4e-6 < one_layer < 7e-6
    nccl = allreduce_latency(interconnects()["nvlink4"], 8)
    assert one_layer < nccl / 3


def test_prefill_sized_messages_use_the_nccl_ring() -> None:
    """Past a few MiB NCCL's ring beats the one-shot kernel; the step pays the faster."""
    link = interconnects()["nvlink4"]
    tokens = 8192
    msg = tokens * 7168 * ACT_BYTES
    ring = allreduce_latency(link, 8) + msg * 2 * 7 / 8 / (link.bandwidth_bps * link.busbw_fraction)
    assert _collectives("nvlink4", 8).seconds(tokens) == pytest.approx(2 * ring)


@given(
    st.sampled_from(["nvlink3", "nvlink4", "nvlink5", "nvlink4-h800"]),
    st.sampled_from([2, 4, 8]),
    st.integers(1, 16384),
    st.integers(1, 16384),
)
def test_more_tokens_never_all_reduce_faster(link: str, tp: int, a: int, b: int) -> None:
    c = _collectives(link, tp)
    lo, hi = sorted((a, b))
    assert c.seconds(lo) <= c.seconds(hi)
