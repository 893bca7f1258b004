"""``plan``: the cheapest hardware a buyer can sign that meets the users' targets, as a pure
pipeline over a resolved model.

    space    GPU → the boxes that take it (systems.yaml; a Mac is its own chip)
             × GPUs per engine × engines (replicas) × weight format × KV dtype × DP-attention
    search   memory (``plan.deploy``, KV pool with headroom); per box kind: the link TP crosses
             there, owned cost (boxes + GPUs + network + power), cloud cost (instances.yaml);
             analytic speed at the planned concurrency, SLO with headroom, budgets (``plan.search``)
    verify   simulate in cost / speed / $-per-token order until each pick passes (``plan.verify``)
    suggest  picks (all simulated), Pareto front, the guide's rules, launch commands

Every rejection is kept with its reason. Names and files were resolved before
(``gpusizer.resolve``); ``progress``, when given, hears each stage's steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gpusizer.catalog.load import checkpoints, cloud_prices, interconnects, system_file
from gpusizer.catalog.specs import EfficiencyFactor, LinkSpec
from gpusizer.domain.options import SearchOptions, checked
from gpusizer.errors import BadInputError
from gpusizer.plan.deploy import ResolvedModel
from gpusizer.plan.evaluate import Accepted, CostModel, Rejected, Slo, latency_curve
from gpusizer.plan.launch import launch_commands
from gpusizer.plan.rank import Picks, pareto_front, pick
from gpusizer.plan.rules import Finding, findings
from gpusizer.plan.search import Found, SearchSpace, gpu_pool, hardware, search_gpu, systems_wanted
from gpusizer.plan.space import candidate_name
from gpusizer.plan.verify import verify_picks
from gpusizer.simulate.run import simulate_deployment
from gpusizer.simulate.stats import SimStats
from gpusizer.simulate.workload import LengthDist, Workload

__all__ = [
    "DEFAULT_HEADROOM",
    "DEFAULT_MAX_SIMULATIONS",
    "PlanResult",
    "Progress",
    "check_plan_inputs",
    "label_of",
    "run_plan",
]

DEFAULT_HEADROOM = 0.10
DEFAULT_MAX_SIMULATIONS = 60

Progress = Callable[[str, int, int | None], None]
"""``progress(stage, done, total)``: ``stage`` is "search" (total: GPUs) or "verify" (total:
the simulation budget, an upper bound)."""


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


def check_plan_inputs(engine: str | Sequence[str], **values: Any) -> SearchOptions:
    """The plan's options checked against ``domain.options.SearchOptions`` (a one-line
    BadInputError naming the first bad field); ``engine`` is one name or a list."""
    wanted = (engine,) if isinstance(engine, str) else tuple(engine)
    lists = ("gpus", "classes", "quants", "systems")
    shaped = {k: tuple(v) if k in lists and v is not None else v for k, v in values.items()}
    return checked(SearchOptions, engines=wanted, **shaped)


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


def _search_all(
    space: SearchSpace,
    gpus: Sequence[str] | None,
    classes: Sequence[str] | None,
    systems: Sequence[str] | None,
    progress: Progress | None,
) -> Found:
    """Every candidate on every GPU of the pool, in each box kind that takes it."""
    found = Found()
    pool = gpu_pool(gpus, classes, space.quants)
    kinds = hardware(pool, systems_wanted(systems), found.rejected, space.cost.rank_by)
    for n, (gpu, boxes) in enumerate(kinds, 1):
        one = search_gpu(space, gpu, boxes)
        found.searched += one.searched
        found.accepted += one.accepted
        found.rejected += one.rejected
        if progress is not None:
            progress("search", n, len(kinds))
    return found


def _verify(
    space: SearchSpace,
    accepted: list[Accepted],
    percentile: int,
    max_simulations: int,
    progress: Progress | None,
) -> tuple[list[Accepted], list[Rejected], int, bool]:
    """The accepted candidates simulated in rank order: (passed, failed, simulations, budget out)."""
    runs = [0]

    def simulate(a: Accepted) -> SimStats:
        stats = _simulate(a, input_len=space.in_len, output_len=space.out_len)
        runs[0] += 1
        if progress is not None:
            progress("verify", runs[0], max_simulations)
        return stats

    v = verify_picks(
        accepted,
        simulate,
        space.slo,
        percentile=percentile,
        headroom=space.headroom,
        max_simulations=max_simulations,
    )
    return list(v.passed), list(v.failed), v.simulations, v.exhausted


def run_plan(
    model: ResolvedModel,
    opts: SearchOptions,
    *,
    user_factors: tuple[EfficiencyFactor, ...] = (),
    verify: bool = True,
    progress: Progress | None = None,
) -> PlanResult:
    """Search hardware × count × layout × quantization × KV dtype for ``opts.users`` at
    ``opts.context``, verify the picks by simulation, rank them and write their launch commands.
    ``opts`` were checked (``check_plan_inputs``); ``user_factors`` come first."""
    o = opts
    out_len = min(o.output_len, max(1, o.context // 2))
    in_len = o.input_len if o.input_len is not None else min(2048, max(1, o.context - out_len))
    if in_len + out_len > o.context:
        raise BadInputError("input_len", f"input {in_len} + output {out_len} exceed the context {o.context}")
    prices = {k: v.usd_per_gpu_hour for k, v in cloud_prices().items()}
    links: dict[str, LinkSpec] = {**interconnects(), **system_file().links}
    space = SearchSpace(
        model=model,
        wanted=list(o.engines),
        many_engines=len(o.engines) > 1 or "auto" in o.engines,
        max_gpus=o.max_gpus,
        users=o.users,
        context=o.context,
        precision=o.precision,
        quants=o.quants,
        kv_dtype=o.kv_dtype,
        user_factors=user_factors,
        links=links,
        slo=Slo(ttft_s=o.ttft_ms / 1e3 if o.ttft_ms else None, tpot_s=o.tpot_ms / 1e3 if o.tpot_ms else None),
        in_len=in_len,
        out_len=out_len,
        cost=CostModel(
            years=o.years, kwh_price=o.kwh_price, cloud_usd_per_gpu_hour=prices, rank_by=o.rank_by
        ),
        max_cost_per_hour=o.max_cost_per_hour,
        max_capex=o.capex,
        headroom=o.headroom,
    )
    found = _search_all(space, o.gpus, o.classes, o.systems, progress)
    return _finish(space, found, verify, o.percentile, o.max_simulations, progress)


def _finish(
    space: SearchSpace,
    found: Found,
    verify: bool,
    percentile: int,
    max_simulations: int,
    progress: Progress | None,
) -> PlanResult:
    """Verify, pick, rank and explain: the plan the user reads."""
    accepted, rejected = found.accepted, found.rejected
    shown, simulations, exhausted = accepted, 0, False
    if verify and accepted:
        shown, failed, simulations, exhausted = _verify(
            space, accepted, percentile, max_simulations, progress
        )
        rejected = [*rejected, *failed]
    picks = pick(shown)
    chosen = picks.cheapest
    curve: list[tuple[int, float, float]] = []
    if chosen is not None and chosen.eff is not None:
        curve = latency_curve(chosen, chosen.eff, input_len=space.in_len, output_len=space.out_len)
    return PlanResult(
        model=space.model,
        context=space.context,
        users=space.users,
        input_len=space.in_len,
        output_len=space.out_len,
        slo=space.slo,
        accepted=tuple(accepted),
        rejected=tuple(rejected),
        picks=picks,
        pareto=tuple(pareto_front(accepted)),
        findings=tuple(findings(chosen, shown, rejected)),
        launch=_launch(chosen, space.model) if chosen else {},
        searched=found.searched,
        simulated={label_of(a, with_engine=True): a.sim for a in shown if a.sim is not None},
        percentile=percentile,
        curve=tuple(curve),
        headroom=space.headroom,
        simulations=simulations,
        verify_exhausted=exhausted,
        rank_by=space.cost.rank_by,
    )
