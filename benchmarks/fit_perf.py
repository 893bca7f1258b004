"""Fit the llama.cpp efficiency factors from published llama-bench rows, print them as the
YAML rows data/efficiency.yaml carries, and score them leave-one-source-out.

    .venv/bin/python benchmarks/fit_perf.py          # YAML rows + in-sample and LOSO errors
    .venv/bin/python benchmarks/fit_perf.py --cv     # errors only

Rows: tests/golden/perf_cases_llamacpp.jsonl. The fit (tests/golden/llamacpp_fit.py) is one
line ``t = x / η + c`` per GPU group (vendor × class) × metric × weight-type family (Q4_0 as
the general row; K-quants, Q8_0 and F16 as rows with ``weight_formats``). Leave-one-source-out
(a source is a publication: a llama.cpp discussion, a benchmark repository, an issue) fits
without the source and predicts its rows through the same efficiency_for the CLI uses; those
are the figures to quote, not the in-sample ones.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.golden.llamacpp_fit import (
    GroupFit,
    Score,
    breakdown,
    fit,
    ideal_points,
    loso,
    to_factors,
    with_defaults,
)
from tests.golden.perf_harness import FAMILIES, run


def _yaml(fits: Sequence[GroupFit]) -> None:
    for f, row in zip(fits, to_factors(fits), strict=True):
        print(f"  - engine: llamacpp\n    vendor: {row.vendor}\n    gpu_class: {row.gpu_class}")
        if row.weight_formats:
            print(f"    weight_formats: [{', '.join(row.weight_formats)}]")
        for name in ("bandwidth_fraction", "compute_fraction"):
            s = getattr(row, name)
            print(f'    {name}: {{value: {s.value:.3f}, unit: fraction, source: "{s.source}"}}')
        for name in ("step_overhead_s", "prefill_overhead_s"):
            s = getattr(row, name)
            print(f'    {name}: {{value: {s.value:.3e}, unit: s, source: "{s.source}"}}')
        print(
            f"    uncertainty: {row.uncertainty:.3f}  # residual median |error|: "
            f"tg {f.tg.resid:.3f}, pp {f.pp.resid:.3f}"
        )


def _table(title: str, scores: dict[tuple[str, str, str], Score]) -> None:
    print(f"\n{title}")
    print(f"{'metric':6} {'family':7} {'vendor':7} {'n':>4} {'median':>7} {'p90':>7} {'bias':>7}")
    for (m, fam, vendor), s in scores.items():
        print(
            f"{m:6} {fam:7} {vendor:7} {s.n:4d} {100 * s.median:6.1f}% {100 * s.p90:6.1f}% {100 * s.bias:+6.1f}%"
        )


def main(argv: Sequence[str] = ()) -> int:
    points = ideal_points()
    fits = fit(points)
    if "--cv" not in argv:
        print(f"# {len(points)} row × metric points; families: {', '.join(FAMILIES)}")
        _yaml(fits)
    insample, _ = run(factors=with_defaults(to_factors(fits)))
    _table("in-sample (fitted on every source)", breakdown([c for c in insample if c.backend != "vulkan"]))
    cv = loso(points)
    _table("leave-one-source-out (each source predicted by a fit without it)", breakdown(cv))
    print("\nby source (LOSO):")
    for src in sorted({c.source for c in cv}):
        for m in ("pp", "tg"):
            mine = [c for c in cv if c.source == src and c.metric == m]
            if mine:
                errs = sorted(abs(c.error) for c in mine)
                print(
                    f"  {src[:58]:58} {m} n={len(mine):3d} median |error| {100 * errs[len(errs) // 2]:5.1f}%"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
