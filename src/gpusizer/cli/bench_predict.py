"""gpusizer's prediction for a load that was measured: ``bench --predict-model`` stores it
with each point, ``compare`` with a stored run."""

from __future__ import annotations

from typing import Any

from gpusizer.calibrate.replay import FACTOR_NAMES
from gpusizer.errors import BadInputError

__all__ = ["HELD_FACTORS", "predict_point"]

# The efficiency row's terms besides the two `calibrate` rescales (bandwidth and compute
# fraction) and the step overhead it copies: stored with a prediction so a calibrated row keeps
# them (a serving engine's fixed per-layer costs are most of a DeepSeek decode step).
HELD_FACTORS = tuple(
    n for n in FACTOR_NAMES if n not in ("bandwidth_fraction", "compute_fraction", "step_overhead_s")
)


def predict_point(
    model: str,
    gpu: str | None,
    gpus: int | None,
    engine: str | None,
    *,
    concurrency: int | None,
    rate: float | None,
    input_tokens: float,
    output_tokens: int,
    requests: int,
    burstiness: float = 1.0,
) -> dict[str, Any]:
    """gpusizer's simulation of the same load: same concurrency or rate (and burstiness), same
    lengths."""
    from gpusizer.api import efficiency_of, simulate
    from gpusizer.report.simulate import sim_to_dict
    from gpusizer.simulate.workload import LengthDist

    if gpu is None:
        raise BadInputError("--gpu", "the prediction needs the GPU the server runs on")
    res = simulate(
        model,
        gpu,
        rates=(rate,) if rate else (),
        users=(concurrency,) if concurrency else (),
        input_len=LengthDist(mean=max(1, round(input_tokens))),
        output_len=LengthDist(mean=output_tokens),
        requests=min(max(requests, 50), 5000),
        gpus=gpus,
        engine=engine,
        burstiness=burstiness,
    )
    d = sim_to_dict(res)
    result: dict[str, Any] = {
        k: d[k] for k in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "output_tokens_per_s", "requests_per_s")
    }
    dep = res.fit.deployment
    eff, row, _ = efficiency_of(dep)
    result["efficiency"] = {  # what the prediction assumed, so `calibrate` can rescale it
        "row": row,
        "engine": dep.engine,
        "vendor": dep.gpu.vendor,
        "gpu_class": dep.gpu.gpu_class,
        "gpu": dep.gpu.key,
        "bandwidth_fraction": eff.bandwidth_fraction,
        "compute_fraction": eff.compute_fraction,
        "step_overhead_s": eff.step_overhead_s,
        # the row's other terms, which `calibrate` carries over unchanged
        "held": {name: getattr(eff, name) for name in HELD_FACTORS if getattr(eff, name)},  # 0 = absent
    }
    return result
