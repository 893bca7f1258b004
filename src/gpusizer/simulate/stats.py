"""Latency percentiles, throughput and goodput from a simulation trace."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gpusizer.simulate.engine import SimTrace

__all__ = ["Dist", "SimStats", "dist", "summarize"]

PCTS = (50, 90, 95, 99)


@dataclass(frozen=True, kw_only=True)
class Dist:
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float

    def as_ms(self) -> dict[str, float]:
        return {k: round(v * 1e3, 3) for k, v in self.__dict__.items()}


def dist(x: npt.NDArray[np.float64], weights: npt.NDArray[np.float64] | None = None) -> Dist:
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        nan = float("nan")
        return Dist(mean=nan, p50=nan, p90=nan, p95=nan, p99=nan)
    if weights is None:
        q = [float(v) for v in np.percentile(x, PCTS)]
        return Dist(mean=float(x.mean()), p50=q[0], p90=q[1], p95=q[2], p99=q[3])
    order = np.argsort(x)
    xs, ws = x[order], np.asarray(weights, dtype=np.float64)[order]
    cum = np.cumsum(ws) / ws.sum()
    qw = [float(xs[min(int(np.searchsorted(cum, p / 100)), len(xs) - 1)]) for p in PCTS]
    return Dist(mean=float(np.average(xs, weights=ws)), p50=qw[0], p90=qw[1], p95=qw[2], p99=qw[3])


@dataclass(frozen=True, kw_only=True)
class SimStats:
    requests: int
    completed: int
    ttft: Dist
    tpot: Dist
    itl: Dist
    e2e: Dist
    output_tokens_per_s: float
    requests_per_s: float
    goodput_share: float  # of all requests, the share that met every SLO given
    goodput_requests_per_s: float
    preemptions: int
    mean_running: float
    mean_waiting: float
    peak_kv_used: float
    makespan_s: float
    prefix_hit_tokens: int = 0  # prompt tokens served from the prefix cache


def summarize(
    trace: SimTrace,
    *,
    slo_ttft_s: float | None = None,
    slo_tpot_s: float | None = None,
    warmup: int = 0,
    api_s: float = 0.0,
) -> SimStats:
    """Statistics over completed requests; the first ``warmup`` requests (a closed loop's
    synchronized first wave) are left out, as a load test excludes its warm-up. ``api_s``: the
    API server's share of every TTFT and E2E, outside the engine's steps
    (Efficiency.request_overhead_s)."""
    done = ~np.isnan(trace.finish_s)
    done[: min(warmup, len(done))] = False
    n = len(trace.finish_s) - min(warmup, len(trace.finish_s))
    ttft = trace.first_token_s[done] - trace.arrival_s[done] + api_s
    e2e = trace.finish_s[done] - trace.arrival_s[done] + api_s
    outs = trace.output_tokens[done]
    multi = outs > 1
    tpot = (trace.finish_s[done][multi] - trace.first_token_s[done][multi]) / (outs[multi] - 1)
    start = float(np.nanmin(trace.arrival_s[done])) if done.any() else 0.0
    end = float(np.nanmax(trace.finish_s)) if done.any() else start
    span = max(end - start, 1e-12)
    ok = np.ones(int(done.sum()), dtype=bool)
    if slo_ttft_s is not None:
        ok &= ttft <= slo_ttft_s
    if slo_tpot_s is not None:
        per_req_tpot = np.where(
            outs > 1, (trace.finish_s[done] - trace.first_token_s[done]) / np.maximum(outs - 1, 1), 0.0
        )
        ok &= per_req_tpot <= slo_tpot_s
    dec = trace.step_decoding > 0
    dt = trace.step_dt_s
    busy = dt.sum() if dt.size else 0.0
    return SimStats(
        requests=n,
        completed=int(done.sum()),
        ttft=dist(ttft),
        tpot=dist(tpot),
        itl=dist(dt[dec], trace.step_decoding[dec].astype(np.float64)),
        e2e=dist(e2e),
        output_tokens_per_s=float(outs.sum()) / span,
        requests_per_s=float(done.sum()) / span,
        goodput_share=float(ok.sum()) / n if n else 0.0,
        goodput_requests_per_s=float(ok.sum()) / span,
        preemptions=trace.preemptions,
        mean_running=float(np.average(trace.step_running, weights=dt)) if busy else 0.0,
        mean_waiting=float(np.average(trace.step_waiting, weights=dt)) if busy else 0.0,
        peak_kv_used=float(trace.step_kv_used.max()) if trace.step_kv_used.size else 0.0,
        makespan_s=span,
        prefix_hit_tokens=trace.prefix_hit_tokens,
    )
