"""Simulate one deployment under one workload: the step model, engine limits and KV pool
come from the deployment's memory estimate and efficiency factors."""

from __future__ import annotations

import numpy as np

from gpusizer.domain.scenario import Deployment
from gpusizer.engines import engine_spec
from gpusizer.errors import BadInputError
from gpusizer.estimate.memory import MemoryEstimate
from gpusizer.estimate.roofline import Efficiency, build_step_model
from gpusizer.simulate.engine import EngineLimits, SimTrace, run_engine
from gpusizer.simulate.stats import SimStats, summarize
from gpusizer.simulate.workload import Requests, Workload, sample_requests

__all__ = ["SGLANG_RESERVE", "engine_limits", "simulate_deployment"]

# SGLang's admission reserve (python/sglang/srt/global_config.py, v0.4.x–0.5.x):
# default_init_new_token_ratio 0.7, default_min_new_token_ratio_factor 0.14 (floor 0.098),
# default_new_token_ratio_decay_steps 600; remaining output clipped at
# SGLANG_CLIP_MAX_NEW_TOKENS_ESTIMATION 4096 (managers/env_vars.py).
SGLANG_RESERVE = {
    "reserve_init": 0.7,
    "reserve_min": 0.7 * 0.14,
    "reserve_decay_steps": 600,
    "reserve_clip": 4096,
}


def engine_limits(
    dep: Deployment, memory: MemoryEstimate, *, prefix_caching: bool | None = None
) -> EngineLimits:
    """The scheduler limits ``dep`` runs with: token budget, sequence cap, KV pool in blocks,
    prefix caching (the engine's default unless given) and, on SGLang, its admission reserve."""
    st = memory.settings
    block = max(1, st.block_size)
    spec = engine_spec(dep.engine)
    reserve = SGLANG_RESERVE if spec.admission == "reserve-ratio" else {}
    limits = EngineLimits(
        max_num_batched_tokens=st.max_num_batched_tokens,
        max_num_seqs=st.max_num_seqs,
        block_size=block,
        kv_blocks=max(0, memory.kv_cache_tokens // block),
        prefix_caching=spec.prefix_cache_default if prefix_caching is None else prefix_caching,
        reserve_init=reserve.get("reserve_init", 0.0),
        reserve_min=reserve.get("reserve_min", 0.0),
        reserve_decay_steps=int(reserve.get("reserve_decay_steps", 600)),
        reserve_clip=int(reserve.get("reserve_clip", 4096)),
        mixed_prefill=spec.mixed_prefill,
        spec_tokens=dep.spec_tokens,
        accept_length=dep.spec_accept if dep.spec_tokens else 1.0,
    )
    if limits.kv_blocks == 0:
        raise BadInputError("gpu", "the deployment has no KV cache room (see `gpusizer fit`)")
    return limits


def simulate_deployment(
    dep: Deployment,
    memory: MemoryEstimate,
    eff: Efficiency,
    workload: Workload,
    *,
    trace_requests: Requests | None = None,
    seed: int = 0,
    slo_ttft_s: float | None = None,
    slo_tpot_s: float | None = None,
    prefix_caching: bool | None = None,
) -> tuple[SimStats, SimTrace]:
    limits = engine_limits(dep, memory, prefix_caching=prefix_caching)
    reqs = (
        trace_requests
        if trace_requests is not None
        else sample_requests(workload, np.random.default_rng(seed))
    )
    trace = run_engine(
        build_step_model(dep, eff),
        reqs,
        limits,
        closed_users=workload.users,
        think_time_s=workload.think_time_s,
    )
    warmup = workload.users if workload.users and workload.requests > 2 * workload.users else 0
    stats = summarize(
        trace, slo_ttft_s=slo_ttft_s, slo_tpot_s=slo_tpot_s, warmup=warmup, api_s=eff.request_overhead_s
    )
    return stats, trace
