"""Verify the picks by simulation: every plan `plan` reports has been simulated and met the
targets at the stated percentile with headroom.

    accepted (analytic best case) → three orders: by cost, by TPOT, by analytic $/M tokens
      → walk each order, simulating, until one candidate passes (or the budget is spent)
      → a pass keeps the simulation and its measured throughput ($/M tokens from it);
        a miss becomes a rejection that says by how much

Simulations are shared: candidates that differ only in the box they sit in (same engine,
same link) are simulated once. The simulator is passed in (``simulate``), so this stays pure.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace

from gpusizer.plan.evaluate import Accepted, Rejected, Slo
from gpusizer.simulate.stats import SimStats

__all__ = ["Verified", "sim_key", "simulated_failure", "verify_picks"]


@dataclass(frozen=True, kw_only=True)
class Verified:
    passed: tuple[Accepted, ...]  # simulated and within the targets, sim attached
    failed: tuple[Rejected, ...]
    simulations: int
    exhausted: bool  # the budget ran out before every order found a pass


def sim_key(a: Accepted) -> Hashable:
    """Candidates with the same deployment and links simulate alike."""
    p = a.placement
    return (id(a.dep), p.link_name if p else None, p.network_name if p else None)


def simulated_failure(
    a: Accepted, stats: SimStats, slo: Slo, percentile: int, headroom: float
) -> Rejected | None:
    """The rejection when the simulated percentile misses a target less its headroom."""
    pct = f"p{percentile}"
    keep = 1 - headroom
    for metric, target, digits in (("ttft", slo.ttft_s, 0), ("tpot", slo.tpot_s, 1)):
        value = getattr(getattr(stats, metric), pct)
        if target is not None and not value <= target * keep:  # NaN (nothing finished) fails too
            name = metric.upper()
            room = f" (target {target * 1e3:,.{digits}f} ms less {headroom:.0%} headroom)" if headroom else ""
            return Rejected(
                dep=a.dep,
                label=a.label,
                stage="slo",
                reason=f"{pct} {name} over target in simulation",
                detail=f"{pct} {name} {value * 1e3:,.{digits}f} ms > {target * keep * 1e3:,.{digits}f} ms{room}",
            )
    return None


def _slower_than_a_miss(a: Accepted, misses: Sequence[tuple[Accepted, Rejected]]) -> Rejected | None:
    """A candidate whose analytic prefill and decode are both no faster than those of a
    simulated miss with the same users per engine on the same engine (scheduler) misses too:
    it is rejected without its own simulation, naming the miss it follows from."""
    for m, why in misses:
        if (
            m.dep.users == a.dep.users
            and m.dep.engine == a.dep.engine
            and a.perf.ttft_s >= m.perf.ttft_s
            and a.perf.tpot_s >= m.perf.tpot_s
        ):
            return Rejected(
                dep=a.dep,
                label=a.label,
                stage="slo",
                reason=why.reason.replace("in simulation", "(no faster than a simulated miss)"),
                detail=f"analytic TTFT {a.perf.ttft_s * 1e3:,.0f} ms / TPOT {a.perf.tpot_s * 1e3:,.1f} ms, "
                f"no better than {m.label}: {why.detail}",
            )
    return None


# A predicted miss must be clear: the analytic time scaled by the smallest simulated/analytic
# ratio seen on a like candidate exceeds the target by this margin (10 % beyond the headroom).
PREDICTION_MARGIN = 1.10


def _predicted_miss(
    a: Accepted,
    ratios: Sequence[tuple[Accepted, str, float]],
    slo: Slo,
    percentile: int,
    headroom: float,
) -> Rejected | None:
    """Queueing under load stretches the analytic TTFT/TPOT by a ratio that depends on the
    users per engine, the engine's scheduler and the TP degree, not much on the card. With
    ratios measured by earlier simulations of like candidates (same users, engine and GPUs per
    engine), a candidate whose analytic time × the smallest such ratio is clearly over the
    target is rejected without its own simulation; the detail says it was predicted."""
    keep = 1 - headroom
    for metric, target, analytic in (
        ("ttft", slo.ttft_s, a.perf.ttft_s),
        ("tpot", slo.tpot_s, a.perf.tpot_s),
    ):
        if target is None:
            continue
        like = [
            r
            for m, mt, r in ratios
            if mt == metric
            and m.dep.users == a.dep.users
            and m.dep.engine == a.dep.engine
            and m.dep.layout.gpus == a.dep.layout.gpus
        ]
        if not like:
            continue
        predicted = analytic * min(like)
        if predicted > target * keep * PREDICTION_MARGIN:
            name = metric.upper()
            return Rejected(
                dep=a.dep,
                label=a.label,
                stage="slo",
                reason=f"p{percentile} {name} over target (predicted from simulated like plans)",
                detail=f"analytic {name} {analytic * 1e3:,.1f} ms × {min(like):.2f} (smallest simulated/analytic "
                f"ratio of {len(like)} like plan{'s' if len(like) > 1 else ''}) = {predicted * 1e3:,.0f} ms "
                f"> {target * keep * 1e3:,.1f} ms",
            )
    return None


def _with_sim(a: Accepted, stats: SimStats) -> Accepted:
    """``a`` with its simulation attached and $/M tokens from the simulated throughput."""
    tokens_per_hour = stats.output_tokens_per_s * a.replicas * 3600
    per_m = a.usd_per_hour / tokens_per_hour * 1e6 if tokens_per_hour > 0 else float("inf")
    return replace(a, sim=stats, usd_per_million_output_tokens=per_m)


def verify_picks(
    accepted: Sequence[Accepted],
    simulate: Callable[[Accepted], SimStats],
    slo: Slo,
    *,
    percentile: int,
    headroom: float,
    max_simulations: int,
) -> Verified:
    """Simulate candidates in cost, speed and analytic $/token order until each order has a
    candidate that passes. ``max_simulations`` bounds the work; past it, an order with no
    pass yet reports none."""
    orders = (
        sorted(accepted, key=lambda a: (a.usd_per_hour, a.perf.tpot_s)),
        sorted(accepted, key=lambda a: (a.perf.tpot_s, a.usd_per_hour)),
        sorted(accepted, key=lambda a: (a.usd_per_million_output_tokens, a.usd_per_hour)),
    )
    stats_by_key: dict[Hashable, SimStats] = {}
    outcome: dict[int, Accepted | Rejected] = {}
    misses: list[tuple[Accepted, Rejected]] = []
    ratios: list[tuple[Accepted, str, float]] = []  # (simulated plan, metric, simulated / analytic)
    runs = 0
    exhausted = False
    for order in orders:
        for a in order:
            done = outcome.get(id(a))
            if done is None:
                done = _slower_than_a_miss(a, misses) or _predicted_miss(a, ratios, slo, percentile, headroom)
                if done is not None:
                    outcome[id(a)] = done
                    continue
                key = sim_key(a)
                if key not in stats_by_key:
                    if runs >= max_simulations:
                        exhausted = True
                        break
                    stats_by_key[key] = simulate(a)
                    runs += 1
                stats = stats_by_key[key]
                failure = simulated_failure(a, stats, slo, percentile, headroom)
                done = failure if failure is not None else _with_sim(a, stats)
                outcome[id(a)] = done
                if failure is not None:
                    misses.append((a, failure))
                pct = f"p{percentile}"
                for metric, analytic in (("ttft", a.perf.ttft_s), ("tpot", a.perf.tpot_s)):
                    simulated = getattr(getattr(stats, metric), pct)
                    if analytic > 0 and simulated == simulated:  # NaN: nothing finished
                        ratios.append((a, metric, simulated / analytic))
            if isinstance(done, Accepted):
                break
    passed = tuple(v for v in outcome.values() if isinstance(v, Accepted))
    failed = tuple(v for v in outcome.values() if isinstance(v, Rejected))
    return Verified(passed=passed, failed=failed, simulations=runs, exhausted=exhausted)
