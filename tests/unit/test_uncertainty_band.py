"""The ± band perf and simulate print: the factor row's leave-one-source-out TPOT error, on
its MoE runs alone for a MoE model (data/efficiency.yaml moe_uncertainty)."""

from __future__ import annotations

import pytest

from gpusizer.api import perf
from gpusizer.catalog.load import efficiency_factors


def _row(engine: str, vendor: str):  # type: ignore[no-untyped-def]
    return next(
        f for f in efficiency_factors() if (f.engine, f.vendor, f.gpu_class) == (engine, vendor, "any")
    )


@pytest.mark.parametrize("engine", ["vllm", "sglang", "tensorrt-llm"])
def test_every_serving_row_carries_a_band_for_moe_models(engine: str) -> None:
    row = _row(engine, "nvidia")
    assert row.uncertainty is not None and row.moe_uncertainty is not None
    assert 0 < row.uncertainty < 1 and 0 < row.moe_uncertainty < 2


def test_a_moe_model_gets_its_rows_moe_band_and_a_dense_one_the_rows_band() -> None:
    row = _row("tensorrt-llm", "nvidia")
    deepseek = perf("deepseek-r1", "H200", tp=8, engine="tensorrt-llm", batches=(4,))
    dense = perf("llama-3.1-8b-instruct", "H100", engine="tensorrt-llm", batches=(4,))
    assert deepseek.efficiency_row == dense.efficiency_row == "tensorrt-llm/nvidia/any"
    assert deepseek.uncertainty == row.moe_uncertainty
    assert dense.uncertainty == row.uncertainty
    # DeepSeek left out of the fit is predicted worse than NVIDIA's dense 8B: the band says so
    assert deepseek.uncertainty is not None and dense.uncertainty is not None
    assert deepseek.uncertainty > dense.uncertainty
