"""Fit TensorRT-LLM's efficiency factors on its published max-throughput tables and print
the median / 90th-percentile error per GPU class.

    .venv/bin/python benchmarks/fit_serving.py

Grid search over (bandwidth fraction, compute fraction, step overhead) minimising the
median absolute percentage error of output tokens/s over tests/golden/perf_cases_trtllm.jsonl
(TensorRT-LLM v0.17 perf-overview tables; FP8 and FP16; Llama 3.1 8B/70B/405B, Mixtral).
"""

from __future__ import annotations

import itertools
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "golden"))

from serving_harness import mdape, run

from gpusizer.estimate.roofline import Efficiency

BW_GRID = (0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8)
CF_GRID = (0.3, 0.4, 0.5, 0.6, 0.7)
OVH_GRID = (2e-4, 1e-3, 2e-3, 4e-3)


def main() -> int:
    best = None
    for bw, cf, ovh in itertools.product(BW_GRID, CF_GRID, OVH_GRID):
        checks, _ = run(Efficiency(bandwidth_fraction=bw, compute_fraction=cf, step_overhead_s=ovh))
        score = mdape(checks)
        if best is None or score < best[0]:
            best = (score, bw, cf, ovh, checks)
    assert best is not None
    score, bw, cf, ovh, checks = best
    print(f"bandwidth_fraction {bw}  compute_fraction {cf}  step_overhead_s {ovh}  MdAPE {100 * score:.1f}%")
    for cls in sorted({c.gpu_class for c in checks}):
        errs = sorted(abs(c.error) for c in checks if c.gpu_class == cls)
        print(
            f"  {cls:12} n={len(errs):3d}  MdAPE {100 * statistics.median(errs):5.1f}%  "
            f"P90 {100 * errs[round(0.9 * (len(errs) - 1))]:5.1f}%"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
