"""``plan``: the cheapest hardware that meets the users' targets (shell orchestration).

Stages, each pure except the catalogue look-ups here: enumerate GPU × count × layout ×
quantization → memory (``fit``) → analytic speed at the planned concurrency (``perf``) →
SLO and budget filter → rank by cost → Pareto front → the guide's rules → launch commands.
Every rejection is kept with its reason. (The queueing simulation of issue #4 will slot in
between the analytic filter and the ranking.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from gpusizer.api import (
    FitResult,
    ResolvedModel,
    efficiency_of,
    fit,
    load_efficiency_file,
    resolve_gpu_spec,
    resolve_model_spec,
)
from gpusizer.catalog.load import cloud_prices, gpu_catalogue, quant_catalogue
from gpusizer.catalog.specs import EfficiencyFactor, GpuSpec
from gpusizer.errors import BadInputError, GpusizerError
from gpusizer.plan.evaluate import Accepted, CostModel, Rejected, Slo, evaluate, latency_curve
from gpusizer.plan.launch import launch_commands
from gpusizer.plan.rank import Picks, pareto_front, pick
from gpusizer.plan.rules import Finding, findings
from gpusizer.simulate.run import simulate_deployment
from gpusizer.simulate.workload import LengthDist, Workload

__all__ = ["PlanResult", "label_of", "plan"]

GPU_COUNTS = (1, 2, 4, 8, 16)
REPLICAS = (
    1,
    2,
    4,
)  # independent engines behind a load balancer (data parallel)  # 16 = two 8-GPU nodes (TP 8 × PP 2), for the largest models
CLASSES = ("consumer", "workstation", "datacenter", "apple")


@dataclass(frozen=True, kw_only=True)
class PlanResult:
    model: ResolvedModel
    context: int
    users: int
    input_len: int
    output_len: int
    slo: Slo
    accepted: tuple[Accepted, ...]
    rejected: tuple[Rejected, ...]
    picks: Picks
    pareto: tuple[Accepted, ...]
    findings: tuple[Finding, ...]
    launch: dict[str, str]
    searched: int
    simulated: dict[str, Any]  # label → SimStats of the plans verified by simulation
    percentile: int
    curve: tuple[tuple[int, float, float], ...] = ()  # cheapest pick: (users, TTFT s, TPOT s)


def _quants(
    model: ResolvedModel, gpu: GpuSpec, precision: str, requested: Sequence[str] | None, engine: str = "vllm"
) -> list[str]:
    if requested:
        return list(requested)
    if engine == "llamacpp":  # GGUF: Q4_K_M is llama.cpp's usual 4-bit, Q8_0 its near-lossless one
        return ["q8_0"] if precision == "high" else ["q4_k_m"]
    has_fp8 = bool(gpu.flops.fp8)
    native = model.native_quant
    if precision == "high":
        out = ["bf16"] if native is None else [native]
        return out + (["fp8"] if has_fp8 and native is None else [])
    out = ["awq"]
    if native:
        out.append(native)
    elif has_fp8:
        out.append("fp8")
    return out


def _layouts(heads: int, kv_heads: int, mla: bool, count: int, per_node: int = 8) -> list[tuple[int, int]]:
    """The widest valid TP inside one node, PP for the rest (across nodes)."""
    tp = min(count, per_node)
    while tp >= 1:
        if count % tp == 0 and heads % tp == 0 and (mla or tp <= kv_heads or tp % kv_heads == 0):
            return [(tp, count // tp)]
        tp //= 2
    return []


def _name(
    replicas: int, count: int, gpu_key: str, quant: str, dp_attention: bool = False, engine: str | None = None
) -> str:
    lead = f"{replicas} replicas × " if replicas > 1 else ""
    return (
        f"{lead}{count}× {gpu_key} {quant}"
        + (" dp-attention" if dp_attention else "")
        + (f" on {engine}" if engine else "")
    )


def label_of(a: Accepted, *, with_engine: bool = False) -> str:
    return _name(
        a.replicas,
        a.dep.layout.gpus,
        a.dep.gpu.key,
        a.dep.quant.fmt.key,
        a.dep.layout.attention_dp,
        a.dep.engine if with_engine else None,
    )


ENGINES = ("vllm", "sglang", "tensorrt-llm", "llamacpp")

# The engine setting the search may raise when a plan misses by a little: vLLM's
# gpu_memory_utilization (default 0.92 from 0.25, 0.90 before) up to this, which leaves
# ~5 % of the card for the CUDA context, NCCL and fragmentation.
TIGHT_MEMORY_UTILIZATION = 0.95


def _tighter_memory(res: FitResult, label: str, refit: Callable[..., FitResult]) -> tuple[FitResult, str]:
    """A vLLM plan that does not fit at the default gpu_memory_utilization is retried at
    ``TIGHT_MEMORY_UTILIZATION``; the label says so when that is what makes it fit."""
    dep = res.deployment
    if res.estimate.fits or dep.engine != "vllm" or dep.gpu_memory_utilization is not None:
        return res, label
    frac = res.estimate.settings.memory_fraction
    if frac >= TIGHT_MEMORY_UTILIZATION:
        return res, label
    lim = res.estimate.limiting
    shortfall = lim.kv_needed_bytes - lim.kv_pool_bytes
    if lim.kv_pool_bytes <= 0 or shortfall > (TIGHT_MEMORY_UTILIZATION - frac) * lim.capacity_bytes:
        return res, label  # more than the extra memory could give: no point refitting
    try:
        tight = refit(gpu_memory_utilization=TIGHT_MEMORY_UTILIZATION)
    except GpusizerError:
        return res, label
    if not tight.estimate.fits:
        return res, label
    return tight, f"{label} at gpu_memory_utilization {TIGHT_MEMORY_UTILIZATION}"


def _engines_for(gpu: GpuSpec, wanted: Sequence[str]) -> list[str]:
    """Engines to try on ``gpu``: Apple GPUs run llama.cpp only; ``auto`` tries vLLM and
    SGLang on data-centre and workstation cards, vLLM and llama.cpp on consumer cards."""
    if gpu.vendor == "apple":
        return ["llamacpp"]
    if "auto" in wanted:
        return ["vllm", "llamacpp"] if gpu.gpu_class == "consumer" else ["vllm", "sglang"]
    return list(wanted)


def _simulated_failure(
    a: Accepted, stats: Any, slo: Slo, pct: str, with_engine: bool = False
) -> Rejected | None:
    """The rejection when the simulated percentile misses an SLO, else None."""
    for metric, target, digits in (("ttft", slo.ttft_s, 0), ("tpot", slo.tpot_s, 1)):
        value = getattr(getattr(stats, metric), pct)
        if target is not None and value > target:
            name = metric.upper()
            return Rejected(
                dep=a.dep,
                label=label_of(a, with_engine=with_engine),
                stage="slo",
                reason=f"{pct} {name} over target in simulation",
                detail=f"{pct} {name} {value * 1e3:,.{digits}f} ms > {target * 1e3:,.{digits}f} ms",
            )
    return None


def _verify(
    accepted: list[Accepted],
    slo: Slo,
    *,
    input_len: int,
    output_len: int,
    percentile: int,
    max_checks: int,
    user_factors: tuple[EfficiencyFactor, ...] = (),
    with_engine: bool = False,
) -> tuple[list[Accepted], list[Rejected], dict[str, Any]]:
    """Simulate each pick (cheapest, fastest, best $/token) with its users sending back to
    back; a pick whose p-th percentile TTFT/TPOT misses the SLOs is dropped and the picks are
    recomputed, until every pick is verified or ``max_checks`` simulations have run."""
    keep = list(accepted)
    dropped: list[Rejected] = []
    sims: dict[str, Any] = {}
    passed: set[int] = set()
    pct = f"p{percentile}"
    checks = 0
    while keep and checks < max_checks:
        p = pick(keep)
        pending = [
            a for a in (p.cheapest, p.fastest, p.best_per_token) if a is not None and id(a) not in passed
        ]
        if not pending:
            break
        distinct = list({id(a): a for a in pending}.values())  # one simulation per plan
        for a in distinct:
            share = a.dep.users  # each replica serves its share of the users
            w = Workload(
                input_len=LengthDist(mean=input_len),
                output_len=LengthDist(mean=output_len),
                users=share,
                requests=min(max(3 * share, 90), 1000),  # p95 over ≥ 90 requests
            )
            eff, _, _ = efficiency_of(a.dep, None, user_factors)
            stats, _ = simulate_deployment(a.dep, a.memory, eff, w)
            sims[label_of(a, with_engine=True)] = stats
            checks += 1
            failure = _simulated_failure(a, stats, slo, pct, with_engine)
            if failure is None:
                passed.add(id(a))
            else:
                dropped.append(failure)
                keep.remove(a)
    return keep, dropped, sims


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
    kv_dtype: str = "auto",
    max_cost_per_hour: float | None = None,
    max_capex: float | None = None,
    efficiency_file: str | None = None,
    years: float = 3.0,
    kwh_price: float = 0.15,
    verify: bool = True,
    percentile: int = 95,
    max_simulations: int = 12,
    rank_by: Literal["owned", "cloud"] = "owned",
) -> PlanResult:
    """Search hardware × count × layout × quantization for ``users`` at ``context``."""
    if not 1 <= users <= 100_000:
        raise BadInputError("--users", f"must be 1..100000, got {users}")
    if not 1 <= max_gpus <= 64:
        raise BadInputError("--max-gpus", f"must be 1..64, got {max_gpus}")
    if classes:
        bad = [c for c in classes if c not in CLASSES]
        if bad:
            raise BadInputError("--class", f"unknown class {bad[0]!r}", ", ".join(CLASSES))
    for name, v in (
        ("--ttft-ms", ttft_ms),
        ("--tpot-ms", tpot_ms),
        ("--max-cost-per-hour", max_cost_per_hour),
        ("--capex", max_capex),
    ):
        if v is not None and v <= 0:
            raise BadInputError(name, f"must be positive, got {v}")
    if years <= 0 or kwh_price < 0:
        raise BadInputError("--years/--kwh-price", "years must be positive, kWh price non-negative")
    wanted = [engine] if isinstance(engine, str) else list(engine)
    bad_engine = [e for e in wanted if e not in (*ENGINES, "auto")]
    if bad_engine or not wanted:
        raise BadInputError(
            "--engine",
            f"unknown engine {bad_engine[0] if bad_engine else ''!r}",
            "vllm, sglang, tensorrt-llm, llamacpp, auto",
        )
    many_engines = len(wanted) > 1 or "auto" in wanted
    user_factors = load_efficiency_file(efficiency_file) if efficiency_file else ()
    resolved = model if isinstance(model, ResolvedModel) else resolve_model_spec(model)
    out_len = min(output_len, max(1, context // 2))
    in_len = input_len if input_len is not None else min(2048, max(1, context - out_len))
    if in_len + out_len > context:
        raise BadInputError("--input-len", f"input {in_len} + output {out_len} exceed the context {context}")
    if gpus:
        pool = [resolve_gpu_spec(g)[0] for g in gpus]
    else:
        wanted_classes = set(classes or ("consumer", "workstation", "datacenter"))
        pool = [g for g in gpu_catalogue() if g.gpu_class in wanted_classes]
    fmts = {f.key for f in quant_catalogue()}
    for q in quants or ():
        if q not in fmts:
            raise BadInputError("--quant", f"unknown format {q!r}", ", ".join(sorted(fmts)))
    slo = Slo(ttft_s=ttft_ms / 1e3 if ttft_ms else None, tpot_s=tpot_ms / 1e3 if tpot_ms else None)
    prices = {k: v.usd_per_gpu_hour for k, v in cloud_prices().items()}
    cost = CostModel(years=years, kwh_price=kwh_price, cloud_usd_per_gpu_hour=prices, rank_by=rank_by)
    a = resolved.arch
    accepted: list[Accepted] = []
    rejected: list[Rejected] = []
    searched = 0
    for gpu, eng in ((g, e) for g in pool for e in _engines_for(g, wanted)):
        for count in (c for c in GPU_COUNTS if c <= max_gpus):
            layouts = _layouts(a.num_attention_heads, a.num_kv_heads, a.mla is not None, count)
            if eng == "llamacpp":
                layouts = [(1, count)]
            for replicas in (r for r in REPLICAS if r * count <= max_gpus and (r == 1 or count <= 4)):
                share = -(-users // replicas)
                dp_options = (
                    [False, True]
                    if a.mla is not None and count >= 2 and eng in ("vllm", "sglang")
                    else [False]
                )
                for q, dp_attn in (
                    (q, d) for q in _quants(resolved, gpu, precision, quants, eng) for d in dp_options
                ):
                    label = _name(replicas, count, gpu.key, q, dp_attn, eng if many_engines else None)
                    searched += 1
                    if not layouts:
                        rejected.append(
                            Rejected(
                                dep=None,
                                label=label,
                                stage="config",
                                reason="no TP/PP layout divides the attention heads",
                            )
                        )
                        continue
                    tp, pp = layouts[0]
                    fit_args: dict[str, Any] = dict(
                        tp=tp,
                        pp=pp,
                        quant=q,
                        kv_dtype=kv_dtype,
                        engine=eng,
                        max_model_len=context,
                        users=share,
                        suggest=False,
                        dp_attention=dp_attn and tp > 1,
                        ep=dp_attn and tp > 1,
                    )
                    try:
                        res = fit(resolved, gpu, **fit_args)
                    except GpusizerError as exc:
                        rejected.append(Rejected(dep=None, label=label, stage="config", reason=exc.message))
                        continue
                    res, label = _tighter_memory(res, label, partial(fit, resolved, gpu, **fit_args))
                    dep = res.deployment
                    eff, _, _ = efficiency_of(dep, None, user_factors)
                    result = evaluate(
                        dep,
                        eff,
                        label=label,
                        slo=slo,
                        input_len=in_len,
                        output_len=out_len,
                        cost=cost,
                        max_cost_per_hour=max_cost_per_hour,
                        max_capex=max_capex,
                        replicas=replicas,
                        memory=res.estimate,
                    )
                    if isinstance(result, Accepted):
                        accepted.append(result)
                    else:
                        rejected.append(result)
    simulated: dict[str, Any] = {}
    if verify and accepted and (slo.ttft_s or slo.tpot_s):
        accepted, more_rejected, simulated = _verify(
            accepted,
            slo,
            input_len=in_len,
            output_len=out_len,
            percentile=percentile,
            max_checks=max_simulations,
            user_factors=user_factors,
            with_engine=many_engines,
        )
        rejected.extend(more_rejected)
    picks = pick(accepted)
    chosen = picks.cheapest
    curve: list[tuple[int, float, float]] = []
    if chosen is not None:
        eff_c, _, _ = efficiency_of(chosen.dep, None, user_factors)
        curve = latency_curve(chosen, eff_c, input_len=in_len, output_len=out_len)
    launch = (
        launch_commands(
            chosen.dep,
            resolved.name,
            chosen.memory.settings.memory_fraction,
            resolved.native_quant,
            chosen.replicas,
        )
        if chosen
        else {}
    )
    return PlanResult(
        model=resolved,
        context=context,
        users=users,
        input_len=in_len,
        output_len=out_len,
        slo=slo,
        accepted=tuple(accepted),
        rejected=tuple(rejected),
        picks=picks,
        pareto=tuple(pareto_front(accepted)),
        findings=tuple(findings(chosen, accepted, rejected)),
        launch=launch,
        searched=searched,
        simulated=simulated,
        percentile=percentile,
        curve=tuple(curve),
    )
