"""`calibrate`'s fitted rows keep the terms of the row the predictions used: it rescales the
bandwidth and compute fractions only, and a serving engine's fixed per-layer costs are most of
a DeepSeek decode step."""

from __future__ import annotations

import json

from gpusizer.catalog.specs import EfficiencyFactor
from gpusizer.cli.bench_predict import HELD_FACTORS
from gpusizer.cli.calibrate import fit_factors


def _run(run_id: int, measured_tpot: float) -> dict[str, object]:
    efficiency = {
        "row": "sglang/nvidia/any/h200-sxm",
        "engine": "sglang",
        "vendor": "nvidia",
        "gpu_class": "any",
        "gpu": "h200-sxm",
        "bandwidth_fraction": 0.8,
        "compute_fraction": 0.6,
        "step_overhead_s": 1e-5,
        "held": {"layer_overhead_s": 4.6e-5, "mla_layer_overhead_s": 3.5e-5, "moe_compute_fraction": 0.33},
    }
    summary = {
        "completed": 40,
        "tpot_ms": {"p50": measured_tpot},
        "ttft_ms": {"p50": 200.0},
        "predicted": {"efficiency": efficiency, "tpot_ms": {"p50": 12.0}, "ttft_ms": {"p50": 150.0}},
    }
    return {"id": run_id, "summary": json.dumps(summary)}


def test_a_calibrated_row_keeps_the_terms_it_does_not_fit() -> None:
    rows, residuals, refused = fit_factors([_run(1, 10.0), _run(2, 10.4)], "test runs")
    assert not refused and len(residuals) == 2
    (row,) = rows
    factor = EfficiencyFactor.model_validate(row)  # the shape data/efficiency.yaml reads
    assert factor.layer_overhead_s and factor.layer_overhead_s.value == 4.6e-5
    assert factor.mla_layer_overhead_s and factor.mla_layer_overhead_s.value == 3.5e-5
    assert factor.moe_compute_fraction and factor.moe_compute_fraction.value == 0.33
    assert "sglang/nvidia/any/h200-sxm" in factor.layer_overhead_s.source
    # the runs stepped faster than predicted: a higher share of the bandwidth
    assert factor.bandwidth_fraction.value > 0.8


def test_every_held_term_is_a_field_of_an_efficiency_row() -> None:
    assert set(HELD_FACTORS) <= set(EfficiencyFactor.model_fields)
