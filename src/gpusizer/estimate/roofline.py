"""Step time of one engine iteration: a roofline per GPU plus communication and overhead.

For a batch — some sequences prefilling chunks, some decoding one token each — one GPU
(one TP rank of each pipeline stage) must:

* read the weights it touches: every dense tensor, and for MoE only the *expected number of
  distinct experts* the step's tokens route to, ``E · (1 − (1 − k/E)^T)`` per layer
  (uniform routing); plus every sequence's cached K/V (engine layout, per rank);
* do ``2 · active linear parameters`` FLOPs per token (lm_head only for rows that sample)
  plus attention ``2 · heads · (d_qk + d_v) · context`` per token per layer (MLA decode in
  its absorbed form: d_qk = kv_lora_rank + rope, d_v = kv_lora_rank; DeepSeek-V3.2's sparse
  MLA over its ``index_topk`` slots and padded heads, ``sparse_attention_heads``), the linear
  FLOPs at the weight format's tensor rate (FP8, FP4, INT8) and the attention FLOPs at 16-bit's;
* with TP, all-reduce the hidden state twice per layer: NCCL's ``α + bytes · 2(n−1)/n / busbw``
  or, on NVLink, the engines' own kernel where it is faster (a few µs per decode all-reduce;
  estimate/collectives.py: that, EP all-to-alls and PP hand-offs).

``time = max(compute / (peak · η_compute) + experts / (peak · η_moe), weights / (bandwidth · η_bw)
+ KV / (bandwidth · η_kv)) + comm + overhead`` with the η factors named in data/efficiency.yaml:
streaming weights reaches a higher share of peak bandwidth than paged attention reading many
sequences' KV blocks, and the routed experts' grouped GEMMs (a few dozen tokens per expert,
each expert split across the TP ranks) a lower share of the tensor peak than dense GEMMs.

``overhead`` is what a step costs however little it computes: a per-step floor (scheduler,
sampling, graph launch); per-layer floors (each layer's chain of small kernels — at batch 1 a
61-layer DeepSeek step on 8×B200 takes 9.15 ms (SGLang cookbook, DeepSeek-R1 TP 8, one user)
where its touched weights, ~4.5 GB per GPU, stream in under 1 ms), with
extra for MoE layers (routing, token permutation, grouped GEMMs at small M) and for
multi-head latent attention layers (low-rank projections and absorbed batched matmuls, about
twice GQA's kernels); a cost per sequence per layer and per sequence per step (the server
process's scheduling, detokenising and streaming of each token). A step that prefills also
pays a per-prompt-chunk cost and, on MoE models, a per-MoE-layer cost: engines capture decode
steps in CUDA graphs but run prefill eagerly, and a prefill batch's tokens reach every expert.
Each term is a named factor in data/efficiency.yaml, fitted per engine × GPU vendor on
published serving runs (calibrate/, benchmarks/cv_serving.py). Pipeline stages run one after
another for a single step. Pure: plain values in, plain values out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from gpusizer.catalog.specs import GpuSpec, LinkSpec
from gpusizer.domain.kv import indexer_key_bytes, kv_layout
from gpusizer.domain.scenario import Deployment
from gpusizer.domain.weights import rank_weights
from gpusizer.engines import engine_spec
from gpusizer.estimate.collectives import ACT_BYTES as ACT_BYTES  # its home before collectives.py
from gpusizer.estimate.collectives import Collectives

__all__ = [
    "Batch",
    "Bound",
    "Efficiency",
    "StepModel",
    "StepTime",
    "attention_dtype",
    "build_step_model",
    "compute_peak_flops",
    "step_time",
]

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

    bandwidth_fraction: float  # weights streamed per step (large GEMV/GEMM reads)
    compute_fraction: float
    step_overhead_s: float
    # the routed experts' grouped GEMMs (many small per-expert matrices, narrow TP shards,
    # block-scaled FP8): their own achieved fraction of the tensor peak; None: compute_fraction
    moe_compute_fraction: float | None = None
    prefill_overhead_s: float = 0.0  # per prompt chunk in the step (request set-up, chunk metadata)
    kv_bandwidth_fraction: float | None = None  # KV-cache reads by the attention kernels; None: as weights
    layer_overhead_s: float = 0.0  # fixed cost per transformer layer per step (kernel floors)
    moe_layer_overhead_s: float = 0.0  # extra fixed cost per MoE layer per step (routing, grouped GEMM)
    sequence_layer_overhead_s: float = (
        0.0  # cost per sequence per layer (attention metadata, per-request kernel work)
    )
    sequence_overhead_s: float = (
        0.0  # cost per sequence per step (the server's scheduling, detokenising, streaming)
    )
    prefill_moe_layer_overhead_s: float = (
        0.0  # per MoE layer of a step that prefills (eager grouped GEMMs over every expert)
    )
    mla_layer_overhead_s: float = 0.0  # extra per MLA layer per step (low-rank projections, absorbed BMMs)
    eager_layer_overhead_s: float = 0.0  # extra per layer of a decode step run without a CUDA graph
    # the API server's share of every request's TTFT, outside the engine's steps: HTTP, chat
    # template and tokenisation before the engine sees the prompt, the first token's way back
    request_overhead_s: float = 0.0
    uncertainty: float | None = None  # median |relative error| of the fit behind these factors
    # the same on the row's mixture-of-experts runs alone; None: as uncertainty
    moe_uncertainty: float | None = None
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


def attention_dtype(compute_dtype: str) -> str:
    """The math of the attention products under weights computed in ``compute_dtype``: 8-bit
    and 4-bit formats quantize the linear layers' GEMMs only; the engines' default attention
    kernels (FlashAttention, FlashInfer, FlashMLA, TensorRT-LLM's FMHA with a 16-bit KV cache)
    multiply 16-bit queries and keys, at half the FP8 tensor rate on Hopper and Blackwell."""
    return compute_dtype if compute_dtype in ("bf16", "fp16", "fp32") else "bf16"


def sparse_attention_heads(heads: float) -> int:
    """The query heads a rank's sparse-MLA kernel multiplies for ``heads`` of its own:
    FlashMLA's sparse kernels take 64 or 128 heads only, so the engines pad a tensor-parallel
    rank's share up (vLLM's FlashMLASparse backend: "padding num_heads to 64 due to sparse
    attn kernel requirement"; its FP8 decode path and SGLang's NSA backend: 64 if ≤ 64, else
    128). DP attention keeps all 128 of DeepSeek-V3.2's heads on a rank: no padding."""
    return 64 if heads <= 64 else max(128, math.ceil(heads))


def window_pairs(n: int, done: int, window: int) -> float:
    """Query-key pairs of a prompt chunk of ``n`` tokens after ``done`` cached ones when each
    query attends to at most ``window`` keys (DeepSeek-V3.2's sparse attention keeps the
    indexer's top-k); ``window`` 0: every causal pair, n·(done + (n+1)/2)."""
    if n <= 0:
        return 0.0
    if window <= 0 or done + n <= window:
        return n * (done + (n + 1) / 2)
    if done >= window:
        return float(n * window)
    below = window - done  # queries whose causal prefix is still within the window
    return below * (done + (below + 1) / 2) + (n - below) * window


def _expert_fraction(experts: int, topk: int, tokens: int) -> float:
    """Expected share of experts hit at least once by ``tokens`` tokens (uniform routing)."""
    if experts <= 0 or tokens <= 0:
        return 0.0
    return 1.0 - (1.0 - topk / experts) ** tokens


@dataclass(frozen=True, kw_only=True)
class _Stage:
    dense_bytes: float  # weights streamed every step (not experts, not the embedding)
    expert_bytes: float  # all routed experts on this rank
    kv_per_token: float  # KV bytes per cached token over this stage's layers
    # of which the DeepSeek-V3.2 indexer's keys, read over the whole context every step
    # (the rest, the MLA latent, only over the top-k tokens the indexer keeps)
    index_kv_per_token: float = 0.0
    linear_params: float  # active linear parameters per token on this rank
    expert_params: float  # of which routed-expert parameters (top-k experts) per token
    head_params: float  # lm_head parameters on this rank (last stage only)
    layers: int
    moe_layers: int
    attn_share: float = 1.0  # share of the batch's sequences whose attention runs here (DP attention: 1/tp)


@dataclass(frozen=True, kw_only=True)
class _Draft:
    """One pass of a speculative draft: one layer like the target's average one, plus the
    lm_head that proposes the token (DeepSeek's MTP module; an EAGLE head is the same shape)."""

    dense_bytes: float  # per rank: the layer's dense weights and the lm_head
    expert_bytes: float  # per rank: the layer's routed experts (MoE drafts)
    params: float  # active parameters per token per rank (layer and head)
    kv_per_token: float  # the draft layer's KV bytes per cached token
    index_kv_per_token: float = 0.0  # of which indexer keys (sparse attention: whole context)


@dataclass(frozen=True, kw_only=True)
class StepModel:
    """A deployment's step-time constants, computed once; ``seconds`` is the fast path the
    simulator calls per step, ``step`` the explained version ``perf`` prints. Both evaluate
    the same roofline."""

    stages: tuple[_Stage, ...]
    peak_flops: float
    peak_dtype: str
    # the rate of the attention products (QK^T, PV): the serving engines run them in 16-bit
    # whatever the weights' format (FP8/FP4/INT8 GEMMs, BF16 FlashAttention/FlashMLA)
    attn_peak_flops: float
    bandwidth_bps: float
    eff: Efficiency
    decode_width: float  # heads × (d_qk + d_v) per rank, decode (MLA absorbed)
    prefill_width: float
    hidden: int
    experts: int
    topk: int
    tp: int
    pp: int
    ep: bool
    stages_per_node: int
    tp_comm: bool
    num_layers: int
    attention_dp: bool = False
    mla_layers: int = 0  # layers with multi-head latent attention (DeepSeek V2/V3, Kimi-K2)
    moe_layer_total: int = 0  # MoE layers over all stages
    graph_batches: frozenset[int] | None = None  # decode batches run as CUDA graphs; None: all
    # speculative decoding (MTP / EAGLE chains): each decoding sequence verifies
    # ``spec_tokens`` drafted tokens plus its own in one target pass, after ``spec_tokens``
    # passes of a one-layer draft (``draft``); 0: off
    spec_tokens: int = 0
    draft: _Draft | None = None
    # DeepSeek Sparse Attention (V3.2): the main attention of a query reads at most
    # ``attn_window`` keys (index_topk), picked by a lightning indexer that scores every cached
    # key with ``index_width`` = index_n_heads × index_head_dim multiply-adds per pair at
    # ``index_peak_flops`` (FP8 in DeepGEMM's indexer kernels); 0: dense attention. The
    # sparse kernels multiply every one of a query's ``attn_window`` index slots, the unused
    # ones masked (``sparse_attention_heads``: and over padded heads), so the attention's
    # FLOPs are ``decode_width · attn_window`` per query token whatever its context; only the
    # latent reads stop at the context
    attn_window: int = 0
    index_width: float = 0.0
    index_peak_flops: float = 0.0

    def eager(self, rows: int, prefills: int) -> bool:
        """A decode-only step whose batch size has no captured CUDA graph runs eagerly (a step
        that prefills is eager in every engine's costs already: prefill_overhead_s)."""
        return prefills == 0 and self.graph_batches is not None and rows not in self.graph_batches

    def _expert_frac(self, tokens: int) -> float:
        return _expert_fraction(self.experts, self.topk, tokens) if self.experts else 0.0

    @cached_property
    def collectives(self) -> Collectives:
        """The step's TP/EP collectives and PP hand-offs (estimate/collectives.py)."""
        return Collectives(
            link=self.eff.link,
            node_link=self.eff.node_link,
            hidden=self.hidden,
            tp=self.tp,
            pp=self.pp,
            topk=self.topk,
            ep=self.ep,
            attention_dp=self.attention_dp,
            tp_comm=self.tp_comm,
            stages_per_node=self.stages_per_node,
            stage_layers=tuple((st.layers, st.moe_layers) for st in self.stages),
        )

    def parts(
        self,
        tokens: int,
        rows: int,
        decode_ctx: float,
        prefill_kv: float,
        prefill_work: float,
        prefills: int,
        window_ctx: float | None = None,
        window_work: float | None = None,
    ) -> tuple[float, float, float, float, float, float, float, float]:
        """(compute_s, memory_s, comm_s, overhead_s, flops, weight_bytes, kv_bytes, expert_s) of
        a step; ``expert_s`` is the routed experts' share of ``compute_s``. With sparse
        attention (``attn_window``), ``window_ctx`` and ``window_work`` are ``decode_ctx`` and
        ``prefill_work`` with every query's keys capped at the window (``window_pairs``)."""
        eff = self.eff
        win_ctx = decode_ctx if window_ctx is None else window_ctx
        win_work = prefill_work if window_work is None else window_work
        drafting = rows - prefills if self.spec_tokens else 0
        logits, attn_ctx, index_ctx = rows, win_ctx, decode_ctx
        if drafting:  # the verify pass runs spec_tokens more query tokens per decoding sequence
            extra = drafting * self.spec_tokens
            tokens += extra
            attn_ctx *= 1 + self.spec_tokens  # each verified token attends to the context (read once)
            index_ctx *= 1 + self.spec_tokens
            logits += extra  # and each is scored by the lm_head
        frac = self._expert_frac(tokens)
        compute = memory = flops_t = w_t = kv_t = 0.0
        rate_c = self.peak_flops * eff.compute_fraction
        rate_a = self.attn_peak_flops * eff.compute_fraction
        rate_e = self.peak_flops * (eff.moe_compute_fraction or eff.compute_fraction)
        expert_s = 0.0
        rate_m = self.bandwidth_bps * eff.bandwidth_fraction
        rate_kv = self.bandwidth_bps * (eff.kv_bandwidth_fraction or eff.bandwidth_fraction)
        rate_i = (self.index_peak_flops or self.attn_peak_flops) * eff.compute_fraction
        for st in self.stages:
            w = st.dense_bytes + st.expert_bytes * frac
            # the indexer's keys over the whole context; the attention's own cache over the
            # window the indexer keeps (all of it without sparse attention); a prompt chunk's
            # queries pick different keys, so a prefill reads its whole context
            kv = (
                st.index_kv_per_token * (decode_ctx + prefill_kv)
                + (st.kv_per_token - st.index_kv_per_token) * (win_ctx + prefill_kv)
            ) * st.attn_share
            f_exp = 2 * tokens * st.expert_params
            f_lin = 2 * tokens * (st.linear_params - st.expert_params) + 2 * logits * st.head_params
            if self.attn_window:
                f_attn = 2 * st.layers * st.attn_share * self.decode_width * self.attn_window * tokens
            else:
                width_ctx = self.decode_width * attn_ctx + self.prefill_width * win_work
                f_attn = 2 * st.layers * st.attn_share * width_ctx
            f_index = 2 * st.layers * st.attn_share * self.index_width * (index_ctx + prefill_work)
            f = f_lin + f_exp + f_attn + f_index
            compute += (
                f_lin / rate_c + f_exp / rate_e + f_attn / rate_a + (f_index / rate_i if f_index else 0.0)
            )
            expert_s += f_exp / rate_e
            memory += w / rate_m + kv / rate_kv
            flops_t += f
            w_t += w
            kv_t += kv
        comm = self.collectives.seconds(tokens)
        if drafting and self.draft is not None:  # spec_tokens passes of the draft, a token each
            d, n = self.draft, self.spec_tokens
            w = n * (d.dense_bytes + d.expert_bytes * self._expert_frac(drafting))
            kv = n * (d.index_kv_per_token * decode_ctx + (d.kv_per_token - d.index_kv_per_token) * win_ctx)
            f = n * 2 * drafting * d.params
            compute += f / rate_c
            memory += w / rate_m + kv / rate_kv
            flops_t += f
            w_t += w
            kv_t += kv
            comm += n * self.collectives.seconds(drafting) / max(1, self.num_layers - n)
        overhead = (
            eff.step_overhead_s
            + eff.prefill_overhead_s * prefills
            + (self.moe_layer_total * eff.prefill_moe_layer_overhead_s if prefills else 0.0)
            + self.num_layers * eff.layer_overhead_s
            + self.moe_layer_total * eff.moe_layer_overhead_s
            + self.mla_layers * eff.mla_layer_overhead_s
            + rows * (self.num_layers * eff.sequence_layer_overhead_s + eff.sequence_overhead_s)
            + (self.num_layers * eff.eager_layer_overhead_s if self.eager(rows, prefills) else 0.0)
        )
        return compute, memory, comm, overhead, flops_t, w_t, kv_t, expert_s

    def seconds(
        self,
        tokens: int,
        rows: int,
        decode_ctx: float,
        prefill_kv: float,
        prefill_work: float,
        prefills: int,
        window_ctx: float | None = None,
        window_work: float | None = None,
    ) -> float:
        c, m, comm, o, *_ = self.parts(
            tokens, rows, decode_ctx, prefill_kv, prefill_work, prefills, window_ctx, window_work
        )
        return max(c, m) + comm + o

    def step(self, batch: Batch) -> StepTime:
        tokens = batch.tokens
        rows = len(batch.decode) + len(batch.prefill)  # rows that produce logits
        prefill_kv = float(sum(n + c for n, c in batch.prefill))
        prefill_work = float(sum(window_pairs(n, c, 0) for n, c in batch.prefill))
        win = self.attn_window
        compute_s, memory_s, comm_s, overhead_s, flops, wbytes, kvbytes, _ = self.parts(
            tokens,
            rows,
            float(sum(batch.decode)),
            prefill_kv,
            prefill_work,
            len(batch.prefill),
            float(sum(min(c, win) for c in batch.decode)) if win else None,
            float(sum(window_pairs(n, c, win) for n, c in batch.prefill)) if win else None,
        )
        parts: dict[Bound, float] = {
            "compute": compute_s,
            "memory": memory_s,
            "communication": comm_s,
            "overhead": overhead_s,
        }
        bound: Bound = max(parts, key=lambda k: parts[k])
        eff = self.eff
        ridge = self.peak_flops * eff.compute_fraction / (self.bandwidth_bps * eff.bandwidth_fraction)
        total_bytes = wbytes + kvbytes
        intensity = flops / total_bytes if total_bytes else 0.0
        if bound == "memory":
            frac = self._expert_frac(tokens)
            expert = sum(st.expert_bytes for st in self.stages) * frac
            dense = wbytes - expert
            split = (
                f"{expert / total_bytes:.0%} routed experts ({frac:.0%} of them touched), "
                f"{dense / total_bytes:.0%} dense weights"
                if self.experts and total_bytes
                else f"{wbytes / total_bytes if total_bytes else 0:.0%} weights"
            )
            sparse = (
                f", the latent of the top {self.attn_window:,} keys and every key's indexer entry"
                if self.attn_window and any(c > self.attn_window for c in batch.decode)
                else ""
            )
            reason = (
                f"memory-bound: {total_bytes / 1e9:.2f} GB read per step ({split}, "
                f"{kvbytes / total_bytes if total_bytes else 0:.0%} KV{sparse}); "
                f"{intensity:.0f} FLOP/B < ridge {ridge:.0f}"
            )
        elif bound == "compute":
            reason = (
                f"compute-bound: {flops / 1e12:.2f} TFLOP per step at {self.peak_dtype}"
                f"{' (attention at 16-bit)' if self.attn_peak_flops != self.peak_flops else ''} "
                f"({intensity:.0f} FLOP/B > ridge {ridge:.0f})"
            )
        elif bound == "communication":
            kind = "all-to-alls (expert parallel)" if self.ep else "all-reduces"
            reason = f"interconnect-bound: {kind} over TP {self.tp}, {comm_s * 1e3:.2f} ms per step"
        else:
            fixed = {
                "per-layer kernel floors": self.num_layers * eff.layer_overhead_s
                + self.moe_layer_total * eff.moe_layer_overhead_s
                + self.mla_layers * eff.mla_layer_overhead_s,
                "per-sequence work": rows
                * (self.num_layers * eff.sequence_layer_overhead_s + eff.sequence_overhead_s),
                "the per-step floor": eff.step_overhead_s,
                "eager kernel launches (no CUDA graph for this batch)": self.num_layers
                * eff.eager_layer_overhead_s
                * self.eager(rows, len(batch.prefill)),
            }
            top = max(fixed, key=lambda k: fixed[k])
            reason = (
                f"overhead-bound: {overhead_s * 1e3:.2f} ms of fixed costs per step, most of it "
                f"{top} ({fixed[top] * 1e3:.2f} ms), more than the {max(compute_s, memory_s) * 1e3:.2f} ms of work"
            )
        return StepTime(
            compute_s=compute_s,
            memory_s=memory_s,
            comm_s=comm_s,
            overhead_s=overhead_s,
            flops=flops,
            bytes=total_bytes,
            weight_bytes=wbytes,
            kv_bytes=kvbytes,
            bound=bound,
            reason=reason,
        )


def build_step_model(dep: Deployment, eff: Efficiency) -> StepModel:
    """Precompute the per-stage constants of ``dep`` under ``eff``."""
    a = dep.model
    tp = dep.layout.tp
    serving = engine_spec(dep.engine).serving
    shard = tp if serving else 1
    dp_attn = dep.layout.attention_dp and serving
    ranks = rank_weights(a, dep.param_counts, dep.quant, dep.layout, serving_engine=serving)
    ranks = (
        tuple(
            type(r)(
                stage=r.stage,
                layers=r.layers,
                bytes_by_group={k: v * dep.weights_scale for k, v in r.bytes_by_group.items()},
            )
            for r in ranks
        )
        if dep.weights_scale != 1.0
        else ranks
    )
    kv = kv_layout(a, dep.engine, dep.kv_dtype, tp=1 if dep.layout.attention_dp else shard)
    peak, dtype_used = compute_peak_flops(dep.gpu, dep.quant.fmt.compute_dtype)
    # the serving engines' attention runs in 16-bit whatever the weights (attention_dtype);
    # llama.cpp's factors are fitted with its attention at the format's rate, which its
    # llama-bench rows favour (leave-one-source-out prefill 9.5 % vs 9.8 % at 16-bit)
    attn_peak = (
        compute_peak_flops(dep.gpu, attention_dtype(dep.quant.fmt.compute_dtype))[0] if serving else peak
    )
    heads_rank = a.num_attention_heads / (1 if dp_attn else shard)
    if a.mla is not None:
        m = a.mla
        decode_width = heads_rank * (2 * m.kv_lora_rank + m.qk_rope_head_dim)
        prefill_width = heads_rank * (m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim)
    else:
        decode_width = prefill_width = heads_rank * (a.head_dim + a.v_head_dim)
    # DeepSeek Sparse Attention: the serving engines run V3.2's indexer and top-k attention
    # (SGLang's NSA backend, vLLM's FlashMLA-sparse, TensorRT-LLM); its indexer projections are
    # replicated on every attention rank (SGLang's ReplicatedLinear), its scores in FP8
    sparse = serving and a.mla is not None and a.index_n_heads > 0 and a.index_topk > 0
    index_kv = float(indexer_key_bytes(a)) if sparse else 0.0
    if sparse and a.mla is not None:  # prompt and decode tokens alike run the absorbed kernel
        decode_width = prefill_width = sparse_attention_heads(heads_rank) * (
            2 * a.mla.kv_lora_rank + a.mla.qk_rope_head_dim
        )
    moe_set = set(a.moe_layers)
    counts = dep.param_counts
    # routed-expert parameters one token multiplies per MoE layer (top-k of the experts)
    routed = (
        max((counts.layers[i].group("experts") for i in moe_set), default=0)
        / a.moe.num_experts
        * a.moe.experts_per_token
        if a.moe and a.moe.num_experts
        else 0.0
    )
    stages = []
    for r in ranks:
        by = r.bytes_by_group
        experts = by.get("experts", 0.0)
        dense = r.total_bytes - experts - by.get("rotary_cache", 0.0) - by.get("embedding", 0.0)
        last = r is ranks[-1]
        stages.append(
            _Stage(
                attn_share=1 / tp if dp_attn else 1.0,
                dense_bytes=dense,
                expert_bytes=experts,
                kv_per_token=kv.per_layer_bytes * len(r.layers),
                index_kv_per_token=index_kv * len(r.layers),
                linear_params=sum(counts.layers[i].active for i in r.layers) / shard,
                expert_params=routed * sum(1 for i in r.layers if i in moe_set) / shard,
                head_params=a.vocab_size * a.hidden_size / shard if last else 0.0,
                layers=len(r.layers),
                moe_layers=sum(1 for i in r.layers if i in moe_set),
            )
        )
    n_spec = dep.spec_tokens
    draft = None
    if n_spec:
        layers = max(1, a.num_layers)
        head_params = stages[-1].head_params
        head_bytes = ranks[-1].bytes_by_group.get("lm_head", 0.0)  # at the format's own head bits
        draft = _Draft(
            dense_bytes=(sum(st.dense_bytes for st in stages) - head_bytes) / layers + head_bytes,
            expert_bytes=sum(st.expert_bytes for st in stages) / max(1, sum(st.moe_layers for st in stages)),
            params=sum(st.linear_params for st in stages) / layers + head_params,
            kv_per_token=sum(st.kv_per_token for st in stages) / layers,
            index_kv_per_token=index_kv,
        )
    return StepModel(
        stages=tuple(stages),
        peak_flops=peak,
        peak_dtype=dtype_used,
        attn_peak_flops=attn_peak,
        bandwidth_bps=dep.gpu.memory_bandwidth_bps,
        eff=eff,
        decode_width=decode_width,
        prefill_width=prefill_width,
        hidden=a.hidden_size,
        experts=a.moe.num_experts if a.moe else 0,
        topk=a.moe.experts_per_token if a.moe else 0,
        tp=tp,
        pp=dep.layout.pp,
        ep=dep.layout.ep,
        stages_per_node=max(1, dep.layout.gpus_per_node // tp),
        tp_comm=tp > 1 and serving,
        attention_dp=dp_attn,
        # a draft pass costs the fixed per-layer terms of one more layer of the model's kind
        num_layers=a.num_layers + n_spec,
        mla_layers=(a.num_layers + n_spec) if a.mla is not None else 0,
        moe_layer_total=sum(st.moe_layers for st in stages) + (n_spec if a.moe else 0),
        spec_tokens=n_spec,
        draft=draft,
        attn_window=a.index_topk if sparse else 0,
        index_width=float(a.index_n_heads * a.index_head_dim) if sparse else 0.0,
        index_peak_flops=compute_peak_flops(dep.gpu, "fp8")[0] if sparse else 0.0,
        # enforce_eager is left out on purpose: the eager cost is fitted on TensorRT-LLM's
        # PyTorch-backend runs only, and would not transfer to vLLM's eager mode
        graph_batches=frozenset(dep.cuda_graph_batches) if dep.cuda_graph_batches is not None else None,
    )


def step_time(dep: Deployment, batch: Batch, eff: Efficiency) -> StepTime:
    """Time of one step of ``batch`` on ``dep`` (seconds), and why."""
    return build_step_model(dep, eff).step(batch)
