"""Prometheus parsing across engines and the guide's operating rules."""

from __future__ import annotations

from gpusizer.bench.prometheus import parse_metrics
from gpusizer.plan.diagnosis import diagnose

VLLM_BUSY = """
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 64.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 37.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.42
# TYPE vllm:num_preemptions counter
vllm:num_preemptions_total{engine="0",model_name="m"} 0.0
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="1.0",model_name="m"} 10.0
vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="m"} 100.0
vllm:time_to_first_token_seconds_count{model_name="m"} 100.0
vllm:time_to_first_token_seconds_sum{model_name="m"} 250.0
"""

SGLANG_FULL = """
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{model_name="m"} 200.0
# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{model_name="m"} 12.0
# TYPE sglang:token_usage gauge
sglang:token_usage{model_name="m"} 0.97
"""


def test_vllm_queue_with_spare_kv_is_compute_bound() -> None:
    snap = parse_metrics(VLLM_BUSY)
    assert snap.engine == "vllm" and snap.running == 64 and snap.waiting == 37 and snap.kv_usage == 0.42
    assert snap.ttft_mean_s == 2.5
    verdicts = {
        d.verdict
        for d in diagnose(
            running=snap.running,
            waiting=snap.waiting,
            kv_usage=snap.kv_usage,
            preemptions=snap.preemptions,
            ttft_s=snap.ttft_mean_s,
            itl_s=None,
            slo_ttft_s=1.0,
        )
    }
    assert verdicts == {"compute-bound", "ttft-over"}


def test_sglang_full_kv_is_memory_bound() -> None:
    snap = parse_metrics(SGLANG_FULL)
    assert snap.engine == "sglang"
    found = diagnose(
        running=snap.running,
        waiting=snap.waiting,
        kv_usage=snap.kv_usage,
        preemptions=None,
        ttft_s=None,
        itl_s=None,
    )
    assert [d.verdict for d in found] == ["kv-bound"]


def test_idle_server_points_at_batching_first() -> None:
    found = diagnose(running=0, waiting=0, kv_usage=0.0, preemptions=0, ttft_s=None, itl_s=None)
    assert [d.verdict for d in found] == ["underused"]
