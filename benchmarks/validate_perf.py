"""Print every llama-bench calibration row: measured vs predicted tokens/s, the error, and
the median / 90th-percentile absolute percentage error per backend × vendor × metric.

    .venv/bin/python benchmarks/validate_perf.py

Rows: tests/golden/perf_cases_llamacpp.jsonl (published llama-bench results, with sources).
The llama.cpp factors were fitted on these rows (benchmarks/fit_perf.py): in-sample errors.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "golden"))

from perf_harness import run, summary


def main() -> int:
    checks, skipped = run()
    print(f"{'case':50} {'metric':6} {'measured':>10} {'predicted':>10} {'error':>8}")
    for c in checks:
        print(
            f"{c.case_id[:50]:50} {c.metric:6} {c.measured:10,.1f} {c.predicted:10,.1f} {100 * c.error:7.1f}%"
        )
    for cid, why in skipped:
        print(f"{cid[:50]:50} skipped: {why}")
    print(f"\n{'backend/vendor/metric':28} {'n':>4} {'MdAPE':>7} {'P90 APE':>8}")
    for (backend, vendor, metric), (n, med, p90) in summary(checks).items():
        print(f"{backend + '/' + vendor + '/' + metric:28} {n:4d} {100 * med:6.1f}% {100 * p90:7.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
