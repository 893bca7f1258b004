"""aiconfigurator's measured rows (tests/golden/aic_silicon_sample.csv, copied from
aiconfigurator-core 0.12.0) as gpusizer serving cases: what is simulated and what is not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpusizer.calibrate.aic import (
    HEADLINE_SETS,
    TTFT_GROWTH_LIMIT,
    TTFT_NOT_FITTED,
    aic_case,
    read_rows,
    set_of,
    ttft_output_growth,
)
from gpusizer.calibrate.cases import ServingCase, Skipped
from gpusizer.catalog.load import model_catalogue

ROWS = read_rows((Path(__file__).parent / "aic_silicon_sample.csv").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def mapped() -> dict[str, ServingCase | Skipped]:
    known = {e.id for e in model_catalogue()}
    return {r["id"]: aic_case(r, known) for r in ROWS}


def _concurrency(row: dict[str, str]) -> int:
    m = re.search(r"silicon_concurrency=(\d+)", row["silicon_data_source"])
    assert m
    return int(m.group(1))


def test_every_row_is_in_a_headline_set() -> None:
    assert len(ROWS) == 282
    assert {set_of(r) for r in ROWS} == set(HEADLINE_SETS.values())


def test_rows_recording_more_gpus_than_the_node_are_refused(mapped: dict[str, ServingCase | Skipped]) -> None:
    wide = [r for r in ROWS if int(r["tp_size"]) * max(1, int(r["attention_dp_size"] or 1)) > 8]
    assert len(wide) == 15  # DeepSeek-V3 TensorRT-LLM configs 181 and 183
    for r in wide:
        out = mapped[r["id"]]
        assert isinstance(out, Skipped), r["id"]
        assert "8-GPU" in out.reason


def test_the_refused_layouts_measure_the_same_as_the_8_gpu_run() -> None:
    """Why configs 181/183 are refused rather than simulated on 64 GPUs: each TPOT equals
    config 83's (TP 8 on one 8×H200 node) at the same lengths and concurrency within 3 %."""
    tp8 = {
        (r["isl"], r["osl"], _concurrency(r)): float(r["silicon_tpot_ms"])
        for r in ROWS
        if r["id"].endswith("_cfg83")
    }
    wide = [r for r in ROWS if re.search(r"_cfg18[13]$", r["id"])]
    assert wide
    for r in wide:
        ref = tp8[(r["isl"], r["osl"], _concurrency(r))]
        assert abs(float(r["silicon_tpot_ms"]) / ref - 1) < 0.03, r["id"]


def test_modelled_rows_run_on_one_node_with_the_recorded_load(
    mapped: dict[str, ServingCase | Skipped],
) -> None:
    cases = [c for c in mapped.values() if isinstance(c, ServingCase)]
    assert len(cases) == 267
    for c in cases:
        kw = c.fit_kwargs
        assert kw["gpus"] <= kw["gpus_per_node"] == 8
        assert c.warmup == 2 * c.users and c.requests == 10 * c.users
    by_id = {c.case_id: c for c in cases}
    tp8 = by_id["dsr1_h200_trtllm_fp8_agg_1024x1024_c16_cfg83"]
    assert (tp8.fit_kwargs["gpus"], tp8.fit_kwargs["tp"], tp8.users) == (8, 8, 16)
    assert tp8.fit_kwargs["quant"] == "fp8-block"
    # NVIDIA's FP8 Llama checkpoints carry an FP8 KV cache (kv_cache_quant_algo FP8)
    fp8_llama = [c for c in cases if c.engine == "vllm"]
    assert fp8_llama and all(c.fit_kwargs.get("kv_dtype") == "fp8" for c in fp8_llama)


def test_the_sets_whose_ttft_is_not_fitted_are_those_whose_ttft_grows_with_the_output() -> None:
    """An engine starts a new prompt at its next step whatever the output length; only where the
    measured TTFT grows with the output (a wait for completions) is it kept out of the fit."""
    growth = ttft_output_growth(ROWS)
    assert set(growth) == set(HEADLINE_SETS.values())
    assert {name for name, g in growth.items() if g > TTFT_GROWTH_LIMIT} == set(TTFT_NOT_FITTED)
    assert growth["Llama-3.1-8B · H100 · TensorRT-LLM"] > 1.5
    assert all(0.8 < g < 1.2 for name, g in growth.items() if name not in TTFT_NOT_FITTED)


def test_a_set_whose_ttft_waits_is_scored_on_ttft_but_not_fitted_on_it(
    mapped: dict[str, ServingCase | Skipped],
) -> None:
    cases = [c for c in mapped.values() if isinstance(c, ServingCase)]
    waits = [c for c in cases if "Llama-3.1-8B" in c.source]
    assert waits and all(not c.ttft_fitted and c.measured.ttft_ms for c in waits)
    assert all(c.ttft_fitted for c in cases if "Llama-3.1-8B" not in c.source)
