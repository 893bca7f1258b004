"""Parallel layout: tensor parallel (TP) × pipeline parallel (PP) ranks and which
decoder layers each pipeline stage holds."""

from __future__ import annotations

from dataclasses import dataclass

from gpusizer.errors import BadInputError

__all__ = ["Layout", "pp_partition"]


@dataclass(frozen=True, kw_only=True)
class Layout:
    """``tp`` × ``pp`` GPUs serve one model replica. ``ep``: MoE experts are split over the
    TP group (expert parallel, all-to-all dispatch) instead of sharded inside each expert
    (all-reduce); per-rank expert memory is the same either way. ``gpus_per_node``: GPUs
    sharing one scale-up domain; PP stages beyond it talk over the inter-node network.
    ``attention_dp``: data-parallel attention (SGLang ``--enable-dp-attention``, vLLM
    ``--data-parallel-size`` with expert parallel): every rank holds full attention weights
    and the KV cache of only its own share of the requests, while the MLP/MoE stay sharded."""

    tp: int = 1
    pp: int = 1
    ep: bool = False
    gpus_per_node: int = 8
    attention_dp: bool = False  # each TP rank runs attention for its own requests (DP attention)

    def __post_init__(self) -> None:
        if self.tp < 1 or self.tp > 1024:
            raise BadInputError("tp", f"must be between 1 and 1024, got {self.tp}")
        if self.pp < 1 or self.pp > 256:
            raise BadInputError("pp", f"must be between 1 and 256, got {self.pp}")
        if not 1 <= self.gpus_per_node <= 72:
            raise BadInputError("gpus_per_node", f"must be 1..72, got {self.gpus_per_node}")
        if self.tp > self.gpus_per_node:
            raise BadInputError(
                "tp",
                f"TP {self.tp} spans nodes of {self.gpus_per_node} GPUs; use PP across nodes",
                f"TP ≤ {self.gpus_per_node}",
            )

    @property
    def gpus(self) -> int:
        return self.tp * self.pp

    @property
    def nodes(self) -> int:
        return -(-self.gpus // self.gpus_per_node)


def pp_partition(num_layers: int, pp: int) -> tuple[range, ...]:
    """Layer ranges per stage as vLLM splits them (``get_pp_indices``): equal shares,
    and the remainder goes one layer each to the stages just before the last."""
    if pp > num_layers:
        raise BadInputError("pp", f"{pp} stages for {num_layers} layers", f"1..{num_layers}")
    sizes = [num_layers // pp] * pp
    for i in range(2, num_layers % pp + 2):
        sizes[-i] += 1
    ranges = []
    start = 0
    for size in sizes:
        ranges.append(range(start, start + size))
        start += size
    return tuple(ranges)
