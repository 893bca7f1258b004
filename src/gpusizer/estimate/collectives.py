"""Communication time of one engine step: the collectives over GPU links.

With TP every layer all-reduces the hidden state twice, ``α + bytes · 2(n−1)/n / busbw``
(NCCL's ring all-reduce, α growing with the group per LinkSpec.latency_growth) or, where the
link names the engines' own all-reduce kernel (LinkSpec.engine_allreduce: a few microseconds
under a CUDA graph against NCCL's ~20 µs on 8 GPUs), whichever of the two is faster. With expert
parallelism the MoE layers dispatch and combine their tokens with all-to-alls instead, each
routed copy of a token leaving the GPU with probability ``(n−1)/n``; with DP attention the
attention all-reduce goes away and each rank sends only its own share of the tokens. Between
pipeline stages the hidden state of the step's tokens is handed on once per boundary, over
``node_link`` where the boundary crosses nodes. Pure: plain values in, plain values out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from gpusizer.catalog.specs import LinkSpec

__all__ = ["ACT_BYTES", "Collectives", "allreduce_latency"]

ACT_BYTES = 2  # bf16/fp16 activations crossing GPU links


def allreduce_latency(link: LinkSpec, n: int) -> float:
    """Small-message all-reduce latency across ``n`` GPUs (see LinkSpec.latency_growth)."""
    if n <= 2:
        return link.latency_s
    if link.latency_growth == "log2":
        return link.latency_s * (1 + math.log2(n / 2))
    return link.latency_s * n / 2


@dataclass(frozen=True, kw_only=True)
class Collectives:
    """A deployment's collectives per step; ``seconds(tokens)`` is their time for a step of
    ``tokens`` tokens."""

    link: LinkSpec | None  # None: a single GPU, no collectives
    node_link: LinkSpec | None  # between nodes (PP hand-offs past stages_per_node)
    hidden: int
    tp: int
    pp: int
    topk: int
    ep: bool
    attention_dp: bool
    tp_comm: bool  # whether the TP ranks exchange activations at all (a serving engine, TP > 1)
    stages_per_node: int
    stage_layers: tuple[tuple[int, int], ...]  # (layers, MoE layers) per pipeline stage

    def seconds(self, tokens: int) -> float:
        """TP/EP collectives of every stage, then the PP hand-offs, summed in that order."""
        comm = 0.0
        link = self.link
        if link is None:
            return comm
        if self.tp_comm:
            lat, bus = self._latency_busbw
            # ring all-reduce of the bf16 hidden state (2 B/element) moves 2(n-1)/n of it per GPU;
            # an all-to-all sends each routed copy ((n-1)/n of them leave the GPU)
            msg = tokens * self.hidden * ACT_BYTES
            per_ar = lat + msg * 2 * (self.tp - 1) / self.tp / bus
            if link.engine_allreduce is not None:
                # the engine's own kernel for small messages, NCCL past the size where it wins
                per_ar = min(per_ar, link.engine_allreduce.seconds(self.tp, msg))
            # DP attention: each rank owns 1/tp of the tokens and sends only those
            own = 1 / self.tp if self.attention_dp else 1.0
            per_a2a = lat + msg * own * self.topk * (self.tp - 1) / self.tp / bus
            for layers, moe_layers in self.stage_layers:
                if self.attention_dp:
                    # no attention all-reduce: all-gather + reduce-scatter around each MLP
                    # (≈ one all-reduce), or dispatch + combine all-to-alls around EP experts
                    moe_cost = 2 * per_a2a if self.ep else per_ar
                    comm += moe_layers * moe_cost + (layers - moe_layers) * per_ar
                elif self.ep and moe_layers:
                    comm += 2 * moe_layers * per_a2a + (2 * layers - moe_layers) * per_ar
                else:
                    comm += 2 * layers * per_ar
        if self.pp > 1:
            for boundary in range(1, self.pp):
                hop = self.node_link if boundary % self.stages_per_node == 0 and self.node_link else link
                comm += hop.latency_s + tokens * self.hidden * ACT_BYTES / hop.bandwidth_bps
        return comm

    @cached_property
    def _latency_busbw(self) -> tuple[float, float]:
        """(small-message latency, bus bandwidth) of a collective over the TP group's link,
        worked out once per deployment: ``seconds`` is on the simulator's per-step path."""
        link = self.link
        if link is None:
            return 0.0, 0.0
        return allreduce_latency(link, self.tp), link.bandwidth_bps * link.busbw_fraction
