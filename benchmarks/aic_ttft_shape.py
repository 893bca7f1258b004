"""How the measured TTFT of aiconfigurator's runs scales: with the prompt, or with the request.

A closed loop of c users with fixed lengths, once staggered, sends a new request every
E2E / c seconds (E2E = TTFT + TPOT × (output − 1), the request's whole time). An engine with a
free slot starts the new prompt at its next step, so TTFT is a prompt's prefill plus at most a
step or two, whatever the output length. If instead each new request waits for the next one
to finish (a server whose slots are all held, one freed per completion), TTFT is E2E / c plus
the prefill, and it grows with the output length at a fixed prompt.

This script reads only the measurements (no model, no fit) and prints, per set and
concurrency, the median of TTFT ÷ (E2E / c) and of TTFT − E2E / c, and the median ratio of TTFT
at the longest output to TTFT at the shortest, at the same prompt and concurrency. A ratio near
1 with TTFT ≫ E2E / c is an engine starting prompts at once; TTFT − E2E / c of a prefill's size
with TTFT growing with the output is the wait for a completion.

    python benchmarks/aic_ttft_shape.py          # the headline rows (vendored or the wheel's)
    python benchmarks/aic_ttft_shape.py --all-sets
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aic_rows import headline_rows, load_rows

from gpusizer.calibrate.aic import (
    TTFT_GROWTH_LIMIT,
    TTFT_NOT_FITTED,
    concurrency_of,
    set_of,
    ttft_growths,
    ttft_output_growth,
)


@dataclass(frozen=True)
class Run:
    set_name: str
    users: int
    osl: int
    ttft_ms: float
    tpot_ms: float

    @property
    def stagger_ms(self) -> float:
        """E2E / c: the interval between requests of a staggered closed loop."""
        return (self.ttft_ms + self.tpot_ms * (self.osl - 1)) / self.users


def runs_of(rows: list[dict[str, str]]) -> list[Run]:
    out = []
    for r in rows:
        users = concurrency_of(r)
        try:
            ttft, tpot = float(r["silicon_ttft_ms"]), float(r["silicon_tpot_ms"])
            osl = int(r["osl"])
        except (KeyError, ValueError):
            continue
        if r.get("mode") != "agg" or users < 1 or osl < 2:
            continue
        out.append(Run(set_of(r), users, osl, ttft, tpot))
    return out


def shape_table(
    runs: list[Run], growths: dict[tuple[str, str, str, int], float]
) -> list[tuple[str, int, int, float, float, float | None]]:
    """(set, concurrency, runs, median TTFT ÷ (E2E/c), median TTFT − E2E/c in ms, median TTFT
    growth from the shortest to the longest output at the same prompt, layout and users)."""
    groups: dict[tuple[str, int], list[Run]] = defaultdict(list)
    for r in runs:
        groups[(r.set_name, r.users)].append(r)
    table = []
    for (name, users), rs in sorted(groups.items()):
        ratio = statistics.median(r.ttft_ms / r.stagger_ms for r in rs)
        gap = statistics.median(r.ttft_ms - r.stagger_ms for r in rs)
        growth = [g for (s, _isl, _tp, c), g in growths.items() if (s, c) == (name, users)]
        table.append((name, users, len(rs), ratio, gap, statistics.median(growth) if growth else None))
    return table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--all-sets", action="store_true", help="every aggregated set, not only the headline ones"
    )
    args = ap.parse_args()
    rows = load_rows() or load_rows(vendored=True) or []
    if not args.all_sets:
        rows = headline_rows(rows)
    print(
        f"{'set':40} {'users':>5} {'runs':>4} {'TTFT÷(E2E/c)':>13} {'TTFT−E2E/c':>11} {'TTFT long÷short output':>23}"
    )
    for name, users, n, ratio, gap, growth in shape_table(runs_of(rows), ttft_growths(rows)):
        g = f"{growth:.2f}×" if growth is not None else "–"
        print(f"{name:40} {users:5d} {n:4d} {ratio:13.2f} {gap:9.0f} ms {g:>23}")
    print(f"\nper set, the median TTFT growth (above {TTFT_GROWTH_LIMIT}×: TTFT scored, not fitted on)")
    for name, growth in sorted(ttft_output_growth(rows).items()):
        kept = "not fitted (calibrate/aic.py TTFT_NOT_FITTED)" if name in TTFT_NOT_FITTED else "fitted"
        print(f"{name:40} {growth:5.2f}×  {kept}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
