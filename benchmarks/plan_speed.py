"""How long the main job takes: `gpusizer plan` over the whole built-in catalogue, every pick
verified by simulation.

    .venv/bin/python benchmarks/plan_speed.py

Prints wall time, candidates evaluated, simulations run and the cheapest pick for the README
example and the guide's other scenarios (target: the README example in under ~10 s here).
"""

from __future__ import annotations

import time
from typing import Any

from gpusizer.api import plan
from gpusizer.report.plan import hardware_of

CASES: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "deepseek-r1-distill-qwen-32b, 32K, 10 users, TTFT 1 s, 30 tok/s",
        dict(model="deepseek-r1-distill-qwen-32b", context=32768, users=10, ttft_ms=1000, tpot_ms=1000 / 30),
    ),
    (
        "deepseek-r1-distill-qwen-32b, 32K, 10 users (no SLO)",
        dict(model="deepseek-r1-distill-qwen-32b", context=32768, users=10),
    ),
    (
        "deepseek-r1, 32K, 16 users, TTFT 2 s, 20 tok/s",
        dict(model="deepseek-r1", context=32768, users=16, ttft_ms=2000, tpot_ms=50),
    ),
    (
        "deepseek-r1-distill-qwen-32b on a Mac, 8K, 2 users, 10 tok/s",
        dict(model="deepseek-r1-distill-qwen-32b", context=8192, users=2, classes=["apple"], tpot_ms=100),
    ),
)


def main() -> int:
    plan("deepseek-r1-distill-qwen-7b", context=4096, users=1)  # load the catalogues once
    for name, kw in CASES:
        best = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            res = plan(**kw)
            best = min(best, time.perf_counter() - t)
        c = res.picks.cheapest
        pick = "no plan" if c is None else f"{hardware_of(c)}, {c.dep.quant.fmt.key}/KV {c.dep.kv_dtype}"
        print(
            f"{name:62} {best:5.2f} s · {res.searched:5d} candidates · {len(res.accepted):4d} feasible · "
            f"{res.simulations:3d} simulated · {pick}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
