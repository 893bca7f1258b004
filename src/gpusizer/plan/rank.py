"""Rank accepted plans and pick the top ones; group rejections by reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from gpusizer.plan.evaluate import Accepted, Rejected

__all__ = ["Picks", "group_rejections", "pareto_front", "pick"]


@dataclass(frozen=True, kw_only=True)
class Picks:
    cheapest: Accepted | None
    fastest: Accepted | None
    best_per_token: Accepted | None


def _tpot(a: Accepted) -> float:
    """The simulated mean TPOT where the plan was simulated, else the analytic one."""
    return float(a.sim.tpot.mean) if a.sim is not None else a.perf.tpot_s


def pick(accepted: Sequence[Accepted]) -> Picks:
    """Cheapest, fastest and best $/M output tokens. With verified plans, speed and $/token
    are the simulated ones."""
    if not accepted:
        return Picks(cheapest=None, fastest=None, best_per_token=None)
    return Picks(
        cheapest=min(accepted, key=lambda a: (a.usd_per_hour, _tpot(a))),
        fastest=min(accepted, key=lambda a: (_tpot(a), a.usd_per_hour)),
        best_per_token=min(accepted, key=lambda a: (a.usd_per_million_output_tokens, a.usd_per_hour)),
    )


def pareto_front(accepted: Sequence[Accepted]) -> list[Accepted]:
    """Plans no other plan beats on cost, TPOT and precision (quantization loss) at once:
    one sweep in cost order, keeping the best TPOT seen at each precision rank or better."""

    def key(a: Accepted) -> tuple[float, float, int]:
        return (a.usd_per_hour, a.perf.tpot_s, a.dep.quant.fmt.precision_rank)

    front: list[Accepted] = []
    best: dict[int, tuple[float, float]] = {}  # rank → (cost, tpot) of the best kept so far
    for a in sorted(accepted, key=key):
        cost, tpot, rank = key(a)
        dominated = any(
            r <= rank and t <= tpot and (c, t, r) != (cost, tpot, rank) for r, (c, t) in best.items()
        )
        if dominated:
            continue
        front.append(a)
        if rank not in best or tpot < best[rank][1]:
            best[rank] = (cost, tpot)
    return front


def group_rejections(rejected: Sequence[Rejected]) -> list[tuple[str, int, str]]:
    """(stage: reason, count, one example) sorted by count."""
    counts = Counter(f"{r.stage}: {r.reason}" for r in rejected)
    example: dict[str, str] = {}
    for r in rejected:
        example.setdefault(f"{r.stage}: {r.reason}", f"{r.label} — {r.detail}" if r.detail else r.label)
    return [(k, n, example[k]) for k, n in counts.most_common()]
