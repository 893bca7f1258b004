"""vLLM's published latencies (low and mid batch) against the simulator with the
catalogue's factors: every case within ±15 %."""

from __future__ import annotations

from tests.golden.vllm_harness import run


def test_vllm_tpot_within_15_percent_of_published_runs() -> None:
    checks = run()
    assert len(checks) >= 3
    bad = [
        (c.case_id, c.metric, c.measured_ms, round(c.predicted_ms, 2)) for c in checks if abs(c.error) > 0.15
    ]
    assert not bad, bad
