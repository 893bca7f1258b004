"""Step time of one engine iteration: a roofline per GPU plus communication and overhead.

For a batch — some sequences prefilling chunks, some decoding one token each — one GPU
(one TP rank of each pipeline stage) must:

* read the weights it touches: every dense tensor, and for MoE only the *expected number of
  distinct experts* the step's tokens route to, ``E · (1 − (1 − k/E)^T)`` per layer
  (uniform routing); plus every sequence's cached K/V (engine layout, per rank);
* do ``2 · active linear parameters`` FLOPs per token (lm_head only for rows that sample)
  plus attention ``2 · heads · (d_qk + d_v) · context`` per token per layer (MLA decode in
  its absorbed form: d_qk = kv_lora_rank + rope, d_v = kv_lora_rank);
* with TP, all-reduce the hidden state twice per layer: ``α + bytes · 2(n−1)/n / busbw``.

``time = max(compute / (peak · η_compute), bytes / (bandwidth · η_bandwidth)) + comm + overhead``
with the η factors named in data/efficiency.yaml. Pipeline stages run one after another
for a single step. Pure: plain values in, plain values out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from gpusizer.catalog.specs import GpuSpec, LinkSpec
from gpusizer.domain.kv import kv_layout
from gpusizer.domain.scenario import Deployment
from gpusizer.domain.weights import rank_weights

__all__ = ["Batch", "Bound", "Efficiency", "StepTime", "compute_peak_flops", "step_time"]

Bound = Literal["compute", "memory", "communication", "overhead"]


@dataclass(frozen=True, kw_only=True)
class Batch:
    """One step's work: ``prefill`` (new tokens, tokens already cached) per prefilling
    sequence and ``decode`` context length per decoding sequence."""

    prefill: tuple[tuple[int, int], ...] = ()
    decode: tuple[int, ...] = ()

    @property
    def tokens(self) -> int:
        return sum(n for n, _ in self.prefill) + len(self.decode)


@dataclass(frozen=True, kw_only=True)
class Efficiency:
    """Achieved fractions of peak and fixed costs (data/efficiency.yaml, interconnects.yaml)."""

    bandwidth_fraction: float
    compute_fraction: float
    step_overhead_s: float
    prefill_overhead_s: float = 0.0
    uncertainty: float | None = None  # median |relative error| of the fit behind these factors
    link: LinkSpec | None = None  # None: a single GPU, no collectives
    node_link: LinkSpec | None = None  # between nodes (PP hand-offs past gpus_per_node)


@dataclass(frozen=True, kw_only=True)
class StepTime:
    compute_s: float
    memory_s: float
    comm_s: float
    overhead_s: float
    flops: float  # per GPU, summed over stages
    bytes: float  # per GPU, summed over stages
    weight_bytes: float
    kv_bytes: float
    bound: Bound
    reason: str

    @property
    def total_s(self) -> float:
        return max(self.compute_s, self.memory_s) + self.comm_s + self.overhead_s

    @property
    def arithmetic_intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else 0.0


def compute_peak_flops(gpu: GpuSpec, compute_dtype: str) -> tuple[float, str]:
    """The dense tensor rate a kernel of ``compute_dtype`` math gets, with the dtype used:
    FP8 falls back to 16-bit on GPUs without FP8 (Ampere), INT8 to 16-bit where missing."""
    f = gpu.flops
    chain = {
        "fp4": ["fp4", "fp8", "bf16", "fp16"],
        "fp8": ["fp8", "bf16", "fp16"],
        "int8": ["int8", "fp16", "bf16"],
        "fp16": ["fp16", "bf16"],
        "bf16": ["bf16", "fp16"],
        "fp32": ["tf32", "fp32", "fp16"],
    }.get(compute_dtype, ["bf16", "fp16"])
    for name in chain:
        value = getattr(f, name)
        if value:
            return float(value), name
    return float(gpu.memory_bandwidth_bps), "none"  # no tensor table: treat as 1 FLOP/byte


def _allreduce_latency(link: LinkSpec, n: int) -> float:
    """Small-message all-reduce latency across ``n`` GPUs (see LinkSpec.latency_growth)."""
    if n <= 2:
        return link.latency_s
    if link.latency_growth == "log2":
        return link.latency_s * (1 + math.log2(n / 2))
    return link.latency_s * n / 2


def _expert_fraction(experts: int, topk: int, tokens: int) -> float:
    """Expected share of experts hit at least once by ``tokens`` tokens (uniform routing)."""
    if experts <= 0 or tokens <= 0:
        return 0.0
    return 1.0 - (1.0 - topk / experts) ** tokens


def step_time(dep: Deployment, batch: Batch, eff: Efficiency) -> StepTime:
    """Time of one step of ``batch`` on ``dep`` (seconds), and why."""
    a = dep.model
    tp = dep.layout.tp
    engine = dep.engine
    serving = engine in ("vllm", "sglang", "tensorrt-llm")
    stages = rank_weights(a, dep.param_counts, dep.quant, dep.layout, serving_engine=serving)
    kv = kv_layout(a, engine, dep.kv_dtype, tp=tp if serving else 1)
    tokens = batch.tokens
    rows = len(batch.decode) + len(batch.prefill)  # rows that produce logits
    peak, dtype_used = compute_peak_flops(dep.gpu, dep.quant.fmt.compute_dtype)
    counts = dep.param_counts
    # attention width per rank (heads × (d_qk + d_v))
    heads_rank = a.num_attention_heads / (tp if serving else 1)
    if a.mla is not None:
        m = a.mla
        decode_width = heads_rank * (2 * m.kv_lora_rank + m.qk_rope_head_dim)
        prefill_width = heads_rank * (m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim)
    else:
        decode_width = prefill_width = heads_rank * (a.head_dim + a.v_head_dim)
    moe_set = set(a.moe_layers)
    decode_ctx = sum(batch.decode)
    prefill_ctx = sum(n * (c + (n + 1) / 2) for n, c in batch.prefill)
    compute_s = memory_s = comm_s = 0.0
    flops_total = bytes_total = weight_total = kv_total = 0.0
    for stage in stages:
        layers = stage.layers
        by = stage.bytes_by_group
        expert_bytes = by.get("experts", 0.0)
        dense_bytes = stage.total_bytes - expert_bytes - by.get("rotary_cache", 0.0)
        emb = by.get("embedding", 0.0)
        dense_bytes -= emb  # the embedding is gathered by row, not streamed
        frac = _expert_fraction(a.moe.num_experts, a.moe.experts_per_token, tokens) if a.moe else 0.0
        weights_read = dense_bytes + expert_bytes * frac
        kv_read = kv.per_layer_bytes * len(layers) * (decode_ctx + sum(n + c for n, c in batch.prefill))
        # FLOPs: active linear parameters per token on this rank, lm_head only for sampled rows
        linear = sum(counts.layers[i].active for i in layers) / (tp if serving else 1)
        head_params = a.vocab_size * a.hidden_size / (tp if serving else 1) if stage is stages[-1] else 0.0
        attn_layers = len(layers)
        flops = 2 * tokens * linear + 2 * rows * head_params
        flops += 2 * attn_layers * (decode_width * decode_ctx + prefill_width * prefill_ctx)
        compute_s += flops / (peak * eff.compute_fraction)
        memory_s += (weights_read + kv_read) / (dep.gpu.memory_bandwidth_bps * eff.bandwidth_fraction)
        if tp > 1 and eff.link is not None and serving:
            msg = tokens * a.hidden_size * 2
            moe_here = sum(1 for i in layers if i in moe_set)
            if dep.layout.ep and a.moe is not None and moe_here:
                # expert parallel: dispatch + combine all-to-all of the routed hidden states
                a2a = tokens * a.moe.experts_per_token * a.hidden_size * 2 * (tp - 1) / tp
                per_a2a = _allreduce_latency(eff.link, tp) + a2a / (
                    eff.link.bandwidth_bps * eff.link.busbw_fraction
                )
                comm_s += 2 * moe_here * per_a2a
                layers_allreduce = len(layers) * 2 - moe_here  # attention all-reduce stays
            else:
                layers_allreduce = len(layers) * 2
            per = _allreduce_latency(eff.link, tp) + msg * 2 * (tp - 1) / tp / (
                eff.link.bandwidth_bps * eff.link.busbw_fraction
            )
            comm_s += layers_allreduce * per
        flops_total += flops
        bytes_total += weights_read + kv_read
        weight_total += weights_read
        kv_total += kv_read
    if dep.layout.pp > 1 and eff.link is not None:
        stages_per_node = max(1, dep.layout.gpus_per_node // tp)
        for boundary in range(1, dep.layout.pp):
            crosses = boundary % stages_per_node == 0 and eff.node_link is not None
            hop = eff.node_link if crosses and eff.node_link is not None else eff.link
            comm_s += hop.latency_s + tokens * a.hidden_size * 2 / hop.bandwidth_bps
    overhead_s = eff.step_overhead_s + (eff.prefill_overhead_s if batch.prefill else 0.0)
    parts: dict[Bound, float] = {
        "compute": compute_s,
        "memory": memory_s,
        "communication": comm_s,
        "overhead": overhead_s,
    }
    bound: Bound = max(parts, key=lambda k: parts[k])
    ridge = peak * eff.compute_fraction / (dep.gpu.memory_bandwidth_bps * eff.bandwidth_fraction)
    intensity = flops_total / bytes_total if bytes_total else 0.0
    if bound == "memory":
        share = weight_total / bytes_total if bytes_total else 0
        reason = (
            f"memory-bound: {bytes_total / 1e9:.2f} GB read per step ({share:.0%} weights, "
            f"{1 - share:.0%} KV); {intensity:.0f} FLOP/B < ridge {ridge:.0f}"
        )
    elif bound == "compute":
        reason = (
            f"compute-bound: {flops_total / 1e12:.2f} TFLOP per step at {dtype_used} "
            f"({intensity:.0f} FLOP/B > ridge {ridge:.0f})"
        )
    elif bound == "communication":
        reason = f"interconnect-bound: {2 * a.num_layers} all-reduces per step over TP {tp}"
    else:
        reason = "launch/scheduling overhead dominates this tiny step"
    return StepTime(
        compute_s=compute_s,
        memory_s=memory_s,
        comm_s=comm_s,
        overhead_s=overhead_s,
        flops=flops_total,
        bytes=bytes_total,
        weight_bytes=weight_total,
        kv_bytes=kv_total,
        bound=bound,
        reason=reason,
    )
