"""The serving-factor fit (calibrate/fit.py) on NVIDIA's measured DeepSeek-V3 runs: each
engine's row keeps the model's MoE costs at the values fitted on every engine's runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpusizer.calibrate.aic import aic_case, read_rows
from gpusizer.calibrate.cases import ServingCase
from gpusizer.calibrate.fit import BOUNDS, FLOOR_FACTORS, SHARED_FACTORS, fit_rows
from gpusizer.calibrate.serving_cv import case_data
from gpusizer.catalog.load import model_catalogue

ROWS = read_rows((Path(__file__).parent / "aic_silicon_sample.csv").read_text(encoding="utf-8"))
# DeepSeek-V3 on one 8×H200 node, 1k/1k at 4, 8 and 16 users, on SGLang and on TensorRT-LLM
IDS = [
    f"dsr1_h200_{engine}_fp8_agg_1024x1024_c{c}_cfg{cfg}"
    for engine, cfg in (("sglang", 81), ("trtllm", 83))
    for c in (4, 8, 16)
]


@pytest.fixture(scope="module")
def rows():  # type: ignore[no-untyped-def]
    known = {e.id for e in model_catalogue()}
    by_id = {r["id"]: r for r in ROWS}
    cases = [aic_case(by_id[i], known) for i in IDS]
    assert all(isinstance(c, ServingCase) for c in cases)
    return fit_rows([case_data(c) for c in cases if isinstance(c, ServingCase)])


def test_engine_rows_hold_the_models_moe_costs_at_the_pooled_fit(rows) -> None:  # type: ignore[no-untyped-def]
    pooled = next(r for r in rows if r.group is None)
    groups = {r.group: r for r in rows if r.group is not None}
    assert set(groups) == {("sglang", "nvidia"), ("tensorrt-llm", "nvidia")}
    for row in groups.values():
        for name in SHARED_FACTORS:
            assert getattr(row.factors, name) == getattr(pooled.factors, name)
    # the engines' own terms are fitted per engine
    sgl, trt = groups[("sglang", "nvidia")].factors, groups[("tensorrt-llm", "nvidia")].factors
    assert sgl.as_tuple() != trt.as_tuple()


def test_host_costs_per_step_and_per_sequence_stay_at_their_floors(rows) -> None:  # type: ignore[no-untyped-def]
    assert set(FLOOR_FACTORS) == {"step_overhead_s", "sequence_overhead_s"}
    for row in rows:
        for name in FLOOR_FACTORS:
            assert getattr(row.factors, name) == BOUNDS[name][0]
        assert row.factors.layer_overhead_s > BOUNDS["layer_overhead_s"][0]  # fixed costs go per layer


def test_prompt_chunk_cost_stays_a_set_up_cost(rows) -> None:  # type: ignore[no-untyped-def]
    lo, hi = BOUNDS["prefill_overhead_s"]
    assert hi <= 0.03
    for row in rows:
        assert lo <= row.factors.prefill_overhead_s <= hi


def test_a_ttft_that_waits_outside_the_engine_is_not_fitted_on() -> None:
    """Llama-3.1-8B's TTFT on TensorRT-LLM (calibrate/aic.TTFT_NOT_FITTED): whatever it
    measured, the fit's residuals are those of a run that printed no TTFT; TPOT still counts."""
    from dataclasses import replace

    from gpusizer.calibrate.fit import START, _residuals

    known = {e.id for e in model_catalogue()}
    row = next(r for r in ROWS if "llama" in r["id"] and r["id"].endswith("1024x128_c8_tp1_epnone_1"))
    case = aic_case(row, known)
    assert isinstance(case, ServingCase) and not case.ttft_fitted
    data = case_data(case)
    assert data.ttft_ms and data.tpot_ms and not data.ttft_fitted
    unprinted = replace(data, ttft_ms=None)
    tenfold = replace(data, ttft_ms=data.ttft_ms * 10)
    assert _residuals([data], START) == _residuals([unprinted], START) == _residuals([tenfold], START)
    assert len(_residuals([data], START)) == 1  # TPOT (aiconfigurator prints no tokens/s)
    assert len(_residuals([replace(data, ttft_fitted=True)], START)) == 2


def test_a_run_whose_throughput_stalls_is_scored_never_fitted(rows) -> None:  # type: ignore[no-untyped-def]
    """A case marked not fitted (calibrate/cases.throughput_stalls) leaves every fitted row as
    it was, however far off its measurements are."""
    from dataclasses import replace

    known = {e.id for e in model_catalogue()}
    by_id = {r["id"]: r for r in ROWS}
    cases = [aic_case(by_id[i], known) for i in IDS]
    data = [case_data(c) for c in cases if isinstance(c, ServingCase)]
    stalled = replace(data[0], case_id="stalled", tpot_ms=(data[0].tpot_ms or 1) * 10, fitted=False)
    with_it = fit_rows([*data, stalled])
    assert [r.factors for r in with_it] == [r.factors for r in rows]
    assert [r.factors for r in fit_rows([*data, replace(stalled, fitted=True)])] != [r.factors for r in rows]
