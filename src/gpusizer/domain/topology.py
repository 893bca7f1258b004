"""Parallel layout: tensor parallel (TP) × pipeline parallel (PP) ranks and which
decoder layers each pipeline stage holds."""

from __future__ import annotations

from dataclasses import dataclass

from gpusizer.errors import BadInputError

__all__ = ["Layout", "pp_partition"]


@dataclass(frozen=True, kw_only=True)
class Layout:
    """``tp`` × ``pp`` GPUs serve one model replica."""

    tp: int = 1
    pp: int = 1

    def __post_init__(self) -> None:
        if self.tp < 1 or self.tp > 1024:
            raise BadInputError("--tp", f"must be between 1 and 1024, got {self.tp}")
        if self.pp < 1 or self.pp > 256:
            raise BadInputError("--pp", f"must be between 1 and 256, got {self.pp}")

    @property
    def gpus(self) -> int:
        return self.tp * self.pp


def pp_partition(num_layers: int, pp: int) -> tuple[range, ...]:
    """Layer ranges per stage as vLLM splits them (``get_pp_indices``): equal shares,
    and the remainder goes one layer each to the stages just before the last."""
    if pp > num_layers:
        raise BadInputError("--pp", f"{pp} stages for {num_layers} layers", f"1..{num_layers}")
    sizes = [num_layers // pp] * pp
    for i in range(2, num_layers % pp + 2):
        sizes[-i] += 1
    ranges = []
    start = 0
    for size in sizes:
        ranges.append(range(start, start + size))
        start += size
    return tuple(ranges)
