"""Steady-state serving throughput against TensorRT-LLM's published max-throughput tables.

The tensorrt-llm factors in data/efficiency.yaml are fitted on *served* runs of another
publisher (GPUStack's trtllm-serve runs in tests/golden/serving_cases.jsonl,
benchmarks/cv_serving.py), never on these trtllm-bench tables: this is an out-of-sample check
on an independent source (20.9 % median error when the serving fit landed). The bound was
25 % while these very rows were the fit (in-sample, 19.6 %); out of sample it is 30 %.
"""

from __future__ import annotations

from tests.golden.serving_harness import mdape, run

CHECKS, SKIPPED = run()


def test_serving_throughput_median_error_within_30_percent_out_of_sample() -> None:
    assert len(CHECKS) >= 50
    assert mdape(CHECKS) <= 0.30


def test_kv_limited_batches_are_smaller_on_smaller_gpus() -> None:
    by = {c.case_id: c for c in CHECKS}
    h200 = by["trtllm-v0.17-llama8b-h200-tp1-1000-1000"]
    h100 = by["trtllm-v0.17-llama8b-h100-tp1-1000-1000"]
    assert h200.batch > h100.batch  # 141 GB holds more sequences than 80 GB
    assert h200.predicted > h100.predicted and h200.measured > h100.measured
