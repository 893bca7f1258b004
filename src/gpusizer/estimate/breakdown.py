"""What a memory estimate says: how each GPU's memory is spent, and the verdict for the
deployment (``estimate.memory`` computes them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gpusizer.domain.kv import KvLayout
from gpusizer.domain.weights import RankWeights
from gpusizer.estimate.engine_settings import EngineSettings

__all__ = ["MemoryEstimate", "RankMemory", "rank_memory"]


@dataclass(frozen=True, kw_only=True)
class RankMemory:
    """How one GPU's memory is spent (bytes)."""

    stage: int
    layers: range  # decoder layers this GPU runs
    capacity_bytes: float  # total device memory as the driver reports it
    weights_bytes: float
    weights_by_group: Mapping[str, float]
    kv_pool_bytes: float  # KV memory the engine holds (pre-allocated pool, or what N×L needs)
    kv_needed_bytes: float  # KV for `users` requests of `max_model_len` tokens on this rank
    activation_bytes: float
    non_torch_bytes: float
    cuda_graph_bytes: float
    cuda_context_bytes: float
    engine_reserve_bytes: float  # left unused by the engine's own memory fraction

    @property
    def used_bytes(self) -> float:
        return (
            self.weights_bytes
            + self.kv_pool_bytes
            + self.activation_bytes
            + self.non_torch_bytes
            + self.cuda_graph_bytes
            + self.cuda_context_bytes
        )

    @property
    def free_bytes(self) -> float:
        return self.capacity_bytes - self.used_bytes


@dataclass(frozen=True, kw_only=True)
class MemoryEstimate:
    """The answer to "does it fit": per-GPU breakdown, capacity in tokens and users."""

    settings: EngineSettings
    ranks: tuple[RankMemory, ...]
    limiting_stage: int
    kv: KvLayout
    kv_bytes_per_token: float  # per GPU, on the limiting rank, all its layers
    kv_cache_tokens: int  # tokens the KV pool holds (per engine's own log formula)
    max_concurrency: float  # requests of max_model_len the pool holds at once
    max_context_at_users: int  # longest context every one of `users` can have at once
    fits: bool
    problems: tuple[str, ...]
    rule_of_thumb_bytes: float  # the guide's rule, per GPU
    total_weight_bytes: float  # the whole model once, as stored
    notes: tuple[str, ...] = field(default=())

    @property
    def limiting(self) -> RankMemory:
        return self.ranks[self.limiting_stage]


def rank_memory(
    rw: RankWeights,
    cap: float,
    *,
    kv_pool: float,
    act: float,
    non_torch: float = 0.0,
    graphs: float = 0.0,
    context: float = 0.0,
    reserve: float = 0.0,
    kv_needed: float = 0.0,
) -> RankMemory:
    """One GPU's breakdown from its weights and the engine's other terms (bytes)."""
    return RankMemory(
        stage=rw.stage,
        layers=rw.layers,
        capacity_bytes=cap,
        weights_bytes=rw.total_bytes,
        weights_by_group=dict(rw.bytes_by_group),
        kv_pool_bytes=max(kv_pool, 0.0),
        kv_needed_bytes=kv_needed,
        activation_bytes=act,
        non_torch_bytes=non_torch,
        cuda_graph_bytes=graphs,
        cuda_context_bytes=context,
        engine_reserve_bytes=reserve,
    )
