"""Per-GPU VRAM budget of a deployment, engine by engine.

Data flow::

    Deployment ──► weights per rank (domain.weights) ─┐
               ──► KV layout per rank (domain.kv) ────┼─► engine convention ──► MemoryEstimate
               ──► activation peak (estimate.activation)┘   (vLLM | SGLang | TRT-LLM | llama.cpp | HF)

Engines pre-allocate differently, and that is the whole point of modelling them:

* vLLM: ``KV pool = total × gpu_memory_utilization − weights − activation peak −
  non-torch [− CUDA-graph estimate, ≥0.21] [− CUDA context, <0.9.2]``; blocks of
  ``block_size`` tokens; the pool is the minimum over ranks.
* SGLang: ``KV pool = free_after_NCCL × mem_fraction_static − weights``.
* TensorRT-LLM: ``KV pool = 0.9 × (free after weights, activations, graphs)``.
* llama.cpp: KV for ``n_ctx`` cells (padded to 256) + compute buffers; nothing reserved.
* HF transformers: nothing pre-allocated; the cache grows with the sequences.

All sizes are per GPU, in bytes. Sources: ../shared/reference/engine-memory.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from gpusizer.domain.kv import KvLayout, kv_layout
from gpusizer.domain.scenario import Deployment
from gpusizer.domain.weights import RankWeights, rank_weights, total_weight_bytes
from gpusizer.engines import engine_spec
from gpusizer.engines.base import MemoryBasis
from gpusizer.estimate.activation import activation_bytes
from gpusizer.estimate.breakdown import MemoryEstimate, RankMemory
from gpusizer.estimate.breakdown import rank_memory as _rank
from gpusizer.estimate.engine_settings import EngineSettings, engine_settings
from gpusizer.units import GIB

__all__ = ["RULE_OF_THUMB_OVERHEAD", "MemoryEstimate", "RankMemory", "estimate_memory"]

RULE_OF_THUMB_OVERHEAD = 0.15  # the guide's "+15 % overhead buffer" (shared/reference/guide.txt)


# ----------------------------------------------------------------------------- helpers
def _weights(dep: Deployment) -> tuple[RankWeights, ...]:
    """Per-stage weights, scaled to the exact stored bytes when a file gave them."""
    ranks = rank_weights(
        dep.model,
        dep.param_counts,
        dep.quant,
        dep.layout,
        with_mtp=dep.speculative_mtp,
        serving_engine=engine_spec(dep.engine).serving,
    )
    if dep.weights_scale == 1.0:
        return ranks
    return tuple(
        RankWeights(
            stage=r.stage,
            layers=r.layers,
            bytes_by_group={k: v * dep.weights_scale for k, v in r.bytes_by_group.items()},
        )
        for r in ranks
    )


def _kv_tp(dep: Deployment) -> int:
    """KV heads are split over TP, except under DP attention, where each rank keeps whole
    heads for its own requests."""
    return 1 if dep.layout.attention_dp else dep.layout.tp


def _rule_of_thumb(dep: Deployment, kv_model_per_token: float, weights: float) -> float:
    need = weights + kv_model_per_token * dep.max_model_len * dep.users
    return need * (1 + RULE_OF_THUMB_OVERHEAD) / dep.layout.gpus


def _max_context(
    request_bytes: Callable[[int], float], pool: float, users: int, limit: int, step: int
) -> int:
    """Largest context (multiple of ``step``) such that ``users`` requests fit in ``pool``."""
    f = request_bytes
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if f(mid) * users <= pool:
            lo = mid
        else:
            hi = mid - 1
    return lo - lo % step if step > 1 else lo


def _capacity(
    dep: Deployment,
    st: EngineSettings,
    kv: KvLayout,
    layers: range,
    pool: float,
) -> tuple[int, float, int, float]:
    """(tokens, max concurrency at L, max context at users, KV needed for users×L)."""
    block = st.block_size
    window_extra = st.max_num_batched_tokens if engine_spec(dep.engine).window_keeps_batch else 0

    def req(tokens: int) -> float:
        return kv.request_bytes(
            tokens, layers, window=dep.model.sliding_window, window_extra=window_extra, block=block
        )

    per_token = kv.bytes_per_token(layers)
    if per_token <= 0:
        return 0, 0.0, 0, 0.0
    # DP attention: each rank caches only its own requests, so the replica holds tp pools
    ranks = dep.layout.tp if dep.layout.attention_dp else 1
    users = -(-dep.users // ranks)  # the busiest rank's share
    need_one = req(dep.max_model_len)
    if not dep.model.has_sliding_layers:
        blocks = max(0, math.floor(pool / (per_token * block)))
        tokens = blocks * block
        per_req_blocks = math.ceil(dep.max_model_len / block)
        concurrency = blocks / per_req_blocks
        max_ctx = (blocks // users) * block if users else 0
    else:
        concurrency = max(0.0, pool / need_one)
        tokens = int(concurrency * dep.max_model_len)
        max_ctx = _max_context(req, pool, users, dep.model.max_position_embeddings or 10**7, block)
    return int(tokens * ranks), concurrency * ranks, int(max_ctx), need_one * users


# -------------------------------------------------- vLLM: a fraction of total memory
def _of_total(dep: Deployment, st: EngineSettings) -> MemoryEstimate:
    a = dep.model
    n = dep.engine_numbers
    cap = float(dep.visible_memory_bytes)
    kv = kv_layout(a, dep.engine, dep.kv_dtype, tp=_kv_tp(dep), model_dtype_bytes=2.0)
    weights = _weights(dep)
    budget = cap * st.memory_fraction
    non_torch = n["non_torch_single_gpu_bytes"]
    if dep.layout.tp > 1:
        non_torch += n["non_torch_tp_legacy_bytes"] if st.band == "legacy" else n["non_torch_tp_bytes"]
    context = n["cuda_context_bytes"]
    graphs = 0.0 if dep.enforce_eager else n["cuda_graph_bytes"]
    graph_in_budget = st.band == "graph-estimate"
    context_in_budget = st.band == "legacy"
    ranks: list[RankMemory] = []
    pools: list[float] = []
    for rw in weights:
        last = rw.stage == len(weights) - 1
        act = activation_bytes(a, rw.layers, dep.layout.tp, st, n, with_sampler=last)
        pool = budget - rw.total_bytes - act - non_torch
        if graph_in_budget:
            pool -= graphs
        if context_in_budget:
            pool -= context
        pools.append(pool)
        outside = (0.0 if context_in_budget else context) + (0.0 if graph_in_budget else graphs)
        ranks.append(
            _rank(
                rw,
                cap,
                kv_pool=pool,
                act=act,
                non_torch=non_torch,
                graphs=graphs,
                context=context,
                reserve=cap - budget - outside,
            )
        )
    return _finish(dep, st, kv, ranks, pools)


# ------------------------------- SGLang: a fraction of the free memory after NCCL init
def _of_free_after_load(dep: Deployment, st: EngineSettings) -> MemoryEstimate:
    a = dep.model
    n = dep.engine_numbers
    cap = float(dep.visible_memory_bytes)
    kv = kv_layout(a, dep.engine, dep.kv_dtype, tp=_kv_tp(dep))
    weights = _weights(dep)
    pre = cap - n["pre_load_overhead_bytes"]
    ranks, pools = [], []
    for rw in weights:
        pool = pre * st.memory_fraction - rw.total_bytes
        pools.append(pool)
        last = rw.stage == len(weights) - 1
        act = activation_bytes(a, rw.layers, dep.layout.tp, st, n, with_sampler=last)
        slack = pre * (1 - st.memory_fraction)
        ranks.append(
            _rank(
                rw,
                cap,
                kv_pool=pool,
                act=min(act, slack),
                context=n["pre_load_overhead_bytes"],
                reserve=max(slack - act, 0.0),
            )
        )
    return _finish(dep, st, kv, ranks, pools)


# -------------- TensorRT-LLM: a fraction of what is free after weights and activations
def _of_free_after_peak(dep: Deployment, st: EngineSettings) -> MemoryEstimate:
    a = dep.model
    n = dep.engine_numbers
    cap = float(dep.visible_memory_bytes)
    kv = kv_layout(a, dep.engine, dep.kv_dtype, tp=_kv_tp(dep))
    weights = _weights(dep)
    context = n["cuda_context_bytes"]
    graphs = 0.0 if dep.enforce_eager else n["cuda_graph_bytes"]
    non_torch = n["non_torch_single_gpu_bytes"] + (n["non_torch_tp_bytes"] if dep.layout.tp > 1 else 0.0)
    ranks, pools = [], []
    for rw in weights:
        last = rw.stage == len(weights) - 1
        act = activation_bytes(a, rw.layers, dep.layout.tp, st, n, with_sampler=last)
        free = cap - rw.total_bytes - act - non_torch - context - graphs
        pool = free * st.memory_fraction
        pools.append(pool)
        ranks.append(
            _rank(
                rw,
                cap,
                kv_pool=pool,
                act=act,
                non_torch=non_torch,
                graphs=graphs,
                context=context,
                reserve=max(free - pool, 0.0),
            )
        )
    return _finish(dep, st, kv, ranks, pools)


# -------------------------------------------------------- llama.cpp and transformers
def _grow_as_needed(dep: Deployment, st: EngineSettings) -> MemoryEstimate:
    """Engines that size KV to the request (llama.cpp n_ctx, HF DynamicCache)."""
    a = dep.model
    n = dep.engine_numbers
    cap = float(dep.visible_memory_bytes)
    kv = kv_layout(a, dep.engine, dep.kv_dtype)
    weights = _weights(dep)
    context = n["cuda_context_bytes"]
    pad = int(n.get("ctx_padding", 1))
    ranks, pools = [], []
    for rw in weights:
        last = rw.stage == len(weights) - 1
        act = activation_bytes(a, rw.layers, 1, st, n, with_sampler=last)
        cells = dep.users * dep.max_model_len
        cells = -(-cells // pad) * pad
        need = kv.request_bytes(
            cells, rw.layers, window=a.sliding_window, window_extra=int(n.get("n_ubatch", 0))
        )
        room = cap - rw.total_bytes - act - context
        pools.append(room)
        ranks.append(_rank(rw, cap, kv_pool=need, kv_needed=need, act=act, context=context))
    return _finish(dep, st, kv, ranks, pools, preallocated=False)


# ------------------------------------------------------------------------------ verdict
def _finish(
    dep: Deployment,
    st: EngineSettings,
    kv: KvLayout,
    ranks: list[RankMemory],
    pools: list[float],
    *,
    preallocated: bool = True,
) -> MemoryEstimate:
    spec = engine_spec(dep.engine)
    engine_label = spec.label
    stages = [r.stage for r in ranks]
    layers = [r.layers for r in ranks]
    caps = [_capacity(dep, st, kv, layers[s], max(pools[s], 0.0)) for s in stages]
    limiting = min(stages, key=lambda s: caps[s][1] if kv.bytes_per_token(layers[s]) else math.inf)
    tokens, concurrency, max_ctx, _ = caps[limiting]
    problems: list[str] = []
    notes: list[str] = []
    final_ranks = []
    for r in ranks:
        need = caps[r.stage][3]
        final_ranks.append(replace(r, kv_needed_bytes=need))
    if min(pools) <= 0:
        short = -min(pools)
        problems.append(
            f"no room for the KV cache: weights + activations exceed the {engine_label} budget by "
            f"{short / GIB:.2f} GiB per GPU"
        )
    elif concurrency < 1:
        problems.append(
            f"one request of {dep.max_model_len:,} tokens needs {caps[limiting][3] / dep.users / GIB:.2f} GiB "
            f"of KV but the pool holds {max(pools[limiting], 0) / GIB:.2f} GiB"
            + (f" ({engine_label} refuses to start)" if preallocated else "")
        )
    elif concurrency < dep.users:
        problems.append(
            f"{dep.users} users × {dep.max_model_len:,} tokens need "
            f"{caps[limiting][3] / GIB:.2f} GiB of KV per GPU; the pool holds "
            f"{max(pools[limiting], 0) / GIB:.2f} GiB ({concurrency:.2f} such requests at once)"
        )
    over = [r for r in final_ranks if r.free_bytes < -1e-6]
    if over and not problems:
        problems.append(
            f"GPU memory exceeded by {-over[0].free_bytes / GIB:.2f} GiB "
            f"({engine_label} memory fraction too high for what sits outside it)"
        )
    # the guide's rule of thumb counts one whole copy of the KV per token (no TP split): MLA
    # as its latent, anything else as full K/V — in the engine's own KV dtype (llama.cpp q8_0 …)
    kv_model = (
        kv.bytes_per_token()
        if not spec.kv_split_over_tp
        else kv_layout(dep.model, dep.engine, dep.kv_dtype, tp=1).bytes_per_token()
    )
    if dep.model.has_sliding_layers:
        notes.append(
            f"{sum(1 for k in dep.model.layer_attention if k == 'sliding')} of "
            f"{dep.model.num_layers} layers use a {dep.model.sliding_window}-token sliding window"
        )
    all_weights = total_weight_bytes(dep.param_counts, dep.quant) * dep.weights_scale
    return MemoryEstimate(
        settings=st,
        ranks=tuple(final_ranks),
        limiting_stage=limiting,
        kv=kv,
        kv_bytes_per_token=kv.bytes_per_token(layers[limiting]),
        kv_cache_tokens=tokens,
        max_concurrency=concurrency,
        max_context_at_users=min(max_ctx, dep.model.max_position_embeddings or max_ctx),
        fits=not problems,
        problems=tuple(problems),
        rule_of_thumb_bytes=_rule_of_thumb(dep, kv_model, all_weights),
        total_weight_bytes=all_weights,
        notes=tuple(notes),
    )


# What the engine's memory-fraction setting is a fraction of decides how its KV pool is sized.
_CONVENTIONS: dict[MemoryBasis, Callable[[Deployment, EngineSettings], MemoryEstimate]] = {
    "total": _of_total,
    "free-after-load": _of_free_after_load,
    "free-after-peak": _of_free_after_peak,
}


def estimate_memory(dep: Deployment) -> MemoryEstimate:
    """Per-GPU memory breakdown and capacity of ``dep`` under its engine's conventions."""
    st = engine_settings(dep)
    fraction = engine_spec(dep.engine).memory_fraction
    if fraction is None:
        return _grow_as_needed(dep, st)
    return _CONVENTIONS[fraction.basis](dep, st)
