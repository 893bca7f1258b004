"""One deployment under a sweep of loads: a simulated point per request rate (open loop) or
user count (closed loop), what binds each point's decode step, the knee where the SLOs first
fail, and a warning for every run that ended with requests unfinished. Pure: the simulator
runs in process; ``progress`` hears each finished point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpusizer.estimate.roofline import Batch, step_time
from gpusizer.plan.deploy import FitResult
from gpusizer.simulate.run import simulate_deployment

__all__ = ["SimPoint", "SimulateResult", "mean_len", "sim_point", "sim_warning"]


def mean_len(d: Any) -> float:
    """Mean of a LengthDist (fixed: its value; uniform: the midpoint; else its mean)."""
    if d.kind == "uniform":
        return float(d.low + d.high) / 2
    if d.kind == "empirical" and d.values:
        return float(sum(d.values)) / len(d.values)
    return float(d.mean)


@dataclass(frozen=True, kw_only=True)
class SimPoint:
    rate: float | None
    users: int | None
    stats: Any  # gpusizer.simulate.stats.SimStats
    trace: Any = None  # gpusizer.simulate.engine.SimTrace (for plots)
    binds: str = ""  # what bounds a decode step at this point's mean batch and context


@dataclass(frozen=True, kw_only=True)
class SimulateResult:
    fit: FitResult
    points: tuple[SimPoint, ...]
    knee: SimPoint | None  # first point where the SLOs fail (goodput share below 0.95)
    efficiency_row: str
    uncertainty: float | None
    warnings: tuple[str, ...] = ()  # runs that ended with requests unfinished, and what to change
    request_overhead_s: float = 0.0  # the API server's share of each TTFT, outside the trace's steps


def sim_warning(point: SimPoint, requests: int) -> str | None:
    """One sentence when a simulated point ended before every request finished."""
    trace = point.trace
    if trace is None or trace.stopped is None:
        return None
    load = (
        f"{point.rate:g} req/s"
        if point.rate is not None
        else f"{point.users} users"
        if point.users is not None
        else "the trace's load"
    )
    left = trace.unfinished
    if trace.stopped == "max_steps":
        return (
            f"at {load} the simulation stopped after {trace.steps:,} engine steps (its limit) with "
            f"{left:,} of {requests:,} requests unfinished; they count as missed in goodput — simulate "
            "fewer requests (--requests, --duration) or a load this deployment can drain (lower --rate, "
            "fewer --users)"
        )
    return (
        f"at {load} {left:,} of {requests:,} requests never started: a prompt needs more KV blocks than "
        "the whole pool holds; shorten --input-len or give the deployment more KV memory (more GPUs, "
        "--kv-dtype fp8, a smaller --quant)"
    )


def sim_point(
    res: FitResult,
    eff: Any,
    w: Any,
    *,
    rate: float | None,
    n_users: int | None,
    trace_reqs: Any,
    seed: int,
    slo: tuple[float | None, float | None],
    prefix_caching: bool | None,
) -> SimPoint:
    """One load point: the simulation and what binds its mean decode step."""
    dep = res.deployment
    stats, trace = simulate_deployment(
        dep,
        res.estimate,
        eff,
        w,
        trace_requests=trace_reqs,
        seed=seed,
        slo_ttft_s=slo[0] / 1e3 if slo[0] else None,
        slo_tpot_s=slo[1] / 1e3 if slo[1] else None,
        prefix_caching=prefix_caching,
    )
    batch = max(1, round(stats.mean_running))
    ctx = int(mean_len(w.input_len) + mean_len(w.output_len) / 2)
    binds = step_time(dep, Batch(decode=(ctx,) * batch), eff).reason
    return SimPoint(
        rate=None if trace_reqs is not None else rate,
        users=n_users,
        stats=stats,
        trace=trace,
        binds=f"decode step at {batch} running × {ctx:,} tokens: {binds}",
    )
