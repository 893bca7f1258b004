"""Simulator speed: 10,000 requests (1,024 in / 256 out, 64 concurrent users) on one core.

    .venv/bin/python benchmarks/simulate_speed.py

Prints simulated requests per second and steps per second (issue #4's target: the whole
run in under 3 s here).
"""

from __future__ import annotations

import time

import numpy as np

from gpusizer.api import fit
from gpusizer.catalog.load import efficiency_factors
from gpusizer.estimate.perf import efficiency_for
from gpusizer.estimate.roofline import build_step_model
from gpusizer.simulate.engine import EngineLimits, run_engine
from gpusizer.simulate.workload import LengthDist, Workload, sample_requests


def main() -> int:
    res = fit("deepseek-r1-distill-qwen-7b", "H100", max_model_len=4096, users=64)
    dep = res.deployment
    eff, _ = efficiency_for(
        efficiency_factors(), dep.engine, dep.gpu.vendor, None, gpu_class=dep.gpu.gpu_class
    )
    model = build_step_model(dep, eff)
    st = res.estimate.settings
    limits = EngineLimits(
        max_num_batched_tokens=st.max_num_batched_tokens,
        max_num_seqs=st.max_num_seqs,
        block_size=st.block_size,
        kv_blocks=res.estimate.kv_cache_tokens // st.block_size,
    )
    w = Workload(input_len=LengthDist(mean=1024), output_len=LengthDist(mean=256), users=64, requests=10_000)
    req = sample_requests(w, np.random.default_rng(0))
    best = float("inf")
    steps = 0
    for _ in range(3):
        t0 = time.perf_counter()
        trace = run_engine(model, req, limits, closed_users=64)
        best = min(best, time.perf_counter() - t0)
        steps = len(trace.step_dt_s)
    print(
        f"10,000 requests, {steps:,} steps: {best:.2f} s (best of 3) · "
        f"{10_000 / best:,.0f} simulated requests/s · {steps / best:,.0f} steps/s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
