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
from dataclasses import dataclass, field, replace
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
from gpusizer.plan.space import (
    CLASSES,
    ENGINES,
    GPU_COUNTS,
    KV_NOTES,
    REPLICAS,
    candidate_name,
    distinct_placements,
    engines_for,
    kv_dtypes_for,
    layouts_for,
    quants_for,
)
from gpusizer.plan.systems import CloudChoice, Placement, cloud_choice, placements, system_gpu
from gpusizer.plan.verify import verify_picks
from gpusizer.simulate.run import simulate_deployment
from gpusizer.simulate.stats import SimStats
from gpusizer.simulate.workload import LengthDist, Workload

__all__ = ["KV_NOTES", "PlanResult", "label_of", "plan"]

DEFAULT_HEADROOM = 0.10
DEFAULT_MAX_SIMULATIONS = 60


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


def label_of(a: Accepted, *, with_engine: bool = False) -> str:
    return candidate_name(
        a.replicas,
        a.dep.layout.gpus,
        a.dep.gpu.key,
        a.dep.quant.fmt.key,
        a.dep.layout.attention_dp,
        a.dep.engine if with_engine else None,
        a.dep.kv_dtype,
    ) + (f" in {a.placement.system.key}" if a.placement is not None and with_engine else "")


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
    wanted = _engines(engine)
    many_engines = len(wanted) > 1 or "auto" in wanted
    user_factors = load_efficiency_file(efficiency_file) if efficiency_file else ()
    resolved = model if isinstance(model, ResolvedModel) else resolve_model_spec(model)
    out_len = min(output_len, max(1, context // 2))
    in_len = input_len if input_len is not None else min(2048, max(1, context - out_len))
    if in_len + out_len > context:
        raise BadInputError("--input-len", f"input {in_len} + output {out_len} exceed the context {context}")
    pool = _pool(gpus, classes, quants)
    slo = Slo(ttft_s=ttft_ms / 1e3 if ttft_ms else None, tpot_s=tpot_ms / 1e3 if tpot_ms else None)
    prices = {k: v.usd_per_gpu_hour for k, v in cloud_prices().items()}
    cost = CostModel(years=years, kwh_price=kwh_price, cloud_usd_per_gpu_hour=prices, rank_by=rank_by)
    sf = system_file()
    links: dict[str, LinkSpec] = {**interconnects(), **sf.links}
    rejected: list[Rejected] = []
    hardware = _hardware(pool, _systems(systems), rejected, rank_by)
    ctx = _Search(
        model=resolved,
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
        found = _search(ctx, gpu, boxes)
        searched += found.searched
        accepted += found.accepted
        rejected += found.rejected
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
    launch = _launch(chosen, resolved) if chosen else {}
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


def _engines(engine: str | Sequence[str]) -> list[str]:
    wanted = [engine] if isinstance(engine, str) else list(engine)
    bad = [e for e in wanted if e not in (*ENGINES, "auto")]
    if bad or not wanted:
        raise BadInputError(
            "--engine",
            f"unknown engine {bad[0] if bad else ''!r}",
            "vllm, sglang, tensorrt-llm, llamacpp, auto",
        )
    return wanted


def _pool(
    gpus: Sequence[str] | None, classes: Sequence[str] | None, quants: Sequence[str] | None
) -> list[GpuSpec]:
    """The GPUs to search (named, else by class) after checking the named formats exist."""
    fmts = {f.key for f in quant_catalogue()}
    for q in quants or ():
        if q not in fmts:
            raise BadInputError("--quant", f"unknown format {q!r}", ", ".join(sorted(fmts)))
    if gpus:
        return [resolve_gpu_spec(g)[0] for g in gpus]
    wanted_classes = set(classes or ("consumer", "workstation", "datacenter"))
    return [g for g in gpu_catalogue() if g.gpu_class in wanted_classes]


def _launch(chosen: Accepted, model: ResolvedModel) -> dict[str, str]:
    return launch_commands(
        chosen.dep,
        model.name,
        chosen.memory.settings.memory_fraction,
        model.native_quant,
        chosen.replicas,
        checkpoints=checkpoints(),
        boxes_per_replica=chosen.placement.boxes_per_replica if chosen.placement else 1,
        boxes=chosen.placement.boxes if chosen.placement else 1,
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


@dataclass(frozen=True, kw_only=True)
class _Search:
    """What every candidate of one ``plan`` call shares."""

    model: ResolvedModel
    wanted: Sequence[str]
    many_engines: bool
    max_gpus: int
    users: int
    context: int
    precision: str
    quants: Sequence[str] | None
    kv_dtype: str | None
    user_factors: tuple[EfficiencyFactor, ...]
    links: dict[str, LinkSpec]
    slo: Slo
    in_len: int
    out_len: int
    cost: CostModel
    max_cost_per_hour: float | None
    max_capex: float | None
    headroom: float


@dataclass
class _Found:
    searched: int = 0
    accepted: list[Accepted] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def _search(ctx: _Search, gpu: GpuSpec, boxes: list[SystemSpec]) -> _Found:
    """Every candidate on one GPU: engines × GPUs per engine × replicas × formats × KV dtypes
    × DP attention, each fitted once and evaluated in every box kind that holds it."""
    a = ctx.model.arch
    out = _Found()
    for eng in engines_for(gpu, ctx.wanted):
        for count in (c for c in GPU_COUNTS if c <= ctx.max_gpus):
            layouts = layouts_for(a.num_attention_heads, a.num_kv_heads, a.mla is not None, count)
            if eng == "llamacpp":
                layouts = [(1, count)] if count <= 8 else []
            # a format that leaves no room for any KV (or cannot run at all) on `count` GPUs
            # fails the same way for every replica count: fitted once
            dead: dict[tuple[str, str, bool], Rejected] = {}
            for replicas in (r for r in REPLICAS if r * count <= ctx.max_gpus and (r == 1 or count <= 8)):
                _engines_of(ctx, gpu, boxes, eng, count, replicas, layouts, dead, out)
    return out


def _engines_of(
    ctx: _Search,
    gpu: GpuSpec,
    boxes: list[SystemSpec],
    eng: str,
    count: int,
    replicas: int,
    layouts: list[tuple[int, int]],
    dead: dict[tuple[str, str, bool], Rejected],
    out: _Found,
) -> None:
    """``replicas`` engines of ``count`` GPUs: every format × KV dtype × DP attention."""
    a = ctx.model.arch
    spots = placements(gpu, count, replicas, boxes, ctx.links, system_file().pcie) if boxes else []
    cloud = cloud_choice(gpu.key, count, replicas, cloud_instances())
    engine_tag = eng if ctx.many_engines else None
    if boxes and not spots and ctx.cost.rank_by == "owned":
        out.searched += 1
        out.rejected.append(
            Rejected(
                dep=None,
                label=candidate_name(replicas, count, gpu.key, "", engine=engine_tag).strip(),
                stage="config",
                reason="no catalogued box holds this many (platforms are bought with all 8 GPUs)",
                detail="boxes that take it: "
                + ", ".join(f"{b.key} ({b.gpu_count or len(b.slots)})" for b in boxes),
            )
        )
        return
    dp_options = [False, True] if a.mla is not None and count >= 2 and eng in ("vllm", "sglang") else [False]
    for q in quants_for(ctx.model.native_quant, gpu, ctx.precision, ctx.quants, eng):
        for kv in kv_dtypes_for(gpu, eng, ctx.kv_dtype):
            for dp_attn in dp_options:
                label = candidate_name(replicas, count, gpu.key, q, dp_attn, engine_tag, kv)
                out.searched += 1
                if not layouts:
                    out.rejected.append(
                        Rejected(
                            dep=None,
                            label=label,
                            stage="config",
                            reason="no TP/PP layout divides the attention heads",
                        )
                    )
                    continue
                if (q, kv, dp_attn) in dead:
                    out.rejected.append(replace(dead[q, kv, dp_attn], label=label))
                    continue
                res = _fit(ctx, gpu, eng, layouts[0], replicas, q, kv, dp_attn, label)
                if isinstance(res, Rejected):
                    dead[q, kv, dp_attn] = res
                    out.rejected.append(res)
                    continue
                fitted, label = res
                _in_boxes(ctx, fitted, label, replicas, spots, cloud, out)


def _fit(
    ctx: _Search,
    gpu: GpuSpec,
    eng: str,
    layout: tuple[int, int],
    replicas: int,
    q: str,
    kv: str,
    dp_attn: bool,
    label: str,
) -> tuple[FitResult, str] | Rejected:
    """The memory fit of one replica (its share of the users), retried at a tighter memory
    fraction when that is what it takes; a rejection when no replica count could help."""
    tp, pp = layout
    share = -(-ctx.users // replicas)
    fit_args: dict[str, Any] = dict(
        tp=tp,
        pp=pp,
        quant=q,
        kv_dtype=kv,
        engine=eng,
        max_model_len=ctx.context,
        users=share,
        suggest=False,
        dp_attention=dp_attn and tp > 1,
        ep=dp_attn and tp > 1,
    )
    try:
        res = fit(ctx.model, gpu, **fit_args)
    except GpusizerError as exc:
        return Rejected(dep=None, label=label, stage="config", reason=exc.message)
    if res.estimate.limiting.kv_pool_bytes <= 0 and res.estimate.problems:
        return Rejected(
            dep=res.deployment,
            label=label,
            stage="memory",
            reason="does not fit",
            detail=res.estimate.problems[0],
        )
    return _tighter_memory(res, label, partial(fit, ctx.model, gpu, **fit_args), (1 + ctx.headroom) * share)


def _in_boxes(
    ctx: _Search,
    res: FitResult,
    label: str,
    replicas: int,
    spots: list[Placement],
    cloud: CloudChoice | None,
    out: _Found,
) -> None:
    """Evaluate one fitted deployment in each box kind that holds it (the box's link for TP,
    its network between boxes, its price), or once against the cloud price."""
    dep = res.deployment
    base_eff, _, _ = efficiency_of(dep, None, ctx.user_factors)
    targets: list[Placement | None] = list(distinct_placements(spots)) if ctx.cost.rank_by == "owned" else []
    out.searched += max(len(targets), 1) - 1  # one candidate per box kind
    for spot in targets or [None]:
        eff = base_eff
        if spot is not None:
            eff = replace(base_eff, link=spot.link, node_link=spot.network or base_eff.node_link)
        result = evaluate(
            dep,
            eff,
            label=label,
            slo=ctx.slo,
            input_len=ctx.in_len,
            output_len=ctx.out_len,
            cost=ctx.cost,
            max_cost_per_hour=ctx.max_cost_per_hour,
            max_capex=ctx.max_capex,
            replicas=replicas,
            memory=res.estimate,
            placement=spot,
            cloud=cloud,
            headroom=ctx.headroom,
        )
        if isinstance(result, Accepted):
            out.accepted.append(result)
        else:
            out.rejected.append(result)
            if result.stage == "memory":
                break  # the same in every box
