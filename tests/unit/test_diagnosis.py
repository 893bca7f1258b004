"""Prometheus parsing across engines and the guide's operating rules."""

from __future__ import annotations

from gpusizer.bench.prometheus import parse_metrics
from gpusizer.plan.diagnosis import RunEvidence, diagnose, diagnose_runs

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


def _ev(**kw: object) -> RunEvidence:
    base: dict[str, object] = dict(
        run_id=1,
        concurrency=None,
        rate=None,
        completed=100,
        failed=0,
        failures={},
        requests_per_s=1.0,
        output_tokens_per_s=100.0,
        ttft_p50_s=0.2,
        ttft_p95_s=0.3,
        tpot_p50_s=0.02,
        tpot_p95_s=0.025,
    )
    base.update(kw)
    return RunEvidence(**base)  # type: ignore[arg-type]


def test_runs_kv_full_with_preemptions_is_memory_bound() -> None:
    found = diagnose_runs(
        [_ev(concurrency=64, max_running=40, max_waiting=24, max_kv_usage=0.98, preemptions=37)]
    )
    v = {d.verdict: d for d in found}
    assert "kv-bound" in v and "37 preemptions" in v["kv-bound"].evidence
    assert "compute-bound" not in v and "batch-capped" not in v


def test_runs_queue_with_spare_kv_and_full_batch_is_compute_bound() -> None:
    found = diagnose_runs([_ev(concurrency=64, max_running=60, max_waiting=4, max_kv_usage=0.35)])
    assert [d.verdict for d in found] == ["compute-bound"]


def test_runs_open_loop_shortfall_is_saturation_and_timeouts_are_failures() -> None:
    found = diagnose_runs(
        [_ev(rate=8.0, requests_per_s=5.1, failed=9, failures={"ReadTimeout": 9}, ttft_p95_s=4.0)],
        slo_ttft_s=1.0,
    )
    v = [d.verdict for d in found]
    assert "saturated" in v and "failures" in v and "ttft-over" in v and "queueing" in v


def test_runs_connection_errors_point_at_the_client() -> None:
    found = diagnose_runs([_ev(concurrency=2000, failed=300, failures={"ConnectError": 280, "HTTP 503": 20})])
    assert "client-limit" in [d.verdict for d in found]


def test_a_slow_client_is_named_and_a_quick_one_is_not() -> None:
    # Measured with benchmarks/bench_client_speed.py on the 2-core CI machine: 1,000 streams
    # opened at once waited 2.48 s (p50) to be sent; from the wire, E2E p50 was 4.55 s.
    slow = diagnose_runs([_ev(concurrency=1000, send_p50_s=2.4785, e2e_p50_s=4.5471, ttft_p50_s=0.44)])
    hit = [d for d in slow if d.verdict == "client-limit"]
    assert hit and "35% of a request's time" in hit[0].evidence
    assert "about 647 of the 1000 requests" in hit[0].evidence
    # bench at concurrency 8 against the stub on the same machine: 13.3 ms to send against a
    # 116.6 ms E2E. A distortion worth showing in the table, not a client limit.
    quick = diagnose_runs([_ev(concurrency=8, send_p50_s=0.013265, e2e_p50_s=0.11663, ttft_p50_s=0.0306)])
    assert "client-limit" not in [d.verdict for d in quick]


def test_sweep_past_the_knee_and_batch_too_small() -> None:
    knee = diagnose_runs(
        [
            _ev(run_id=1, concurrency=16, tpot_p50_s=0.020, output_tokens_per_s=700.0),
            _ev(run_id=2, concurrency=64, tpot_p50_s=0.050, output_tokens_per_s=760.0),
        ]
    )
    assert [d.verdict for d in knee] == ["past-knee"] and "cap concurrency near 16" in knee[0].rule
    small = diagnose_runs(
        [
            _ev(run_id=1, concurrency=1, tpot_p50_s=0.020, output_tokens_per_s=50.0, max_waiting=0),
            _ev(run_id=2, concurrency=8, tpot_p50_s=0.022, output_tokens_per_s=360.0, max_waiting=0),
        ]
    )
    assert [d.verdict for d in small] == ["batch-small"]
