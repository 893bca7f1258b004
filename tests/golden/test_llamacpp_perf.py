"""Step-time model against published llama-bench rows (tests/golden/perf_cases_llamacpp.jsonl).

The llama.cpp efficiency factors were fitted on these same rows (benchmarks/fit_perf.py), so
these are calibration errors, not out-of-sample predictions; they guard the model's shape:
one bandwidth fraction and one per-token floor per GPU group × weight-type family must explain
every GPU's generation speed. The out-of-sample (leave-one-source-out) figures are held by
test_llamacpp_cv.py.
"""

from __future__ import annotations

from tests.golden.perf_harness import run, summary

CHECKS, SKIPPED = run()


def test_generation_speed_within_10_percent_median_on_cuda_and_metal() -> None:
    s = summary(CHECKS)
    for backend, vendor in (("cuda", "nvidia"), ("metal", "apple")):
        n, median, p90 = s[(backend, vendor, "tg")]
        assert n >= 20
        assert median <= 0.10, (backend, median)
        assert p90 <= 0.20, (backend, p90)


def test_prompt_speed_median_within_20_percent_on_cuda_and_metal() -> None:
    s = summary(CHECKS)
    for backend, vendor in (("cuda", "nvidia"), ("metal", "apple")):
        n, median, _ = s[(backend, vendor, "pp")]
        assert n >= 20
        assert median <= 0.20, (backend, median)


def test_every_mapped_row_is_checked_or_skipped_with_a_reason() -> None:
    assert len(CHECKS) >= 100
    assert all(why for _, why in SKIPPED)
