"""Steady-state throughput of an engine kept full (offline / max-throughput benchmarks).

With every request queued at once, a continuous-batching engine runs at the largest batch
its scheduler admits: ``B = min(max_batch, KV tokens / (input + output))`` (a request is
admitted only when its full length fits, as TensorRT-LLM's GUARANTEED_NO_EVICT and vLLM's
block reservation at max length do). In steady state each step decodes B tokens at the
mean context ``input + output/2`` and prefills the prompts of the B/output requests that
replaced finished ones, so ``output tokens/s = B / step_time``. This is the analytic
cross-check the simulator (issue #4) refines with queues and length distributions.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpusizer.domain.scenario import Deployment
from gpusizer.estimate.roofline import Batch, Efficiency, StepTime, step_time

__all__ = ["SteadyState", "steady_state_throughput"]


@dataclass(frozen=True, kw_only=True)
class SteadyState:
    batch: int
    step: StepTime
    output_tokens_per_s: float
    limited_by: str  # "kv cache" | "max batch"


def steady_state_throughput(
    dep: Deployment, eff: Efficiency, *, input_len: int, output_len: int, kv_tokens: int, max_batch: int
) -> SteadyState:
    by_kv = max(1, kv_tokens // (input_len + output_len))
    batch = max(1, min(max_batch, by_kv))
    limited = "kv cache" if by_kv <= max_batch else "max batch"
    arrivals = batch / output_len  # requests replaced per step
    prefill_tokens = max(1, round(input_len * arrivals))
    ctx = input_len + output_len // 2
    st = step_time(dep, Batch(decode=(ctx,) * batch, prefill=((prefill_tokens, 0),)), eff)
    return SteadyState(batch=batch, step=st, output_tokens_per_s=batch / st.total_s, limited_by=limited)
