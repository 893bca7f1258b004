"""Run one published serving case through gpusizer's simulator, recording its steps.

The load is the benchmark's: ``users`` closed-loop clients with no think time (bench_serving
``--max-concurrency``), or every request queued at t = 0 (``--request-rate inf`` without a
cap). Lengths are drawn around the row's measured means — uniform ±75 % for the random
datasets (bench_serving samples lengths below the configured maximum), lognormal with a
standard deviation equal to the mean for ShareGPT — with a fixed seed, so a case always
simulates the same requests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from gpusizer.api import efficiency_of, fit
from gpusizer.calibrate.cases import ServingCase
from gpusizer.calibrate.replay import Recording, record_engine
from gpusizer.engines import engine_spec
from gpusizer.estimate.roofline import Efficiency
from gpusizer.simulate.engine import SimTrace, run_engine
from gpusizer.simulate.run import engine_limits
from gpusizer.simulate.workload import LengthDist, Requests, Workload, sample_requests

__all__ = ["MAX_REQUESTS", "CaseRun", "run_case"]

MAX_REQUESTS = 2048  # the largest published run; enough for steady state


@dataclass(frozen=True, kw_only=True)
class CaseRun:
    case: ServingCase
    recording: Recording
    efficiency: Efficiency  # the catalogue factors the run was recorded with (links included)
    efficiency_row: str
    kv_tokens: int
    max_num_seqs: int
    trace: SimTrace  # the simulator's own run (at the catalogue factors)
    moe: bool  # the model is a mixture of experts


def _lengths(mean: int, dataset: str) -> LengthDist:
    if dataset == "fixed":
        return LengthDist(kind="fixed", mean=mean)
    if dataset == "sharegpt":
        return LengthDist(kind="lognormal", mean=mean, std=mean, low=4, high=max(8, 8 * mean))
    return LengthDist(kind="uniform", low=max(1, round(mean * 0.25)), high=max(2, round(mean * 1.75)))


def run_case(case: ServingCase, seed: int = 0) -> CaseRun:
    """Simulate ``case`` once with the catalogue's factors, keeping the step terms."""
    kwargs = dict(case.fit_kwargs)
    model, gpu = kwargs.pop("model"), kwargs.pop("gpu")
    inp, out = _lengths(case.input_len, case.dataset), _lengths(case.output_len, case.dataset)
    n = min(case.requests, MAX_REQUESTS)
    w = Workload(input_len=inp, output_len=out, users=case.users or 1, requests=n)
    spread = 1 + w.jitter  # fixed lengths are drawn within ±jitter (workload.DEFAULT_JITTER)
    longest = (
        int(
            (inp.mean * spread if inp.kind == "fixed" else inp.high)
            + (out.mean * spread if out.kind == "fixed" else out.high)
        )
        + 2
    )
    res = fit(model, gpu, max_model_len=longest, users=case.users or 1, **kwargs)
    dep = res.deployment
    if case.default_graphs:
        dep = replace(dep, cuda_graph_batches=engine_spec(dep.engine).default_graph_batches)
    eff, row, _ = efficiency_of(dep)
    limits = engine_limits(dep, res.estimate)
    reqs = sample_requests(w, np.random.default_rng(seed))
    if case.users is None:
        reqs = Requests(arrival_s=np.zeros(n), input_len=reqs.input_len, output_len=reqs.output_len)

    def go(model_: object) -> object:
        return run_engine(model_, reqs, limits, closed_users=case.users)  # type: ignore[arg-type]

    rec, trace = record_engine(dep, eff, go)
    if case.warmup:  # closed-loop requests are issued in order: the first ones are the warm-up
        done = rec.completed.copy()
        done[: min(case.warmup, n // 2)] = False
        rec = replace(rec, completed=done)
    return CaseRun(
        case=case,
        recording=rec,
        efficiency=eff,
        efficiency_row=row,
        kv_tokens=res.estimate.kv_cache_tokens,
        max_num_seqs=limits.max_num_seqs,
        trace=trace,
        moe=dep.model.moe is not None,
    )
