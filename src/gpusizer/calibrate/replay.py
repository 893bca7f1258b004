"""Simulate a published run once, then re-time it under any efficiency factors.

Fitting factors by re-simulating every run for every trial value would take hours. It is
not needed: in the loads the calibration rows use — a closed loop with no think time, or
every request sent at t = 0 — the scheduler's decisions depend only on which step
finished, never on how long a step took. So the sequence of batches is fixed by the
engine limits, and only the step durations change with the factors. :func:`record` runs
the simulator once and keeps, per step, the roofline's factor-free terms (seconds of
compute at peak FLOP/s, of weight and KV reads at peak bandwidth, of communication, whether
it prefilled); :func:`retime` turns them into step times for a factor vector in a few
vectorised operations and reads TTFT, TPOT and output tokens/s off the re-timed steps. A
test holds the re-timed figures to the simulator's own at the recorded factors.

Only the step ends at a request's events (arrival, first token, finish) are read, so runs of
steps between events are re-timed as one: :attr:`Recording.segments` cuts the steps at every
event and wherever a step's compute and memory terms stop growing linearly (a decode batch's
KV reads and attention FLOPs grow by the same amount each step), and keeps each run's sums
and its first and last rows. The compute-or-memory maximum of a run is then exact from its
ends (a linear difference changes sign at most once), and 7.7 million recorded steps of the
calibration runs re-time as 0.3 million runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from gpusizer.estimate.roofline import Efficiency, StepModel, build_step_model

__all__ = ["FACTOR_NAMES", "Factors", "Prediction", "Recording", "record_engine", "retime", "step_time"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

FACTOR_NAMES = (
    "bandwidth_fraction",
    "kv_bandwidth_fraction",
    "compute_fraction",
    "moe_compute_fraction",
    "step_overhead_s",
    "prefill_overhead_s",
    "layer_overhead_s",
    "moe_layer_overhead_s",
    "sequence_layer_overhead_s",
    "sequence_overhead_s",
    "prefill_moe_layer_overhead_s",
    "mla_layer_overhead_s",
    "eager_layer_overhead_s",
    "request_overhead_s",
)


@dataclass(frozen=True, kw_only=True)
class Factors:
    """The fitted terms of one efficiency row (estimate/roofline.Efficiency's fields)."""

    bandwidth_fraction: float
    kv_bandwidth_fraction: float
    compute_fraction: float
    moe_compute_fraction: float
    step_overhead_s: float
    prefill_overhead_s: float
    layer_overhead_s: float
    moe_layer_overhead_s: float
    sequence_layer_overhead_s: float
    sequence_overhead_s: float
    prefill_moe_layer_overhead_s: float
    mla_layer_overhead_s: float
    eager_layer_overhead_s: float
    request_overhead_s: float

    def as_tuple(self) -> tuple[float, ...]:
        return tuple(float(getattr(self, n)) for n in FACTOR_NAMES)

    @classmethod
    def of(cls, values: Any) -> Factors:
        return cls(**{n: float(v) for n, v in zip(FACTOR_NAMES, values, strict=True)})

    @classmethod
    def from_efficiency(cls, eff: Efficiency) -> Factors:
        values = {n: getattr(eff, n) for n in FACTOR_NAMES}
        values["kv_bandwidth_fraction"] = eff.kv_bandwidth_fraction or eff.bandwidth_fraction
        values["moe_compute_fraction"] = eff.moe_compute_fraction or eff.compute_fraction
        return cls(**values)

    def apply(self, eff: Efficiency) -> Efficiency:
        return replace(eff, **{n: getattr(self, n) for n in FACTOR_NAMES})


@dataclass(frozen=True, kw_only=True)
class Recording:
    """Per-step factor-free terms of one simulated run, and where each request's events fell.

    ``*_step`` arrays index the step at whose end the event happened (-1: before the first
    step, i.e. at t = 0)."""

    # one row per step: FLOPs / peak FLOP/s (all but the routed experts'), weight bytes / peak
    # bandwidth, KV bytes / peak bandwidth, communication seconds, sequences in the step
    # (decodes + prefill chunks), the routed experts' FLOPs / peak FLOP/s
    terms: FloatArray
    prefills: FloatArray  # prompt chunks in the step
    eager: FloatArray  # 1 where the step is a decode step without a CUDA graph (StepModel.eager)
    layers: int
    moe_layers: int
    mla_layers: int
    arrival_step: IntArray
    first_step: IntArray
    finish_step: IntArray
    output_tokens: IntArray
    completed: npt.NDArray[np.bool_] = field(repr=False)

    @cached_property
    def segments(self) -> Segments:
        return _segments(self)


# columns of Recording.terms whose maximum (compute against memory) makes a step's time non-linear
_BUSY = (0, 5, 1, 2)  # compute, routed-expert compute | weight reads, KV reads
LINEAR_REL_TOL = 1e-9  # a step continues a run when its busy terms are this close to the line


@dataclass(frozen=True, kw_only=True)
class Segments:
    """Runs of consecutive steps with no request event inside and busy terms linear in the
    step index (see the module's docstring). ``*_seg`` index the run at whose end an event
    happened, plus one (0: t = 0)."""

    steps: FloatArray  # steps in the run
    # column sums: the busy columns (_BUSY), communication, sequences, prompt chunks, eager
    # steps, steps with a prompt chunk
    sums: FloatArray
    first: FloatArray  # busy columns (_BUSY) of the run's first step
    last: FloatArray  # ... and of its last
    arrival_seg: IntArray
    first_seg: IntArray
    finish_seg: IntArray


def _segments(rec: Recording) -> Segments:
    n = len(rec.terms)
    cut = np.zeros(n + 1, dtype=bool)  # cut[i]: a run starts at step i
    cut[0] = cut[n] = True
    for ev in (rec.arrival_step, rec.first_step, rec.finish_step):
        cut[ev[ev >= 0] + 1] = True
    busy = rec.terms[:, _BUSY]
    if n >= 3:  # steps i - 1, i, i + 1 off one line: the run cannot go on past step i
        bend = busy[2:] - 2 * busy[1:-1] + busy[:-2]
        off = (np.abs(bend) > LINEAR_REL_TOL * (np.abs(busy[1:-1]) + 1e-30)).any(axis=1)
        cut[2:n][off] = True
    starts = np.flatnonzero(cut[:n])
    ends = np.append(starts[1:], n) - 1
    cols = np.column_stack(
        [busy, rec.terms[:, 3:5], rec.prefills, rec.eager, (rec.prefills > 0).astype(np.float64)]
    )
    sums = np.add.reduceat(cols, starts, axis=0) if n else np.zeros((0, cols.shape[1]))
    # step -> its run, plus one; the last entry for an event at t = 0 (step -1)
    run_of = np.append(np.cumsum(cut[:n]), 0)

    def seg(steps: IntArray) -> IntArray:
        return np.asarray(run_of[steps], dtype=np.int64)

    return Segments(
        steps=(ends - starts + 1).astype(np.float64),
        sums=sums,
        first=busy[starts],
        last=busy[ends],
        arrival_seg=seg(rec.arrival_step),
        first_seg=seg(rec.first_step),
        finish_seg=seg(rec.finish_step),
    )


@dataclass(frozen=True, kw_only=True)
class Prediction:
    tpot_s: float  # median over requests, as bench_serving's "Median TPOT"
    ttft_s: float  # median
    output_tokens_per_s: float


class _RecordingModel(StepModel):
    """A StepModel that evaluates the roofline at unit factors, keeps the terms and returns
    the step time under the real factors ``real``."""

    def __init__(self, base: StepModel, real: Efficiency) -> None:
        # fractions of peak at 1, fixed costs at 0: the terms come out in seconds at peak
        unit = Factors.of(1.0 if n.endswith("fraction") else 0.0 for n in FACTOR_NAMES).apply(real)
        fields = {k: getattr(base, k) for k in base.__dataclass_fields__}
        fields["eff"] = unit
        super().__init__(**fields)
        object.__setattr__(self, "_real", Factors.from_efficiency(real))
        object.__setattr__(self, "_rows", [])

    def seconds(
        self,
        tokens: int,
        rows: int,
        decode_ctx: float,
        prefill_kv: float,
        prefill_work: float,
        prefills: int,
        window_ctx: float | None = None,
        window_work: float | None = None,
    ) -> float:
        c, _m, comm, _o, _f, w, kv, e = self.parts(
            tokens, rows, decode_ctx, prefill_kv, prefill_work, prefills, window_ctx, window_work
        )
        bw = self.bandwidth_bps
        eager = float(self.eager(rows, prefills))
        row = (c - e, w / bw, kv / bw, comm, float(rows), e, float(prefills), eager)
        self._rows.append(row)  # type: ignore[attr-defined]
        shape = (self.num_layers, self.moe_layer_total, self.mla_layers)
        return step_time(row, shape, self._real)  # type: ignore[attr-defined]


def step_time(row: tuple[float, ...], shape: tuple[int, int, int], f: Factors) -> float:
    """One step's duration from its recorded factor-free terms ``row`` (compute but the routed
    experts', weight reads, KV reads — seconds at peak —, communication seconds, sequences,
    routed-expert compute, prompt chunks, 1 if run without a CUDA graph) under factors ``f``;
    ``shape`` is (layers, MoE layers, MLA layers). Scalars: the simulator calls it every step."""
    c, w, kv, comm, rows, e, prefills, eager = row
    layers, moe, mla = shape
    busy = max(
        c / f.compute_fraction + e / f.moe_compute_fraction,
        w / f.bandwidth_fraction + kv / f.kv_bandwidth_fraction,
    )
    return (
        busy
        + comm
        + f.step_overhead_s
        + layers * f.layer_overhead_s
        + moe * f.moe_layer_overhead_s
        + mla * f.mla_layer_overhead_s
        + rows * (layers * f.sequence_layer_overhead_s + f.sequence_overhead_s)
        + prefills * f.prefill_overhead_s
        + (moe * f.prefill_moe_layer_overhead_s if prefills > 0 else 0.0)
        + eager * (layers * f.eager_layer_overhead_s)
    )


def record_engine(dep: Any, eff: Efficiency, run: Any) -> tuple[Recording, Any]:
    """Run ``run(step_model)`` (a closure over ``simulate.engine.run_engine``) with a recording
    step model; returns the recording and the simulator's own trace."""
    model = _RecordingModel(build_step_model(dep, eff), eff)
    trace = run(model)
    rows = model._rows  # type: ignore[attr-defined]
    terms = np.array([r[:6] for r in rows], dtype=np.float64).reshape(-1, 6)
    pre = np.array([r[6] for r in rows], dtype=np.float64)
    eager = np.array([r[7] for r in rows], dtype=np.float64)
    ends = trace.step_end_s

    def step_of(times: FloatArray) -> IntArray:
        idx = np.searchsorted(ends, np.nan_to_num(times, nan=np.inf), side="left")
        idx = np.where(times <= 0.0, -1, idx)
        return np.asarray(np.minimum(idx, len(ends) - 1), dtype=np.int64)

    done = ~np.isnan(trace.finish_s)
    rec = Recording(
        terms=terms,
        prefills=pre,
        eager=eager,
        layers=model.num_layers,
        moe_layers=model.moe_layer_total,
        mla_layers=model.mla_layers,
        arrival_step=step_of(trace.arrival_s),
        first_step=step_of(trace.first_token_s),
        finish_step=step_of(trace.finish_s),
        output_tokens=trace.output_tokens.astype(np.int64),
        completed=done,
    )
    return rec, trace


def _run_times(seg: Segments, shape: tuple[int, int, int], f: Factors) -> FloatArray:
    """Durations of the recorded runs of steps (:class:`Segments`) under factors ``f``: the
    sum of :func:`step_time` over each run's steps."""
    layers, moe, mla = shape
    s = seg.sums
    inv = np.array([1 / f.compute_fraction, 1 / f.moe_compute_fraction])
    inv_mem = np.array([1 / f.bandwidth_fraction, 1 / f.kv_bandwidth_fraction])
    sum_c = s[:, :2] @ inv
    sum_m = s[:, 2:4] @ inv_mem
    # compute minus memory time at the run's first and last step; linear in between
    d0 = seg.first[:, :2] @ inv - seg.first[:, 2:] @ inv_mem
    d1 = seg.last[:, :2] @ inv - seg.last[:, 2:] @ inv_mem
    busy = np.where((d0 >= 0) & (d1 >= 0), sum_c, sum_m)
    cross = (d0 > 0) != (d1 > 0)
    if cross.any():  # the sum of max(0, d_i) over the run's steps, d_i on the line from d0 to d1
        k, a, b = seg.steps[cross], d0[cross], d1[cross]
        slope = (b - a) / np.maximum(k - 1, 1)
        at = -a / np.where(slope == 0, 1, slope)  # step index where d crosses 0
        lo = np.where(a > 0, 0.0, np.floor(at) + 1)  # first and last step with d > 0
        hi = np.where(a > 0, np.ceil(at) - 1, k - 1)
        lo, hi = np.clip(lo, 0, k - 1), np.clip(hi, 0, k - 1)
        m = np.maximum(hi - lo + 1, 0)
        positive = m * a + slope * (lo + hi) * m / 2
        busy[cross] = sum_m[cross] + np.maximum(positive, 0)
    fixed = (
        f.step_overhead_s
        + layers * f.layer_overhead_s
        + moe * f.moe_layer_overhead_s
        + mla * f.mla_layer_overhead_s
    )
    out: FloatArray = (
        busy
        + s[:, 4]
        + seg.steps * fixed
        + s[:, 5] * (layers * f.sequence_layer_overhead_s + f.sequence_overhead_s)
        + s[:, 6] * f.prefill_overhead_s
        + s[:, 8] * (moe * f.prefill_moe_layer_overhead_s)
        + s[:, 7] * (layers * f.eager_layer_overhead_s)
    )
    return out


def _median(x: FloatArray) -> float:
    """np.median of a 1-d array without NaNs, at a fraction of its call overhead (the fit
    takes two medians per run per trial)."""
    n = len(x)
    if n % 2:
        return float(np.partition(x, n // 2)[n // 2])
    lo, hi = np.partition(x, (n // 2 - 1, n // 2))[n // 2 - 1 : n // 2 + 1]
    return float(lo + hi) / 2


def retime(rec: Recording, f: Factors) -> Prediction:
    """TTFT, TPOT and output tokens/s of the recorded run under factors ``f``."""
    seg = rec.segments
    dt = _run_times(seg, (rec.layers, rec.moe_layers, rec.mla_layers), f)
    ends = np.concatenate([[0.0], np.cumsum(dt)])  # ends[j + 1]: end of run j; ends[0]: t = 0
    ok = rec.completed
    arrival = ends[seg.arrival_seg[ok]]
    first = ends[seg.first_seg[ok]]
    finish = ends[seg.finish_seg[ok]]
    outs = rec.output_tokens[ok]
    multi = outs > 1
    tpot = (finish[multi] - first[multi]) / (outs[multi] - 1)
    span = max(float(finish.max() - arrival.min()), 1e-12) if ok.any() else 1e-12
    return Prediction(
        tpot_s=_median(tpot) if tpot.size else float("nan"),
        # the API server's own share of every TTFT, outside the steps (Efficiency.request_overhead_s)
        ttft_s=_median(first - arrival) + f.request_overhead_s if ok.any() else float("nan"),
        output_tokens_per_s=float(outs.sum()) / span,
    )
