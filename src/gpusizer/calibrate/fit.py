"""Fit the step-time factors on recorded serving cases, and score them out of sample.

The factors of one efficiency row (engine × GPU vendor) are fitted by robust least squares
on the log errors of median TPOT, median TTFT and output tokens/s over the row's training
cases, each case re-timed by :func:`replay.retime` (no re-simulation). Thin groups are held
to a pooled fit over every training case by a weak prior, so a group with two cases cannot
run away, and a group with none in a fold falls back to the pooled row — which is what a
user on an engine × vendor the fit never saw would get.

Cross-validation (:func:`cross_validate`) fits on all cases but one group (a published page,
or a model family) and predicts the held-out cases; every case is predicted exactly once,
by factors that never saw its group. Pure: numbers in, numbers out (SciPy's optimiser).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from gpusizer.calibrate.replay import FACTOR_NAMES, Factors, Prediction, Recording, retime

__all__ = [
    "BOUNDS",
    "FLOOR_FACTORS",
    "CaseData",
    "FittedRow",
    "Scored",
    "cross_validate",
    "fit_rows",
    "predict",
    "summarize_errors",
]

FloatArray = npt.NDArray[np.float64]

# Search bounds of each factor: fractions of peak in (lo, hi), fixed costs in seconds.
BOUNDS: dict[str, tuple[float, float]] = {
    "bandwidth_fraction": (0.15, 0.95),
    "kv_bandwidth_fraction": (0.10, 0.95),
    "compute_fraction": (0.10, 0.90),
    "moe_compute_fraction": (0.02, 0.90),
    "step_overhead_s": (1e-5, 0.05),
    # a prompt chunk's set-up (request state, chunk metadata) is milliseconds, not the prefill
    # itself: left free to 0.2 s, DeepSeek's slow TensorRT-LLM prefill parked 0.12 s here, which
    # Llama-3.1-8B's steps then paid per chunk (its TPOT predicted 2.5× too slow out of sample)
    "prefill_overhead_s": (1e-5, 0.03),
    "layer_overhead_s": (1e-7, 1e-3),
    "moe_layer_overhead_s": (1e-7, 2e-3),
    "sequence_layer_overhead_s": (1e-9, 2e-5),
    "sequence_overhead_s": (1e-8, 1e-3),
    "prefill_moe_layer_overhead_s": (1e-7, 2e-3),
    "mla_layer_overhead_s": (1e-7, 1e-3),
    # eager PyTorch launches of one layer's kernels: tens of microseconds to a few milliseconds
    "eager_layer_overhead_s": (1e-6, 3e-3),
    # the API server's share of a TTFT (HTTP, chat template, tokenisation, the first token's way
    # back): a few to some tens of milliseconds, paid once per request and by no engine step
    "request_overhead_s": (1e-5, 0.2),
}
START = Factors(
    bandwidth_fraction=0.7,
    kv_bandwidth_fraction=0.5,
    compute_fraction=0.5,
    moe_compute_fraction=0.3,
    step_overhead_s=1e-3,
    prefill_overhead_s=5e-3,
    layer_overhead_s=2e-5,
    moe_layer_overhead_s=2e-5,
    sequence_layer_overhead_s=5e-7,
    sequence_overhead_s=2e-5,
    prefill_moe_layer_overhead_s=1e-4,
    mla_layer_overhead_s=2e-5,
    eager_layer_overhead_s=2e-4,
    request_overhead_s=1e-2,
)
# TTFT is mostly queueing and the API server's share: it counts, a quarter as much as the speed
# terms. A burst (every request sent at once) measures the API server and the client as much as
# the engine; a concurrency-capped run is the load a deployment is sized for. Bursts count a
# quarter. Both were 0.5; at 0.25 the leave-one-source-out figures moved (benchmarks/cv_serving.py,
# 621 runs): TPOT 19 -> 15 %, online 16 -> 12 %, DeepSeek 23 -> 21 %, TTFT 34 -> 29 %, bursts'
# TPOT 27 -> 25 %. Chosen among 0.1 / 0.25 / 0.5 by those same figures: model selection on this
# data (with bursts at 0.1 DeepSeek reached 20 % but the bursts' own TPOT rose to 34 %).
TTFT_WEIGHT = 0.25
BURST_WEIGHT = 0.25
PRIOR_WEIGHT = 0.3  # pull of a group's factors towards the pooled fit (per factor, in logit/log units)
# The extra fixed costs of MoE layers (routing, token permutation, grouped GEMMs at small M,
# the eager MoE prefill) are fitted once, on every engine's runs (the pooled fit), and held in
# each engine's row: fitted per engine they were identified by whichever few MoE runs an engine
# had (TensorRT-LLM's by four GPUStack DeepSeek bursts that ran ~2x slower than NVIDIA's runs).
# Held, the leave-one-source-out TPOT error fell on DeepSeek (55 -> 52 %) and its p90 on all
# runs (149 -> 118 %). Those bursts were slow mostly because trtllm-serve's default CUDA graphs
# leave most of their decode batches eager: with that modelled (eager_layer_overhead_s on the
# cases' eager steps) DeepSeek-V3 on TensorRT-LLM left out went from 125 % to 30 %. Holding MLA's
# cost as well cost SGLang its DeepSeek fit (FlashMLA is faster than the pooled engines' MLA
# path; DeepSeek-R1 on 8xB200 at one user 61 % slow in sample), so MLA stays per engine.
SHARED_FACTORS = ("moe_layer_overhead_s", "prefill_moe_layer_overhead_s", "moe_compute_fraction")
# Held at their floors (BOUNDS), not fitted: a per-step and a per-sequence host cost. Fitted on
# every run they land on those floors anyway (the per-layer and per-sequence-per-layer terms
# carry the fixed costs), but a fold without NVIDIA's 177 Llama-3.1-8B TensorRT-LLM runs raised
# them to 1.4-1.8 ms and 30 us: they soaked up what DeepSeek-V3's 61 layers cost per layer and
# what the GPUStack bursts of 1,000 streams cost per sequence, and predicted that dense set
# 1.5x slow. Held, that set left out went from 56 to 40 % TPOT error (benchmarks/aic_compare.py).
# The engines' overlapped schedulers (SGLang's, TensorRT-LLM's) hide a host cost per step.
FLOOR_FACTORS = ("step_overhead_s", "sequence_overhead_s")


@dataclass(frozen=True, kw_only=True)
class CaseData:
    """A recorded case with what it is scored on and grouped by."""

    case_id: str
    group: tuple[str, str]  # (engine, vendor): the efficiency row it uses
    source: str
    family: str
    band: str
    deepseek: bool
    online: bool
    recording: Recording
    tpot_ms: float | None
    ttft_ms: float | None
    output_tps: float | None
    # a run with speculative decoding: scored, never fitted on (see fit_rows)
    speculative: bool = False
    # False: TTFT scored, not fitted on (a wait outside the engine: calibrate/aic.TTFT_NOT_FITTED)
    ttft_fitted: bool = True
    # False: scored, never fitted on (its throughput stalls: calibrate/cases.throughput_stalls)
    fitted: bool = True
    # False: an engine build older than the factors describe (calibrate/cases.CURRENT_RELEASES):
    # scored in its own slice, never fitted on
    current_release: bool = True
    moe: bool = False  # a mixture-of-experts model (scored into its row's moe_uncertainty)
    # one measurement series: the source's runs of one engine on one GPU (serving_cv.series_of),
    # the group of the leave-one-series-out pass; "" where not recorded
    series: str = ""


@dataclass(frozen=True, kw_only=True)
class FittedRow:
    group: tuple[str, str] | None  # None: the pooled fallback row
    factors: Factors
    cases: int


@dataclass(frozen=True, kw_only=True)
class Scored:
    case: CaseData
    prediction: Prediction
    row: tuple[str, str] | None

    def error(self, metric: str) -> float | None:
        """(predicted − measured) / measured, or None where not measured."""
        measured = {"tpot": self.case.tpot_ms, "ttft": self.case.ttft_ms, "otps": self.case.output_tps}[
            metric
        ]
        pred = {
            "tpot": self.prediction.tpot_s * 1e3,
            "ttft": self.prediction.ttft_s * 1e3,
            "otps": self.prediction.output_tokens_per_s,
        }[metric]
        if not measured or not math.isfinite(pred):
            return None
        return pred / measured - 1


def _to_x(f: Factors) -> FloatArray:
    out = []
    for name, v in zip(FACTOR_NAMES, f.as_tuple(), strict=True):
        lo, hi = BOUNDS[name]
        v = min(max(v, lo * 1.0001), hi * 0.9999)
        out.append(math.log((v - lo) / (hi - v)))  # logit inside the bounds
    return np.asarray(out)


def _from_x(x: FloatArray) -> Factors:
    vals = []
    for name, xi in zip(FACTOR_NAMES, x, strict=True):
        lo, hi = BOUNDS[name]
        vals.append(lo + (hi - lo) / (1 + math.exp(-float(np.clip(xi, -30, 30)))))
    return Factors.of(vals)


def _residuals(cases: Sequence[CaseData], f: Factors) -> list[float]:
    res: list[float] = []
    for c in cases:
        p = retime(c.recording, f)
        k = 1.0 if c.online else BURST_WEIGHT
        for measured, pred, w in (
            (c.tpot_ms, p.tpot_s * 1e3, 1.0),
            (c.output_tps, p.output_tokens_per_s, 1.0),
            (c.ttft_ms if c.ttft_fitted else None, p.ttft_s * 1e3, TTFT_WEIGHT),
        ):
            if measured and math.isfinite(pred) and pred > 0:
                res.append(k * w * math.log(pred / measured))
    return res


def _fit_one(cases: Sequence[CaseData], start: Factors, prior: Factors | None) -> Factors:
    """Robust least squares from ``start``; FLOOR_FACTORS stay at their lower bounds. With a
    ``prior`` (the pooled row) the factors are pulled towards it and SHARED_FACTORS are held
    at its values."""
    from scipy.optimize import least_squares

    floors = {n: BOUNDS[n][0] for n in FLOOR_FACTORS}
    x0 = _to_x(replace(start if prior is None else prior, **floors))
    xp = _to_x(prior) if prior is not None else None
    held = {FACTOR_NAMES.index(n) for n in FLOOR_FACTORS}
    if prior is not None:
        held |= {FACTOR_NAMES.index(n) for n in SHARED_FACTORS}
    free = np.array([i for i in range(len(FACTOR_NAMES)) if i not in held])

    def full(xf: FloatArray) -> FloatArray:
        x = x0.copy()
        x[free] = xf
        return x

    def fun(xf: FloatArray) -> FloatArray:
        r = _residuals(cases, _from_x(full(xf)))
        if xp is not None:
            r.extend(PRIOR_WEIGHT * (xf - xp[free]))
        return np.asarray(r)

    sol = least_squares(fun, x0[free], loss="soft_l1", f_scale=0.3, max_nfev=60, diff_step=1e-3)
    fitted = replace(_from_x(full(sol.x)), **floors)  # exact, not via the logit
    if prior is None:
        return fitted
    return replace(fitted, **{n: getattr(prior, n) for n in SHARED_FACTORS})


def fit_rows(cases: Sequence[CaseData], min_cases: int = 3) -> list[FittedRow]:
    """A pooled row over every case, then one row per (engine, vendor) with ≥ ``min_cases``,
    held to the pooled one. (Rows per weight-format family as well — FP8 block-scaled, MXFP4,
    BF16 — were tried and did not lower the leave-one-family-out TPOT error: 47 % vs 45 %.)

    Runs with speculative decoding are left out of every fit and only scored: the draft's
    own per-pass costs are not a fitted term, and fitted on, four such runs moved the shared
    MoE/MLA costs enough to raise the DeepSeek leave-one-source-out TPOT error from 39 to 48 %."""
    cases = [c for c in cases if not c.speculative and c.fitted and c.current_release]
    pooled = _fit_one(cases, START, None)
    rows = [FittedRow(group=None, factors=pooled, cases=len(cases))]
    groups: dict[tuple[str, str], list[CaseData]] = {}
    for c in cases:
        groups.setdefault(c.group, []).append(c)
    for g, items in sorted(groups.items()):
        if len(items) >= min_cases:
            rows.append(FittedRow(group=g, factors=_fit_one(items, pooled, pooled), cases=len(items)))
    return rows


def predict(rows: Sequence[FittedRow], case: CaseData) -> Scored:
    by = {r.group: r for r in rows}
    row = by.get(case.group) or by[None]
    return Scored(case=case, prediction=retime(case.recording, row.factors), row=row.group)


def cross_validate(
    cases: Sequence[CaseData],
    key: Callable[[CaseData], str],
    progress: Callable[[str], None] | None = None,
) -> list[Scored]:
    """Leave one ``key`` group out at a time; every case predicted by a fit without its group."""
    out: list[Scored] = []
    for held in sorted({key(c) for c in cases}):
        train = [c for c in cases if key(c) != held]
        test = [c for c in cases if key(c) == held]
        if progress:
            progress(held)
        rows = fit_rows(train)
        out.extend(predict(rows, c) for c in test)
    return out


def summarize_errors(scored: Iterable[Scored], metric: str) -> dict[str, float] | None:
    """n, median |error|, p90 |error| and median signed error (bias) of ``metric``."""
    errs = [e for s in scored if (e := s.error(metric)) is not None]
    if not errs:
        return None
    absd = sorted(abs(e) for e in errs)
    p90 = absd[min(len(absd) - 1, math.ceil(0.9 * len(absd)) - 1)]
    return {
        "n": float(len(errs)),
        "median_abs": statistics.median(absd),
        "p90_abs": p90,
        "bias": statistics.median(errs),
    }
