"""Fit the llama.cpp efficiency factors from published llama-bench rows and print them as
the YAML that data/efficiency.yaml carries.

    .venv/bin/python benchmarks/fit_perf.py

Per GPU group (vendor × class) and metric the model is ``t = x / η + c``: x is the ideal
time at peak (bytes / bandwidth for tg, FLOPs / tensor peak for pp), c a fixed overhead
(per generated token for tg, per prompt for pp). η and c come from a least-squares line
through the group's rows (c ≥ 0, η ≤ 1; groups with fewer than 4 rows get the median ratio
and c = 0). Vulkan rows are left out: gpusizer models the CUDA, Metal and ROCm backends.
The residual median |error| of each group becomes its ± uncertainty.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "golden"))

from perf_harness import load_rows, run

from gpusizer.catalog.load import gpu_catalogue
from gpusizer.catalog.resolve import resolve_gpu
from gpusizer.estimate.roofline import Efficiency


def _line(pts: list[tuple[float, float]]) -> tuple[float, float]:
    xs = np.array([p[0] for p in pts])
    ys = np.array([p[1] for p in pts])
    if len(pts) >= 4 and np.ptp(xs) > 0:
        slope, icpt = (float(v) for v in np.polyfit(xs, ys, 1))
        if icpt >= 0 and slope >= 1:  # η = 1/slope must stay a fraction
            return slope, icpt
    return float(np.median(ys / xs)), 0.0


def main() -> int:
    ideal = {
        v: Efficiency(bandwidth_fraction=1.0, compute_fraction=1.0, step_overhead_s=0.0)
        for v in ("nvidia", "apple", "amd")
    }
    checks, _ = run(ideal)
    rows = {r["case_id"]: r for r in load_rows()}
    groups: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for c in checks:
        r = rows[c.case_id]
        if "vulkan" in str(r.get("engine_backend", "")).lower():
            continue
        gpu = resolve_gpu(r["gpu_key"], gpu_catalogue()).gpu
        cls = gpu.gpu_class if gpu.vendor == "nvidia" else "any"
        n = int(r["output_tokens"] if c.metric == "tg" else r["input_tokens"])
        per = 1 if c.metric == "tg" else n
        groups.setdefault((f"{gpu.vendor}/{cls}", c.metric), []).append((per / c.predicted, per / c.measured))
    fitted: dict[str, dict[str, tuple[float, float, float, int]]] = {}
    for (group, metric), pts in sorted(groups.items()):
        slope, icpt = _line(pts)
        resid = statistics.median(abs((x * slope + icpt) - y) / y for x, y in pts)
        fitted.setdefault(group, {})[metric] = (1 / slope, icpt, resid, len(pts))
    for group, m in fitted.items():
        vendor, cls = group.split("/")
        tg = m.get("tg")
        pp = m.get("pp")
        if not tg or not pp:
            continue
        print(f"  - engine: llamacpp\n    vendor: {vendor}\n    gpu_class: {cls}")
        print(
            f'    bandwidth_fraction: {{value: {tg[0]:.3f}, unit: fraction, source: "fit_perf.py: {tg[3]} tg rows"}}'
        )
        print(
            f'    compute_fraction: {{value: {pp[0]:.3f}, unit: fraction, source: "fit_perf.py: {pp[3]} pp rows"}}'
        )
        print(f'    step_overhead_s: {{value: {tg[1]:.3e}, unit: s, source: "fit_perf.py: tg intercept"}}')
        print(f'    prefill_overhead_s: {{value: {pp[1]:.3e}, unit: s, source: "fit_perf.py: pp intercept"}}')
        print(
            f"    uncertainty: {max(tg[2], pp[2]):.3f}  # residual median |error|: tg {tg[2]:.3f}, pp {pp[2]:.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
