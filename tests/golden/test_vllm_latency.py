"""vLLM's published latencies (low and mid batch) against the simulator with the
catalogue's factors.

These three Llama-3.1-8B runs (H100 and A100 at concurrency 1, A40 at 50) were once the
vLLM fit itself (±15 % in sample). The vLLM factors are now fitted on 112 GPUStack runs of
other models (benchmarks/cv_serving.py), so this is an out-of-sample check on independent
sources: +17 to +26 % (pessimistic) when that fit landed; the bound is ±30 %."""

from __future__ import annotations

from tests.golden.vllm_harness import run


def test_vllm_tpot_within_30_percent_of_published_runs_out_of_sample() -> None:
    checks = run()
    assert len(checks) >= 3
    bad = [
        (c.case_id, c.metric, c.measured_ms, round(c.predicted_ms, 2)) for c in checks if abs(c.error) > 0.30
    ]
    assert not bad, bad
