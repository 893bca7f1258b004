"""Print every calibration case: predicted vs logged per-GPU weights and KV-cache tokens,
the error, and the pass rate against issue #2's targets (weights ±3 %, KV tokens ±7 %).

    .venv/bin/python benchmarks/validate_memory.py

The cases are real vLLM/SGLang start-up logs (tests/golden/vllm_memory_cases.jsonl).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "golden"))

from harness import run_all


def main() -> int:
    checks, skipped = run_all()
    print(f"{'case':58} {'quantity':11} {'logged':>12} {'predicted':>12} {'error':>8}  ok")
    for c in checks:
        flag = ("pass" if c.ok else "FAIL") if c.counted else "info"
        print(
            f"{c.case_id[:58]:58} {c.quantity:11} {c.logged:12,.2f} {c.predicted:12,.2f} "
            f"{100 * c.error:7.1f}%  {flag}  {c.note}"
        )
    for cid, why in skipped:
        print(f"{cid[:58]:58} skipped: {why}")
    for quantity, label in (("weights_gib", "weights ±3 %"), ("kv_tokens", "KV tokens ±7 %")):
        counted = [c for c in checks if c.quantity == quantity and c.counted]
        ok = sum(c.ok for c in counted)
        if counted:
            print(f"{label}: {ok}/{len(counted)} within tolerance ({100 * ok / len(counted):.0f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
