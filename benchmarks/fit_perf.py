"""Fit the llama.cpp efficiency factors from published llama-bench rows and print them.

    .venv/bin/python benchmarks/fit_perf.py

For each GPU group (vendor × class) and metric the model is ``t = x / η + c`` where x is the
ideal time at peak (bytes / bandwidth for tg, FLOPs / tensor peak for pp) and c a fixed
per-step overhead; η and c come from a least-squares line through the group's rows
(c clamped at ≥ 0). Vulkan rows are left out: gpusizer models the CUDA, Metal and ROCm
backends. The printed values are what data/efficiency.yaml carries.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "golden"))

from perf_harness import load_rows, run

from gpusizer.catalog.load import gpu_catalogue
from gpusizer.catalog.resolve import resolve_gpu
from gpusizer.estimate.roofline import Efficiency


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
        key = (f"{gpu.vendor}/{gpu.gpu_class}", c.metric)
        n = int(r["output_tokens"] if c.metric == "tg" else r["input_tokens"])
        # ideal seconds per step and measured seconds per step
        x = (1 if c.metric == "tg" else n) / c.predicted
        y = (1 if c.metric == "tg" else n) / c.measured
        groups.setdefault(key, []).append((x, y))
    print(f"{'group':24} {'metric':6} {'n':>3} {'eta':>6} {'overhead ms':>12}")
    for (group, metric), pts in sorted(groups.items()):
        xs = np.array([p[0] for p in pts])
        ys = np.array([p[1] for p in pts])
        if len(pts) >= 3 and np.ptp(xs) > 0:
            slope, icpt = np.polyfit(xs, ys, 1)
            if icpt < 0 or slope <= 0:
                slope, icpt = float(np.sum(xs * ys) / np.sum(xs * xs)), 0.0
        else:
            slope, icpt = float(np.median(ys / xs)), 0.0
        print(f"{group:24} {metric:6} {len(pts):3d} {1 / slope:6.3f} {1000 * icpt:12.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
