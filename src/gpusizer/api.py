"""The Python API: thin, typed entry points — ``fit``, ``perf``, ``simulate``, ``plan``.

Each resolves what the user named (``gpusizer.resolve``: a catalogue model, config.json,
model directory or GGUF; a GPU name, file or numbers; a calibration profile), then hands
plain values to the pure core (``plan.deploy`` → estimators → simulator → ``plan.pipeline``).
The CLI and the web app call these functions, so every front end shows the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from gpusizer.catalog.load import interconnects
from gpusizer.catalog.specs import GpuSpec
from gpusizer.domain.options import DeploymentOptions, SearchOptions, WorkloadOptions, checked, parse_field
from gpusizer.domain.scenario import SPEC_TPOT_UNCERTAINTY, Deployment, Usage
from gpusizer.engines import engine_spec
from gpusizer.errors import BadInputError
from gpusizer.estimate.perf import PerfRow, perf_rows
from gpusizer.plan.deploy import FitResult, ResolvedModel, deploy, efficiency_of, engine_numbers
from gpusizer.plan.pipeline import (
    DEFAULT_HEADROOM,
    DEFAULT_MAX_SIMULATIONS,
    PlanResult,
    Progress,
    check_plan_inputs,
    run_plan,
)
from gpusizer.plan.sweep import SimPoint, SimulateResult, sim_point, sim_warning
from gpusizer.resolve import (
    catalogue_model,
    load_efficiency_file,
    model_from_config,
    resolve_gpu_spec,
    resolve_model_spec,
)
from gpusizer.simulate.workload import DEFAULT_JITTER

if TYPE_CHECKING:
    from gpusizer.estimate.roofline import Efficiency
    from gpusizer.simulate.workload import LengthDist, Requests, Workload

__all__ = [
    "FitResult",
    "PerfResult",
    "PlanResult",
    "ResolvedModel",
    "SimPoint",
    "SimulateResult",
    "catalogue_model",
    "efficiency_of",
    "engine_numbers",
    "fit",
    "load_efficiency_file",
    "model_from_config",
    "perf",
    "plan",
    "resolve_gpu_spec",
    "resolve_model_spec",
    "simulate",
]


def fit(
    model: str | ResolvedModel,
    gpu: str | GpuSpec | None = None,
    *,
    gpus: int | None = None,
    tp: int | None = None,
    pp: int | None = None,
    quant: str | None = None,
    kv_dtype: str = "auto",
    engine: str | None = None,
    engine_version: str | None = None,
    engine_mode: Literal["V0", "V1"] | None = None,
    max_model_len: int | None = None,
    users: int = 1,
    gpu_memory_utilization: float | None = None,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    block_size: int | None = None,
    enforce_eager: bool = False,
    speculative_mtp: bool = False,
    spec_tokens: int = 0,
    spec_accept: float | None = None,
    usage: Usage = "serve",
    ep: bool = False,
    gpus_per_node: int = 8,
    dp_attention: bool = False,
    gpu_memory_gib: float | None = None,
    gpu_bandwidth_gbps: float | None = None,
    gpu_file: str | None = None,
    hf: bool = False,
    suggest: bool = True,
    allow_long_context: bool = True,
) -> FitResult:
    """Does ``model`` fit on ``gpu`` for ``users`` at ``max_model_len``? Per-GPU answer.
    Every option is checked against its field in ``domain.options.DeploymentOptions``.

    A ``max_model_len`` beyond the model's ``max_position_embeddings`` is refused unless
    ``allow_long_context`` (then a note says RoPE scaling must be configured). The library
    default allows it, as engines do when told to (vLLM ``VLLM_ALLOW_LONG_MAX_MODEL_LEN``,
    and published measurements ran so); the CLI and the web API pass False unless the user
    asks (``--allow-long-context``)."""
    given = {k: v for k, v in locals().items() if k in DeploymentOptions.model_fields}  # the arguments
    opts = checked(DeploymentOptions, **given)
    resolved = model if isinstance(model, ResolvedModel) else resolve_model_spec(model, hf=hf)
    gpu_spec, gpu_note = resolve_gpu_spec(
        gpu, memory_gib=gpu_memory_gib, bandwidth_gbps=gpu_bandwidth_gbps, gpu_file=gpu_file
    )
    return deploy(resolved, gpu_spec, opts, gpu_note=gpu_note, suggest=suggest)


def plan(
    model: str | ResolvedModel,
    *,
    context: int,
    users: int,
    input_len: int | None = None,
    output_len: int = 512,
    ttft_ms: float | None = None,
    tpot_ms: float | None = None,
    gpus: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    max_gpus: int = 8,
    quants: Sequence[str] | None = None,
    precision: Literal["default", "high"] = "default",
    engine: str | Sequence[str] = "vllm",
    kv_dtype: str | None = None,
    max_cost_per_hour: float | None = None,
    max_capex: float | None = None,
    efficiency_file: str | None = None,
    years: float = 3.0,
    kwh_price: float = 0.15,
    verify: bool = True,
    percentile: int = 95,
    max_simulations: int = DEFAULT_MAX_SIMULATIONS,
    rank_by: Literal["owned", "cloud"] = "owned",
    headroom: float = DEFAULT_HEADROOM,
    systems: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> PlanResult:
    """Search hardware × count × layout × quantization × KV dtype for ``users`` at ``context``.

    ``kv_dtype`` None searches the engine default and the 8-bit cache where supported;
    ``systems`` limits the boxes (kinds such as ``workstation`` or system keys);
    ``headroom`` is kept free on the KV pool and under the TTFT/TPOT targets;
    ``progress(stage, done, total)`` hears the search and the verifying simulations."""
    opts = check_plan_inputs(  # every option checked before any file is read
        engine,
        **{k: v for k, v in locals().items() if k in SearchOptions.model_fields},
        capex=max_capex,
    )
    user_factors = load_efficiency_file(efficiency_file) if efficiency_file else ()
    resolved = model if isinstance(model, ResolvedModel) else resolve_model_spec(model)
    return run_plan(resolved, opts, user_factors=user_factors, verify=verify, progress=progress)


@dataclass(frozen=True, kw_only=True)
class PerfResult:
    fit: FitResult
    rows: tuple[PerfRow, ...]
    input_len: int
    output_len: int
    efficiency_row: str
    link_name: str | None
    uncertainty: float | None  # median |relative error| of the factors' fit; None: not fitted
    bandwidth_fraction: float = 1.0
    compute_fraction: float = 1.0
    request_overhead_s: float = 0.0  # the API server's share of each TTFT (Efficiency.request_overhead_s)


MAX_BATCH = 4096


def perf(
    model: str | ResolvedModel,
    gpu: str | None = None,
    *,
    input_len: int = 1024,
    output_len: int = 256,
    batches: tuple[int, ...] | None = None,
    link: str | None = None,
    efficiency_file: str | None = None,
    **fit_kwargs: Any,
) -> PerfResult:
    """TTFT, TPOT and throughput by batch size (the analytic step-time model)."""
    input_len = parse_field(WorkloadOptions, "input_len", input_len)
    output_len = parse_field(WorkloadOptions, "output_len", output_len)
    if link is not None and link not in interconnects():
        raise BadInputError("link", f"unknown link {link!r}", ", ".join(sorted(interconnects())))
    fit_kwargs.setdefault("max_model_len", input_len + output_len)
    res = fit(model, gpu, **fit_kwargs)
    dep = res.deployment
    if batches is None:
        top = max(1, min(MAX_BATCH, int(res.estimate.max_concurrency) or 1))
        batches = tuple(b for b in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096) if b <= top) or (
            1,
        )
    if any(not 1 <= b <= MAX_BATCH for b in batches):
        raise BadInputError("batch", f"must be 1..{MAX_BATCH}")
    user = load_efficiency_file(efficiency_file) if efficiency_file else ()
    eff, row, link_name = efficiency_of(dep, link, user)
    rows = perf_rows(
        dep,
        eff,
        input_len=input_len,
        output_len=output_len,
        batches=batches,
        chunk=engine_spec(dep.engine).prefill_chunk(res.estimate.settings),
    )
    return PerfResult(
        fit=res,
        rows=tuple(rows),
        input_len=input_len,
        output_len=output_len,
        efficiency_row=row,
        link_name=link_name,
        uncertainty=_band(eff.uncertainty, dep),
        bandwidth_fraction=eff.bandwidth_fraction,
        compute_fraction=eff.compute_fraction,
        request_overhead_s=eff.request_overhead_s,
    )


def _longest_request(inp: LengthDist, out: LengthDist, jitter: float) -> int:
    """The longest prompt + output the workload can draw (at least 2 tokens): the
    ``max_model_len`` a simulation needs when none is given."""
    # fixed lengths are drawn within ±jitter, at least ±1 token (simulate/workload.py)
    spread = 1 + jitter
    longest = int(
        (inp.high if inp.kind != "fixed" else inp.mean * spread + 1)
        + (out.high if out.kind != "fixed" else out.mean * spread + 1)
    )
    return max(longest, 2)


def _sim_points(
    res: FitResult,
    eff: Efficiency,
    grid: Sequence[tuple[float | None, int | None]],
    make_workload: Callable[..., Workload],
    *,
    trace_reqs: Requests | None,
    seed: int,
    slo: tuple[float | None, float | None],
    prefix_caching: bool | None,
    progress: Callable[[int, int], None] | None,
) -> list[SimPoint]:
    """One simulated point per (rate, users) of ``grid``, in order; ``progress`` hears each."""
    points: list[SimPoint] = []
    for rate, n_users in grid:
        w = make_workload(rate=rate if trace_reqs is None else 1.0, users=n_users)
        points.append(
            sim_point(
                res,
                eff,
                w,
                rate=rate,
                n_users=n_users,
                trace_reqs=trace_reqs,
                seed=seed,
                slo=slo,
                prefix_caching=prefix_caching,
            )
        )
        if progress is not None:
            progress(len(points), len(grid))
    return points


def simulate(
    model: str | ResolvedModel,
    gpu: str | GpuSpec | None = None,
    *,
    rates: tuple[float, ...] = (),
    users: tuple[int, ...] = (),
    input_len: Any = None,
    output_len: Any = None,
    requests: int = 1000,
    think_time_s: float = 0.0,
    burstiness: float = 1.0,
    jitter: float = DEFAULT_JITTER,
    seed: int = 0,
    slo_ttft_ms: float | None = None,
    slo_tpot_ms: float | None = None,
    trace_rows: list[dict[str, float]] | None = None,
    efficiency_file: str | None = None,
    prefix_tokens: int = 0,
    prefix_groups: int = 1,
    prefix_caching: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    **fit_kwargs: Any,
) -> SimulateResult:
    """Continuous batching under load: one point per rate (open loop) or user count (closed
    loop). ``prefix_tokens`` of every prompt are shared within one of ``prefix_groups``
    groups; ``prefix_caching`` defaults to what the engine does out of the box;
    ``progress(done, total)`` hears each finished point."""
    from gpusizer.simulate.workload import LengthDist, Workload, requests_from_trace

    trace_reqs = requests_from_trace(trace_rows) if trace_rows is not None else None
    if trace_reqs is not None:
        rates, users = (0.0,), ()  # one point: the trace's own arrivals
        longest_trace = int((trace_reqs.input_len + trace_reqs.output_len).max())
        fit_kwargs.setdefault("max_model_len", longest_trace)
        requests = len(trace_reqs.input_len)
    elif bool(rates) == bool(users):
        raise BadInputError("rates/users", "give request rates or user counts (one of them)")
    inp = input_len or LengthDist(mean=1024)
    out = output_len or LengthDist(mean=256)
    fit_kwargs.setdefault("max_model_len", _longest_request(inp, out, jitter))
    res = fit(model, gpu, suggest=False, **fit_kwargs)
    user = load_efficiency_file(efficiency_file) if efficiency_file else ()
    eff, row, _ = efficiency_of(res.deployment, None, user)
    grid: list[tuple[float | None, int | None]] = [(r, None) for r in rates] + [(None, u) for u in users]
    make_workload = partial(
        Workload,
        input_len=inp,
        output_len=out,
        think_time_s=think_time_s,
        burstiness=burstiness,
        jitter=jitter,
        requests=requests,
        prefix_tokens=prefix_tokens,
        prefix_groups=prefix_groups,
    )
    points = _sim_points(
        res,
        eff,
        grid,
        make_workload,
        trace_reqs=trace_reqs,
        seed=seed,
        slo=(slo_ttft_ms, slo_tpot_ms),
        prefix_caching=prefix_caching,
        progress=progress,
    )
    knee = None
    if slo_ttft_ms or slo_tpot_ms:
        knee = next((p for p in points if p.stats.goodput_share < 0.95), None)
    return SimulateResult(
        fit=res,
        points=tuple(points),
        knee=knee,
        efficiency_row=row,
        uncertainty=_band(eff.uncertainty, res.deployment),
        warnings=tuple(line for p in points if (line := sim_warning(p, requests)) is not None),
        request_overhead_s=eff.request_overhead_s,
    )


def _band(uncertainty: float | None, dep: Deployment) -> float | None:
    """The ± band to show: the factor row's out-of-sample TPOT error, widened to the error on
    published speculative-decoding runs when the deployment drafts (SPEC_TPOT_UNCERTAINTY)."""
    if not dep.spec_tokens:
        return uncertainty
    return max(uncertainty or 0.0, SPEC_TPOT_UNCERTAINTY)
