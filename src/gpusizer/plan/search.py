"""Search one plan's candidates: hardware (GPU × the boxes that take it) × engines × GPUs per
engine × replicas × weight formats × KV dtypes × DP attention, each candidate fitted once
(``plan.deploy``) and evaluated in every box kind that holds it (``plan.evaluate``).

    SearchSpace (what every candidate shares) → hardware → per GPU: ``search_gpu`` → Found
      (candidates searched, accepted ones, every rejection with its reason)

Pure: values in, values out; the catalogue tables are package data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from gpusizer.catalog.load import cloud_instances, gpu_catalogue, quant_catalogue, system_file
from gpusizer.catalog.resolve import resolve_gpu
from gpusizer.catalog.specs import EfficiencyFactor, GpuSpec, LinkSpec, SystemSpec
from gpusizer.domain.options import DeploymentOptions
from gpusizer.engines import engine_spec
from gpusizer.errors import BadInputError, GpusizerError
from gpusizer.plan.deploy import FitResult, ResolvedModel, deploy, efficiency_of
from gpusizer.plan.evaluate import Accepted, CostModel, Rejected, Slo, evaluate
from gpusizer.plan.space import (
    GPU_COUNTS,
    REPLICAS,
    candidate_name,
    distinct_placements,
    engines_for,
    kv_dtypes_for,
    layouts_for,
    quants_for,
)
from gpusizer.plan.systems import (
    CloudChoice,
    Placement,
    cloud_choice,
    module_gpus,
    placements,
    system_gpu,
    takes,
)

__all__ = [
    "TIGHT_MEMORY_UTILIZATION",
    "Found",
    "SearchSpace",
    "gpu_pool",
    "hardware",
    "search_gpu",
    "systems_wanted",
]


# The engine setting the search may raise when a plan misses by a little: vLLM's
# gpu_memory_utilization (default 0.92 from 0.25, 0.90 before) up to this, which leaves
# ~5 % of the card for the CUDA context, NCCL and fragmentation.
TIGHT_MEMORY_UTILIZATION = 0.95


def _tighter_memory(
    res: FitResult, label: str, refit: Callable[[float], FitResult], need_users: float
) -> tuple[FitResult, str]:
    """A vLLM plan that does not fit (with headroom) at the default gpu_memory_utilization is
    retried at ``TIGHT_MEMORY_UTILIZATION``; the label says so when that is what makes it fit."""
    dep = res.deployment
    est = res.estimate
    fraction = engine_spec(dep.engine).memory_fraction
    if (est.fits and est.max_concurrency >= need_users) or fraction is None or fraction.basis != "total":
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
        tight = refit(TIGHT_MEMORY_UTILIZATION)
    except GpusizerError:
        return res, label
    if not tight.estimate.fits:
        return res, label
    return tight, f"{label} at gpu_memory_utilization {TIGHT_MEMORY_UTILIZATION}"


def hardware(
    pool: Sequence[GpuSpec], systems: Sequence[SystemSpec], rejected: list[Rejected], rank_by: str
) -> list[tuple[GpuSpec, list[SystemSpec]]]:
    """(GPU as the box has it, the boxes that take it). A Mac configuration is its own GPU
    (the chip with that configuration's memory)."""
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


def systems_wanted(wanted: Sequence[str] | None) -> list[SystemSpec]:
    every = list(system_file().systems)
    if not wanted:
        return every
    kinds = {s.kind for s in every}
    bad = [w for w in wanted if w not in kinds and w not in {s.key for s in every}]
    if bad:
        raise BadInputError(
            "systems",
            f"unknown system {bad[0]!r}",
            ", ".join(sorted(kinds)) + " or a key from `gpusizer catalog` / data/systems.yaml",
        )
    return [s for s in every if s.kind in wanted or s.key in wanted]


def gpu_pool(
    gpus: Sequence[str] | None, classes: Sequence[str] | None, quants: Sequence[str] | None
) -> list[GpuSpec]:
    """The GPUs to search (named, else by class) after checking the named formats exist."""
    fmts = {f.key for f in quant_catalogue()}
    for q in quants or ():
        if q not in fmts:
            raise BadInputError("quants", f"unknown format {q!r}", ", ".join(sorted(fmts)))
    if gpus:
        return [resolve_gpu(g, gpu_catalogue()).gpu for g in gpus]
    wanted_classes = set(classes or ("consumer", "workstation", "datacenter"))
    return [g for g in gpu_catalogue() if g.gpu_class in wanted_classes]


@dataclass(frozen=True, kw_only=True)
class SearchSpace:
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
class Found:
    searched: int = 0
    accepted: list[Accepted] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def search_gpu(ctx: SearchSpace, gpu: GpuSpec, boxes: list[SystemSpec]) -> Found:
    """Every candidate on one GPU: engines × GPUs per engine × replicas × formats × KV dtypes
    × DP attention, each fitted once and evaluated in every box kind that holds it."""
    a = ctx.model.arch
    out = Found()
    for eng in engines_for(gpu, ctx.wanted):
        for count in (c for c in GPU_COUNTS if c <= ctx.max_gpus):
            layouts = layouts_for(a.num_attention_heads, a.num_kv_heads, a.mla is not None, count)
            if engine_spec(eng).layer_split:
                layouts = [(1, count)] if count <= 8 else []
            # a format that leaves no room for any KV (or cannot run at all) on `count` GPUs
            # fails the same way for every replica count: fitted once
            dead: dict[tuple[str, str, bool], Rejected] = {}
            for replicas in (r for r in REPLICAS if r * count <= ctx.max_gpus and (r == 1 or count <= 8)):
                _engines_of(ctx, gpu, boxes, eng, count, replicas, layouts, dead, out)
    return out


def _engines_of(
    ctx: SearchSpace,
    gpu: GpuSpec,
    boxes: list[SystemSpec],
    eng: str,
    count: int,
    replicas: int,
    layouts: list[tuple[int, int]],
    dead: dict[tuple[str, str, bool], Rejected],
    out: Found,
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
    dp_ok = a.mla is not None and count >= 2 and engine_spec(eng).dp_attention
    dp_options = [False, True] if dp_ok else [False]
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
    ctx: SearchSpace,
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
    opts = DeploymentOptions.model_construct(  # values the search made: valid by construction
        tp=tp,
        pp=pp,
        quant=q,
        kv_dtype=kv,
        engine=engine_spec(eng).name,
        max_model_len=ctx.context,
        users=share,
        dp_attention=dp_attn and tp > 1,
        ep=dp_attn and tp > 1,
        allow_long_context=True,
    )
    try:
        res = deploy(ctx.model, gpu, opts, suggest=False)
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

    def refit(fraction: float) -> FitResult:
        tight = opts.model_copy(update={"gpu_memory_utilization": fraction})
        return deploy(ctx.model, gpu, tight, suggest=False)

    return _tighter_memory(res, label, refit, (1 + ctx.headroom) * share)


def _in_boxes(
    ctx: SearchSpace,
    res: FitResult,
    label: str,
    replicas: int,
    spots: list[Placement],
    cloud: CloudChoice | None,
    out: Found,
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
