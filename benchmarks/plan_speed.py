"""How long the main job takes: `gpusizer plan` over the whole built-in catalogue.

    .venv/bin/python benchmarks/plan_speed.py

Prints wall time and the number of candidates evaluated for the README example and issue
#5's two examples (target: the default search in under 3 s here, simulations included).
"""

from __future__ import annotations

import time

from gpusizer.planning import plan

CASES = (
    (
        "deepseek-r1-distill-qwen-32b, 32K, 10 users, TTFT 1 s, 30 tok/s",
        dict(model="deepseek-r1-distill-qwen-32b", context=32768, users=10, ttft_ms=1000, tpot_ms=1000 / 30),
    ),
    (
        "deepseek-r1-distill-qwen-32b, 32K, 10 users (no SLO)",
        dict(model="deepseek-r1-distill-qwen-32b", context=32768, users=10),
    ),
    ("deepseek-r1, 32K, 16 users (no SLO)", dict(model="deepseek-r1", context=32768, users=16)),
)


def main() -> int:
    plan("deepseek-r1-distill-qwen-7b", context=4096, users=1)  # load the catalogues once
    for name, kw in CASES:
        best = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            res = plan(**kw)  # type: ignore[arg-type]
            best = min(best, time.perf_counter() - t)
        print(
            f"{name:60} {best:5.2f} s · {res.searched:5d} candidates · {len(res.accepted):4d} feasible · "
            f"{len(res.simulated)} simulated"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
