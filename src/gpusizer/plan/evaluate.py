"""Evaluate one candidate deployment: does it fit (memory, with headroom), does it meet the
SLOs with headroom (analytic step times at the planned concurrency: the best case, checked
again by simulation in ``verify``), what does it cost — owned as N boxes of one system kind
(boxes + GPUs + network + power) and, where an instance type has the GPU, rented. A rejection
is a value that says which stage failed and why. ``replicas`` independent engines (data
parallel behind a router) each serve their share of the users: the guide's "split the batch
load over two GPUs"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gpusizer.domain.scenario import Deployment
from gpusizer.estimate.memory import MemoryEstimate, estimate_memory
from gpusizer.estimate.perf import PerfRow, perf_rows
from gpusizer.estimate.roofline import Efficiency
from gpusizer.plan.systems import CloudChoice, Placement
from gpusizer.simulate.stats import SimStats

__all__ = [
    "Accepted",
    "CostModel",
    "Rejected",
    "Slo",
    "evaluate",
    "hourly_costs",
    "latency_curve",
    "placed_costs",
]

HOURS_PER_YEAR = 8766  # 365.25 days


@dataclass(frozen=True, kw_only=True)
class Slo:
    ttft_s: float | None = None
    tpot_s: float | None = None


@dataclass(frozen=True, kw_only=True)
class CostModel:
    """Owned hardware: boxes + GPUs + network at list price spread over ``years``, plus power
    at ``kwh_price``. Cloud: the dated instance-hour prices. ``rank_by`` picks the basis the
    ranking uses."""

    years: float = 3.0
    kwh_price: float = 0.15  # USD per kWh
    cloud_usd_per_gpu_hour: dict[str, float] | None = None  # legacy per-GPU quotes (prices.yaml)
    rank_by: Literal["owned", "cloud"] = "owned"


@dataclass(frozen=True, kw_only=True)
class Accepted:
    dep: Deployment  # one replica; dep.users is that replica's share
    replicas: int
    memory: MemoryEstimate
    perf: PerfRow
    usd_per_hour: float  # on the ranking basis, all replicas
    owned_usd_per_hour: float | None
    cloud_usd_per_hour: float | None
    cost_basis: str
    usd_per_million_output_tokens: float  # analytic until verified; then from the simulation
    headroom_users: float  # max concurrency / planned users per replica
    placement: Placement | None = None  # owned: which boxes
    cloud: CloudChoice | None = None  # rented: which instances
    eff: Efficiency | None = None  # the factors and links the speed came from
    label: str = ""
    sim: SimStats | None = None  # the verifying simulation (one replica's users); None: not simulated

    @property
    def gpus(self) -> int:
        return self.dep.layout.gpus * self.replicas

    @property
    def capex_usd(self) -> float | None:
        return self.placement.capex_usd if self.placement is not None else None


@dataclass(frozen=True, kw_only=True)
class Rejected:
    dep: Deployment | None
    label: str
    stage: Literal["config", "memory", "slo", "budget", "cost"]
    reason: str
    detail: str = ""  # the number behind the reason


def hourly_costs(
    dep: Deployment, cost: CostModel, replicas: int = 1
) -> tuple[float | None, float | None, str]:
    """(owned $/h, cloud $/h, a line saying how) for ``replicas`` copies of ``dep``."""
    n = dep.layout.gpus * replicas
    g = dep.gpu
    owned = None
    how = []
    if g.list_price_usd is not None:
        owned = (
            g.list_price_usd * n / (cost.years * HOURS_PER_YEAR) + (g.tdp_w or 0) * n / 1000 * cost.kwh_price
        )
        how.append(
            f"owned: ${g.list_price_usd:,.0f} × {n} over {cost.years:g} y + {g.tdp_w or 0:.0f} W × {n}"
        )
    price = (cost.cloud_usd_per_gpu_hour or {}).get(g.key)
    cloud = price * n if price else None
    if price:
        how.append(f"cloud: ${price:.2f}/GPU-h × {n}")
    return owned, cloud, " · ".join(how)


def placed_costs(
    dep: Deployment,
    cost: CostModel,
    placement: Placement | None,
    cloud: CloudChoice | None,
    replicas: int = 1,
) -> tuple[float | None, float | None, str]:
    """(owned $/h, cloud $/h, a line saying how) for ``placement`` (owned boxes) and
    ``cloud`` (rented instances). Owned needs a list price for the GPU unless the box is the
    GPU (a Mac)."""
    owned = None
    how = []
    p = placement
    if p is not None and (dep.gpu.list_price_usd is not None or p.system.kind == "mac"):
        owned = p.capex_usd / (cost.years * HOURS_PER_YEAR) + p.power_w / 1000 * cost.kwh_price
        parts = [f"${p.system.price_usd:,.0f} × {p.boxes} {'Mac' if p.system.kind == 'mac' else 'box'}"]
        if p.system.kind != "mac":
            parts.append(f"${dep.gpu.list_price_usd or 0:,.0f} × {dep.layout.gpus * replicas} GPU")
        if p.network is not None:
            parts.append(f"{p.network_name} ${p.system.network_usd_per_box or 0:,.0f} × {p.boxes}")
        how.append(f"owned: {' + '.join(parts)} over {cost.years:g} y + {p.power_w:,.0f} W")
    cloud_h = cloud.usd_per_hour if cloud is not None else None
    if cloud is not None:
        how.append(f"cloud: {cloud.label} ${cloud.usd_per_hour:,.2f}/h ({cloud.instance.date})")
    return owned, cloud_h, " · ".join(how)


def latency_curve(
    a: Accepted, eff: Efficiency, *, input_len: int, output_len: int
) -> list[tuple[int, float, float]]:
    """(total users, TTFT s, TPOT s) of ``a``'s deployment as its users grow, up to what its
    KV pool holds at full context — analytic step times, no queueing."""
    per_replica_max = max(1, int(a.memory.max_concurrency * a.dep.users))
    grid = sorted({b for b in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, a.dep.users) if b <= per_replica_max})
    chunk = a.memory.settings.max_num_batched_tokens if a.dep.engine != "llamacpp" else 2048
    rows = perf_rows(a.dep, eff, input_len=input_len, output_len=output_len, batches=tuple(grid), chunk=chunk)
    return [(r.batch * a.replicas, r.ttft_s, r.tpot_s) for r in rows]


def _memory_rejection(dep: Deployment, mem: MemoryEstimate, label: str, headroom: float) -> Rejected | None:
    """Why ``dep`` fails on memory: it does not fit, or its KV pool lacks the headroom."""
    if not mem.fits:
        return Rejected(dep=dep, label=label, stage="memory", reason="does not fit", detail=mem.problems[0])
    if mem.max_concurrency < (1 + headroom) * dep.users:
        return Rejected(
            dep=dep,
            label=label,
            stage="memory",
            reason=f"KV pool without {headroom:.0%} headroom",
            detail=f"holds {mem.max_concurrency:.1f} users at full context, needs {(1 + headroom) * dep.users:.1f}",
        )
    return None


def _budget_rejection(
    dep: Deployment,
    label: str,
    usd_h: float,
    placement: Placement | None,
    max_capex: float | None,
    max_cost_per_hour: float | None,
) -> Rejected | None:
    """Why ``dep`` is over a budget: the hardware (capex) one, then the $/hour one."""
    if max_capex is not None:
        capex = placement.capex_usd if placement is not None else None
        if capex is None or (dep.gpu.list_price_usd is None and placement.system.kind != "mac"):  # type: ignore[union-attr]
            return Rejected(
                dep=dep, label=label, stage="budget", reason="no list price to check against --capex"
            )
        if capex > max_capex:
            return Rejected(
                dep=dep,
                label=label,
                stage="budget",
                reason="over the hardware (capex) budget",
                detail=f"${capex:,.0f} (boxes + GPUs) > ${max_capex:,.0f}",
            )
    if max_cost_per_hour is not None and usd_h > max_cost_per_hour:
        return Rejected(
            dep=dep,
            label=label,
            stage="budget",
            reason="over the $/hour budget",
            detail=f"${usd_h:.2f}/h > ${max_cost_per_hour:.2f}/h",
        )
    return None


def _slo_rejection(dep: Deployment, label: str, row: PerfRow, slo: Slo, headroom: float) -> Rejected | None:
    """Why ``row``'s analytic TTFT or TPOT misses (1 − headroom) × its target."""
    keep = 1 - headroom
    if slo.ttft_s is not None and row.ttft_s > slo.ttft_s * keep:
        return Rejected(
            dep=dep,
            label=label,
            stage="slo",
            reason="TTFT over target",
            detail=f"TTFT {row.ttft_s * 1e3:,.0f} ms > {slo.ttft_s * keep * 1e3:,.0f} ms",
        )
    if slo.tpot_s is not None and row.tpot_s > slo.tpot_s * keep:
        return Rejected(
            dep=dep,
            label=label,
            stage="slo",
            reason=f"TPOT over target ({row.bound}-bound)",
            detail=f"TPOT {row.tpot_s * 1e3:,.1f} ms > {slo.tpot_s * keep * 1e3:,.1f} ms",
        )
    return None


def evaluate(
    dep: Deployment,
    eff: Efficiency,
    *,
    label: str,
    slo: Slo,
    input_len: int,
    output_len: int,
    cost: CostModel,
    max_cost_per_hour: float | None = None,
    max_capex: float | None = None,
    replicas: int = 1,
    memory: MemoryEstimate | None = None,
    placement: Placement | None = None,
    cloud: CloudChoice | None = None,
    headroom: float = 0.0,
) -> Accepted | Rejected:
    """``memory``: the estimate already made for ``dep`` (computed here when not given).
    ``headroom``: the share kept free — the KV pool must hold (1 + headroom) × the users, and
    the analytic TTFT/TPOT must be under (1 − headroom) × the targets."""
    mem = memory if memory is not None else estimate_memory(dep)
    rejected = _memory_rejection(dep, mem, label, headroom)
    if rejected is not None:
        return rejected
    if placement is None and cloud is None:
        owned, cloud_h, how = hourly_costs(dep, cost, replicas)
    else:
        owned, cloud_h, how = placed_costs(dep, cost, placement, cloud, replicas)
    usd_h = owned if cost.rank_by == "owned" else cloud_h
    if usd_h is None:
        return Rejected(
            dep=dep, label=label, stage="cost", reason=f"no {cost.rank_by} price in the catalogue"
        )
    rejected = _budget_rejection(dep, label, usd_h, placement, max_capex, max_cost_per_hour)
    if rejected is not None:
        return rejected
    chunk = mem.settings.max_num_batched_tokens if dep.engine != "llamacpp" else 2048
    row = perf_rows(dep, eff, input_len=input_len, output_len=output_len, batches=(dep.users,), chunk=chunk)[
        0
    ]
    rejected = _slo_rejection(dep, label, row, slo, headroom)
    if rejected is not None:
        return rejected
    tokens_per_hour = row.output_tokens_per_s * replicas * 3600
    return Accepted(
        dep=dep,
        replicas=replicas,
        memory=mem,
        perf=row,
        usd_per_hour=usd_h,
        owned_usd_per_hour=owned,
        cloud_usd_per_hour=cloud_h,
        cost_basis=how,
        usd_per_million_output_tokens=usd_h / tokens_per_hour * 1e6,
        headroom_users=mem.max_concurrency / dep.users,
        placement=placement,
        cloud=cloud,
        eff=eff,
        label=label,
    )
