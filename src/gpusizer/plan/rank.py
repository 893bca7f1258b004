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


def pick(accepted: Sequence[Accepted]) -> Picks:
    if not accepted:
        return Picks(cheapest=None, fastest=None, best_per_token=None)
    return Picks(
        cheapest=min(accepted, key=lambda a: (a.usd_per_hour, a.perf.tpot_s)),
        fastest=min(accepted, key=lambda a: (a.perf.tpot_s, a.usd_per_hour)),
        best_per_token=min(accepted, key=lambda a: (a.usd_per_million_output_tokens, a.usd_per_hour)),
    )


def pareto_front(accepted: Sequence[Accepted]) -> list[Accepted]:
    """Plans no other plan beats on cost, TPOT and precision (quantization loss) at once."""

    def key(a: Accepted) -> tuple[float, float, int]:
        return (a.usd_per_hour, a.perf.tpot_s, a.dep.quant.fmt.precision_rank)

    front = [
        a
        for a in accepted
        if not any(
            all(x <= y for x, y in zip(key(b), key(a), strict=True)) and key(b) != key(a) for b in accepted
        )
    ]
    return sorted(front, key=lambda a: a.usd_per_hour)


def group_rejections(rejected: Sequence[Rejected]) -> list[tuple[str, int, str]]:
    """(stage: reason, count, one example) sorted by count."""
    counts = Counter(f"{r.stage}: {r.reason}" for r in rejected)
    example: dict[str, str] = {}
    for r in rejected:
        example.setdefault(f"{r.stage}: {r.reason}", f"{r.label} — {r.detail}" if r.detail else r.label)
    return [(k, n, example[k]) for k, n in counts.most_common()]
