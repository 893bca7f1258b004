"""Print every llama-bench calibration row: measured vs predicted tokens/s, the error, and
the median / 90th-percentile absolute percentage error per backend × vendor × metric.

    .venv/bin/python benchmarks/validate_perf.py

Rows: tests/golden/perf_cases_llamacpp.jsonl (published llama-bench results, with sources).
The llama.cpp factors were fitted on these rows (benchmarks/fit_perf.py): in-sample errors.
For out-of-sample figures (each source predicted by a fit without it) run
``benchmarks/fit_perf.py --cv``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "golden"))

from perf_harness import run, summary
from serving_harness import mdape
from serving_harness import run as run_serving
from vllm_harness import run as run_vllm


def main() -> int:
    checks, skipped = run()
    print(f"{'case':50} {'metric':6} {'type':7} {'measured':>10} {'predicted':>10} {'error':>8}")
    for c in checks:
        print(
            f"{c.case_id[:50]:50} {c.metric:6} {c.family:7} {c.measured:10,.1f} {c.predicted:10,.1f}"
            f" {100 * c.error:7.1f}%"
        )
    for cid, why in skipped:
        print(f"{cid[:50]:50} skipped: {why}")
    print(f"\n{'backend/vendor/metric':28} {'n':>4} {'MdAPE':>7} {'P90 APE':>8}")
    for (backend, vendor, metric), (n, med, p90) in summary(checks).items():
        print(f"{backend + '/' + vendor + '/' + metric:28} {n:4d} {100 * med:6.1f}% {100 * p90:7.1f}%")
    serving, skipped_serving = run_serving()
    print(
        f"\n{'TensorRT-LLM max-throughput case':50} {'batch':>6} {'measured':>10} {'predicted':>10} {'error':>8}"
    )
    for c in serving:
        print(
            f"{c.case_id[:50]:50} {c.batch:6d} {c.measured:10,.0f} {c.predicted:10,.0f} {100 * c.error:7.1f}%"
        )
    for cid, why in skipped_serving:
        print(f"{cid[:50]:50} skipped: {why}")
    errs = sorted(abs(c.error) for c in serving)
    print(
        f"serving throughput (output tok/s): n={len(errs)} MdAPE {100 * mdape(serving):.1f}% "
        f"P90 {100 * errs[round(0.9 * (len(errs) - 1))]:.1f}%"
    )
    vllm = run_vllm()
    print(
        f"\n{'vLLM latency case (simulated at its concurrency)':50} {'metric':>8} {'measured':>10} {'predicted':>10}"
    )
    for v in vllm:
        print(
            f"{v.case_id[:50]:50} {v.metric:>8} {v.measured_ms:8.2f}ms {v.predicted_ms:8.2f}ms {100 * v.error:7.1f}%"
        )
    verrs = sorted(abs(v.error) for v in vllm)
    print(f"vLLM TPOT: n={len(verrs)} MdAPE {100 * verrs[len(verrs) // 2]:.1f}% max {100 * verrs[-1]:.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
