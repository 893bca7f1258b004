"""Golden tests against real, published vLLM start-up logs (tests/golden/README.md).

Targets from issue #2: per-GPU weights within ±3 % and KV-cache tokens within ±7 % of the
logged values on at least 90 % of the pure-vLLM cases that started and name their GPU.
"""

from __future__ import annotations

import pytest

from tests.golden.harness import load_cases, run_all

CHECKS, SKIPPED = run_all()


def _rate(quantity: str) -> tuple[int, int]:
    counted = [c for c in CHECKS if c.quantity == quantity and c.counted]
    return sum(c.ok for c in counted), len(counted)


def test_weights_within_3_percent_on_90_percent() -> None:
    ok, n = _rate("weights_gib")
    assert n >= 8
    assert ok / n >= 0.9, [
        f"{c.case_id}: {100 * c.error:.1f}%" for c in CHECKS if c.quantity == "weights_gib"
    ]


def test_kv_tokens_within_7_percent_on_90_percent() -> None:
    ok, n = _rate("kv_tokens")
    assert n >= 8
    assert ok / n >= 0.9, [f"{c.case_id}: {100 * c.error:.1f}%" for c in CHECKS if c.quantity == "kv_tokens"]


def test_every_case_is_read_or_excluded_with_a_reason() -> None:
    inputs, rows = load_cases()
    assert {s["case_id"] for s in inputs} <= set(rows)
    assert all(why for _, why in SKIPPED)


@pytest.mark.parametrize("check", [c for c in CHECKS if not c.counted], ids=lambda c: c.case_id)
def test_informational_cases_stay_plausible(check) -> None:  # type: ignore[no-untyped-def]
    # Cases outside the pass/fail set (SGLang, GPU not stated) must still be within 2x.
    assert 0.5 < check.predicted / check.logged < 2.0
