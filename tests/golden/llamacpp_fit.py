"""Fit llama.cpp's efficiency factors per GPU group × weight-type family from llama-bench rows,
and score them leave-one-source-out. Shared by benchmarks/fit_perf.py (which prints the YAML
rows for data/efficiency.yaml) and tests/golden/test_llamacpp_cv.py.

    rows ─▶ run(ideal η = 1, c = 0) ─▶ points (x = ideal time, y = measured time)
         ─▶ per (group, family, metric): line y = x / η + c  ──▶ EfficiencyFactor rows
                                                               (general + weight_formats)
    leave one source out: fit on the others, predict its rows through efficiency_for — the
    same row choice the CLI makes — and keep the errors.

Model per group (vendor × class: "nvidia/consumer", "apple/any", …) and metric: ``t = x / η + c``
with x the time at peak (weight + KV bytes / bandwidth for tg, FLOPs / tensor peak for pp), c a
fixed cost (per generated token for tg, per prompt chunk for pp). η and c come from a
least-squares line through the rows (c ≥ 0, η ≤ 1; under ``MIN_LINE`` rows: the median ratio,
c = 0).

Families (perf_harness.FAMILIES): the general row of a group is fitted on its Q4_0 rows (the
type llama.cpp's scoreboards use) when it has ``MIN_LINE`` of them, else on its F16 rows (the
path without dequantisation), else on all of its rows — F16 and mixed rows on the int8-peak
scale of the general row. A family row (K-quants, Q8_0, F16) is fitted on the group's rows
of that family when there are ``MIN_LINE`` (pp: a line; tg: η alone, at the general row's
per-token floor, which is the engine's launch and sampling cost, not the weight type's); with
fewer, it is the general row scaled by
the family's median time ratio against it — over the group's own rows, or where the group has
none, over the vendor's other groups, compared on the int8-peak scale (see ``Point.x_int8``).
A family with fewer than ``MIN_FAMILY`` rows for the vendor gets no row: the general one
applies. Vulkan rows are left out: gpusizer models the CUDA, Metal and ROCm backends."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache, partial
from typing import Any

import numpy as np

from gpusizer.catalog.load import efficiency_factors, gpu_catalogue
from gpusizer.catalog.resolve import resolve_gpu
from gpusizer.catalog.specs import EfficiencyFactor, Sourced
from gpusizer.estimate.roofline import Efficiency, compute_peak_flops
from tests.golden.perf_harness import FAMILIES, PerfCheck, p90, run, source_of

MIN_LINE = 4  # rows needed for a line (slope and intercept); fewer: the median ratio
MIN_FAMILY = 2  # rows of a family (over the vendor's groups) before it gets rows of its own: one run alone may be a broken one
VENDORS = ("nvidia", "apple", "amd")


@dataclass(frozen=True)
class Point:
    """One measured row × metric at ideal efficiency: x = ideal time, y = measured time (s)."""

    case_id: str
    source: str
    group: str
    family: str
    metric: str  # pp | tg
    x: float
    y: float
    gpu: str = ""
    dtype: str = ""

    @property
    def x_int8(self) -> float:
        """x at the GPU's int8 tensor peak (pp; tg is bandwidth: x). NVIDIA's FP16 tensor rate
        with FP16 accumulation, which cuBLAS GEMMs get, is half its int8 rate on every class,
        while the catalogue's GeForce fp16 figure is the half-rate FP32-accumulate one; on this
        scale a family's time ratio carries from one class to another."""
        return self.x / _peak_ratio(self.gpu, self.dtype) if self.metric == "pp" else self.x


@dataclass(frozen=True)
class Line:
    """Fitted ``y = x / eta + c`` with its provenance."""

    eta: float
    c: float
    n: int
    resid: float  # median |relative error| on the rows it was fitted on
    how: str  # "line" | "ratio" | "scaled from …"


def ideal_points() -> list[Point]:
    """Every scored row × metric at η = 1, c = 0 (Vulkan rows left out)."""
    ideal = {
        v: Efficiency(bandwidth_fraction=1.0, compute_fraction=1.0, step_overhead_s=0.0) for v in VENDORS
    }
    checks, _ = run(ideal)
    return [_point(c) for c in checks if c.backend != "vulkan"]


def _point(c: PerfCheck) -> Point:
    per = 1 if c.metric == "tg" else c.tokens
    return Point(
        c.case_id, c.source, c.group, c.family, c.metric, per / c.predicted, per / c.measured, c.gpu, c.dtype
    )


@cache
def _peak_ratio(gpu_key: str, dtype: str) -> float:
    """int8 tensor peak / the peak ``dtype`` math gets on this GPU (1 where they agree)."""
    gpu = resolve_gpu(gpu_key, gpu_catalogue()).gpu
    return compute_peak_flops(gpu, "int8")[0] / compute_peak_flops(gpu, dtype)[0]


def fit_line(pts: Sequence[Point], floor: float | None = None) -> Line:
    """The least-squares line; with ``floor`` the intercept is fixed there and only η is fitted
    (the median of x / (y − floor))."""
    xs = np.array([p.x for p in pts])
    ys = np.array([p.y for p in pts])
    if floor is not None:
        slope = float(np.median((ys - floor) / xs))
        slope = max(slope, 1.0)
        resid = statistics.median(float(abs(x * slope + floor - y) / y) for x, y in zip(xs, ys, strict=True))
        return Line(1 / slope, floor, len(pts), resid, "η at the general row's floor")
    slope, icpt, how = float(np.median(ys / xs)), 0.0, "ratio"
    if len(pts) >= MIN_LINE and np.ptp(xs) > 0:
        s, i = (float(v) for v in np.polyfit(xs, ys, 1))
        if i >= 0 and s >= 1:  # η = 1/slope must stay a fraction, c a cost
            slope, icpt, how = s, i, "line"
    slope = max(slope, 1.0)
    resid = statistics.median(float(abs(x * slope + icpt - y) / y) for x, y in zip(xs, ys, strict=True))
    return Line(1 / slope, icpt, len(pts), resid, how)


def _ratio(pts: Iterable[Point], line: Line) -> float:
    """Median measured time / the time ``line`` gives at the int8 peak, over ``pts``."""
    return statistics.median(p.y / (p.x_int8 / line.eta + line.c) for p in pts)


def _group_peak_ratio(points: Sequence[Point], group: str, dtype: str) -> float:
    """Median int8 / ``dtype`` peak over the GPUs of ``group`` in the data."""
    gpus = sorted({p.gpu for p in points if p.group == group})
    return statistics.median(_peak_ratio(g, dtype) for g in gpus)


@dataclass(frozen=True)
class GroupFit:
    group: str  # "nvidia/consumer"
    family: str | None  # None: the general row
    tg: Line
    pp: Line


def _as_int8(pts: Sequence[Point]) -> list[Point]:
    """``pts`` with x at the int8 peak (the general row's scale)."""
    return [replace(p, x=p.x_int8, dtype="int8") for p in pts]


def fit(points: Sequence[Point]) -> list[GroupFit]:
    """General rows per group, then family rows (direct, or scaled across the vendor's groups)."""
    by: dict[tuple[str, str, str], list[Point]] = {}
    for p in points:
        by.setdefault((p.group, p.family, p.metric), []).append(p)
    groups = sorted({p.group for p in points})
    general: dict[str, GroupFit] = {}
    for g in groups:
        lines = {}
        for m in ("tg", "pp"):
            own = next(
                (
                    pts
                    for pts in (by.get((g, "q4_0", m), []), _as_int8(by.get((g, "f16", m), [])))
                    if len(pts) >= MIN_LINE
                ),
                _as_int8([p for p in points if p.group == g and p.metric == m]),
            )
            if own:
                lines[m] = fit_line(own)
        if len(lines) == 2:
            general[g] = GroupFit(g, None, lines["tg"], lines["pp"])
    out = list(general.values())
    for fam in FAMILIES:
        for g, base in general.items():
            vendor = g.split("/")[0]
            lines = {}
            for m in ("tg", "pp"):
                own = by.get((g, fam, m), [])
                if len(own) >= MIN_LINE:
                    # a decode step's fixed cost (launches, sampling) is the engine's, not the
                    # weight type's: family tg rows keep the general row's floor
                    lines[m] = fit_line(own, base.tg.c if m == "tg" else None)
                    continue
                # the general row scaled by the family's time ratio against it: over the
                # group's own few rows, else over the vendor's other groups (median of groups)
                others = [h for h in general if h != g and h.split("/")[0] == vendor and (h, fam, m) in by]
                ratios = (
                    [_ratio(own, getattr(base, m))]
                    if own
                    else [_ratio(by[(h, fam, m)], getattr(general[h], m)) for h in others]
                )
                evidence = sum(
                    len(v) for (h, f, mm), v in by.items() if (f, mm) == (fam, m) and h.startswith(vendor)
                )
                if not ratios or evidence < MIN_FAMILY:
                    continue
                r = statistics.median(ratios)
                b = getattr(base, m)
                dtypes = {p.dtype for p in points if p.family == fam}
                k = _group_peak_ratio(points, g, dtypes.pop()) if m == "pp" and len(dtypes) == 1 else 1.0
                how = (
                    f"scaled ×{k / r:.3f} by {len(own)} rows"
                    if own
                    else f"scaled ×{k / r:.3f} from {len(ratios)} other groups"
                )
                line = Line(b.eta * k / r, b.c * r, len(own), b.resid, how)
                if own:
                    resid = statistics.median(abs(p.x / line.eta + line.c - p.y) / p.y for p in own)
                    line = replace(line, resid=max(resid, b.resid))  # a few rows cannot vouch for less
                lines[m] = line
            if lines:
                out.append(GroupFit(g, fam, lines.get("tg", base.tg), lines.get("pp", base.pp)))
    return out


def _src(line: Line, metric: str) -> str:
    what = "tg" if metric == "tg" else "pp"
    if line.how.startswith("scaled") and "other groups" in line.how:
        return f"fit_perf.py: the general row's, {line.how} of this family's {what} rows"
    if line.how.startswith("scaled"):
        return f"fit_perf.py: the general row's, {line.how.replace('rows', what + ' rows')}"
    return f"fit_perf.py: {line.n} {what} rows ({line.how})"


def to_factors(fits: Sequence[GroupFit]) -> list[EfficiencyFactor]:
    """The fitted groups as efficiency.yaml rows (llama.cpp only)."""
    rows = []
    for f in fits:
        vendor, cls = f.group.split("/")
        step = f.tg.c
        rows.append(
            EfficiencyFactor(
                engine="llamacpp",
                vendor=vendor,
                gpu_class=cls,
                weight_formats=FAMILIES[f.family] if f.family else None,
                bandwidth_fraction=Sourced(
                    value=round(f.tg.eta, 3), unit="fraction", source=_src(f.tg, "tg")
                ),
                compute_fraction=Sourced(value=round(f.pp.eta, 3), unit="fraction", source=_src(f.pp, "pp")),
                step_overhead_s=Sourced(
                    value=float(f"{step:.3e}"), unit="s", source="fit_perf.py: tg intercept"
                ),
                # the step floor is paid by a prefill step too: the rest of the pp intercept
                prefill_overhead_s=Sourced(
                    value=float(f"{max(0.0, f.pp.c - step):.3e}"),
                    unit="s",
                    source="fit_perf.py: pp intercept",
                ),
                uncertainty=round(max(f.tg.resid, f.pp.resid), 3),
            )
        )
    return rows


def with_defaults(rows: Sequence[EfficiencyFactor]) -> list[EfficiencyFactor]:
    """Fitted llama.cpp rows plus efficiency.yaml's non-llama.cpp rows (the fallbacks)."""
    return [*rows, *(f for f in efficiency_factors() if f.engine != "llamacpp")]


def _from(source: str, row: dict[str, Any]) -> bool:
    return source_of(row) == source


def loso(points: Sequence[Point] | None = None) -> list[PerfCheck]:
    """Leave one source out: for each source, fit on the others and predict its rows."""
    pts = list(points) if points is not None else ideal_points()
    out: list[PerfCheck] = []
    for src in sorted({p.source for p in pts}):
        factors = with_defaults(to_factors(fit([p for p in pts if p.source != src])))
        checks, _ = run(factors=factors, keep=partial(_from, src))
        out.extend(c for c in checks if c.backend != "vulkan")
    return out


@dataclass(frozen=True)
class Score:
    n: int
    median: float  # median |error|
    p90: float  # 90th percentile |error|
    bias: float  # median signed error (predicted − measured) / measured


def score(checks: Iterable[PerfCheck]) -> Score | None:
    errs = [c.error for c in checks]
    if not errs:
        return None
    absd = [abs(e) for e in errs]
    return Score(len(errs), statistics.median(absd), p90(absd), statistics.median(errs))


def breakdown(checks: Sequence[PerfCheck]) -> dict[tuple[str, str, str], Score]:
    """(metric, family, vendor) → Score, with "all" rows for each level."""
    out: dict[tuple[str, str, str], Score] = {}
    for m in ("pp", "tg"):
        for fam in ("all", "q4_0", *FAMILIES):
            for vendor in ("all", *VENDORS):
                s = score(
                    c
                    for c in checks
                    if c.metric == m and fam in ("all", c.family) and vendor in ("all", c.vendor)
                )
                if s:
                    out[(m, fam, vendor)] = s
    return out
