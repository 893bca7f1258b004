"""``plan``: the cheapest hardware a buyer can sign that meets the users' targets (shell
orchestration around the pure stages in ``plan/``).

    hardware: GPU → the boxes that take it (systems.yaml; a Mac is its own chip)
      × GPUs per engine × engines (replicas) × weight format × KV dtype × DP-attention
      → memory (``fit``, KV pool with headroom)
      → per box kind: the link TP crosses there, owned cost (boxes + GPUs + network + power),
        cloud cost (instances.yaml)
      → analytic speed at the planned concurrency (``perf``), SLO with headroom, budgets
      → verify: simulate in cost / speed / $-per-token order until each pick passes (plan/verify)
      → picks (all simulated), Pareto front, the guide's rules, launch commands

Every rejection is kept with its reason. The catalogue look-ups and ``fit``/``efficiency_of``
calls happen here; the stages they feed are pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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
from gpusizer.catalog.load import (
    checkpoints,
    cloud_instances,
    cloud_prices,
    gpu_catalogue,
    interconnects,
    quant_catalogue,
    system_file,
)
from gpusizer.catalog.specs import EfficiencyFactor, GpuSpec, LinkSpec, SystemSpec
from gpusizer.errors import BadInputError, GpusizerError
from gpusizer.plan.evaluate import Accepted, CostModel, Rejected, Slo, evaluate, latency_curve
from gpusizer.plan.launch import launch_commands
from gpusizer.plan.rank import Picks, pareto_front, pick
from gpusizer.plan.rules import Finding, findings
from gpusizer.plan.systems import Placement, cloud_choice, placements, system_gpu
from gpusizer.plan.verify import verify_picks
from gpusizer.simulate.run import simulate_deployment
from gpusizer.simulate.stats import SimStats
from gpusizer.simulate.workload import LengthDist, Workload

__all__ = ["KV_NOTES", "PlanResult", "label_of", "plan"]

GPU_COUNTS = (1, 2, 4, 8, 16)  # GPUs per engine; 16 = two 8-GPU boxes (TP 8 × PP 2)
REPLICAS = (1, 2, 4, 8)  # independent engines behind a load balancer (data parallel)
CLASSES = ("consumer", "workstation", "datacenter", "apple")
DEFAULT_HEADROOM = 0.10
DEFAULT_MAX_SIMULATIONS = 60

# What a lower-precision KV cache costs in quality (shown next to a plan that uses one).
KV_NOTES = {
    "fp8": "FP8 KV cache (e4m3, per-tensor scales): half the KV memory; vLLM's quantized-KV docs "
    "report little accuracy loss, but check long-context quality on your own prompts",
    "q8_0": "llama.cpp q8_0 KV cache (needs flash attention): half the KV memory, near-lossless",
}


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
    simulated: dict[str, Any]  # plan label → SimStats of every pick (all picks are simulated)
    percentile: int
    curve: tuple[tuple[int, float, float], ...] = ()  # cheapest pick: (users, TTFT s, TPOT s)
    headroom: float = DEFAULT_HEADROOM
    simulations: int = 0
    verify_exhausted: bool = False
    rank_by: str = "owned"


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


def _kv_dtypes(gpu: GpuSpec, engine: str, requested: str | None) -> list[str]:
    """The KV dtypes to try: the engine's default, and the 8-bit cache where the card and
    engine run it (FP8 on FP8-capable GPUs under vLLM/SGLang/TensorRT-LLM; q8_0 on llama.cpp)."""
    if requested is not None:
        return [requested]
    if engine == "llamacpp":
        return ["auto", "q8_0"]
    return ["auto", "fp8"] if gpu.flops.fp8 else ["auto"]


def _layouts(heads: int, kv_heads: int, mla: bool, count: int, per_node: int = 8) -> list[tuple[int, int]]:
    """The widest valid TP inside one node, PP for the rest (across nodes)."""
    tp = min(count, per_node)
    while tp >= 1:
        if count % tp == 0 and heads % tp == 0 and (mla or tp <= kv_heads or tp % kv_heads == 0):
            return [(tp, count // tp)]
        tp //= 2
    return []


def _name(
    replicas: int,
    count: int,
    gpu_key: str,
    quant: str,
    dp_attention: bool = False,
    engine: str | None = None,
    kv_dtype: str = "auto",
) -> str:
    lead = f"{replicas} replicas × " if replicas > 1 else ""
    return (
        f"{lead}{count}× {gpu_key} {quant}"
        + (f" kv {kv_dtype}" if kv_dtype != "auto" else "")
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
        a.dep.kv_dtype,
    ) + (f" in {a.placement.system.key}" if a.placement is not None and with_engine else "")


ENGINES = ("vllm", "sglang", "tensorrt-llm", "llamacpp")

# The engine setting the search may raise when a plan misses by a little: vLLM's
# gpu_memory_utilization (default 0.92 from 0.25, 0.90 before) up to this, which leaves
# ~5 % of the card for the CUDA context, NCCL and fragmentation.
TIGHT_MEMORY_UTILIZATION = 0.95


def _tighter_memory(
    res: FitResult, label: str, refit: Callable[..., FitResult], need_users: float
) -> tuple[FitResult, str]:
    """A vLLM plan that does not fit (with headroom) at the default gpu_memory_utilization is
    retried at ``TIGHT_MEMORY_UTILIZATION``; the label says so when that is what makes it fit."""
    dep = res.deployment
    est = res.estimate
    if (est.fits and est.max_concurrency >= need_users) or dep.engine != "vllm":
        return res, label
    if dep.gpu_memory_utilization is not None or est.settings.memory_fraction >= TIGHT_MEMORY_UTILIZATION:
        return res, label
    lim = est.limiting
    extra = (TIGHT_MEMORY_UTILIZATION - est.settings.memory_fraction) * lim.capacity_bytes
    per_user = lim.kv_needed_bytes / max(dep.users, 1)
    shortfall = max(lim.kv_needed_bytes - lim.kv_pool_bytes, per_user * need_users - lim.kv_pool_bytes)
    if lim.kv_pool_bytes <= 0 or shortfall > extra:
        return res, label  # more than the extra memory could give: no point refitting
    try:
        tight = refit(gpu_memory_utilization=TIGHT_MEMORY_UTILIZATION)
    except GpusizerError:
        return res, label
    if not tight.estimate.fits:
        return res, label
    return tight, f"{label} at gpu_memory_utilization {TIGHT_MEMORY_UTILIZATION}"


def _engines_for(gpu: GpuSpec, wanted: Sequence[str]) -> list[str]:
    """Engines to try on ``gpu``: Apple GPUs run llama.cpp only; TensorRT-LLM runs on NVIDIA
    only; ``auto`` tries vLLM and SGLang on data-centre and workstation cards, vLLM and
    llama.cpp on consumer cards."""
    if gpu.vendor == "apple":
        return ["llamacpp"]
    if "auto" in wanted:
        return ["vllm", "llamacpp"] if gpu.gpu_class == "consumer" else ["vllm", "sglang"]
    return [e for e in wanted if e != "tensorrt-llm" or gpu.vendor == "nvidia"]


def _hardware(
    pool: Sequence[GpuSpec], systems: Sequence[SystemSpec], rejected: list[Rejected], rank_by: str
) -> list[tuple[GpuSpec, list[SystemSpec]]]:
    """(GPU as the box has it, the boxes that take it). A Mac configuration is its own GPU
    (the chip with that configuration's memory)."""
    from gpusizer.plan.systems import module_gpus, takes

    modules = module_gpus(systems)
    out: list[tuple[GpuSpec, list[SystemSpec]]] = []
    for g in pool:
        boxes = [s for s in systems if takes(s, g, modules)]
        macs = [s for s in boxes if s.unified_memory_bytes is not None]
        if macs:
            out.extend((system_gpu(s, g), [s]) for s in macs)
        elif boxes or rank_by == "cloud":
            out.append((g, boxes))
        else:
            rejected.append(
                Rejected(
                    dep=None,
                    label=g.key,
                    stage="config",
                    reason="no catalogued system takes this GPU",
                    detail="see data/systems.yaml",
                )
            )
    return out


def _distinct(ps: Sequence[Placement]) -> list[Placement]:
    """The cheapest placement for each link (a dearer box with the same link is no better)."""
    best: dict[tuple[str, str | None], Placement] = {}
    for p in sorted(ps, key=lambda p: p.capex_usd + p.power_w):
        best.setdefault((p.link_name, p.network_name), p)
    return list(best.values())


def _validate(
    users: int,
    max_gpus: int,
    classes: Sequence[str] | None,
    numbers: Sequence[tuple[str, float | None]],
    years: float,
    kwh_price: float,
    headroom: float,
    percentile: int,
) -> None:
    if not 1 <= users <= 100_000:
        raise BadInputError("--users", f"must be 1..100000, got {users}")
    if not 1 <= max_gpus <= 64:
        raise BadInputError("--max-gpus", f"must be 1..64, got {max_gpus}")
    if classes:
        bad = [c for c in classes if c not in CLASSES]
        if bad:
            raise BadInputError("--class", f"unknown class {bad[0]!r}", ", ".join(CLASSES))
    for name, v in numbers:
        if v is not None and v <= 0:
            raise BadInputError(name, f"must be positive, got {v}")
    if years <= 0 or kwh_price < 0:
        raise BadInputError("--years/--kwh-price", "years must be positive, kWh price non-negative")
    if not 0 <= headroom < 1:
        raise BadInputError("--headroom", f"must be in [0, 1), got {headroom}")
    if percentile not in (50, 90, 95, 99):
        raise BadInputError("--percentile", f"must be 50, 90, 95 or 99, got {percentile}")


def _systems(wanted: Sequence[str] | None) -> list[SystemSpec]:
    every = list(system_file().systems)
    if not wanted:
        return every
    kinds = {s.kind for s in every}
    bad = [w for w in wanted if w not in kinds and w not in {s.key for s in every}]
    if bad:
        raise BadInputError(
            "--system",
            f"unknown system {bad[0]!r}",
            ", ".join(sorted(kinds)) + " or a key from `gpusizer catalog` / data/systems.yaml",
        )
    return [s for s in every if s.kind in wanted or s.key in wanted]


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
) -> PlanResult:
    """Search hardware × count × layout × quantization × KV dtype for ``users`` at ``context``.

    ``kv_dtype`` None searches the engine default and the 8-bit cache where supported;
    ``systems`` limits the boxes (kinds such as ``workstation`` or system keys);
    ``headroom`` is kept free on the KV pool and under the TTFT/TPOT targets."""
    _validate(
        users,
        max_gpus,
        classes,
        (
            ("--ttft-ms", ttft_ms),
            ("--tpot-ms", tpot_ms),
            ("--max-cost-per-hour", max_cost_per_hour),
            ("--capex", max_capex),
        ),
        years,
        kwh_price,
        headroom,
        percentile,
    )
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
    sf = system_file()
    links: dict[str, LinkSpec] = {**interconnects(), **sf.links}
    rejected: list[Rejected] = []
    hardware = _hardware(pool, _systems(systems), rejected, rank_by)
    search = partial(
        _search,
        resolved,
        wanted=wanted,
        many_engines=many_engines,
        max_gpus=max_gpus,
        users=users,
        context=context,
        precision=precision,
        quants=quants,
        kv_dtype=kv_dtype,
        user_factors=user_factors,
        links=links,
        slo=slo,
        in_len=in_len,
        out_len=out_len,
        cost=cost,
        max_cost_per_hour=max_cost_per_hour,
        max_capex=max_capex,
        headroom=headroom,
    )
    accepted: list[Accepted] = []
    searched = 0
    for gpu, boxes in hardware:
        n, acc, rej = search(gpu, boxes)
        searched += n
        accepted += acc
        rejected += rej
    simulations = 0
    exhausted = False
    shown = accepted
    if verify and accepted:
        simulate = partial(_simulate, input_len=in_len, output_len=out_len)
        v = verify_picks(
            accepted,
            simulate,
            slo,
            percentile=percentile,
            headroom=headroom,
            max_simulations=max_simulations,
        )
        rejected.extend(v.failed)
        simulations, exhausted = v.simulations, v.exhausted
        shown = list(v.passed)
    picks = pick(shown)
    chosen = picks.cheapest
    curve: list[tuple[int, float, float]] = []
    if chosen is not None and chosen.eff is not None:
        curve = latency_curve(chosen, chosen.eff, input_len=in_len, output_len=out_len)
    launch = (
        launch_commands(
            chosen.dep,
            resolved.name,
            chosen.memory.settings.memory_fraction,
            resolved.native_quant,
            chosen.replicas,
            checkpoints=checkpoints(),
            boxes_per_replica=chosen.placement.boxes_per_replica if chosen.placement else 1,
        )
        if chosen
        else {}
    )
    simulated = {label_of(a, with_engine=True): a.sim for a in shown if a.sim is not None}
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
        findings=tuple(findings(chosen, shown, rejected)),
        launch=launch,
        searched=searched,
        simulated=simulated,
        percentile=percentile,
        curve=tuple(curve),
        headroom=headroom,
        simulations=simulations,
        verify_exhausted=exhausted,
        rank_by=rank_by,
    )


def _simulate(a: Accepted, *, input_len: int, output_len: int) -> SimStats:
    """One replica's users sending back to back (closed loop), p95 over ≥ 90 requests."""
    share = a.dep.users
    w = Workload(
        input_len=LengthDist(mean=input_len),
        output_len=LengthDist(mean=output_len),
        users=share,
        requests=min(max(3 * share, 90), 1000),
    )
    assert a.eff is not None
    stats, _ = simulate_deployment(a.dep, a.memory, a.eff, w)
    return stats


def _search(
    resolved: ResolvedModel,
    gpu: GpuSpec,
    boxes: list[SystemSpec],
    *,
    wanted: Sequence[str],
    many_engines: bool,
    max_gpus: int,
    users: int,
    context: int,
    precision: str,
    quants: Sequence[str] | None,
    kv_dtype: str | None,
    user_factors: tuple[EfficiencyFactor, ...],
    links: dict[str, LinkSpec],
    slo: Slo,
    in_len: int,
    out_len: int,
    cost: CostModel,
    max_cost_per_hour: float | None,
    max_capex: float | None,
    headroom: float,
) -> tuple[int, list[Accepted], list[Rejected]]:
    """Every candidate on one GPU: engines × GPUs per engine × replicas × formats × KV dtypes
    × DP attention, each fitted once and evaluated in every box kind that holds it."""
    a = resolved.arch
    sf = system_file()
    accepted: list[Accepted] = []
    rejected: list[Rejected] = []
    searched = 0
    for eng in _engines_for(gpu, wanted):
        for count in (c for c in GPU_COUNTS if c <= max_gpus):
            layouts = _layouts(a.num_attention_heads, a.num_kv_heads, a.mla is not None, count)
            if eng == "llamacpp":
                layouts = [(1, count)] if count <= 8 else []
            # a format that leaves no room for any KV (or cannot run at all) on `count` GPUs
            # fails the same way for every replica count: fitted once
            dead: dict[tuple[str, str, bool], Rejected] = {}
            for replicas in (r for r in REPLICAS if r * count <= max_gpus and (r == 1 or count <= 8)):
                spots = placements(gpu, count, replicas, boxes, links, sf.pcie) if boxes else []
                cloud = cloud_choice(gpu.key, count, replicas, cloud_instances())
                if boxes and not spots and cost.rank_by == "owned":
                    searched += 1
                    rejected.append(
                        Rejected(
                            dep=None,
                            label=_name(
                                replicas, count, gpu.key, "", engine=eng if many_engines else None
                            ).strip(),
                            stage="config",
                            reason="no catalogued box holds this many (platforms are bought with all 8 GPUs)",
                            detail="boxes that take it: "
                            + ", ".join(f"{b.key} ({b.gpu_count or len(b.slots)})" for b in boxes),
                        )
                    )
                    continue
                share = -(-users // replicas)
                dp_options = (
                    [False, True]
                    if a.mla is not None and count >= 2 and eng in ("vllm", "sglang")
                    else [False]
                )
                combos = [
                    (q, kv, d)
                    for q in _quants(resolved, gpu, precision, quants, eng)
                    for kv in _kv_dtypes(gpu, eng, kv_dtype)
                    for d in dp_options
                ]
                for q, kv, dp_attn in combos:
                    label = _name(replicas, count, gpu.key, q, dp_attn, eng if many_engines else None, kv)
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
                    if (q, kv, dp_attn) in dead:
                        rejected.append(replace(dead[q, kv, dp_attn], label=label))
                        continue
                    tp, pp = layouts[0]
                    fit_args: dict[str, Any] = dict(
                        tp=tp,
                        pp=pp,
                        quant=q,
                        kv_dtype=kv,
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
                        dead[q, kv, dp_attn] = Rejected(
                            dep=None, label=label, stage="config", reason=exc.message
                        )
                        rejected.append(dead[q, kv, dp_attn])
                        continue
                    if res.estimate.limiting.kv_pool_bytes <= 0 and res.estimate.problems:
                        dead[q, kv, dp_attn] = Rejected(
                            dep=res.deployment,
                            label=label,
                            stage="memory",
                            reason="does not fit",
                            detail=res.estimate.problems[0],
                        )
                        rejected.append(dead[q, kv, dp_attn])
                        continue
                    res, label = _tighter_memory(
                        res, label, partial(fit, resolved, gpu, **fit_args), (1 + headroom) * share
                    )
                    dep = res.deployment
                    base_eff, _, _ = efficiency_of(dep, None, user_factors)
                    targets: list[Placement | None] = (
                        list(_distinct(spots)) if cost.rank_by == "owned" else []
                    )
                    searched += max(len(targets), 1) - 1  # one candidate per box kind
                    for spot in targets or [None]:
                        eff = base_eff
                        if spot is not None:
                            eff = replace(
                                base_eff, link=spot.link, node_link=spot.network or base_eff.node_link
                            )
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
                            placement=spot,
                            cloud=cloud,
                            headroom=headroom,
                        )
                        if isinstance(result, Accepted):
                            accepted.append(result)
                        else:
                            rejected.append(result)
                            if result.stage == "memory":
                                break  # the same in every box
    return searched, accepted, rejected
